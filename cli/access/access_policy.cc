#include "cli/access/access_policy.h"

#include <chrono>
#include <ctime>
#include <utility>

namespace refzarr {
namespace {

std::string UtcTime(int64_t seconds) {
  std::time_t t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

class TokenAndSignedUrlPolicy final : public AccessPolicy {
 public:
  TokenAndSignedUrlPolicy(std::optional<TokenTable> tokens, std::optional<UrlSigner> signer,
                          UnixClock now)
      : tokens_(std::move(tokens)), signer_(std::move(signer)), now_(std::move(now)) {}

  AccessDecision Check(const AccessRequest& request) const override {
    if (request.signed_url) return CheckSigned(request.key, *request.signed_url);
    if (!tokens_) {
      return {AccessVerdict::kUnauthorized, "-", "this server needs a signed URL (refzarr sign)"};
    }
    if (!request.bearer) {
      return {AccessVerdict::kUnauthorized, "-",
              "this server needs a token (Authorization: Bearer ...) or a signed URL"};
    }
    const TokenGrant* grant = tokens_->Find(*request.bearer);
    if (grant == nullptr) return {AccessVerdict::kUnauthorized, "-", "unknown token"};
    for (const std::string& prefix : grant->prefixes) {
      if (KeyUnderPrefix(request.key, prefix)) {
        return {AccessVerdict::kAllow, "token@" + std::to_string(grant->line), ""};
      }
    }
    // As if it did not exist: a token must not learn what lies outside its prefixes.
    return {AccessVerdict::kHidden, "token@" + std::to_string(grant->line), ""};
  }

 private:
  // The signature names no prefix: every segment-wise prefix of the key is tried (a key has a
  // handful of segments; one HMAC is about a microsecond). The key is then under the signed
  // prefix by construction.
  AccessDecision CheckSigned(std::string_view key, const SignedUrlPath& url) const {
    if (!signer_) {
      return {AccessVerdict::kUnauthorized, "-", "this server does not accept signed URLs"};
    }
    bool genuine = signer_->Verify("", url.expires, url.signature);
    for (size_t at = 0; !genuine && at <= key.size(); ++at) {
      if (at == key.size() || key[at] == '/') {
        genuine = signer_->Verify(key.substr(0, at), url.expires, url.signature);
      }
    }
    if (!genuine) return {AccessVerdict::kForbidden, "-", "the URL's signature is not valid"};
    if (now_() >= url.expires) {
      return {AccessVerdict::kForbidden, "signed",
              "the signed URL expired at " + UtcTime(url.expires)};
    }
    return {AccessVerdict::kAllow, "signed", ""};
  }

  const std::optional<TokenTable> tokens_;
  const std::optional<UrlSigner> signer_;
  const UnixClock now_;
};

}  // namespace

std::unique_ptr<AccessPolicy> MakeAccessPolicy(std::optional<TokenTable> tokens,
                                               std::optional<UrlSigner> signer, UnixClock now) {
  return std::make_unique<TokenAndSignedUrlPolicy>(std::move(tokens), std::move(signer),
                                                   std::move(now));
}

int64_t SystemUnixTime() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace refzarr
