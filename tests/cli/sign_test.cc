// `refzarr sign`'s pieces that need no index: the --expires durations.
#include <gtest/gtest.h>

#include "cli/commands.h"

namespace refzarr {
namespace {

TEST(SignCommand, ParsesDurations) {
  EXPECT_EQ(*ParseDuration("90s"), 90);
  EXPECT_EQ(*ParseDuration("30m"), 1800);
  EXPECT_EQ(*ParseDuration("2h"), 7200);
  EXPECT_EQ(*ParseDuration("7d"), 7 * 86400);
  EXPECT_EQ(*ParseDuration("1h30m"), 5400);
  EXPECT_EQ(*ParseDuration("45"), 45);
}

TEST(SignCommand, RefusesBadDurations) {
  for (const char* bad : {"", "0s", "h", "2x", "-5m", "1h30", "11000d", "99999999999999999999s"}) {
    Result<int64_t> d = ParseDuration(bad);
    EXPECT_FALSE(d.ok()) << bad;
  }
  EXPECT_NE(ParseDuration("2x").status().message().find("unknown unit 'x'"), std::string::npos);
}

TEST(SignCommand, AMissingIndexIsAnErrorAndMakesNoKey) {
  std::ostringstream out, err;
  const std::string index = "/tmp/refzarr-sign-test-no-such.refs.db";
  Status st = SignUrl(index, "a", "1h", "http://h", 0, out, err);
  EXPECT_FALSE(st.ok());
  EXPECT_TRUE(out.str().empty());
  EXPECT_FALSE(std::filesystem::exists(index + ".serve-key"));
  EXPECT_FALSE(std::filesystem::exists(index));
}

}  // namespace
}  // namespace refzarr
