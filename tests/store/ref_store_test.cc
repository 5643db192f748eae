#include "store/ref_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <thread>

#include "store/chunk_block.h"

namespace refzarr {
namespace {

namespace fs = std::filesystem;

class RefStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("refzarr_store_" + std::to_string(getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    data_ = dir_ / "data.bin";
    std::ofstream(data_) << std::string(10000, 'x');
  }
  void TearDown() override { fs::remove_all(dir_); }

  static ScannedFile OneArray(uint64_t chunks) {
    ScannedFile f;
    f.groups.push_back({"", {{"k", 1}}, std::nullopt});
    ScannedFile::Array a;
    a.path = "0/0";
    a.desc.shape = {chunks * 10};
    a.desc.chunks = {10};
    a.desc.dtype = DType::Make('u', 1);
    for (uint64_t i = 0; i < chunks; ++i) a.chunks.emplace_back(i, ChunkRef{0, i * 10, 10, 0});
    f.arrays.push_back(a);
    return f;
  }

  fs::path dir_, data_;
};

TEST_F(RefStoreTest, MissingIndexIsNotFoundAndForeignFileIsCorrupt) {
  EXPECT_EQ(OpenRefStore(dir_ / "none.db", OpenMode::kReadOnly).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(OpenRefStore(data_, OpenMode::kReadOnly).status().code(), StatusCode::kCorrupt);
  // An SQLite database that is not a refzarr index.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ / "other.db").c_str(), &db), SQLITE_OK);
  sqlite3_exec(db, "CREATE TABLE t(x)", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  auto r = OpenRefStore(dir_ / "other.db", OpenMode::kReadOnly);
  EXPECT_EQ(r.status().code(), StatusCode::kCorrupt);
  EXPECT_NE(r.status().message().find("not a refzarr index"), std::string::npos);
}

TEST_F(RefStoreTest, OtherSchemaVersionIsRefused) {
  fs::path index = dir_ / "i.db";
  ASSERT_TRUE(OpenRefStore(index, OpenMode::kReadWrite).ok());
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(index.c_str(), &db), SQLITE_OK);
  sqlite3_exec(db, "UPDATE meta SET value = '99' WHERE key = 'schema_version'", nullptr, nullptr,
               nullptr);
  sqlite3_close(db);
  auto r = OpenRefStore(index, OpenMode::kReadOnly);
  EXPECT_EQ(r.status().code(), StatusCode::kCorrupt);
  EXPECT_NE(r.status().message().find("version 99"), std::string::npos) << r.status().message();
}

TEST_F(RefStoreTest, PutFileStoresNodesAndBlocksAndReplacesOnReindex) {
  fs::path index = dir_ / "i.db";
  auto store = OpenRefStore(index, OpenMode::kReadWrite);
  ASSERT_TRUE(store.ok());
  auto src = ProbeSource(FileUri(data_));
  ASSERT_TRUE(src.ok());
  ASSERT_TRUE((*store)->PutFile(*src, "dir/data.bin", "test", OneArray(5000), {}).ok());

  auto node = (*store)->GetNode("dir/data.bin/0/0");
  ASSERT_TRUE(node.ok() && *node);
  EXPECT_EQ((*node)->kind, NodeKind::kArray);
  auto blocks = (*store)->BlockNumbers((*node)->id);
  ASSERT_TRUE(blocks.ok());
  EXPECT_EQ(*blocks, (std::vector<uint64_t>{0, 1}));  // 5000 chunks: two blocks of 4096
  auto b1 = (*store)->GetBlock((*node)->id, 1);
  ASSERT_TRUE(b1.ok());
  EXPECT_EQ((*b1)[0].ref.offset, 4096u * 10);
  // Folder groups and the file's implicit series group exist.
  for (const char* p : {"", "dir", "dir/data.bin", "dir/data.bin/0"}) {
    auto n = (*store)->GetNode(p);
    ASSERT_TRUE(n.ok() && *n) << p;
  }
  // Re-indexing replaces everything of the file.
  ASSERT_TRUE((*store)->PutFile(*src, "dir/data.bin", "test", OneArray(3), {}).ok());
  auto stats = (*store)->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->chunk_refs, 3u);
  EXPECT_EQ(stats->sources, 1u);
}

TEST_F(RefStoreTest, OutOfOrderAndInlineReferencesLandAtTheirChunks) {
  ScannedFile f = OneArray(0);
  ScannedFile::Array& a = f.arrays[0];
  a.desc.shape = {10000 * 10};
  // Stored chunks 0..8999 except every 7th, in a scrambled order over three blocks; every 7th
  // below 9000 is inline.
  for (uint64_t k = 0; k < 9000; ++k) {
    uint64_t i = (k * 4099) % 9000;  // 4099 is prime to 9000: a permutation
    if (i % 7 == 0) {
      a.inline_chunks.emplace_back(i, std::vector<std::byte>(i % 5 + 1, std::byte{7}));
    } else {
      a.chunks.emplace_back(i, ChunkRef{0, i * 3, i % 11 + 1, 0});
    }
  }
  auto store = OpenRefStore(dir_ / "i.db", OpenMode::kReadWrite);
  ASSERT_TRUE(store.ok());
  auto src = ProbeSource(FileUri(data_));
  ASSERT_TRUE(src.ok());
  ASSERT_TRUE((*store)->PutFile(*src, "d", "test", f, {}).ok());
  auto node = (*store)->GetNode("d/0/0");
  ASSERT_TRUE(node.ok() && *node);
  EXPECT_EQ(*(*store)->BlockNumbers((*node)->id), (std::vector<uint64_t>{0, 1, 2}));
  for (uint64_t b = 0; b < 3; ++b) {
    auto block = (*store)->GetBlock((*node)->id, b);
    ASSERT_TRUE(block.ok());
    for (uint64_t pos = 0; pos < kBlockSize; ++pos) {
      uint64_t i = b * kBlockSize + pos;
      BlockEntry e = pos < block->size() ? (*block)[pos] : BlockEntry{};
      if (i >= 9000) {
        EXPECT_FALSE(e.present) << i;
      } else if (i % 7 == 0) {
        ASSERT_TRUE(e.present) << i;
        EXPECT_EQ(e.ref.flags, kChunkInline) << i;
        EXPECT_EQ(e.ref.length, i % 5 + 1) << i;
      } else {
        ASSERT_TRUE(e.present) << i;
        EXPECT_EQ(e.ref, (ChunkRef{0, i * 3, i % 11 + 1, 0})) << i;
      }
    }
  }
}

TEST_F(RefStoreTest, AChunkGivenTwiceAcrossSpilledRunsFailsTheFileAndLeavesNothing) {
  RecordingSink sink(/*max_refs_in_memory=*/4);
  ArrayDesc desc;
  desc.shape = {100};
  desc.chunks = {10};
  desc.dtype = DType::Make('u', 1);
  auto array = sink.AddArray("0", desc);
  ASSERT_TRUE(array.ok());
  for (uint64_t i : {0, 1, 2, 3, 4, 5, 6, 7, 8, 3}) {  // 3 twice, in different runs
    ASSERT_TRUE(sink.AddChunk(*array, i, ChunkRef{0, i, 1, 0}).ok());
  }
  ASSERT_TRUE(sink.Finish().ok()) << "spilled arrays are checked while merged";
  auto store = OpenRefStore(dir_ / "i.db", OpenMode::kReadWrite);
  ASSERT_TRUE(store.ok());
  auto src = ProbeSource(FileUri(data_));
  ASSERT_TRUE(src.ok());
  Status put = (*store)->PutFile(*src, "d", "test", sink.result(), {});
  ASSERT_FALSE(put.ok());
  EXPECT_NE(put.message().find("chunk 3 given twice"), std::string::npos) << put.message();
  auto node = (*store)->GetNode("d");
  ASSERT_TRUE(node.ok());
  EXPECT_FALSE(node->has_value()) << "the transaction rolled back";
}

TEST_F(RefStoreTest, SourcesUnderAFolderComePageByPageAndOnlyFromThatFolder) {
  auto store = OpenRefStore(dir_ / "i.db", OpenMode::kReadWrite);
  ASSERT_TRUE(store.ok());
  std::vector<std::string> inside;
  for (const char* path : {"/x/a/1.tif", "/x/a/2.tif", "/x/a/b/3.tif", "/x/a/b/c/4.tif",
                           "/x/a/z.tif", "/x/a-b/5.tif", "/x/a0/6.tif", "/x/a.tif", "/x/ab/7.tif"}) {
    SourceInfo s;
    s.uri = FileUri(path);
    ASSERT_TRUE((*store)->PutFailure(s, path, "test").ok());
    if (std::string(path).starts_with("/x/a/")) inside.push_back(s.uri);
  }
  std::sort(inside.begin(), inside.end());
  std::vector<std::string> paged;
  const std::string folder = FileUri("/x/a") + "/";
  std::string after = folder;
  while (true) {
    auto page = (*store)->SourcesUnder(folder, after, 2);
    ASSERT_TRUE(page.ok()) << page.status().message();
    paged.insert(paged.end(), page->begin(), page->end());
    if (page->size() < 2) break;
    after = page->back();
  }
  EXPECT_EQ(paged, inside);
  EXPECT_FALSE((*store)->SourcesUnder("/x/a", "/x/a", 10).ok()) << "not a folder path";
}

TEST_F(RefStoreTest, AConflictingFileRollsBackCompletely) {
  fs::path index = dir_ / "i.db";
  auto store = OpenRefStore(index, OpenMode::kReadWrite);
  ASSERT_TRUE(store.ok());
  auto src = ProbeSource(FileUri(data_));
  ASSERT_TRUE(src.ok());
  ASSERT_TRUE((*store)->PutFile(*src, "a", "test", OneArray(4), {}).ok());
  // A second file placed inside the first file's group: refused, and nothing of it remains.
  fs::path other = dir_ / "other.bin";
  std::ofstream(other) << "yy";
  auto src2 = ProbeSource(FileUri(other));
  ASSERT_TRUE(src2.ok());
  Status st = (*store)->PutFile(*src2, "a/0/x", "test", OneArray(2), {});
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.message();
  auto stats = (*store)->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->chunk_refs, 4u);
  EXPECT_EQ(stats->sources, 1u);
  auto found = (*store)->FindSource(src2->uri);
  ASSERT_TRUE(found.ok());
  EXPECT_FALSE(found->has_value());
}

TEST_F(RefStoreTest, ChangesToASourceAreDescribed) {
  auto before = ProbeSource(FileUri(data_));
  ASSERT_TRUE(before.ok());
  EXPECT_EQ(DescribeChange(*before, *before), "");
  { std::ofstream(data_, std::ios::app) << "more"; }
  auto after = ProbeSource(FileUri(data_));
  ASSERT_TRUE(after.ok());
  EXPECT_NE(DescribeChange(*before, *after).find("size changed"), std::string::npos);
  SourceInfo same_size = *before;
  same_size.fingerprint = "0000000000000000";
  EXPECT_EQ(DescribeChange(same_size, *before), "content changed");
}

TEST_F(RefStoreTest, ReadersOnManyThreadsSeeTheSameData) {
  fs::path index = dir_ / "i.db";
  auto store = OpenRefStore(index, OpenMode::kReadWrite);
  ASSERT_TRUE(store.ok());
  auto src = ProbeSource(FileUri(data_));
  ASSERT_TRUE(src.ok());
  ASSERT_TRUE((*store)->PutFile(*src, "", "test", OneArray(100), {}).ok());
  auto node = (*store)->GetNode("0/0");
  ASSERT_TRUE(node.ok() && *node);
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        auto b = (*store)->GetBlock((*node)->id, 0);
        if (!b.ok() || b->size() != 100 || (*b)[7].ref.offset != 70) failures++;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
}

// Every write raises the generation; a kSnapshot store keeps answering from the state it opened
// on (nodes and blocks of the replaced file), while a kReadOnly store sees each commit.
TEST_F(RefStoreTest, ASnapshotStoreReadsTheStateItOpenedOnWhileTheIndexIsRewritten) {
  fs::path index = dir_ / "i.db";
  auto writer = OpenRefStore(index, OpenMode::kReadWrite);
  ASSERT_TRUE(writer.ok());
  auto src = ProbeSource(FileUri(data_));
  ASSERT_TRUE(src.ok());
  ASSERT_TRUE((*writer)->PutFile(*src, "", "test", OneArray(100), {}).ok());
  auto g1 = (*writer)->IndexGeneration();
  ASSERT_TRUE(g1.ok());

  auto snapshot = OpenRefStore(index, OpenMode::kSnapshot);
  ASSERT_TRUE(snapshot.ok()) << snapshot.status().message();
  auto latest = OpenRefStore(index, OpenMode::kReadOnly);
  ASSERT_TRUE(latest.ok());
  auto old_node = (*snapshot)->GetNode("0/0");
  ASSERT_TRUE(old_node.ok() && *old_node);

  // The file indexed again with another layout (new node ids, 3 chunks), then a meta write.
  ASSERT_TRUE((*writer)->PutFile(*src, "", "test", OneArray(3), {}).ok());
  ASSERT_TRUE((*writer)->SetMeta("note", "x").ok());
  auto g3 = (*writer)->IndexGeneration();
  ASSERT_TRUE(g3.ok());
  EXPECT_EQ(*g3, *g1 + 2);
  EXPECT_EQ(*(*latest)->IndexGeneration(), *g3);
  EXPECT_EQ(*(*snapshot)->IndexGeneration(), *g1);

  // The snapshot still holds the old node and its blocks, on this thread and on others.
  auto b = (*snapshot)->GetBlock((*old_node)->id, 0);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->size(), 100u);
  auto again = (*snapshot)->GetNode("0/0");
  ASSERT_TRUE(again.ok() && *again);
  EXPECT_EQ((*again)->id, (*old_node)->id);
  EXPECT_EQ((*again)->meta["array"]["shape"], nlohmann::json({1000}));
  auto now = (*latest)->GetNode("0/0");
  ASSERT_TRUE(now.ok() && *now);
  EXPECT_EQ((*now)->meta["array"]["shape"], nlohmann::json({30}));

  // Reads on several threads at once (each on a connection of its own) all see the old state.
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        auto n = (*snapshot)->GetNode("0/0");
        if (!n.ok() || !*n || (*n)->id != (*old_node)->id) wrong++;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
}

}  // namespace
}  // namespace refzarr
