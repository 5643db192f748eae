#include "cli/access/url_signer.h"

#include <fcntl.h>
#include <nettle/hmac.h>
#include <nettle/memops.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>

#include "formats/core/source.h"

namespace refzarr {
namespace {

constexpr char kHexDigits[] = "0123456789abcdef";
// Binds a signature to this use and version; NULs separate the fields (a prefix has none).
constexpr std::string_view kDomain("refzarr signed URL v1\0", 22);

std::string Hex(const unsigned char* bytes, size_t n) {
  std::string out;
  out.reserve(2 * n);
  for (size_t i = 0; i < n; ++i) {
    out += kHexDigits[bytes[i] >> 4];
    out += kHexDigits[bytes[i] & 15];
  }
  return out;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Status ModeIsPrivate(const std::string& path, const struct stat& st) {
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) == 0) return OkStatus();
  char mode[8];
  std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
  return InvalidArgumentError("signing key " + path + " has mode " + mode +
                              ": others may read or change it; `chmod 600 " + path + "`");
}

// Writes a new key with O_EXCL: of two commands creating it at once, one wins and both use its key.
Status CreateKey(const std::string& path) {
  std::array<unsigned char, 32> key{};
  if (getrandom(key.data(), key.size(), 0) != static_cast<ssize_t>(key.size())) {
    return IoError("signing key " + path + ": getrandom: " + std::strerror(errno));
  }
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (errno == EEXIST) return OkStatus();
    return IoError("create signing key " + path + ": " + std::strerror(errno));
  }
  std::string text = Hex(key.data(), key.size()) + "\n";
  bool written = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                 ::fsync(fd) == 0;
  int error = errno;
  ::close(fd);
  if (!written) {
    ::unlink(path.c_str());
    return IoError("write signing key " + path + ": " + std::strerror(error));
  }
  return OkStatus();
}

}  // namespace

std::string SigningKeyPath(const std::string& index) { return index + ".serve-key"; }

Result<std::optional<SignedUrlPath>> SplitSignedPath(std::string_view path) {
  const std::string head = "/" + std::string(kSignedPathSegment) + "/";
  if (path.substr(0, head.size()) != head) return std::optional<SignedUrlPath>();
  std::string_view rest = path.substr(head.size());
  size_t slash = rest.find('/');
  std::string_view expiry = rest.substr(0, slash);
  SignedUrlPath out;
  auto [end, ec] = std::from_chars(expiry.data(), expiry.data() + expiry.size(), out.expires);
  if (expiry.empty() || ec != std::errc() || end != expiry.data() + expiry.size() ||
      out.expires < 0 || slash == std::string_view::npos) {
    return InvalidArgumentError("malformed signed URL: expected /" +
                                std::string(kSignedPathSegment) + "/EXPIRES/SIGNATURE/...");
  }
  rest.remove_prefix(slash + 1);
  slash = rest.find('/');
  out.signature = rest.substr(0, slash);
  out.rest = slash == std::string_view::npos ? std::string_view("/") : rest.substr(slash);
  return std::optional<SignedUrlPath>(out);
}

Result<UrlSigner> UrlSigner::ForIndex(const std::string& index, bool create) {
  const std::string path = SigningKeyPath(index);
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno != ENOENT) return IoError("signing key " + path + ": " + std::strerror(errno));
    if (!create) {
      return NotFoundError("no signing key " + path + ": `refzarr sign " + index +
                           " PREFIX` creates it");
    }
    RETURN_IF_ERROR(CreateKey(path));
    if (::stat(path.c_str(), &st) != 0) {
      return IoError("signing key " + path + ": " + std::strerror(errno));
    }
  }
  RETURN_IF_ERROR(ModeIsPrivate(path, st));
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return IoError("open signing key " + path + ": " + std::strerror(errno));
  char text[80];
  ssize_t n = ::read(fd, text, sizeof text);
  ::close(fd);
  if (n < 0) return IoError("read signing key " + path + ": " + std::strerror(errno));
  std::string_view hex(text, static_cast<size_t>(n));
  while (!hex.empty() && (hex.back() == '\n' || hex.back() == '\r')) hex.remove_suffix(1);
  std::array<unsigned char, 32> key{};
  if (hex.size() != 2 * key.size()) {
    return InvalidArgumentError("signing key " + path + " does not hold 64 hex digits");
  }
  for (size_t i = 0; i < key.size(); ++i) {
    int hi = HexDigit(hex[2 * i]);
    int lo = HexDigit(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      return InvalidArgumentError("signing key " + path + " does not hold 64 hex digits");
    }
    key[i] = static_cast<unsigned char>(hi * 16 + lo);
  }
  return UrlSigner(key);
}

std::string UrlSigner::Signature(std::string_view prefix, int64_t expires) const {
  hmac_sha256_ctx ctx;
  hmac_sha256_set_key(&ctx, key_.size(), key_.data());
  std::string message(kDomain);
  message += std::to_string(expires);
  message += '\0';
  message += prefix;
  hmac_sha256_update(&ctx, message.size(), reinterpret_cast<const uint8_t*>(message.data()));
  unsigned char digest[SHA256_DIGEST_SIZE];
  hmac_sha256_digest(&ctx, sizeof digest, digest);
  return Hex(digest, sizeof digest);
}

bool UrlSigner::Verify(std::string_view prefix, int64_t expires,
                       std::string_view signature) const {
  const std::string expected = Signature(prefix, expires);
  // The length is public (always 64); only the content must not leak through timing.
  if (signature.size() != expected.size()) return false;
  return memeql_sec(expected.data(), signature.data(), expected.size()) != 0;
}

std::string UrlSigner::SignedPath(std::string_view prefix, int64_t expires) const {
  std::string path = "/" + std::string(kSignedPathSegment) + "/" + std::to_string(expires) + "/" +
                     Signature(prefix, expires);
  if (!prefix.empty()) path += "/" + PercentEncodePath(prefix);
  return path;
}

}  // namespace refzarr
