#include "formats/core/model.h"

#include <gtest/gtest.h>

namespace refzarr {
namespace {

TEST(ChunkGrid, LinearIndexAndCoordsAreInverse) {
  std::vector<uint64_t> grid = {2, 3, 5};
  for (uint64_t i = 0; i < 30; ++i) {
    auto c = ChunkCoords(grid, i);
    EXPECT_EQ(LinearChunkIndex(grid, c), i);
  }
  EXPECT_EQ(LinearChunkIndex(grid, std::vector<uint64_t>{1, 2, 4}), 29u);
}

TEST(ArrayDesc, GridRoundsUpPartialEdgeChunks) {
  ArrayDesc a;
  a.shape = {100, 7};
  a.chunks = {16, 7};
  a.dtype = DType::Make('u', 2);
  EXPECT_EQ(a.GridShape(), (std::vector<uint64_t>{7, 1}));
  EXPECT_EQ(a.ChunkCount(), 7u);
  EXPECT_EQ(a.ChunkBytes(), 16u * 7 * 2);
}

TEST(ArrayDesc, JsonRoundTripKeepsEverything) {
  ArrayDesc a;
  a.shape = {1, 3, 1, 64, 64};
  a.chunks = {1, 3, 1, 32, 32};
  a.dtype = DType::Make('u', 2, '>');
  a.fill_value = 7;
  a.encoding.native = false;
  a.encoding.decoder = "tiff";
  a.encoding.compressor = {{"id", "imagecodecs_lzw"}};
  a.encoding.params = {{"compression", 5}};
  a.encoding.stored_order = {0, 2, 3, 4, 1};
  a.dimension_names = {"t", "c", "z", "y", "x"};
  a.attributes = {{"k", "v"}};
  auto b = ArrayDesc::FromJson(a.ToJson());
  ASSERT_TRUE(b.ok()) << b.status().message();
  EXPECT_EQ(b->ToJson(), a.ToJson());
  EXPECT_EQ(b->dtype.ToV2(), ">u2");
}

TEST(ArrayDesc, MalformedJsonIsCorrupt) {
  EXPECT_EQ(ArrayDesc::FromJson({{"shape", {1}}}).status().code(), StatusCode::kCorrupt);
}

TEST(DType, NamesForBothZarrVersions) {
  EXPECT_EQ(DType::Make('u', 1, '<').ToV2(), "|u1");
  EXPECT_EQ(DType::Make('f', 4, '<').V3Name(), "float32");
  EXPECT_EQ(DType::Make('i', 8, '>').V3Name(), "int64");
  EXPECT_FALSE(DType::Make('S', 4).V3Name().has_value());
  auto parsed = DType::FromTypestr(">f8");
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(*parsed, DType::Make('f', 8, '>'));
  EXPECT_FALSE(DType::FromTypestr("u2").ok());
}

}  // namespace
}  // namespace refzarr
