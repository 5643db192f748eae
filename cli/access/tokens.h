// Bearer tokens of `refzarr serve --tokens FILE`: the file's format, its checks, and a lookup that
// takes the same time whichever token (if any) matches. See docs/security.md.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "formats/core/status.h"

namespace refzarr {

/// Whether `key` (a view key: no leading or trailing '/', "" the root) is `prefix` or lies under it,
/// segment by segment: "a/b" covers "a/b" and "a/b/c" but not "a/bc". The prefix "" covers every key.
bool KeyUnderPrefix(std::string_view key, std::string_view prefix);

/// A prefix as written by a user ("/a/b/", "a//b", "/") as a view key ("a/b", ""). kInvalidArgument
/// for a "." or ".." segment or a NUL byte: such a prefix could never name a key.
Result<std::string> NormalizePrefix(std::string_view prefix);

/// One token of the file. The token itself is kept only as its SHA-256 digest.
struct TokenGrant {
  std::array<unsigned char, 32> digest{};  ///< SHA-256 of the token.
  std::vector<std::string> prefixes;       ///< Normalised (NormalizePrefix), at least one.
  unsigned line = 0;                       ///< Line of the file: names the token in logs.
};

/// The tokens of one file.
class TokenTable {
 public:
  /// Parses the text of a tokens file: one token per line, `TOKEN PREFIX [PREFIX...]`, fields
  /// separated by spaces or tabs; prefixes are URL paths ("/dir/a%20b.tif", percent-decoded;
  /// "/" for everything); blank lines and lines starting with '#' are ignored. A token has
  /// at least 16 characters of the RFC 6750 token68 set (A-Z a-z 0-9 - . _ ~ + / and trailing '=').
  /// kInvalidArgument naming `file` and the line, never the token, for a line without prefixes, a
  /// bad token or prefix, a token given twice, or a file without any token.
  static Result<TokenTable> Parse(std::string_view text, std::string_view file);

  /// Reads and parses `path`. kInvalidArgument when group or others may read or write it (the
  /// tokens are secrets: `chmod 600`); kNotFound / kIo when it cannot be read.
  static Result<TokenTable> Load(const std::string& path);

  /// The grant of `token`, or nullptr. Compares the token's digest with every grant's in constant
  /// time and never stops early, so the time taken says nothing about which token is close.
  const TokenGrant* Find(std::string_view token) const;

  /// The grants, in file order.
  const std::vector<TokenGrant>& grants() const { return grants_; }

 private:
  std::vector<TokenGrant> grants_;
};

}  // namespace refzarr
