// The access rules of `refzarr serve`: tokens file, prefixes, signed URLs, the policy, the rate
// limiter and the access log's line.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nettle/hmac.h>
#include <string>

#include "cli/access/access_log.h"
#include "cli/access/access_policy.h"
#include "cli/access/rate_limiter.h"
#include "cli/access/tokens.h"
#include "cli/access/url_signer.h"

namespace refzarr {
namespace {

constexpr char kTokenA[] = "aaaaaaaaaaaaaaaaaaaa1";
constexpr char kTokenB[] = "bbbbbbbbbbbbbbbbbbbb2";

class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/refzarr-access-XXXXXX";
    path_ = mkdtemp(pattern);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

void WriteFile(const std::filesystem::path& path, const std::string& text, mode_t mode) {
  std::ofstream(path) << text;
  ASSERT_EQ(::chmod(path.c_str(), mode), 0);
}

TEST(KeyUnderPrefix, MatchesWholeSegmentsOnly) {
  EXPECT_TRUE(KeyUnderPrefix("a/b", "a/b"));
  EXPECT_TRUE(KeyUnderPrefix("a/b/c/.zarray", "a/b"));
  EXPECT_FALSE(KeyUnderPrefix("a/bc", "a/b"));
  EXPECT_FALSE(KeyUnderPrefix("a", "a/b"));
  EXPECT_FALSE(KeyUnderPrefix("", "a"));
  EXPECT_TRUE(KeyUnderPrefix("", ""));
  EXPECT_TRUE(KeyUnderPrefix("x/y", ""));
}

TEST(NormalizePrefix, StripsSlashesAndRefusesDotSegments) {
  EXPECT_EQ(*NormalizePrefix("/a//b/"), "a/b");
  EXPECT_EQ(*NormalizePrefix("/"), "");
  EXPECT_EQ(*NormalizePrefix("a.tif"), "a.tif");
  EXPECT_FALSE(NormalizePrefix("a/../b").ok());
  EXPECT_FALSE(NormalizePrefix("./a").ok());
}

TEST(TokenTable, ParsesTokensPrefixesAndComments) {
  std::string text = std::string("# shared with the lab\n\n") + kTokenA +
                     " /tiled/a.tif\t/rgb/ /a%20b\n  " + kTokenB + " /\r\n# end\n";
  Result<TokenTable> table = TokenTable::Parse(text, "tokens.txt");
  ASSERT_TRUE(table.ok()) << table.status().message();
  ASSERT_EQ(table->grants().size(), 2u);
  EXPECT_EQ(table->grants()[0].prefixes, (std::vector<std::string>{"tiled/a.tif", "rgb", "a b"}));
  EXPECT_EQ(table->grants()[0].line, 3u);
  EXPECT_EQ(table->grants()[1].prefixes, (std::vector<std::string>{""}));
  EXPECT_EQ(table->Find(kTokenA), &table->grants()[0]);
  EXPECT_EQ(table->Find(kTokenB), &table->grants()[1]);
  EXPECT_EQ(table->Find("aaaaaaaaaaaaaaaaaaaa"), nullptr);
  EXPECT_EQ(table->Find(""), nullptr);
  EXPECT_EQ(table->Find(std::string(kTokenA) + "x"), nullptr);
}

TEST(TokenTable, RefusesBadLinesNamingTheLineButNeverTheToken) {
  struct Case {
    std::string text;
    std::string expect;
  };
  const std::string secret = "secretsecretsecret99";
  for (const Case& c : std::vector<Case>{
           {secret + "\n", "tokens.txt:1: a token needs at least one path prefix"},
           {"short /a\n", "tokens.txt:1: the token has 5 characters; at least 16"},
           {"# c\n" + secret + "\"x /a\n", "tokens.txt:2: the token has characters outside"},
           {secret + " /a/../b\n", "tokens.txt:1: prefix '/a/../b' has a '..' segment"},
           {secret + " /a\n" + secret + " /b\n", "tokens.txt:2: the same token as line 1"},
           {"# only comments\n", "tokens.txt: no token in the file"},
       }) {
    Result<TokenTable> table = TokenTable::Parse(c.text, "tokens.txt");
    ASSERT_FALSE(table.ok()) << c.text;
    EXPECT_EQ(table.status().message().find(c.expect), 0u) << table.status().message();
    EXPECT_EQ(table.status().message().find("secretsecret"), std::string::npos)
        << table.status().message();
  }
}

TEST(TokenTable, LoadRefusesAFileOthersCanRead) {
  TempDir dir;
  const auto path = dir.path() / "tokens";
  WriteFile(path, std::string(kTokenA) + " /\n", 0644);
  Result<TokenTable> open = TokenTable::Load(path);
  ASSERT_FALSE(open.ok());
  EXPECT_NE(open.status().message().find("has mode 0644"), std::string::npos)
      << open.status().message();
  EXPECT_NE(open.status().message().find("chmod 600"), std::string::npos);
  ASSERT_EQ(::chmod(path.c_str(), 0600), 0);
  Result<TokenTable> ok = TokenTable::Load(path);
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  EXPECT_NE(ok->Find(kTokenA), nullptr);
  Result<TokenTable> missing = TokenTable::Load(dir.path() / "nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
}

std::array<unsigned char, 32> TestKey(unsigned char fill) {
  std::array<unsigned char, 32> key{};
  key.fill(fill);
  return key;
}

TEST(UrlSigner, SignatureIsHmacSha256OfDomainExpiryAndPrefix) {
  UrlSigner signer(TestKey(7));
  // The same HMAC computed here with nettle's one-shot interface over the documented message.
  std::array<unsigned char, 32> key = TestKey(7);
  std::string message("refzarr signed URL v1\0" "1700000000\0a/b.tif", 22 + 11 + 7);
  uint8_t digest[32];
  hmac_sha256_ctx ctx;
  hmac_sha256_set_key(&ctx, key.size(), key.data());
  hmac_sha256_update(&ctx, message.size(), reinterpret_cast<const uint8_t*>(message.data()));
  hmac_sha256_digest(&ctx, 32, digest);
  std::string hex;
  for (uint8_t b : digest) {
    char two[3];
    std::snprintf(two, sizeof two, "%02x", b);
    hex += two;
  }
  EXPECT_EQ(signer.Signature("a/b.tif", 1700000000), hex);
  EXPECT_TRUE(signer.Verify("a/b.tif", 1700000000, hex));
  EXPECT_FALSE(signer.Verify("a/b.tif", 1700000001, hex));
  EXPECT_FALSE(signer.Verify("a/b.tifx", 1700000000, hex));
  EXPECT_FALSE(signer.Verify("a/b.tif", 1700000000, hex.substr(0, 63)));
  EXPECT_FALSE(UrlSigner(TestKey(8)).Verify("a/b.tif", 1700000000, hex));
  EXPECT_EQ(signer.SignedPath("a b/c", 5), "/__signed__/5/" + signer.Signature("a b/c", 5) +
                                               "/a%20b/c");
  EXPECT_EQ(signer.SignedPath("", 5), "/__signed__/5/" + signer.Signature("", 5));
}

TEST(UrlSigner, SplitSignedPath) {
  auto plain = SplitSignedPath("/a/b");
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(plain->has_value());
  auto s = SplitSignedPath("/__signed__/123/abc/x/y/");
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE(s->has_value());
  EXPECT_EQ((*s)->expires, 123);
  EXPECT_EQ((*s)->signature, "abc");
  EXPECT_EQ((*s)->rest, "/x/y/");
  auto root = SplitSignedPath("/__signed__/123/abc");
  ASSERT_TRUE(root.ok() && root->has_value());
  EXPECT_EQ((*root)->rest, "/");
  for (const char* bad : {"/__signed__/", "/__signed__/12x/abc/", "/__signed__/-1/abc/",
                          "/__signed__/123", "/__signed__//abc/"}) {
    EXPECT_FALSE(SplitSignedPath(bad).ok()) << bad;
  }
}

TEST(UrlSigner, KeyFileIsCreatedOnceWithMode0600AndRefusedWhenShared) {
  TempDir dir;
  const std::string index = (dir.path() / "a.refs.db").string();
  Result<UrlSigner> absent = UrlSigner::ForIndex(index, false);
  ASSERT_FALSE(absent.ok());
  EXPECT_EQ(absent.status().code(), StatusCode::kNotFound);
  Result<UrlSigner> first = UrlSigner::ForIndex(index, true);
  ASSERT_TRUE(first.ok()) << first.status().message();
  struct stat st {};
  ASSERT_EQ(::stat(SigningKeyPath(index).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  Result<UrlSigner> again = UrlSigner::ForIndex(index, true);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(first->Signature("p", 1), again->Signature("p", 1)) << "the key was replaced";
  Result<UrlSigner> other = UrlSigner::ForIndex((dir.path() / "b.refs.db").string(), true);
  ASSERT_TRUE(other.ok());
  EXPECT_NE(first->Signature("p", 1), other->Signature("p", 1)) << "two indexes share a key";
  ASSERT_EQ(::chmod(SigningKeyPath(index).c_str(), 0640), 0);
  Result<UrlSigner> shared = UrlSigner::ForIndex(index, false);
  ASSERT_FALSE(shared.ok());
  EXPECT_NE(shared.status().message().find("has mode 0640"), std::string::npos);
  WriteFile(SigningKeyPath(index), "0123\n", 0600);
  Result<UrlSigner> bad = UrlSigner::ForIndex(index, false);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("does not hold 64 hex digits"), std::string::npos);
}

struct PolicyFixture {
  int64_t now = 1000;
  UrlSigner signer{TestKey(1)};
  std::unique_ptr<AccessPolicy> policy;
  PolicyFixture(bool tokens, bool signed_urls) {
    std::optional<TokenTable> table;
    if (tokens) {
      table = *TokenTable::Parse(std::string(kTokenA) + " /tiled/a.tif\n" + kTokenB + " /\n", "t");
    }
    policy = MakeAccessPolicy(std::move(table),
                              signed_urls ? std::optional<UrlSigner>(signer) : std::nullopt,
                              [this] { return now; });
  }
  AccessDecision Token(std::string_view key, std::optional<std::string_view> bearer) {
    return policy->Check({key, bearer, std::nullopt});
  }
  AccessDecision Signed(std::string_view key, std::string_view prefix, int64_t expires) {
    std::string sig = signer.Signature(prefix, expires);
    SignedUrlPath url;
    url.expires = expires;
    url.signature = sig;
    return policy->Check({key, std::nullopt, url});
  }
};

TEST(AccessPolicy, TokensReadOnlyUnderTheirPrefixes) {
  PolicyFixture f(true, false);
  EXPECT_EQ(f.Token("tiled/a.tif/0/0/.zarray", kTokenA).verdict, AccessVerdict::kAllow);
  EXPECT_EQ(f.Token("tiled/a.tif/0/0/.zarray", kTokenA).principal, "token@1");
  EXPECT_EQ(f.Token("tiled/a.tif", kTokenA).verdict, AccessVerdict::kAllow);
  EXPECT_EQ(f.Token("tiled/b.tif/.zattrs", kTokenA).verdict, AccessVerdict::kHidden);
  EXPECT_EQ(f.Token("tiled/a.tiff", kTokenA).verdict, AccessVerdict::kHidden);
  EXPECT_EQ(f.Token("", kTokenA).verdict, AccessVerdict::kHidden);
  EXPECT_EQ(f.Token("tiled/b.tif", kTokenB).verdict, AccessVerdict::kAllow);
  EXPECT_EQ(f.Token("tiled/b.tif", kTokenB).principal, "token@2");
  EXPECT_EQ(f.Token("tiled/a.tif", std::nullopt).verdict, AccessVerdict::kUnauthorized);
  EXPECT_EQ(f.Token("tiled/a.tif", "cccccccccccccccccccc").verdict, AccessVerdict::kUnauthorized);
  // Signed URLs were not enabled.
  EXPECT_EQ(f.Signed("tiled/a.tif", "tiled", 2000).verdict, AccessVerdict::kUnauthorized);
}

TEST(AccessPolicy, SignedUrlsCoverTheirPrefixUntilTheyExpire) {
  PolicyFixture f(false, true);
  EXPECT_EQ(f.Signed("tiled/a.tif/0/0/.zarray", "tiled/a.tif", 2000).verdict,
            AccessVerdict::kAllow);
  EXPECT_EQ(f.Signed("tiled/a.tif", "tiled/a.tif", 2000).principal, "signed");
  EXPECT_EQ(f.Signed("anything/at/all", "", 2000).verdict, AccessVerdict::kAllow);
  // A signature of one prefix read under another, or a partial segment, is no signature.
  EXPECT_EQ(f.Signed("tiled/b.tif/.zattrs", "tiled/a.tif", 2000).verdict,
            AccessVerdict::kForbidden);
  EXPECT_EQ(f.Signed("tiled/a.tiff", "tiled/a.tif", 2000).verdict, AccessVerdict::kForbidden);
  f.now = 2000;
  AccessDecision expired = f.Signed("tiled/a.tif/.zattrs", "tiled/a.tif", 2000);
  EXPECT_EQ(expired.verdict, AccessVerdict::kForbidden);
  EXPECT_EQ(expired.reason, "the signed URL expired at 1970-01-01T00:33:20Z");
  // No token table: plain requests need a signed URL.
  EXPECT_EQ(f.Token("tiled/a.tif", kTokenA).verdict, AccessVerdict::kUnauthorized);
}

TEST(RateLimiter, RefusesBeyondTheBurstAndRefillsPerClient) {
  double now = 0;
  auto limiter = MakeRateLimiter(2, 3, [&] { return now; });
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter->Admit("10.0.0.1")) << i;
  EXPECT_FALSE(limiter->Admit("10.0.0.1"));
  EXPECT_TRUE(limiter->Admit("10.0.0.2")) << "another client has its own bucket";
  now = 0.4;
  EXPECT_FALSE(limiter->Admit("10.0.0.1")) << "0.8 of a request refilled";
  now = 0.5;
  EXPECT_TRUE(limiter->Admit("10.0.0.1"));
  EXPECT_FALSE(limiter->Admit("10.0.0.1"));
  now = 100;
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter->Admit("10.0.0.1")) << "refilled to the burst";
  EXPECT_FALSE(limiter->Admit("10.0.0.1"));
}

TEST(RateLimiter, ForgetsIdleClients) {
  double now = 0;
  auto limiter = MakeRateLimiter(1, 1, [&] { return now; });
  for (int i = 0; i < 5000; ++i) ASSERT_TRUE(limiter->Admit("c" + std::to_string(i)));
  EXPECT_FALSE(limiter->Admit("c4999"));
  now = 10;  // Every bucket has refilled: the sweeps drop them, and a client starts afresh.
  for (int i = 0; i < 5000; ++i) ASSERT_TRUE(limiter->Admit("d" + std::to_string(i)));
  EXPECT_TRUE(limiter->Admit("c0"));
}

TEST(AccessLog, CommonLogFormatWithDuration) {
  AccessRecord r;
  r.client = "10.1.2.3";
  r.principal = "token@4";
  r.when = 1764637500;  // 2025-12-02T01:05:00Z
  r.method = "GET";
  r.path = "/__signed__/99/-/a.tif/.zattrs";
  r.version = "HTTP/1.1";
  r.status = 200;
  r.bytes = 1234;
  r.seconds = 0.000214;
  EXPECT_EQ(CommonLogLine(r),
            "10.1.2.3 - token@4 [02/Dec/2025:01:05:00 +0000] \"GET /__signed__/99/-/a.tif/.zattrs "
            "HTTP/1.1\" 200 1234 0.000214\n");
  r.bytes.reset();
  r.principal.clear();
  EXPECT_NE(CommonLogLine(r).find(" - - ["), std::string::npos);
  EXPECT_NE(CommonLogLine(r).find("\" 200 - 0.000214\n"), std::string::npos);
  std::ostringstream out;
  auto log = MakeStreamAccessLog(out);
  log->Record(r);
  log->Record(r);
  EXPECT_EQ(out.str(), CommonLogLine(r) + CommonLogLine(r));
}

}  // namespace
}  // namespace refzarr
