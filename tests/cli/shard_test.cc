// `refzarr index --shard K/N`: N tasks given the same inputs (folders walked, or a --files-from
// list) index disjoint parts that cover them, each into its own index; their merge equals one
// index of the same inputs key by key, also after one task is re-run; merge refuses an
// incomplete set. Inputs: the TIFF samples (a multi-file OME set whose master and members land
// in different shards) and the HDF5 samples (an external raw file, BDV .h5 + .xml).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "indexer/indexer.h"
#include "store/ref_store.h"
#include "tests/cli/run_command.h"
#include "tests/cli/same_index.h"

namespace refzarr {
namespace {

namespace fs = std::filesystem;

using testing::CommandRun;
using testing::ExpectSameIndex;
using testing::RunCommand;

constexpr uint32_t kShards = 4;

class ShardTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(fs::temp_directory_path() / ("refzarr_shard_" + std::to_string(getpid())));
    fs::remove_all(*dir_);
    for (const std::string& cmd :
         {std::string(REFZARR_SAMPLES_BIN) + " " + (Archive() / "tiff").string() + " -q",
          std::string(REFZARR_HDF5_SAMPLES_BIN) + " " + (Archive() / "hdf5").string()}) {
      ASSERT_EQ(std::system((cmd + " >/dev/null").c_str()), 0) << cmd;
    }
    std::ofstream all(*dir_ / "all.list");
    for (const auto& e : fs::recursive_directory_iterator(Archive())) {
      if (e.is_regular_file()) all << e.path().string() << "\n";
    }
    all.close();
    full_ = new CommandRun(RunCommand({"index", "--json", "-o", Db("full"), Archive().string()}));
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
    delete full_;
  }
  static fs::path Archive() { return *dir_ / "archive"; }
  static std::string Db(const std::string& name) { return (*dir_ / (name + ".refs.db")).string(); }
  static std::string Shard(uint32_t k, uint32_t n = kShards) {
    return std::to_string(k) + "/" + std::to_string(n);
  }

  // Indexes task k of n of the archive folder into `db`, returns its JSON report.
  static nlohmann::json IndexShard(const std::string& db, uint32_t k, uint32_t n = kShards,
                                   std::vector<std::string> inputs = {}) {
    std::vector<std::string> args = {"index", "--json", "-o", db, "--shard", Shard(k, n)};
    if (inputs.empty()) inputs.push_back(Archive().string());
    args.insert(args.end(), inputs.begin(), inputs.end());
    CommandRun r = RunCommand(args);
    EXPECT_LE(r.exit_code, 1) << r.err;
    if (r.exit_code > 1) return {};
    return nlohmann::json::parse(r.out);
  }

  static CommandRun Merge(const std::string& out, const std::vector<std::string>& inputs) {
    std::vector<std::string> args = {"merge", "-o", out};
    args.insert(args.end(), inputs.begin(), inputs.end());
    return RunCommand(args);
  }

  static nlohmann::json FullReport() { return nlohmann::json::parse(full_->out); }

  static fs::path* dir_;
  static CommandRun* full_;
};
fs::path* ShardTest::dir_ = nullptr;
CommandRun* ShardTest::full_ = nullptr;

TEST_F(ShardTest, EveryFileLandsInExactlyOneShard) {
  ASSERT_LE(full_->exit_code, 1) << full_->err;
  const nlohmann::json full = FullReport();
  std::map<std::string, std::string> want;  // path -> outcome, of the unsharded run
  for (const auto& f : full["files"]) want[f["path"]] = f["outcome"];
  ASSERT_GT(want.size(), 20u);
  std::map<std::string, std::vector<uint32_t>> seen;  // path -> the shards that listed it
  uint64_t counted = 0;
  for (uint32_t k = 1; k <= kShards; ++k) {
    const nlohmann::json r = IndexShard(Db("cover" + std::to_string(k)), k);
    ASSERT_FALSE(r.is_null());
    uint64_t listed = 0;
    for (const auto& f : r["files"]) {
      seen[f["path"]].push_back(k);
      EXPECT_EQ(f["outcome"], want[f["path"]]) << f["path"] << " in shard " << k;
      // The documented rule: the shard is XXH3-64 of the tree path modulo N.
      EXPECT_EQ(ShardOf(f["group"].get<std::string>(), kShards), k - 1) << f["path"];
      ++listed;
    }
    EXPECT_GT(listed, 0u) << "shard " << k << " is empty: the hash does not spread the samples";
    // What a task passes over is what the others list.
    EXPECT_EQ(listed + r["other_shards"].get<uint64_t>(), want.size()) << "shard " << k;
    counted += listed;
  }
  EXPECT_EQ(counted, want.size());
  for (const auto& [path, outcome] : want) {
    EXPECT_EQ(seen[path].size(), 1u) << path << " (" << outcome << ") is in " << seen[path].size()
                                     << " shards";
  }
}

// The multi-file OME set's master references its members as companions: it lands whole in its
// shard, read from the members wherever their own files land.
TEST_F(ShardTest, MultiFileSetsAreScannedWholeInTheirFilesShard) {
  const std::string master = "tiff/ome/multifile/multifile_z0.ome.tif";
  std::set<uint32_t> shards = {ShardOf(master, kShards)};
  for (int z = 1; z < 3; ++z) {
    shards.insert(ShardOf("tiff/ome/multifile/multifile_z" + std::to_string(z) + ".ome.tif", kShards));
  }
  ASSERT_GT(shards.size(), 1u) << "the set's files share a shard: this test would prove nothing";
  const uint32_t k = ShardOf(master, kShards) + 1;
  const std::string db = Db("multifile" + std::to_string(k));
  ASSERT_FALSE(IndexShard(db, k).is_null());
  auto store = OpenRefStore(db, OpenMode::kReadOnly);
  ASSERT_TRUE(store.ok()) << store.status().message();
  auto sources = (*store)->Sources();
  ASSERT_TRUE(sources.ok()) << sources.status().message();
  std::set<std::string> companions, scanned;
  for (const SourceInfo& s : *sources) {
    (s.status == "companion" ? companions : scanned).insert(fs::path(s.uri).filename().string());
  }
  EXPECT_TRUE(scanned.count("multifile_z0.ome.tif"));
  for (int z = 1; z < 3; ++z) {
    EXPECT_TRUE(companions.count("multifile_z" + std::to_string(z) + ".ome.tif")) << z;
  }
}

TEST_F(ShardTest, MergedShardsOfAFolderEqualOneIndexOfIt) {
  std::vector<std::string> shards;
  for (uint32_t k = 1; k <= kShards; ++k) {
    shards.push_back(Db("walk" + std::to_string(k)));
    ASSERT_FALSE(IndexShard(shards.back(), k).is_null());
  }
  CommandRun r = Merge(Db("walk_merged"), shards);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ExpectSameIndex(Db("full"), Db("walk_merged"));
}

TEST_F(ShardTest, MergedShardsOfAListEqualOneIndexOfIt) {
  const std::string list = (*dir_ / "all.list").string();
  CommandRun one = RunCommand({"index", "-o", Db("list_full"), "--root", Archive().string(),
                               "--files-from", list});
  ASSERT_LE(one.exit_code, 1) << one.err;
  std::vector<std::string> shards;
  for (uint32_t k = 1; k <= 3; ++k) {
    shards.push_back(Db("list" + std::to_string(k)));
    CommandRun r = RunCommand({"index", "-o", shards.back(), "--shard", Shard(k, 3), "--root",
                               Archive().string(), "--files-from", list});
    ASSERT_LE(r.exit_code, 1) << r.err;
  }
  CommandRun r = Merge(Db("list_merged"), shards);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ExpectSameIndex(Db("list_full"), Db("list_merged"));
}

// A task that failed is re-run from scratch (its index deleted), another one re-run over its
// own index (everything unchanged): the merge is the same index as before.
TEST_F(ShardTest, ReRunningOneShardAndReMergingGivesTheSameIndex) {
  std::vector<std::string> shards;
  for (uint32_t k = 1; k <= kShards; ++k) {
    shards.push_back(Db("rerun" + std::to_string(k)));
    ASSERT_FALSE(IndexShard(shards.back(), k).is_null());
  }
  ASSERT_EQ(Merge(Db("rerun_first"), shards).exit_code, 0);
  fs::remove(shards[2]);
  const nlohmann::json again = IndexShard(shards[2], 3);
  EXPECT_GT(again["indexed"].get<int>(), 0);
  const nlohmann::json unchanged = IndexShard(shards[0], 1);
  EXPECT_EQ(unchanged["indexed"], 0);
  EXPECT_GT(unchanged["unchanged"].get<int>(), 0);
  CommandRun r = Merge(Db("rerun_second"), shards);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ExpectSameIndex(Db("rerun_first"), Db("rerun_second"));
  ExpectSameIndex(Db("full"), Db("rerun_second"));
}

TEST_F(ShardTest, MergeRefusesAMissingAnIncompleteOrARepeatedShard) {
  std::vector<std::string> shards;
  for (uint32_t k = 1; k <= 3; ++k) {
    shards.push_back(Db("set" + std::to_string(k)));
    ASSERT_FALSE(IndexShard(shards.back(), k, 3).is_null());
  }
  CommandRun missing = Merge(Db("set_missing"), {shards[0], shards[2]});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("1 of the 3 shards of the run missing (K = 2"), std::string::npos)
      << missing.err;
  CommandRun twice = Merge(Db("set_twice"), {shards[0], shards[1], shards[2], shards[1]});
  EXPECT_EQ(twice.exit_code, 1);
  EXPECT_NE(twice.err.find("are both shard 2/3"), std::string::npos) << twice.err;
  // A task killed midway leaves its index marked incomplete (the mark a run sets first).
  {
    auto store = OpenRefStore(shards[1], OpenMode::kReadWrite);
    ASSERT_TRUE(store.ok()) << store.status().message();
    ASSERT_TRUE((*store)->SetMeta("shard_run", "incomplete").ok());
  }
  CommandRun incomplete = Merge(Db("set_incomplete"), shards);
  EXPECT_EQ(incomplete.exit_code, 1);
  EXPECT_NE(incomplete.err.find(shards[1] + " (shard 2/3) is incomplete"), std::string::npos)
      << incomplete.err;
  for (const char* out : {"set_missing", "set_twice", "set_incomplete"}) {
    EXPECT_FALSE(fs::exists(Db(out))) << out;
  }
  // Re-running the task completes it.
  ASSERT_FALSE(IndexShard(shards[1], 2, 3).is_null());
  CommandRun r = Merge(Db("set_merged"), shards);
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST_F(ShardTest, AShardIndexTakesOnlyItsOwnShard) {
  const std::string db = Db("own");
  ASSERT_FALSE(IndexShard(db, 2).is_null());
  CommandRun other = RunCommand({"index", "-o", db, "--shard", "3/4", Archive().string()});
  EXPECT_EQ(other.exit_code, 1);
  EXPECT_NE(other.err.find(db + " is shard 2/4, not 3/4"), std::string::npos) << other.err;
  CommandRun none = RunCommand({"index", "-o", db, Archive().string()});
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_NE(none.err.find("give --shard 2/4"), std::string::npos) << none.err;
  CommandRun into_full = RunCommand({"index", "-o", Db("full"), "--shard", "1/4", Archive().string()});
  EXPECT_EQ(into_full.exit_code, 1);
  EXPECT_NE(into_full.err.find("was made without --shard"), std::string::npos) << into_full.err;
}

TEST_F(ShardTest, AMalformedShardIsAUsageError) {
  for (const char* bad : {"0/4", "5/4", "4", "a/4", "1/0", "-1/4", "1/4/2", ""}) {
    CommandRun r = RunCommand({"index", "-o", Db("bad"), "--shard", bad, Archive().string()});
    EXPECT_EQ(r.exit_code, 2) << "--shard '" << bad << "': " << r.err;
  }
  EXPECT_FALSE(fs::exists(Db("bad")));
}

}  // namespace
}  // namespace refzarr
