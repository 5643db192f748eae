// `refzarr merge`: the samples indexed in shards and merged equal one index of the same inputs,
// key by key through the view (Zarr v2 and v3); conflicts are refused naming both sides.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "cli/commands.h"
#include "tests/cli/run_command.h"
#include "store/index_merge.h"
#include "store/zarr_view.h"
#include "tests/cli/same_index.h"
#include "tests/support/view_keys.h"

namespace refzarr {
namespace {

namespace fs = std::filesystem;

using testing::CommandRun;
using testing::ExpectSameIndex;
using testing::RunCommand;

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class MergeTest : public ::testing::Test {
 protected:
  // The samples' files dealt round-robin into three shards of one archive folder, so every
  // sample folder has files in each shard (shared folder groups); each shard is indexed from a
  // list of its files with the archive as the root, and so is their union.
  static void SetUpTestSuite() {
    dir_ = new fs::path(fs::temp_directory_path() / ("refzarr_merge_" + std::to_string(getpid())));
    fs::remove_all(*dir_);
    fs::path samples = *dir_ / "archive";
    std::string cmd = std::string(REFZARR_SAMPLES_BIN) + " " + samples.string() + " -q";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    std::vector<fs::path> files;
    for (const auto& e : fs::recursive_directory_iterator(samples)) {
      if (e.is_regular_file()) files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    ASSERT_GT(files.size(), 6u);
    std::ofstream all(*dir_ / "all.list");
    std::ofstream lists[kShards];
    for (int k = 0; k < kShards; ++k) lists[k].open(*dir_ / ("shard" + std::to_string(k) + ".list"));
    for (size_t i = 0; i < files.size(); ++i) {
      lists[i % kShards] << files[i].string() << "\n";
      all << files[i].string() << "\n";
    }
    for (auto& l : lists) l.close();
    all.close();
    full_run_ = new CommandRun(RunCommand({"index", "-o", Db("full"), "--root", samples.string(),
                                           "--files-from", (*dir_ / "all.list").string()}));
    for (int k = 0; k < kShards; ++k) {
      std::string name = "shard" + std::to_string(k);
      CommandRun r = RunCommand({"index", "-o", Db(name), "--root", (*dir_ / "archive").string(),
                                 "--files-from", (*dir_ / (name + ".list")).string()});
      ASSERT_LE(r.exit_code, 1) << r.err;
    }
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
    delete full_run_;
  }
  static std::string Db(const std::string& name) { return (*dir_ / (name + ".refs.db")).string(); }
  static std::vector<std::string> Shards() {
    std::vector<std::string> out;
    for (int k = 0; k < kShards; ++k) out.push_back(Db("shard" + std::to_string(k)));
    return out;
  }

  static constexpr int kShards = 3;
  static fs::path* dir_;
  static CommandRun* full_run_;
};
fs::path* MergeTest::dir_ = nullptr;
CommandRun* MergeTest::full_run_ = nullptr;

TEST_F(MergeTest, ShardsMergeIntoTheIndexOfTheirUnion) {
  ASSERT_LE(full_run_->exit_code, 1) << full_run_->err;
  std::vector<std::string> args = {"merge", "-o", Db("merged")};
  for (const std::string& s : Shards()) args.push_back(s);
  CommandRun r = RunCommand(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("merged 3 indexes"), std::string::npos) << r.out;
  ExpectSameIndex(Db("full"), Db("merged"));
}

TEST_F(MergeTest, MergedIndexIsTheSameWhateverTheOrderOfInputs) {
  std::vector<std::string> shards = Shards();
  CommandRun r = RunCommand({"merge", "-o", Db("reversed"), shards[2], shards[0], shards[1]});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ExpectSameIndex(Db("full"), Db("reversed"));
}

TEST_F(MergeTest, OneInputMergesIntoAnEqualIndex) {
  CommandRun r = RunCommand({"merge", "-o", Db("one"), Shards()[1]});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ExpectSameIndex(Shards()[1], Db("one"));
}

TEST_F(MergeTest, SameSourceInTwoInputsIsRefusedNamingBoth) {
  std::string copy = Db("shard0_copy");
  fs::copy_file(Shards()[0], copy);
  std::string before = ReadAll(copy);
  CommandRun r = RunCommand({"merge", "-o", Db("dup"), Shards()[0], Shards()[1], copy});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("merge conflict"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(Shards()[0]), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(copy), std::string::npos) << r.err;
  EXPECT_NE(r.err.find((*dir_ / "archive").string()), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(Db("dup")));
  EXPECT_TRUE(ReadAll(copy) == before) << "an input was modified";
  for (const auto& e : fs::directory_iterator(*dir_)) {
    EXPECT_EQ(e.path().filename().string().find(".merging"), std::string::npos) << e.path();
  }
}

TEST_F(MergeTest, SamePathFromOtherSourcesIsRefusedNamingBothSources) {
  // A copy of the archive elsewhere, indexed with the same placement: other sources, same paths.
  fs::path other = *dir_ / "elsewhere";
  fs::copy(*dir_ / "archive", other, fs::copy_options::recursive);
  CommandRun idx = RunCommand({"index", "-o", Db("other"), other.string()});
  ASSERT_LE(idx.exit_code, 1) << idx.err;
  std::string before = ReadAll(Shards()[0]);
  CommandRun r = RunCommand({"merge", "-o", Db("clash"), Shards()[0], Db("other")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("tree path"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(Shards()[0]), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(Db("other")), std::string::npos) << r.err;
  EXPECT_NE(r.err.find((*dir_ / "archive").string() + "/"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(other.string() + "/"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(Db("clash")));
  EXPECT_TRUE(ReadAll(Shards()[0]) == before) << "an input was modified";
}

// Tree paths are relative to the root: the merged index records its inputs' root, so indexing a
// folder into it later (no --root) places its files where they are, found unchanged.
TEST_F(MergeTest, MergedIndexKeepsItsInputsRootForLaterRuns) {
  std::vector<std::string> args = {"merge", "-o", Db("kept_root")};
  for (const std::string& s : Shards()) args.push_back(s);
  ASSERT_EQ(RunCommand(args).exit_code, 0);
  fs::path folder;
  for (const auto& e : fs::directory_iterator(*dir_ / "archive")) {
    if (e.is_directory()) folder = e.path();
  }
  ASSERT_FALSE(folder.empty());
  CommandRun again = RunCommand({"index", "--json", "-o", Db("kept_root"), folder.string()});
  ASSERT_LE(again.exit_code, 1) << again.err;
  const nlohmann::json report = nlohmann::json::parse(again.out);
  EXPECT_EQ(report["indexed"], 0) << again.err;
  EXPECT_GT(report["unchanged"].get<int>(), 0) << again.err;
  ExpectSameIndex(Db("full"), Db("kept_root"));
}

TEST_F(MergeTest, InputsWithOtherRootsAreRefusedNamingBothRoots) {
  // One more file in a folder of its own, indexed with that folder as the root: no source and no
  // tree path in common with a shard, but its paths count from another folder.
  const fs::path other = *dir_ / "other_root";
  fs::create_directories(other);
  for (const auto& e : fs::recursive_directory_iterator(*dir_ / "archive")) {
    if (e.is_regular_file() && e.path().extension() == ".tif") {
      fs::copy_file(e.path(), other / "lone.tif");
      break;
    }
  }
  ASSERT_LE(RunCommand({"index", "-o", Db("other_root"), other.string()}).exit_code, 1);
  CommandRun r = RunCommand({"merge", "-o", Db("two_roots"), Shards()[0], Db("other_root")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("has the root " + (*dir_ / "archive").string()), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("has the root " + other.string()), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(Db("other_root")), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(Db("two_roots")));
}

TEST_F(MergeTest, ExistingOutputIsNeverOverwritten) {
  std::string out = Db("exists");
  std::ofstream(out) << "keep me";
  CommandRun r = RunCommand({"merge", "-o", out, Shards()[0]});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("already exists"), std::string::npos) << r.err;
  EXPECT_EQ(ReadAll(out), "keep me");
}

TEST_F(MergeTest, InputThatIsNotAnIndexIsNamed) {
  std::string bogus = (*dir_ / "bogus.db").string();
  std::ofstream(bogus) << "not sqlite";
  CommandRun r = RunCommand({"merge", "-o", Db("bogus_out"), Shards()[0], bogus});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find(bogus), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(Db("bogus_out")));
}

}  // namespace
}  // namespace refzarr

namespace refzarr {
namespace {

// The merge shifts the source ids of array metas in their text; the reference is nlohmann::json
// parsing the meta and adding the offset to the top-level list.
TEST(ShiftSourcesInText, EqualsParsingAndShiftingTheTopLevelList) {
  const std::vector<std::string> metas = {
      R"({"array":{"attributes":{},"shape":[1,2]},"flagged":false,"sources":[3],"stored":6})",
      R"({"array":{"attributes":{"sources":[7],"note":"\"sources\":[9]"}},"sources":[0,12,40]})",
      R"({"a":"x\\","sources":[1]})",
      R"({"sources":[],"stored":0})",
  };
  for (const std::string& meta : metas) {
    nlohmann::json want = nlohmann::json::parse(meta);
    for (auto& id : want["sources"]) id = id.get<int64_t>() + 1000;
    std::optional<std::string> got = internal::ShiftSourcesInText(meta, 1000);
    ASSERT_TRUE(got.has_value()) << meta;
    EXPECT_EQ(nlohmann::json::parse(*got), want) << meta << " -> " << *got;
  }
  // Not of the shape the index writes: left to the parser.
  for (const char* other : {R"({"sources":[-1]})", R"({"sources":[1.5]})", R"({"sources":[1,]})",
                            R"({"sources":["1"]})", R"({"array":{"sources":[1]}})", R"({"sources":[1)",
                            R"({"sources" : [1]})"}) {
    EXPECT_FALSE(internal::ShiftSourcesInText(other, 5).has_value()) << other;
  }
}

}  // namespace
}  // namespace refzarr
