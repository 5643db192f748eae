// Two indexes are the same when every key of their views (Zarr v2 and v3, the CLI's default
// codecs) has the same bytes and `info --json` agrees: the one comparison of the merge and
// sharding tests.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "tests/cli/run_command.h"
#include "tests/support/view_keys.h"

namespace refzarr::testing {

/// Every key of the index's view in Zarr v`zarr_format`, with the CLI's default codecs.
inline KeyBytes Keys(const std::filesystem::path& index, int zarr_format) {
  ViewFlags flags;
  flags.zarr_format = zarr_format;
  auto options = flags.ToOptions();
  EXPECT_TRUE(options.ok());
  if (!options.ok()) return {};
  return ReadAllKeys(index, *options);
}

/// `info --json` without what names the index file itself or measures its size on disk.
inline nlohmann::json Info(const std::filesystem::path& index) {
  CommandRun r = RunCommand({"info", "--json", index.string()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out);
  j.erase("index");
  j.erase("index_bytes");
  return j;
}

/// Fails the test unless `actual` serves what `expected` serves, key for key, byte for byte.
inline void ExpectSameIndex(const std::filesystem::path& expected,
                            const std::filesystem::path& actual) {
  for (int format : {2, 3}) {
    auto want = Keys(expected, format), got = Keys(actual, format);
    ASSERT_GT(want.size(), 10u);
    EXPECT_EQ(FailedKeys(want), std::vector<std::string>{}) << "zarr v" << format;
    EXPECT_EQ(want.size(), got.size()) << "zarr v" << format;
    for (const auto& [key, bytes] : want) {
      auto it = got.find(key);
      ASSERT_NE(it, got.end()) << "zarr v" << format << ": " << key << " missing in " << actual;
      EXPECT_TRUE(it->second == bytes) << "zarr v" << format << ": " << key << " differs";
    }
  }
  EXPECT_EQ(Info(expected), Info(actual));
}

}  // namespace refzarr::testing
