// `refzarr rm` and `refzarr relocate` through their CLI11 definitions, on generated samples: what
// stays in the index serves the bytes it served before, compared key by key with an untouched
// index of the same files.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/commands.h"
#include "tests/cli/run_command.h"
#include "store/ref_store.h"
#include "tests/indexer/test_support.h"
#include "tests/support/view_keys.h"

namespace refzarr {
namespace {

namespace fs = std::filesystem;

using testing::CommandRun;
using testing::RunCommand;

using testing::KeyBytes;
using testing::ReadAllKeys;

nlohmann::json Info(const fs::path& index) {
  CommandRun r = RunCommand({"info", "--json", index.string()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return nlohmann::json::parse(r.out);
}

// The info --json entry of the scanned file at `group`.
nlohmann::json FileAt(const nlohmann::json& info, const std::string& group) {
  for (const auto& f : info["files"]) {
    if (f["group"] == group && f["status"] != "companion") return f;
  }
  return nullptr;
}

bool Under(const std::string& key, const std::string& path) {
  return key == path || key.rfind(path + "/", 0) == 0;
}

class RmRelocateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::WriteSamples(dir_.path() / "A");
    index_ = dir_.path() / "a.refs.db";
    RunCommand({"index", "-o", index_.string(), (dir_.path() / "A").string()});
    ASSERT_TRUE(fs::exists(index_));
  }
  testing::TempDir dir_{"rm_relocate"};
  fs::path index_;
};

TEST_F(RmRelocateTest, RmRemovesAFileAndAFolderAndTheRestServesTheSameBytes) {
  const KeyBytes before = ReadAllKeys(index_);
  const nlohmann::json info_before = Info(index_);
  ASSERT_FALSE(FileAt(info_before, "tiled/u16_zstd.tif").is_null());
  ASSERT_FALSE(FileAt(info_before, "rgb/rgb_u8_chunky_tiled_none.tif").is_null());

  CommandRun rm = RunCommand({"rm", index_.string(), "tiled/u16_zstd.tif", "rgb"});
  ASSERT_EQ(rm.exit_code, 0) << rm.err;
  EXPECT_NE(rm.out.find("removed tiled/u16_zstd.tif (1 file)"), std::string::npos) << rm.out;
  EXPECT_NE(rm.out.find("removed rgb (4 files)"), std::string::npos) << rm.out;

  CommandRun ls = RunCommand({"ls", index_.string()});
  ASSERT_EQ(ls.exit_code, 0) << ls.err;
  EXPECT_EQ(ls.out.find("rgb"), std::string::npos) << ls.out;
  EXPECT_NE(ls.out.find("tiled/"), std::string::npos) << ls.out;
  CommandRun ls_tiled = RunCommand({"ls", index_.string(), "tiled"});
  EXPECT_EQ(ls_tiled.out.find("u16_zstd.tif"), std::string::npos) << ls_tiled.out;
  EXPECT_NE(ls_tiled.out.find("u8_lzw_pred2.tif"), std::string::npos) << ls_tiled.out;

  const nlohmann::json info = Info(index_);
  EXPECT_EQ(info["sources"].get<int>(), info_before["sources"].get<int>() - 5);
  for (const auto& f : info["files"]) {
    EXPECT_FALSE(Under(f["group"], "rgb") || f["group"] == "tiled/u16_zstd.tif") << f;
  }

  const KeyBytes after = ReadAllKeys(index_);
  size_t kept = 0;
  for (const auto& [key, bytes] : before) {
    auto it = after.find(key);
    if (Under(key, "rgb") || Under(key, "tiled/u16_zstd.tif")) {
      EXPECT_EQ(it, after.end()) << key << " is still served";
      continue;
    }
    ASSERT_NE(it, after.end()) << key << " is no longer served";
    EXPECT_TRUE(it->second == bytes) << key << " serves other bytes after rm";
    ++kept;
  }
  EXPECT_EQ(after.size(), kept) << "rm added keys";
  EXPECT_GT(kept, 100u);
}

TEST_F(RmRelocateTest, RmOfAPathNamingNothingFailsNamingItAndStillRemovesTheOthers) {
  CommandRun rm = RunCommand({"rm", index_.string(), "no/such", "svs/aperio_style_jpeg_pyramid.svs",
                              "tiled/u8_lzw_pred2.tif/0", "bad/"});
  EXPECT_EQ(rm.exit_code, 1);
  EXPECT_NE(rm.err.find("'no/such': no such file or folder in the index"), std::string::npos)
      << rm.err;
  EXPECT_NE(rm.err.find("'tiled/u8_lzw_pred2.tif/0' is part of the file 'tiled/u8_lzw_pred2.tif'"),
            std::string::npos)
      << rm.err;
  EXPECT_NE(rm.out.find("removed svs/aperio_style_jpeg_pyramid.svs (1 file)"), std::string::npos)
      << rm.out;
  // Failed files are files of the index too.
  EXPECT_NE(rm.out.find("removed bad (2 files)"), std::string::npos) << rm.out;
  auto store = OpenRefStore(index_, OpenMode::kReadOnly);
  ASSERT_TRUE(store.ok());
  // The folder group "svs" held that one file: it goes with it; "tiled" keeps its files.
  EXPECT_FALSE(*(*store)->GetNode("svs"));
  EXPECT_FALSE(*(*store)->GetNode("bad"));
  EXPECT_TRUE(*(*store)->GetNode("tiled/u8_lzw_pred2.tif/0"));
  const nlohmann::json info = Info(index_);
  EXPECT_EQ(info["failed_sources"], 0);
  // Removing the same file again names it.
  CommandRun again = RunCommand({"rm", index_.string(), "svs/aperio_style_jpeg_pyramid.svs"});
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find("'svs/aperio_style_jpeg_pyramid.svs'"), std::string::npos) << again.err;
}

TEST_F(RmRelocateTest, RelocateAfterAMoveServesEveryKeyWithIdenticalBytes) {
  const KeyBytes before = ReadAllKeys(index_);
  fs::rename(dir_.path() / "A", dir_.path() / "B");
  const nlohmann::json stale = Info(index_);
  EXPECT_EQ(stale["stale_sources"].get<int>(),
            static_cast<int>(stale["files"].size()) - stale["failed_sources"].get<int>());

  CommandRun r = RunCommand(
      {"relocate", index_.string(), (dir_.path() / "A").string(), (dir_.path() / "B").string()});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_NE(r.out.find("relocated "), std::string::npos) << r.out;
  const nlohmann::json info = Info(index_);
  EXPECT_EQ(info["stale_sources"], 0);
  const std::string b_uri = FileUri(dir_.path() / "B") + "/";
  for (const auto& f : info["files"]) {
    EXPECT_EQ(f["uri"].get<std::string>().rfind(b_uri, 0), 0u) << f;
  }
  EXPECT_EQ(info["files"].size(), stale["files"].size());
  EXPECT_TRUE(ReadAllKeys(index_) == before) << "keys or bytes differ after relocate";
  // The root moved with the files: indexing the new location finds every file unchanged.
  CommandRun reindex = RunCommand({"index", "--json", "-o", index_.string(),
                                   (dir_.path() / "B").string()});
  EXPECT_LE(reindex.exit_code, 1) << reindex.err;
  const nlohmann::json report = nlohmann::json::parse(reindex.out);
  EXPECT_EQ(report["indexed"], 0) << reindex.err;
  EXPECT_GT(report["unchanged"].get<int>(), 10) << reindex.err;
  EXPECT_TRUE(ReadAllKeys(index_) == before) << "keys or bytes differ after re-indexing";
}

TEST_F(RmRelocateTest, RelocateLeavesAFileModifiedAfterTheMoveStaleNamedAndMovesTheRest) {
  const KeyBytes before = ReadAllKeys(index_);
  fs::rename(dir_.path() / "A", dir_.path() / "B");
  const fs::path changed = dir_.path() / "B" / "tiled" / "u16_zstd.tif";
  {
    // Same size, other bytes: the last byte (inside the fingerprint's span).
    std::fstream f(changed, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(-1, std::ios::end);
    char c = static_cast<char>(f.get());
    f.seekp(-1, std::ios::end);
    f.put(static_cast<char>(c ^ 0x5a));
  }
  // As a URI this time: both forms name the same prefix.
  CommandRun r = RunCommand({"relocate", index_.string(), FileUri(dir_.path() / "A"),
                             FileUri(dir_.path() / "B") + "/"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find(changed.string() + ": content changed"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("1 left at their old location"), std::string::npos) << r.out;

  const nlohmann::json info = Info(index_);
  EXPECT_EQ(info["stale_sources"], 1);
  const nlohmann::json f = FileAt(info, "tiled/u16_zstd.tif");
  EXPECT_EQ(f["status"], "stale");
  EXPECT_EQ(f["uri"], FileUri(dir_.path() / "A" / "tiled" / "u16_zstd.tif"));
  // The stale file's keys fail (its listing too); every other key serves what it served.
  const KeyBytes after = ReadAllKeys(index_);
  EXPECT_EQ(after.at("tiled/u16_zstd.tif/").substr(0, 7), "error: ");
  size_t kept = 0;
  for (const auto& [key, bytes] : before) {
    if (Under(key, "tiled/u16_zstd.tif")) continue;
    ASSERT_TRUE(after.count(key)) << key;
    EXPECT_TRUE(after.at(key) == bytes) << key << " serves other bytes after relocate";
    ++kept;
  }
  EXPECT_GT(kept, 100u);
}

TEST(RmRelocate, RelocateMatchesWholePathComponentsOnly) {
  testing::TempDir dir("relocate_components");
  const fs::path data = dir.path() / "data";
  testing::WriteSamples(data / "a");
  testing::WriteSamples(data / "ab");
  fs::copy_file(data / "a" / "tiled" / "u16_zstd.tif", data / "a-1.tif");
  const fs::path index = dir.path() / "x.refs.db";
  RunCommand({"index", "-o", index.string(), (data / "a").string(), (data / "ab").string(),
              (data / "a-1.tif").string()});
  const nlohmann::json before = Info(index);
  fs::rename(data / "a", data / "c");

  CommandRun r = RunCommand({"relocate", index.string(), (data / "a").string(),
                             (data / "c").string()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json info = Info(index);
  EXPECT_EQ(info["stale_sources"], 0);
  ASSERT_EQ(info["files"].size(), before["files"].size());
  size_t moved = 0, kept = 0;
  for (const auto& f : info["files"]) {
    const std::string uri = f["uri"];
    if (uri.rfind(FileUri(data / "c") + "/", 0) == 0) {
      ++moved;
    } else {
      EXPECT_TRUE(uri.rfind(FileUri(data / "ab") + "/", 0) == 0 ||
                  uri == FileUri(data / "a-1.tif")) << uri;
      ++kept;
    }
  }
  EXPECT_GT(moved, 10u);
  EXPECT_GT(kept, moved);

  // Nothing under the prefix: an error, and nothing changes.
  CommandRun none = RunCommand({"relocate", index.string(), (data / "a").string(),
                                (data / "z").string()});
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_NE(none.err.find("no source"), std::string::npos) << none.err;
  // NEW inside OLD would be met again while paging: refused.
  CommandRun inside = RunCommand({"relocate", index.string(), (data / "c").string(),
                                  (data / "c" / "d").string()});
  EXPECT_EQ(inside.exit_code, 1);
  EXPECT_NE(inside.err.find("inside OLD"), std::string::npos) << inside.err;
}

}  // namespace
}  // namespace refzarr
