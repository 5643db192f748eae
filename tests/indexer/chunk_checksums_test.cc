#include "indexer/chunk_checksums.h"

#include <gtest/gtest.h>

#include <mutex>
#include <random>

#include "formats/core/crc32c.h"

namespace refzarr {
namespace {

// A memory source that records every read.
class RecordingSource final : public ByteSource {
 public:
  explicit RecordingSource(std::vector<std::byte> bytes)
      : bytes_(bytes), inner_(MakeMemorySource(std::move(bytes), "recorded")) {}
  Result<SourceStat> Stat() override { return inner_->Stat(); }
  Status ReadInto(ByteRange range, std::span<std::byte> out) override {
    reads.push_back(range);
    return inner_->ReadInto(range, out);
  }
  std::string Describe() const override { return inner_->Describe(); }
  uint32_t Crc(uint64_t offset, uint64_t length) const {
    return Crc32c(std::span(bytes_).subspan(offset, length));
  }
  std::vector<ByteRange> reads;

 private:
  std::vector<std::byte> bytes_;
  std::unique_ptr<ByteSource> inner_;
};

std::vector<std::byte> RandomBytes(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<std::byte> out(n);
  for (auto& b : out) b = static_cast<std::byte>(rng());
  return out;
}

ScannedFile::Array MakeArray(std::string path, uint64_t chunks) {
  ScannedFile::Array a;
  a.path = std::move(path);
  a.desc.shape = {chunks};
  a.desc.chunks = {1};
  return a;
}

TEST(ChunkChecksums, ReadsEachSourceOnceInFileOrder) {
  RecordingSource main(RandomBytes(20u << 20, 1)), companion(RandomBytes(1u << 20, 2));
  ScannedFile scan;
  scan.companions = {"mem://companion"};
  // Chunk order is not file order: array "a" runs backwards through the file, "b" holds a
  // 9 MiB chunk (larger than one read) and chunks of the companion, and an inline chunk.
  ScannedFile::Array a = MakeArray("a", 64), b = MakeArray("b", 4);
  for (uint64_t i = 0; i < 64; ++i) {
    a.chunks.push_back({i, ChunkRef{0, (63 - i) * 100000 + 17, 90000 + i, 0}});
  }
  b.chunks.push_back({0, ChunkRef{0, 10u << 20, 9u << 20, 0}});
  b.chunks.push_back({1, ChunkRef{1, 4096, 5000, 0}});
  b.chunks.push_back({3, ChunkRef{1, 0, 4096, 0}});
  b.inline_chunks.push_back({2, {std::byte{1}}});
  scan.arrays = {a, b};
  std::vector<ByteSource*> sources = {&main, &companion};
  uint64_t read = 0;
  ASSERT_TRUE(ChecksumChunks(scan, sources, &read).ok());

  ASSERT_TRUE(scan.arrays[0].checksummed);
  ASSERT_EQ(scan.arrays[0].checksums.size(), 64u);
  for (uint64_t i = 0; i < 64; ++i) {
    EXPECT_EQ(scan.arrays[0].checksums[i], main.Crc((63 - i) * 100000 + 17, 90000 + i)) << i;
  }
  ASSERT_EQ(scan.arrays[1].checksums.size(), 3u);  // stored chunks only, in chunk order
  EXPECT_EQ(scan.arrays[1].checksums[0], main.Crc(10u << 20, 9u << 20));
  EXPECT_EQ(scan.arrays[1].checksums[1], companion.Crc(4096, 5000));
  EXPECT_EQ(scan.arrays[1].checksums[2], companion.Crc(0, 4096));

  // File order, no byte twice, no read above 256 KiB.
  for (const RecordingSource* s : {&main, &companion}) {
    for (size_t i = 0; i < s->reads.size(); ++i) {
      EXPECT_LE(s->reads[i].length, 256u << 10);
      if (i > 0) EXPECT_GE(s->reads[i].offset, s->reads[i - 1].offset + s->reads[i - 1].length);
    }
  }
  EXPECT_EQ(companion.reads.size(), 1u);  // two neighbouring chunks: one read
  uint64_t referenced = 9u << 20;
  for (uint64_t i = 0; i < 64; ++i) referenced += 90000 + i;
  referenced += 9096;
  // Gaps under 64 KiB are read through: at most 64 gaps of 10 KiB.
  EXPECT_GE(read, referenced);
  EXPECT_LE(read, referenced + 64 * 10017);
}

TEST(ChunkChecksums, FailsNamingTheSourceWhenAChunkIsPastItsEnd) {
  RecordingSource main(RandomBytes(1000, 3));
  ScannedFile scan;
  ScannedFile::Array a = MakeArray("a", 2);
  a.chunks.push_back({0, ChunkRef{0, 900, 200, 0}});
  scan.arrays = {a};
  std::vector<ByteSource*> sources = {&main};
  Status st = ChecksumChunks(scan, sources);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("recorded"), std::string::npos) << st.message();
  EXPECT_FALSE(scan.arrays[0].checksummed);
}

TEST(ChunkChecksums, RefusesAnUnknownSource) {
  RecordingSource main(RandomBytes(100, 4));
  ScannedFile scan;
  ScannedFile::Array a = MakeArray("a", 1);
  a.chunks.push_back({0, ChunkRef{2, 0, 10, 0}});
  scan.arrays = {a};
  std::vector<ByteSource*> sources = {&main};
  EXPECT_EQ(ChecksumChunks(scan, sources).code(), StatusCode::kCorrupt);
}

}  // namespace
}  // namespace refzarr
