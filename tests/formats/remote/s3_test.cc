// S3 against s3rver behind a SigV4-verifying front: refused signatures, ListObjectsV2 paging,
// unsigned requests to public and private buckets; no message holds a credential.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "formats/core/source.h"
#include "formats/remote/remote.h"
#include "tests/formats/remote/test_servers.h"

namespace refzarr {
namespace {

using testing::Files;

class S3 : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s3 = testing::S3Server();
    ASSERT_TRUE(s3.ok()) << s3.status().message();
    s3_ = *s3;
    options_ = testing::TestOptions();
    testing::UseS3(options_, s3_);
  }
  std::string Uri(const std::string& key) const { return "s3://" + s3_.bucket + "/" + key; }

  testing::S3Info s3_;
  RemoteOptions options_;
};

TEST_F(S3, WrongSecretIsAccessDeniedWithoutTheKeys) {
  options_.s3.secret_key = testing::kWrongSecret;
  auto openers = MakeRemoteOpeners(options_);
  const SourceOpener* opener = testing::OpenerOf(openers, "s3");
  const std::string uri = Uri("data.bin");
  auto st = opener->Stat(uri);
  ASSERT_FALSE(st.ok());
  const std::string m = st.status().message();
  EXPECT_EQ(st.status().code(), StatusCode::kIo) << m;
  EXPECT_NE(m.find("access denied"), std::string::npos) << m;
  EXPECT_NE(m.find("SignatureDoesNotMatch"), std::string::npos) << m;
  EXPECT_NE(m.find("403"), std::string::npos) << m;
  EXPECT_NE(m.find(uri), std::string::npos) << "[" << m << "]";
  testing::ExpectNoSecrets(m);
  auto opened = opener->Open(uri);
  ASSERT_FALSE(opened.ok());
  testing::ExpectNoSecrets(opened.status().message());
  // Listing too.
  Status listed = opener->List(Uri("many/"), [](const ListedSource&) { return OkStatus(); });
  EXPECT_FALSE(listed.ok());
  EXPECT_NE(listed.message().find("SignatureDoesNotMatch"), std::string::npos) << listed.message();
  testing::ExpectNoSecrets(listed.message());
}

TEST_F(S3, UnknownAccessKeyIsAccessDeniedWithoutTheKeys) {
  options_.s3.access_key = "AKIAOTHERKEYID000000";
  auto openers = MakeRemoteOpeners(options_);
  auto st = testing::OpenerOf(openers, "s3")->Stat(Uri("data.bin"));
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.status().message().find("access denied"), std::string::npos) << st.status().message();
  EXPECT_NE(st.status().message().find("InvalidAccessKeyId"), std::string::npos) << st.status().message();
  testing::ExpectNoSecrets(st.status().message());
}

TEST_F(S3, WrongRegionSaysSo) {
  options_.s3.region = "us-west-2";
  auto openers = MakeRemoteOpeners(options_);
  auto st = testing::OpenerOf(openers, "s3")->Stat(Uri("data.bin"));
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.status().message().find("AuthorizationHeaderMalformed"), std::string::npos)
      << st.status().message();
  testing::ExpectNoSecrets(st.status().message());
}

TEST_F(S3, ListingPagesGiveEveryObjectOnceInOrder) {
  options_.s3.list_page_keys = 2;
  auto openers = MakeRemoteOpeners(options_);
  const SourceOpener* opener = testing::OpenerOf(openers, "s3");
  std::vector<ListedSource> got;
  Status st = opener->List(Uri("many/"), [&](const ListedSource& s) {
    got.push_back(s);
    return OkStatus();
  });
  ASSERT_TRUE(st.ok()) << st.message();
  ASSERT_EQ(got.size(), Files().many.size());
  for (size_t i = 0; i < got.size(); ++i) {
    const auto& [key, size] = Files().many[i];
    EXPECT_EQ(got[i].uri, Uri(PercentEncodePath(key)));
    EXPECT_EQ(got[i].stat.size, size) << key;
    EXPECT_FALSE(got[i].stat.generation.unknown()) << key;
    EXPECT_TRUE(got[i].stat.generation.value.starts_with("etag ")) << got[i].stat.generation.value;
    // The listing's generation is the one a Stat gives, and the listed URI opens.
    auto stat = opener->Stat(got[i].uri);
    ASSERT_TRUE(stat.ok()) << stat.status().message();
    EXPECT_EQ(stat->generation, got[i].stat.generation) << key;
    EXPECT_EQ(stat->size, size) << key;
  }
  EXPECT_TRUE(std::is_sorted(got.begin(), got.end(),
                             [](const ListedSource& a, const ListedSource& b) { return a.uri < b.uri; }));

  // The whole bucket: data.bin, small.txt, empty.bin and many/ all in it, each once.
  std::vector<std::string> all;
  st = opener->List(Uri(""), [&](const ListedSource& s) {
    all.push_back(s.uri);
    return OkStatus();
  });
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(std::set<std::string>(all.begin(), all.end()).size(), all.size());
  for (const char* k : {"data.bin", "small.txt", "empty.bin", "many/a.bin"}) {
    EXPECT_NE(std::find(all.begin(), all.end(), Uri(k)), all.end()) << k;
  }
  // A prefix that needs encoding in the query (a space), and one that is part of a name.
  std::vector<std::string> spaced;
  st = opener->List(Uri("many/c%20"), [&](const ListedSource& s) {
    spaced.push_back(s.uri);
    return OkStatus();
  });
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(spaced, std::vector<std::string>{Uri("many/c%20d.bin")});
  std::vector<std::string> sub;
  st = opener->List(Uri("many/g"), [&](const ListedSource& s) {
    sub.push_back(s.uri);
    return OkStatus();
  });
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(sub, std::vector<std::string>{Uri("many/g/h.bin")});
  // An error of the callback stops the listing and comes back.
  int calls = 0;
  st = opener->List(Uri("many/"), [&](const ListedSource&) {
    return ++calls == 3 ? InvalidArgumentError("enough") : OkStatus();
  });
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(calls, 3);
}

TEST_F(S3, ListingAMissingBucketIsNotFound) {
  auto openers = MakeRemoteOpeners(options_);
  Status st = testing::OpenerOf(openers, "s3")->List("s3://no-such-bucket/x/",
                                                      [](const ListedSource&) { return OkStatus(); });
  EXPECT_EQ(st.code(), StatusCode::kNotFound) << st.message();
  EXPECT_NE(st.message().find("s3://no-such-bucket/x/"), std::string::npos) << st.message();
  testing::ExpectNoSecrets(st.message());
}

TEST_F(S3, UnsignedRequestsReadAPublicBucket) {
  auto anon = testing::S3AnonymousServer();
  ASSERT_TRUE(anon.ok()) << anon.status().message();
  RemoteOptions o = testing::TestOptions();
  o.s3.endpoint = anon->endpoint;
  o.s3.region = anon->region;
  o.s3.no_sign = true;
  auto openers = MakeRemoteOpeners(o);
  const SourceOpener* opener = testing::OpenerOf(openers, "s3");
  auto s = opener->Open(Uri("data.bin"));
  ASSERT_TRUE(s.ok()) << s.status().message();
  std::vector<std::byte> got(Files().data.size());
  ASSERT_TRUE((*s)->ReadInto({0, got.size()}, got).ok());
  EXPECT_EQ(got, Files().data);
  int n = 0;
  Status st = opener->List(Uri("many/"), [&](const ListedSource&) {
    ++n;
    return OkStatus();
  });
  EXPECT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(n, static_cast<int>(Files().many.size()));
}

TEST_F(S3, UnsignedRequestsToAPrivateBucketAreAccessDenied) {
  options_.s3.no_sign = true;
  auto openers = MakeRemoteOpeners(options_);
  const std::string uri = Uri("data.bin");
  auto st = testing::OpenerOf(openers, "s3")->Stat(uri);
  ASSERT_FALSE(st.ok());
  const std::string m = st.status().message();
  EXPECT_NE(m.find("access denied"), std::string::npos) << m;
  EXPECT_NE(m.find(uri), std::string::npos) << "[" << m << "]";
  EXPECT_NE(m.find("--no-sign-request"), std::string::npos) << m;  // the hint fits the cause
  testing::ExpectNoSecrets(m);
}

TEST_F(S3, SessionTokenIsSentAndNeverShown) {
  auto s3 = testing::S3TokenServer();
  ASSERT_TRUE(s3.ok()) << s3.status().message();
  RemoteOptions o = testing::TestOptions();
  testing::UseS3(o, *s3);
  o.s3.session_token = testing::kSessionToken;
  auto openers = MakeRemoteOpeners(o);
  auto s = testing::OpenerOf(openers, "s3")->Open(Uri("small.txt"));
  ASSERT_TRUE(s.ok()) << s.status().message();
  std::vector<std::byte> got(Files().small.size());
  ASSERT_TRUE((*s)->ReadInto({0, got.size()}, got).ok());
  EXPECT_EQ(got, Files().small);
  // Without the token, or with another: refused, and no message holds a credential.
  for (const std::string token : {"", "another-token"}) {
    o.s3.session_token = token;
    auto other = MakeRemoteOpeners(o);
    auto st = testing::OpenerOf(other, "s3")->Stat(Uri("small.txt"));
    ASSERT_FALSE(st.ok()) << token;
    EXPECT_NE(st.status().message().find("InvalidToken"), std::string::npos) << st.status().message();
    testing::ExpectNoSecrets(st.status().message());
  }
}

TEST_F(S3, PrefixIsNotAnObject) {
  auto openers = MakeRemoteOpeners(options_);
  auto st = testing::OpenerOf(openers, "s3")->Stat(Uri("many/"));
  EXPECT_EQ(st.status().code(), StatusCode::kInvalidArgument) << st.status().message();
  auto nobucket = testing::OpenerOf(openers, "s3")->Stat("s3:///key");
  EXPECT_EQ(nobucket.status().code(), StatusCode::kInvalidArgument) << nobucket.status().message();
}

TEST_F(S3, KeysWithSpacesOpen) {
  auto openers = MakeRemoteOpeners(options_);
  auto s = testing::OpenerOf(openers, "s3")->Open(Uri("many/c%20d.bin"));
  ASSERT_TRUE(s.ok()) << s.status().message();
  auto st = (*s)->Stat();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->size, Files().many[2].second);
  std::vector<std::byte> got(st->size);
  EXPECT_TRUE((*s)->ReadInto({0, got.size()}, got).ok());
  EXPECT_EQ(got, testing::RandomBytes(st->size, st->size));
}

}  // namespace
}  // namespace refzarr
