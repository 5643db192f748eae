#include "formats/core/source.h"

#include <sys/stat.h>
#include <xxhash.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace refzarr {
namespace {

constexpr std::string_view kFilePrefix = "file://";
constexpr uint64_t kFingerprintSpan = 64 * 1024;

class LocalFileOpener final : public SourceOpener {
 public:
  std::string_view Scheme() const override { return "file"; }
  Result<SourceStat> Stat(std::string_view uri) const override {
    ASSIGN_OR_RETURN(std::filesystem::path path, LocalPathOfUri(uri));
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) {
      const int err = errno;
      std::string m = path.string() + ": " + std::strerror(err);
      return err == ENOENT ? NotFoundError(m) : IoError(m);
    }
    return LocalFileStat(st);
  }
  Result<std::unique_ptr<ByteSource>> Open(std::string_view uri) const override {
    ASSIGN_OR_RETURN(std::filesystem::path path, LocalPathOfUri(uri));
    return OpenLocalFile(path);
  }
};

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

Status SourceOpener::List(std::string_view prefix,
                          const std::function<Status(const ListedSource&)>&) const {
  return UnsupportedError(std::string(prefix) + ": " + std::string(Scheme()) +
                          ":// sources cannot be listed; name each file");
}

Result<const SourceOpener*> SourceOpeners::Find(std::string_view uri) const {
  const std::string_view scheme = UriScheme(uri);
  for (const auto& o : openers_) {
    if (o->Scheme() == scheme) return o.get();
  }
  return UnsupportedError(std::string(uri) + ": no source opener for " +
                          (scheme.empty() ? std::string("a URI without a scheme")
                                          : "scheme '" + std::string(scheme) + "'"));
}

Result<SourceStat> SourceOpeners::Stat(std::string_view uri) const {
  ASSIGN_OR_RETURN(const SourceOpener* o, Find(uri));
  return o->Stat(uri);
}

Result<std::unique_ptr<ByteSource>> SourceOpeners::Open(std::string_view uri) const {
  ASSIGN_OR_RETURN(const SourceOpener* o, Find(uri));
  return o->Open(uri);
}

Status SourceOpeners::List(std::string_view prefix,
                           const std::function<Status(const ListedSource&)>& each) const {
  ASSIGN_OR_RETURN(const SourceOpener* o, Find(prefix));
  return o->List(prefix, each);
}

std::unique_ptr<SourceOpener> MakeLocalFileOpener() { return std::make_unique<LocalFileOpener>(); }

const SourceOpeners& LocalSourceOpeners() {
  static const SourceOpeners* table = [] {
    std::vector<std::unique_ptr<SourceOpener>> o;
    o.push_back(MakeLocalFileOpener());
    return new SourceOpeners(std::move(o));
  }();
  return *table;
}

std::string PercentEncodePath(std::string_view path) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : path) {
    const bool keep = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '.' || c == '_' || c == '~' || c == '/';
    if (keep) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string FileUri(const std::filesystem::path& path) {
  std::error_code ec;
  std::filesystem::path abs = std::filesystem::absolute(path, ec);
  if (ec) abs = path;
  return std::string(kFilePrefix) + PercentEncodePath(abs.lexically_normal().generic_string());
}

std::string_view UriScheme(std::string_view uri) {
  const size_t colon = uri.find("://");
  if (colon == std::string_view::npos || colon == 0) return {};
  for (char c : uri.substr(0, colon)) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '-' && c != '.') return {};
  }
  return uri.substr(0, colon);
}

Result<std::filesystem::path> LocalPathOfUri(std::string_view uri) {
  if (!uri.starts_with(kFilePrefix) || uri.size() == kFilePrefix.size() ||
      uri[kFilePrefix.size()] != '/') {
    return InvalidArgumentError(std::string(uri) + ": not a file:///absolute/path URI");
  }
  std::string path;
  for (size_t i = kFilePrefix.size(); i < uri.size(); ++i) {
    if (uri[i] != '%') {
      path += uri[i];
      continue;
    }
    const int hi = i + 2 < uri.size() ? HexDigit(uri[i + 1]) : -1;
    const int lo = hi >= 0 ? HexDigit(uri[i + 2]) : -1;
    if (lo < 0) return InvalidArgumentError(std::string(uri) + ": malformed %-escape");
    path += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return std::filesystem::path(path);
}

std::string SiblingUri(std::string_view uri, std::string_view relative) {
  // The folder of `uri`: everything up to its last '/' after the authority.
  const size_t scheme_end = uri.find("://");
  const size_t path_start =
      scheme_end == std::string_view::npos ? 0 : uri.find('/', scheme_end + 3);
  std::string base(uri.substr(0, path_start == std::string_view::npos ? uri.size() : path_start));
  std::string_view path =
      path_start == std::string_view::npos ? std::string_view("/") : uri.substr(path_start);
  std::vector<std::string_view> parts;
  auto push = [&](std::string_view s) {
    size_t start = 0;
    while (start <= s.size()) {
      size_t end = s.find('/', start);
      if (end == std::string_view::npos) end = s.size();
      std::string_view part = s.substr(start, end - start);
      if (part == "..") {
        if (!parts.empty()) parts.pop_back();
      } else if (!part.empty() && part != ".") {
        parts.push_back(part);
      }
      start = end + 1;
    }
  };
  push(path.substr(0, path.rfind('/') + 1));
  if (relative.starts_with('/')) parts.clear();
  push(relative);
  for (std::string_view part : parts) {
    base += '/';
    base += part;
  }
  return base;
}

std::string UriFileName(std::string_view uri) {
  // Only the path names a file: "https://host" alone has none.
  const size_t scheme_end = uri.find("://");
  const size_t path_start = scheme_end == std::string_view::npos ? 0 : scheme_end + 3;
  const size_t slash = uri.rfind('/');
  if (scheme_end != std::string_view::npos && (slash == std::string_view::npos || slash < path_start)) {
    return {};
  }
  return PercentDecode(slash == std::string_view::npos ? uri : uri.substr(slash + 1));
}

std::string PercentDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    const int hi = s[i] == '%' && i + 2 < s.size() ? HexDigit(s[i + 1]) : -1;
    const int lo = hi >= 0 ? HexDigit(s[i + 2]) : -1;
    if (lo < 0) {
      out += s[i];
      continue;
    }
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

std::string DisplaySource(std::string_view uri) {
  auto path = LocalPathOfUri(uri);
  return path.ok() ? path->string() : std::string(uri);
}

Result<std::string> ContentFingerprint(ByteSource& source, uint64_t size,
                                       std::vector<std::byte>* head_out, size_t head_bytes) {
  XXH3_state_t* state = XXH3_createState();
  std::unique_ptr<XXH3_state_t, decltype(&XXH3_freeState)> owner(state, XXH3_freeState);
  XXH3_64bits_reset(state);
  XXH3_64bits_update(state, &size, sizeof size);
  const uint64_t head = std::min(size, kFingerprintSpan);
  ASSIGN_OR_RETURN(auto first, ReadRange(source, {0, head}));
  XXH3_64bits_update(state, first.data(), first.size());
  if (head_out) {
    head_out->assign(first.begin(), first.begin() + static_cast<ptrdiff_t>(
                                                        std::min<size_t>(head_bytes, first.size())));
  }
  if (size > head) {
    const uint64_t tail = std::min(size - head, kFingerprintSpan);
    ASSIGN_OR_RETURN(auto last, ReadRange(source, {size - tail, tail}));
    XXH3_64bits_update(state, last.data(), last.size());
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx",
                static_cast<unsigned long long>(XXH3_64bits_digest(state)));
  return std::string(hex);
}

}  // namespace refzarr
