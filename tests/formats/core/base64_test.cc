#include "formats/core/base64.h"

#include <gtest/gtest.h>

namespace refzarr {
namespace {

TEST(Base64, MatchesRfc4648Vectors) {
  const std::pair<std::string, std::string> cases[] = {
      {"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, encoded] : cases) {
    EXPECT_EQ(EncodeBase64(plain), encoded);
    auto decoded = DecodeBase64(encoded);
    ASSERT_TRUE(decoded.ok());
    EXPECT_EQ(*decoded, plain);
  }
}

TEST(Base64, RoundTripsEveryByteValue) {
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  auto decoded = DecodeBase64(EncodeBase64(all));
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(*decoded, all);
}

TEST(Base64, RejectsForeignCharacters) {
  EXPECT_EQ(DecodeBase64("Zm9v!").status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(DecodeBase64("Zm9v\nYmFy").ok());
}

}  // namespace
}  // namespace refzarr
