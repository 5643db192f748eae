// RecordingSink: what it accepts, and that Finish() finds a chunk given twice in every order.
#include "formats/core/recording_sink.h"

#include <gtest/gtest.h>

#include <array>
#include <string>

namespace refzarr {
namespace {

ArrayDesc TenChunks() {
  ArrayDesc a;
  a.shape = {100};
  a.chunks = {10};
  a.dtype = DType::Make('u', 1);
  return a;
}

// A sink with one array whose chunks were added in `indices` order, and `inline_index` inline.
Status FinishWith(std::initializer_list<uint64_t> indices, std::optional<uint64_t> inline_index) {
  RecordingSink sink;
  Result<ArrayHandle> array = sink.AddArray("0", TenChunks());
  if (!array.ok()) return array.status();
  for (uint64_t i : indices) RETURN_IF_ERROR(sink.AddChunk(*array, i, ChunkRef{0, i * 10, 10, 0}));
  if (inline_index) {
    const std::array<std::byte, 2> bytes{std::byte{1}, std::byte{2}};
    RETURN_IF_ERROR(sink.AddInlineChunk(*array, *inline_index, bytes));
  }
  return sink.Finish();
}

TEST(RecordingSink, CompanionsAreUrisEachRegisteredOnce) {
  RecordingSink sink;
  auto a = sink.AddSource("mem://bucket/set/b.ome.tif");
  auto b = sink.AddSource("file:///data/c.raw");
  auto again = sink.AddSource("mem://bucket/set/b.ome.tif");
  ASSERT_TRUE(a.ok() && b.ok() && again.ok());
  EXPECT_EQ(*a, 1u);
  EXPECT_EQ(*b, 2u);
  EXPECT_EQ(*again, 1u);
  // A local path where a URI is due is a scanner's mistake, caught here.
  auto path = sink.AddSource("/data/c.raw");
  ASSERT_FALSE(path.ok());
  EXPECT_EQ(path.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(path.status().message().find("/data/c.raw"), std::string::npos);
  EXPECT_EQ(sink.result().companions,
            (std::vector<std::string>{"mem://bucket/set/b.ome.tif", "file:///data/c.raw"}));
}

TEST(RecordingSink, FinishAcceptsDistinctChunksInAnyOrder) {
  EXPECT_TRUE(FinishWith({0, 1, 2, 9}, std::nullopt).ok());
  EXPECT_TRUE(FinishWith({9, 0, 5, 2}, std::nullopt).ok());
  EXPECT_TRUE(FinishWith({0, 1, 2}, 5).ok());
}

TEST(RecordingSink, FinishFindsAChunkGivenTwice) {
  for (const Status& s : {FinishWith({0, 1, 1, 2}, std::nullopt),  // in order
                          FinishWith({3, 1, 2, 1}, std::nullopt),  // out of order
                          FinishWith({0, 1, 2}, 2)}) {              // stored and inline
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(s.message().find("given twice"), std::string::npos) << s.message();
  }
}

TEST(RecordingSink, ABoundedSinkSpillsAndMergesEveryReferenceBackInOrder) {
  RecordingSink sink(/*max_refs_in_memory=*/37);
  ArrayDesc desc;
  desc.shape = {5000};
  desc.chunks = {10};
  desc.dtype = DType::Make('u', 1);
  auto a = sink.AddArray("a", desc);
  auto b = sink.AddArray("b", desc);
  ASSERT_TRUE(a.ok() && b.ok());
  for (uint64_t k = 0; k < 500; ++k) {
    uint64_t i = (k * 211) % 500;  // 211 is prime to 500: a permutation
    ASSERT_TRUE(sink.AddChunk(*a, i, ChunkRef{0, i * 7, i + 1, 0}).ok());
    ASSERT_TRUE(sink.AddChunk(*b, 499 - i, ChunkRef{0, i, 3, i == 17 ? kChunkShort : 0u}).ok());
  }
  ASSERT_TRUE(sink.Finish().ok());
  const ScannedFile& file = sink.result();
  EXPECT_EQ(file.ChunkCount(), 1000u);
  const ScannedFile::Array* array_a = file.FindArray("a");
  const ScannedFile::Array* array_b = file.FindArray("b");
  ASSERT_TRUE(array_a && array_a->spilled && array_b && array_b->spilled);
  EXPECT_LT(array_a->chunks.size(), 37u) << "no more than the bound stays in memory";
  EXPECT_GT(array_a->spilled->runs().size(), 5u);
  EXPECT_FALSE(array_a->spilled->any_flagged());
  EXPECT_TRUE(array_b->spilled->any_flagged());
  SortedChunkRefs refs(array_a->chunks, array_a->spilled.get());
  for (uint64_t i = 0; i < 500; ++i) {
    auto next = refs.Next();
    ASSERT_TRUE(next.ok() && next->has_value()) << i;
    EXPECT_EQ((*next)->first, i);
    EXPECT_EQ((*next)->second, (ChunkRef{0, i * 7, i + 1, 0}));
  }
  auto end = refs.Next();
  ASSERT_TRUE(end.ok());
  EXPECT_FALSE(end->has_value());
}

TEST(RecordingSink, ChunksOutsideTheGridAreRefused) {
  Status s = FinishWith({10}, std::nullopt);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("outside its grid"), std::string::npos) << s.message();
}

ImageDesc TwoLevels() {
  ImageDesc image;
  image.axes = {{"x", "space", ""}};
  image.levels = {"0", "1"};
  image.scales = {{1.0}, {2.0}};
  return image;
}

TEST(RecordingSink, ARefusedArrayAndItsChunksAreDroppedAndReported) {
  RecordingSink sink(/*max_refs_in_memory=*/2);  // its references have spilled before the refusal
  ASSERT_TRUE(sink.AddImage("s", TwoLevels()).ok());
  auto level0 = sink.AddArray("s/0", TenChunks());
  auto level1 = sink.AddArray("s/1", TenChunks());
  ASSERT_TRUE(level0.ok() && level1.ok());
  for (uint64_t i = 0; i < 5; ++i) {
    ASSERT_TRUE(sink.AddChunk(*level0, i, ChunkRef{0, i * 10, 10, 0}).ok());
    ASSERT_TRUE(sink.AddChunk(*level1, i, ChunkRef{0, 100 + i, 1, 0}).ok());
  }
  ASSERT_TRUE(sink.RefuseArray("s/0", "strip 3: 10 bytes present, 40 needed").ok());
  // Later chunks of the refused array are ignored, not errors.
  EXPECT_TRUE(sink.AddChunk(*level0, 7, ChunkRef{0, 70, 10, 0}).ok());
  ASSERT_TRUE(sink.Finish().ok());
  const ScannedFile& f = sink.result();
  ASSERT_EQ(f.refused.size(), 1u);
  EXPECT_EQ(f.refused[0].path, "s/0");
  EXPECT_EQ(f.refused[0].reason, "strip 3: 10 bytes present, 40 needed");
  EXPECT_EQ(f.FindArray("s/0"), nullptr);
  ASSERT_NE(f.FindArray("s/1"), nullptr);
  EXPECT_EQ(f.ChunkCount(), 5u);
  // The image keeps the level that is still served, with its own scale.
  const ScannedFile::Group* g = f.FindGroup("s");
  ASSERT_TRUE(g && g->image);
  EXPECT_EQ(g->image->levels, std::vector<std::string>{"1"});
  EXPECT_EQ(g->image->scales, std::vector<std::vector<double>>{{2.0}});
}

TEST(RecordingSink, AnArrayRefusedBeforeItIsDeclaredNeverAppears) {
  RecordingSink sink;
  ASSERT_TRUE(sink.AddImage("s", TwoLevels()).ok());
  ASSERT_TRUE(sink.RefuseArray("s/0", "codec 300 not available").ok());
  ASSERT_TRUE(sink.RefuseArray("s/1", "codec 300 not available").ok());
  auto late = sink.AddArray("s/0", TenChunks());
  ASSERT_TRUE(late.ok());
  EXPECT_TRUE(sink.AddChunk(*late, 1, ChunkRef{0, 1, 1, 0}).ok());
  ASSERT_TRUE(sink.Finish().ok());
  const ScannedFile& f = sink.result();
  EXPECT_TRUE(f.arrays.empty());
  EXPECT_EQ(f.refused.size(), 2u);
  // No level left: the group is no longer an image, and a warning says so.
  const ScannedFile::Group* g = f.FindGroup("s");
  ASSERT_NE(g, nullptr);
  EXPECT_FALSE(g->image.has_value());
  ASSERT_FALSE(f.warnings.empty());
  EXPECT_NE(f.warnings.back().find("no servable level"), std::string::npos);
}

}  // namespace
}  // namespace refzarr
