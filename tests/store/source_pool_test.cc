// SourcePool: validated handles, shared, bounded, and never of another file than the indexed one.
#include "store/source_pool.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

namespace refzarr {
namespace {

namespace fs = std::filesystem;

class SourcePoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("refzarr_pool_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    auto store = OpenRefStore(dir_ / "p.refs.db", OpenMode::kReadWrite);
    ASSERT_TRUE(store.ok()) << store.status().message();
    store_ = std::move(*store);
    for (int i = 0; i < kSources; ++i) {
      const fs::path f = dir_ / ("s" + std::to_string(i) + ".bin");
      std::ofstream(f, std::ios::binary) << std::string(1000, static_cast<char>('a' + i));
      auto info = ProbeSource(FileUri(f));
      ASSERT_TRUE(info.ok());
      info->status = "ok";
      ASSERT_TRUE(store_->PutFailure(*info, "g" + std::to_string(i), "placeholder").ok());
      auto found = store_->FindSource(FileUri(f));
      ASSERT_TRUE(found.ok() && *found);
      ids_.push_back((*found)->id);
      files_.push_back(f);
    }
  }
  void TearDown() override {
    store_.reset();
    fs::remove_all(dir_);
  }

  static constexpr int kSources = 8;
  fs::path dir_;
  std::unique_ptr<RefStore> store_;
  std::vector<int64_t> ids_;
  std::vector<fs::path> files_;
};

// Far fewer handles than sources: the pool drops its own references, a read still holding one
// keeps reading the right file, and a handle asked for again is reopened and revalidated.
TEST_F(SourcePoolTest, HandlesPastTheBoundAreDroppedButHeldOnesStayRight) {
  SourcePoolOptions options;
  options.max_open = 2;
  SourcePool pool(*store_, options);
  std::vector<std::shared_ptr<ByteSource>> held;
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < kSources; ++i) {
      auto got = pool.Get(ids_[i], /*open=*/true, /*verify_content=*/true);
      ASSERT_TRUE(got.ok()) << got.status().message();
      ASSERT_TRUE(got->open);
      EXPECT_EQ(got->indexed.uri, FileUri(files_[i]));
      held.push_back(got->open);
    }
  }
  for (size_t k = 0; k < held.size(); ++k) {
    auto b = ReadRange(*held[k], {999, 1});
    ASSERT_TRUE(b.ok());
    EXPECT_EQ(static_cast<char>((*b)[0]), static_cast<char>('a' + k % kSources)) << k;
  }
  // A handle still in the pool is shared; one dropped from it was opened again.
  auto again = pool.Get(ids_[kSources - 1], true, true);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->open, held.back());
  EXPECT_NE(held[0], held[kSources]);
}

TEST_F(SourcePoolTest, AChangedOrMissingSourceIsStaleAndNamed) {
  SourcePool pool(*store_, SourcePoolOptions{});
  ASSERT_TRUE(pool.Get(ids_[0], true, true).ok());
  std::ofstream(files_[0], std::ios::binary | std::ios::app) << "x";
  auto changed = pool.Get(ids_[0], true, true);
  ASSERT_FALSE(changed.ok());
  EXPECT_EQ(changed.status().code(), StatusCode::kStale);
  EXPECT_NE(changed.status().message().find(files_[0].string()), std::string::npos);
  EXPECT_NE(changed.status().message().find("size changed from 1000 to 1001"), std::string::npos)
      << changed.status().message();
  fs::remove(files_[1]);
  auto missing = pool.Get(ids_[1], false, false);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kStale);
  EXPECT_NE(missing.status().message().find("is missing"), std::string::npos);
}

}  // namespace
}  // namespace refzarr
