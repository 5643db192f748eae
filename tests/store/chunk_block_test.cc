#include "store/chunk_block.h"

#include <gtest/gtest.h>

#include <random>

namespace refzarr {
namespace {

TEST(ChunkBlock, RoundTripsPresentMissingSourcesAndFlags) {
  std::mt19937_64 rng(42);
  std::vector<BlockEntry> entries(kBlockSize);
  uint64_t offset = 1000;
  for (size_t i = 0; i < entries.size(); ++i) {
    if (rng() % 7 == 0) continue;  // missing
    uint64_t length = 1 + rng() % 200000;
    entries[i] = {true, {static_cast<uint32_t>(rng() % 3), offset, length,
                         static_cast<uint32_t>(rng() % 5 == 0 ? kChunkShort : 0)}};
    offset += length + (rng() % 4 == 0 ? rng() % 5000 : 0);
  }
  entries[3] = {true, {0, 5, 7, 0}};  // an offset that goes backwards
  auto bytes = EncodeChunkBlock(entries);
  auto decoded = DecodeChunkBlock(bytes);
  ASSERT_TRUE(decoded.ok()) << decoded.status().message();
  ASSERT_EQ(decoded->size(), entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    ASSERT_EQ((*decoded)[i].present, entries[i].present) << i;
    if (entries[i].present) EXPECT_EQ((*decoded)[i].ref, entries[i].ref) << i;
  }
}

TEST(ChunkBlock, RegularTilesCostAtMostFiveBytesEach) {
  std::vector<BlockEntry> entries(kBlockSize);
  uint64_t offset = 16;
  std::mt19937 rng(1);
  for (auto& e : entries) {
    uint64_t length = 40000 + rng() % 80000;  // deflate tiles of 40-120 KB, written back to back
    e = {true, {0, offset, length, 0}};
    offset += length;
  }
  auto bytes = EncodeChunkBlock(entries);
  EXPECT_LE(bytes.size(), 5 * kBlockSize);
}

TEST(ChunkBlock, TrailingMissingEntriesAreNotStored) {
  std::vector<BlockEntry> entries(kBlockSize);
  entries[0] = {true, {0, 10, 20, 0}};
  auto bytes = EncodeChunkBlock(entries);
  EXPECT_LT(bytes.size(), 8u);
  auto decoded = DecodeChunkBlock(bytes);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->size(), 1u);
}

TEST(ChunkBlock, RejectsMalformedBytes) {
  std::vector<BlockEntry> entries(10, BlockEntry{true, {0, 1, 2, 0}});
  auto bytes = EncodeChunkBlock(entries);
  auto truncated = std::vector<std::byte>(bytes.begin(), bytes.end() - 1);
  EXPECT_EQ(DecodeChunkBlock(truncated).status().code(), StatusCode::kCorrupt);
  auto extra = bytes;
  extra.push_back(std::byte{0});
  EXPECT_EQ(DecodeChunkBlock(extra).status().code(), StatusCode::kCorrupt);
  EXPECT_EQ(DecodeChunkBlock({}).status().code(), StatusCode::kCorrupt);
  std::vector<std::byte> bad_mode = {std::byte{0x80}, std::byte{0}};
  EXPECT_EQ(DecodeChunkBlock(bad_mode).status().code(), StatusCode::kCorrupt);
}

}  // namespace
}  // namespace refzarr
