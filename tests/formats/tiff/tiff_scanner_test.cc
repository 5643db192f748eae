// Scanner-level behaviour of the TIFF scanner on the generated samples, through a RecordingSink.
#include "formats/tiff/tiff_scanner.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "formats/core/recording_sink.h"

namespace refzarr {
namespace {

namespace fs = std::filesystem;

class TiffScannerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(fs::temp_directory_path() / ("refzarr_tiff_test_" + std::to_string(getpid())));
    fs::remove_all(*dir_);
    std::string cmd = std::string(REFZARR_SAMPLES_BIN) + " " + dir_->string() + " -q";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
  }
  static Result<ScannedFile> Scan(const std::string& rel) {
    ASSIGN_OR_RETURN(auto source, OpenLocalFile(*dir_ / rel));
    RecordingSink sink;
    RETURN_IF_ERROR(MakeTiffScanner()->Scan(*source, {*dir_ / rel}, sink));
    RETURN_IF_ERROR(sink.Finish());
    return std::move(sink).result();
  }
  static fs::path* dir_;
};
fs::path* TiffScannerTest::dir_ = nullptr;

TEST_F(TiffScannerTest, UniformPagesStackAlongZ) {
  auto scan = Scan("stacks/u16_zstack_10pages_deflate.tif");
  ASSERT_TRUE(scan.ok()) << scan.status().message();
  const auto* a = scan->FindArray("0/0");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->desc.shape[2], 10u);
  EXPECT_EQ(scan->FindArray("1/0"), nullptr);
  EXPECT_EQ(scan->FindGroup("")->attributes["bioformats2raw.layout"], 3);
}

TEST_F(TiffScannerTest, PagesThatDifferStartNewSeries) {
  auto scan = Scan("stacks/two_series_u8_u16.tif");
  ASSERT_TRUE(scan.ok()) << scan.status().message();
  EXPECT_NE(scan->FindArray("0/0"), nullptr);
  EXPECT_NE(scan->FindArray("1/0"), nullptr);
}

TEST_F(TiffScannerTest, SubIfdsAndReducedPagesBecomeLevels) {
  for (const char* name : {"pyramids/u16_subifd_pyramid_deflate.tif", "pyramids/u8_cog_reduced_ifds.tif"}) {
    auto scan = Scan(name);
    ASSERT_TRUE(scan.ok()) << name << ": " << scan.status().message();
    const auto* g = scan->FindGroup("0");
    ASSERT_TRUE(g && g->image) << name;
    ASSERT_EQ(g->image->levels.size(), 3u) << name;
    const auto* l0 = scan->FindArray("0/0");
    const auto* l1 = scan->FindArray("0/1");
    ASSERT_TRUE(l0 && l1);
    EXPECT_GT(l0->desc.shape[4], l1->desc.shape[4]);
    EXPECT_DOUBLE_EQ(g->image->scales[1][4],
                     static_cast<double>(l0->desc.shape[4]) / l1->desc.shape[4]);
  }
}

TEST_F(TiffScannerTest, SparseTilesAreMissingChunks) {
  auto scan = Scan("tiled/u16_sparse_tiles_deflate.tif");
  ASSERT_TRUE(scan.ok()) << scan.status().message();
  const auto* a = scan->FindArray("0/0");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->chunks.size() + 4, a->desc.ChunkCount());  // tiles 1, 4, 5, 11 never written
}

TEST_F(TiffScannerTest, ShortLastStripIsFlagged) {
  auto scan = Scan("stripped/u8_rps16_short_last_strip.tif");
  ASSERT_TRUE(scan.ok()) << scan.status().message();
  const auto* a = scan->FindArray("0/0");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->desc.chunks[3], 16u);
  uint64_t short_count = 0;
  for (const auto& [index, ref] : a->chunks) {
    bool last = index == a->desc.ChunkCount() - 1;
    EXPECT_EQ((ref.flags & kChunkShort) != 0, last) << index;
    if (last) short_count++;
  }
  EXPECT_EQ(short_count, 1u);
}

TEST_F(TiffScannerTest, UncompressedStripsKeepTheirRealLength) {
  auto scan = Scan("dtypes/u16_strips_none_le.tif");
  ASSERT_TRUE(scan.ok()) << scan.status().message();
  const auto* a = scan->FindArray("0/0");
  ASSERT_NE(a, nullptr);
  const uint64_t rows = a->desc.chunks[3], height = a->desc.shape[3], width = a->desc.shape[4];
  for (const auto& [index, ref] : a->chunks) {
    uint64_t covered = std::min(rows, height - index * rows);
    EXPECT_EQ(ref.length, covered * width * 2) << index;
    EXPECT_EQ((ref.flags & kChunkShort) != 0, covered < rows) << index;
  }
}

TEST_F(TiffScannerTest, ChunkyRgbIsOneChunkOfAllSamplesStoredInterleaved) {
  auto scan = Scan("rgb/rgb_u8_chunky_tiled_none.tif");
  ASSERT_TRUE(scan.ok()) << scan.status().message();
  const auto* a = scan->FindArray("0/0");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->desc.shape[1], 3u);
  EXPECT_EQ(a->desc.chunks[1], 3u);
  EXPECT_EQ(a->desc.encoding.stored_order, (std::vector<int>{0, 2, 3, 4, 1}));
}

TEST_F(TiffScannerTest, PlanarRgbIsOneChunkPerSample) {
  auto scan = Scan("rgb/rgb_u16_planar_strips_lzw_be.tif");
  ASSERT_TRUE(scan.ok()) << scan.status().message();
  const auto* a = scan->FindArray("0/0");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->desc.shape[1], 3u);
  EXPECT_EQ(a->desc.chunks[1], 1u);
  EXPECT_TRUE(a->desc.encoding.stored_order.empty());
  EXPECT_EQ(a->desc.dtype.ToV2(), ">u2");
  EXPECT_FALSE(a->desc.encoding.native);  // LZW
}

TEST_F(TiffScannerTest, StandardCodecsAreNativeAndOthersAreNot) {
  struct Case { const char* file; bool native; const char* compressor; };
  for (const Case& c : {Case{"tiled/u16_zstd.tif", false, "zstd"},
                        Case{"tiled/u16_edge_tiles_deflate.tif", true, "zlib"},
                        Case{"tiled/u32_none.tif", true, nullptr},
                        Case{"tiled/u8_packbits.tif", false, "imagecodecs_packbits"},
                        Case{"tiled/u16_deflate_pred2_be.tif", false, "zlib"}}) {
    auto scan = Scan(c.file);
    ASSERT_TRUE(scan.ok()) << c.file << ": " << scan.status().message();
    const auto& e = scan->FindArray("0/0")->desc.encoding;
    EXPECT_EQ(e.native, c.native) << c.file;
    if (c.compressor) EXPECT_EQ(e.compressor["id"], c.compressor) << c.file;
    else EXPECT_TRUE(e.compressor.is_null()) << c.file;
  }
}

TEST_F(TiffScannerTest, DamagedFilesFailWithTheReason) {
  for (const char* name : {"bad/truncated_half.tif", "bad/next_ifd_past_eof.tif"}) {
    auto scan = Scan(name);
    ASSERT_FALSE(scan.ok()) << name;
    EXPECT_EQ(scan.status().code(), StatusCode::kCorrupt) << name;
    EXPECT_NE(scan.status().message().find("directory"), std::string::npos)
        << scan.status().message();
  }
}

TEST(TiffScanner, SniffsBothByteOrdersAndBigTiff) {
  auto sniff = [](std::string head) {
    return MakeTiffScanner()->Sniff(std::as_bytes(std::span(head.data(), head.size())));
  };
  EXPECT_TRUE(sniff(std::string("II*\0", 4)));
  EXPECT_TRUE(sniff(std::string("MM\0*", 4)));
  EXPECT_TRUE(sniff(std::string("II+\0", 4)));
  EXPECT_TRUE(sniff(std::string("MM\0+", 4)));
  EXPECT_FALSE(sniff(std::string("\x89HDF", 4)));
  EXPECT_FALSE(sniff("II"));
}

}  // namespace
}  // namespace refzarr
