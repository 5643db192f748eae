// Who may read what from `refzarr serve`: bearer tokens scoped to path prefixes and signed URLs.
// The HTTP front end asks the policy about every request before it looks at the view.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "cli/access/tokens.h"
#include "cli/access/url_signer.h"

namespace refzarr {

/// What a request carries, as the front end read it.
struct AccessRequest {
  std::string_view key;                     ///< The decoded view key asked for ("" the root).
  std::optional<std::string_view> bearer;   ///< The token of an `Authorization: Bearer` header.
  std::optional<SignedUrlPath> signed_url;  ///< When the path was a signed URL's.
};

enum class AccessVerdict {
  kAllow,         ///< Serve it.
  kUnauthorized,  ///< 401: no credential, or one the server does not know.
  kForbidden,     ///< 403: a signed URL that is expired or whose signature is wrong.
  kHidden,        ///< 404: a good token, but the key is outside its prefixes (no existence leak).
};

struct AccessDecision {
  AccessVerdict verdict = AccessVerdict::kUnauthorized;
  /// Who was let in, for the access log: "token@LINE" (the tokens file's line), "signed", or "-".
  /// Never a token or a signature.
  std::string principal = "-";
  /// Why not, for the response body; never a token or a signature.
  std::string reason;
};

/// Decides one request. Thread-safe (const, no state).
class AccessPolicy {
 public:
  virtual ~AccessPolicy() = default;
  virtual AccessDecision Check(const AccessRequest& request) const = 0;
};

/// Unix time in seconds; injected so tests can move it.
using UnixClock = std::function<int64_t()>;

/// The policy of `serve --tokens/--signed-urls`. With `tokens`, a request needs a known token
/// and is answered only under that token's prefixes; with `signer`, a signed URL whose signature
/// covers a prefix of the key (segment-wise) is answered until it expires. At least one must be
/// given. A request that is neither is kUnauthorized.
std::unique_ptr<AccessPolicy> MakeAccessPolicy(std::optional<TokenTable> tokens,
                                               std::optional<UrlSigner> signer, UnixClock now);

/// The system clock.
int64_t SystemUnixTime();

}  // namespace refzarr
