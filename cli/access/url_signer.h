// Signed, expiring URLs (`refzarr sign`): an HMAC-SHA256 over (prefix, expiry) under a key kept
// beside the index, carried in the URL's path so that Zarr clients, which append keys to a base
// URL, keep it on every request. See docs/security.md.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "formats/core/status.h"

namespace refzarr {

/// The first path segment of a signed URL: `/__signed__/EXPIRES/SIGNATURE/KEY...`. Zarr v3
/// reserves names starting with "__", so no key of a view starts with it.
inline constexpr std::string_view kSignedPathSegment = "__signed__";

/// Where the signing key of `index` lives: `INDEX.serve-key` (64 hex digits, mode 0600).
std::string SigningKeyPath(const std::string& index);

/// The parts of a signed request path (views into the path given to SplitSignedPath).
struct SignedUrlPath {
  int64_t expires = 0;           ///< Unix time (seconds) from which the URL is refused.
  std::string_view signature;    ///< As sent: 64 lower-case hex digits when genuine.
  std::string_view rest;         ///< The path after the signature, starting with '/'.
};

/// Splits a raw request path. nullopt when it does not start with `/__signed__/`;
/// kInvalidArgument when it does but has no decimal expiry and signature segments.
Result<std::optional<SignedUrlPath>> SplitSignedPath(std::string_view path);

/// Signs and verifies URLs under one 256-bit key.
class UrlSigner {
 public:
  /// A signer with the given key (tests; the commands use ForIndex).
  explicit UrlSigner(const std::array<unsigned char, 32>& key) : key_(key) {}

  /// The signer of `index`: reads SigningKeyPath(index). When it is absent and `create` is true,
  /// creates it first with 32 bytes from the kernel's random generator (getrandom), mode 0600.
  /// kNotFound when absent and not created; kInvalidArgument when group or others may read it or
  /// it does not hold 64 hex digits (the message names the file, never the key); kIo otherwise.
  static Result<UrlSigner> ForIndex(const std::string& index, bool create);

  /// The signature (64 lower-case hex digits) of `prefix` (a normalised view key, "" the root)
  /// readable until `expires` (Unix seconds).
  std::string Signature(std::string_view prefix, int64_t expires) const;

  /// Whether `signature` is the one of (prefix, expires); the comparison takes constant time.
  bool Verify(std::string_view prefix, int64_t expires, std::string_view signature) const;

  /// `/__signed__/EXPIRES/SIGNATURE`, then '/' and the percent-encoded prefix unless it is the
  /// root: the path of the URL `refzarr sign` prints (which adds '/' for a directory).
  std::string SignedPath(std::string_view prefix, int64_t expires) const;

 private:
  std::array<unsigned char, 32> key_;
};

}  // namespace refzarr
