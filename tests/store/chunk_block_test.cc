#include "store/chunk_block.h"

#include <gtest/gtest.h>

#include <random>

#include "formats/core/crc32c.h"

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
  auto bytes = EncodeChunkBlock(entries).value();
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
  auto bytes = EncodeChunkBlock(entries).value();
  EXPECT_LE(bytes.size(), 5 * kBlockSize);
}

TEST(ChunkBlock, TrailingMissingEntriesAreNotStored) {
  std::vector<BlockEntry> entries(kBlockSize);
  entries[0] = {true, {0, 10, 20, 0}};
  auto bytes = EncodeChunkBlock(entries).value();
  EXPECT_LT(bytes.size(), 8u);
  auto decoded = DecodeChunkBlock(bytes);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->size(), 1u);
}

TEST(ChunkBlock, RejectsMalformedBytes) {
  std::vector<BlockEntry> entries(10, BlockEntry{true, {0, 1, 2, 0}});
  auto bytes = EncodeChunkBlock(entries).value();
  auto truncated = std::vector<std::byte>(bytes.begin(), bytes.end() - 1);
  EXPECT_EQ(DecodeChunkBlock(truncated).status().code(), StatusCode::kCorrupt);
  auto extra = bytes;
  extra.push_back(std::byte{0});
  EXPECT_EQ(DecodeChunkBlock(extra).status().code(), StatusCode::kCorrupt);
  EXPECT_EQ(DecodeChunkBlock({}).status().code(), StatusCode::kCorrupt);
  std::vector<std::byte> bad_mode = {std::byte{0x80}, std::byte{0}};
  EXPECT_EQ(DecodeChunkBlock(bad_mode).status().code(), StatusCode::kCorrupt);
}

TEST(ChunkBlock, ChecksumsRoundTripAtFourBytesEach) {
  std::vector<BlockEntry> plain(kBlockSize), summed(kBlockSize);
  uint64_t offset = 16;
  std::mt19937 rng(7);
  for (size_t i = 0; i < kBlockSize; ++i) {
    if (i % 11 == 5) continue;  // missing chunks carry no checksum
    uint64_t length = 40000 + rng() % 80000;
    plain[i] = {true, {0, offset, length, 0}};
    summed[i] = plain[i];
    summed[i].crc32c = static_cast<uint32_t>(rng());
    offset += length;
  }
  auto without = EncodeChunkBlock(plain).value();
  auto with = EncodeChunkBlock(summed).value();
  size_t present = 0;
  for (const auto& e : summed) present += e.present;
  EXPECT_EQ(with.size(), without.size() + 4 * present);
  auto decoded = DecodeChunkBlock(with);
  ASSERT_TRUE(decoded.ok()) << decoded.status().message();
  ASSERT_EQ(decoded->size(), kBlockSize);
  for (size_t i = 0; i < kBlockSize; ++i) {
    ASSERT_EQ((*decoded)[i].present, summed[i].present) << i;
    EXPECT_EQ((*decoded)[i].crc32c, summed[i].crc32c) << i;
    if (summed[i].present) EXPECT_EQ((*decoded)[i].ref, summed[i].ref) << i;
  }
  // Blocks written without checksums decode without them.
  auto old = DecodeChunkBlock(without).value();
  for (const auto& e : old) EXPECT_FALSE(e.crc32c.has_value());
}

TEST(ChunkBlock, RefusesChecksumsOnSomeEntriesOnly) {
  std::vector<BlockEntry> entries(3, BlockEntry{true, {0, 1, 2, 0}});
  entries[1].crc32c = 7;
  auto bytes = EncodeChunkBlock(entries);
  ASSERT_FALSE(bytes.ok());
  EXPECT_EQ(bytes.status().code(), StatusCode::kInvalidArgument);
}

TEST(ChunkBlock, TruncatedChecksumIsCorrupt) {
  std::vector<BlockEntry> entries(2, BlockEntry{true, {0, 1, 2, 0}, 0x12345678u});
  auto bytes = EncodeChunkBlock(entries).value();
  bytes.pop_back();
  EXPECT_EQ(DecodeChunkBlock(bytes).status().code(), StatusCode::kCorrupt);
}

// Check values of RFC 3720 (iSCSI), B.4, and the standard "123456789" check value.
TEST(Crc32c, MatchesPublishedCheckValues) {
  std::string digits = "123456789";
  EXPECT_EQ(Crc32c(std::as_bytes(std::span(digits))), 0xE3069283u);
  std::vector<std::byte> zeros(32, std::byte{0}), ones(32, std::byte{0xff});
  EXPECT_EQ(Crc32c(zeros), 0x8A9136AAu);
  EXPECT_EQ(Crc32c(ones), 0x62A8AB43u);
  std::vector<std::byte> inc(32);
  for (size_t i = 0; i < inc.size(); ++i) inc[i] = static_cast<std::byte>(i);
  EXPECT_EQ(Crc32c(inc), 0x46DD794Eu);
  // Continued in pieces, it is the CRC of the whole.
  auto all = std::as_bytes(std::span(digits));
  EXPECT_EQ(Crc32c(all.subspan(4), Crc32c(all.first(4))), 0xE3069283u);
  EXPECT_EQ(Crc32c({}), 0u);
}

}  // namespace
}  // namespace refzarr
