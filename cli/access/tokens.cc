#include "cli/access/tokens.h"

#include <nettle/memops.h>
#include <nettle/sha2.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "formats/core/source.h"

namespace refzarr {
namespace {

constexpr size_t kMinTokenLength = 16;

std::array<unsigned char, 32> Sha256(std::string_view text) {
  sha256_ctx ctx;
  sha256_init(&ctx);
  sha256_update(&ctx, text.size(), reinterpret_cast<const uint8_t*>(text.data()));
  std::array<unsigned char, 32> digest{};
  sha256_digest(&ctx, digest.size(), digest.data());
  return digest;
}

// RFC 6750's b64token (token68): what an Authorization: Bearer header can carry.
bool IsToken68(std::string_view token) {
  size_t i = 0;
  for (; i < token.size(); ++i) {
    char c = token[i];
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/';
    if (!ok) break;
  }
  if (i == 0) return false;
  for (; i < token.size(); ++i) {
    if (token[i] != '=') return false;
  }
  return true;
}

std::vector<std::string_view> Fields(std::string_view line) {
  std::vector<std::string_view> fields;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    if (i > start) fields.push_back(line.substr(start, i - start));
  }
  return fields;
}

}  // namespace

bool KeyUnderPrefix(std::string_view key, std::string_view prefix) {
  if (prefix.empty()) return true;
  if (key.size() < prefix.size() || key.substr(0, prefix.size()) != prefix) return false;
  return key.size() == prefix.size() || key[prefix.size()] == '/';
}

Result<std::string> NormalizePrefix(std::string_view prefix) {
  std::string out;
  size_t i = 0;
  while (i < prefix.size()) {
    size_t end = prefix.find('/', i);
    if (end == std::string_view::npos) end = prefix.size();
    std::string_view segment = prefix.substr(i, end - i);
    i = end + 1;
    if (segment.empty()) continue;
    if (segment == "." || segment == "..") {
      return InvalidArgumentError("prefix '" + std::string(prefix) + "' has a '" +
                                  std::string(segment) + "' segment");
    }
    if (segment.find('\0') != std::string_view::npos) {
      return InvalidArgumentError("prefix has a NUL byte");
    }
    if (!out.empty()) out += '/';
    out += segment;
  }
  return out;
}

Result<TokenTable> TokenTable::Parse(std::string_view text, std::string_view file) {
  TokenTable table;
  const std::string where(file);
  unsigned line_number = 0;
  size_t at = 0;
  while (at <= text.size()) {
    size_t end = text.find('\n', at);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(at, end - at);
    at = end + 1;
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    std::vector<std::string_view> fields = Fields(line);
    if (fields.empty() || fields[0].front() == '#') continue;
    const std::string here = where + ":" + std::to_string(line_number) + ": ";
    // Messages name the line, never the token: an error message may end up in a log.
    if (!IsToken68(fields[0])) {
      return InvalidArgumentError(here +
                                  "the token has characters outside A-Z a-z 0-9 - . _ ~ + / =");
    }
    if (fields[0].size() < kMinTokenLength) {
      return InvalidArgumentError(here + "the token has " + std::to_string(fields[0].size()) +
                                  " characters; at least " + std::to_string(kMinTokenLength) +
                                  " are needed (e.g. `openssl rand -hex 32`)");
    }
    if (fields.size() < 2) {
      return InvalidArgumentError(here + "a token needs at least one path prefix (\"/\" for all)");
    }
    TokenGrant grant;
    grant.digest = Sha256(fields[0]);
    grant.line = line_number;
    for (size_t i = 1; i < fields.size(); ++i) {
      // Written as URL paths: "/a%20b" is the group "a b" (a field cannot hold a space).
      Result<std::string> prefix = NormalizePrefix(PercentDecode(fields[i]));
      if (!prefix.ok()) return InvalidArgumentError(here + prefix.status().message());
      grant.prefixes.push_back(std::move(*prefix));
    }
    for (const TokenGrant& other : table.grants_) {
      if (other.digest == grant.digest) {
        return InvalidArgumentError(here + "the same token as line " + std::to_string(other.line));
      }
    }
    table.grants_.push_back(std::move(grant));
  }
  if (table.grants_.empty()) return InvalidArgumentError(where + ": no token in the file");
  return table;
}

Result<TokenTable> TokenTable::Load(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    int error = errno;
    std::string message = "tokens file " + path + ": " + std::strerror(error);
    return error == ENOENT ? NotFoundError(message) : IoError(message);
  }
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return InvalidArgumentError("tokens file " + path + " has mode " + mode +
                                ": others may read or change it; `chmod 600 " + path + "`");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return IoError("tokens file " + path + ": " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  return Parse(text.str(), path);
}

const TokenGrant* TokenTable::Find(std::string_view token) const {
  const std::array<unsigned char, 32> digest = Sha256(token);
  const TokenGrant* found = nullptr;
  for (const TokenGrant& grant : grants_) {
    // memeql_sec reads every byte whatever differs; the loop visits every grant.
    bool equal = memeql_sec(grant.digest.data(), digest.data(), digest.size()) != 0;
    if (equal) found = &grant;
  }
  return found;
}

}  // namespace refzarr
