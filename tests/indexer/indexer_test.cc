#include "indexer/indexer.h"

#include <gtest/gtest.h>

#include <fstream>
#include <thread>

#include "store/ref_store.h"
#include "store/zarr_view.h"
#include "tests/indexer/test_support.h"

namespace refzarr {
namespace {

namespace fs = std::filesystem;

class IndexerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    samples_ = dir_.path() / "samples";
    testing::WriteSamples(samples_);
  }
  Result<IndexReport> Index(const std::vector<fs::path>& inputs, const fs::path& index) {
    log_.str("");
    return IndexPaths(inputs, index, {}, log_);
  }
  testing::TempDir dir_{"indexer"};
  fs::path samples_;
  std::ostringstream log_;
};

TEST_F(IndexerTest, DamagedFilesFailAloneAndAreNamed) {
  fs::path index = dir_.path() / "a.refs.db";
  auto report = Index({samples_}, index);
  ASSERT_TRUE(report.ok()) << report.status().message();
  EXPECT_EQ(report->failed, 2u);
  EXPECT_GT(report->indexed, 40u);
  EXPECT_NE(log_.str().find("bad/truncated_half.tif"), std::string::npos) << log_.str();
  EXPECT_NE(log_.str().find("bad/next_ifd_past_eof.tif"), std::string::npos) << log_.str();
  auto store = OpenRefStore(index, OpenMode::kReadOnly);
  ASSERT_TRUE(store.ok());
  auto stats = (*store)->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->failed_sources, 2u);
  auto bad = (*store)->GetNode("bad/truncated_half.tif");
  ASSERT_TRUE(bad.ok());
  EXPECT_FALSE(bad->has_value()) << "a failed file must leave no nodes";
}

TEST_F(IndexerTest, UnchangedFilesAreNotScannedAgain) {
  fs::path index = dir_.path() / "b.refs.db";
  auto first = Index({samples_}, index);
  ASSERT_TRUE(first.ok());
  auto second = Index({samples_}, index);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->indexed, 0u);
  EXPECT_EQ(second->unchanged, first->indexed);
}

TEST_F(IndexerTest, SingleFileIsTheRootGroup) {
  fs::path index = dir_.path() / "c.refs.db";
  auto report = Index({samples_ / "tiled" / "u16_edge_tiles_deflate.tif"}, index);
  ASSERT_TRUE(report.ok());
  auto view = OpenZarrView(index, {});
  ASSERT_TRUE(view.ok());
  auto attrs = (*view)->Get(".zattrs");
  ASSERT_TRUE(attrs.ok() && *attrs);
  EXPECT_NE((*attrs)->bytes.find("bioformats2raw.layout"), std::string::npos);
  auto zarray = (*view)->Get("0/0/.zarray");
  ASSERT_TRUE(zarray.ok() && *zarray);
}

TEST_F(IndexerTest, SeveralInputsArePrefixedByTheirNames) {
  fs::path index = dir_.path() / "d.refs.db";
  auto report = Index({samples_ / "tiled", samples_ / "stacks"}, index);
  ASSERT_TRUE(report.ok());
  auto view = OpenZarrView(index, {});
  ASSERT_TRUE(view.ok());
  auto root = (*view)->List("");
  ASSERT_TRUE(root.ok() && *root);
  std::vector<std::string> names;
  for (const auto& e : **root) names.push_back(e.name);
  EXPECT_NE(std::find(names.begin(), names.end(), "tiled"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "stacks"), names.end());
}

TEST_F(IndexerTest, ChangedSourceIsDetectedAndNeverServed) {
  fs::path file = dir_.path() / "one.tif";
  fs::copy_file(samples_ / "tiled" / "u32_none.tif", file);
  fs::path index = dir_.path() / "e.refs.db";
  ASSERT_TRUE(Index({file}, index).ok());
  ViewOptions options;
  options.codecs = CodecPolicy::kPassthrough;
  {
    auto view = OpenZarrView(index, options);
    ASSERT_TRUE(view.ok());
    auto chunk = (*view)->Get("0/0/0/0/0/0/0");
    ASSERT_TRUE(chunk.ok() && *chunk) << chunk.status().message();
  }
  // Same size, other bytes, later mtime: a rewrite in place.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  {
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(200);
    f.write("XXXXXXXX", 8);
  }
  auto view = OpenZarrView(index, options);
  ASSERT_TRUE(view.ok());
  auto chunk = (*view)->Get("0/0/0/0/0/0/0");
  ASSERT_FALSE(chunk.ok());
  EXPECT_EQ(chunk.status().code(), StatusCode::kStale);
  EXPECT_NE(chunk.status().message().find(file.string()), std::string::npos)
      << chunk.status().message();
  // Re-indexing makes it servable again.
  ASSERT_TRUE(Index({file}, index).ok());
  auto fresh = OpenZarrView(index, options);
  ASSERT_TRUE(fresh.ok());
  auto again = (*fresh)->Get("0/0/0/0/0/0/0");
  EXPECT_TRUE(again.ok() && *again) << again.status().message();
}

TEST_F(IndexerTest, MissingInputIsAnError) {
  auto report = Index({dir_.path() / "nope"}, dir_.path() / "f.refs.db");
  EXPECT_EQ(report.status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace refzarr
