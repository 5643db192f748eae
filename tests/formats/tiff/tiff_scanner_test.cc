// Scanner-level behaviour of the TIFF scanner on the generated samples, through a RecordingSink.
#include "formats/tiff/tiff_scanner.h"

#include <gtest/gtest.h>
#include <tiffio.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "formats/core/base64.h"
#include "formats/core/recording_sink.h"
#include "tests/formats/tiff/decoder/tiff_test_util.h"
#include "tests/formats/tiff/scan_tiff_file.h"

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
    RETURN_IF_ERROR(MakeTiffScanner()->Scan(*source, ScanContext(*dir_ / rel), sink));
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


fs::path TempFile(const std::string& name) {
  return fs::temp_directory_path() / ("refzarr_tiff_scan_" + std::to_string(getpid()) + "_" + name);
}

// Page 0: `width` x `length` uint8 strips written raw (TIFFWriteRawStrip) with the given byte
// counts; page 1: a uint16 page of another shape, so that it is a series of its own.
void WriteRawStrips(const fs::path& path, uint32_t width, uint32_t length, uint32_t rows_per_strip,
                    const std::vector<uint32_t>& strip_bytes) {
  testing::TiffPtr t = testing::OpenTiff(path.string(), "w");
  ASSERT_TRUE(t);
  TIFFSetField(t.get(), TIFFTAG_IMAGEWIDTH, width);
  TIFFSetField(t.get(), TIFFTAG_IMAGELENGTH, length);
  TIFFSetField(t.get(), TIFFTAG_BITSPERSAMPLE, 8);
  TIFFSetField(t.get(), TIFFTAG_SAMPLESPERPIXEL, 1);
  TIFFSetField(t.get(), TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
  TIFFSetField(t.get(), TIFFTAG_ROWSPERSTRIP, rows_per_strip);
  std::vector<uint8_t> bytes(*std::max_element(strip_bytes.begin(), strip_bytes.end()), 7);
  for (uint32_t i = 0; i < strip_bytes.size(); ++i) {
    ASSERT_EQ(TIFFWriteRawStrip(t.get(), i, bytes.data(), strip_bytes[i]), strip_bytes[i]);
  }
  ASSERT_TRUE(TIFFWriteDirectory(t.get()));
  TIFFSetField(t.get(), TIFFTAG_IMAGEWIDTH, 16);
  TIFFSetField(t.get(), TIFFTAG_IMAGELENGTH, 8);
  TIFFSetField(t.get(), TIFFTAG_BITSPERSAMPLE, 16);
  TIFFSetField(t.get(), TIFFTAG_SAMPLESPERPIXEL, 1);
  TIFFSetField(t.get(), TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
  TIFFSetField(t.get(), TIFFTAG_ROWSPERSTRIP, 8);
  std::vector<uint16_t> other(16 * 8, 3);
  ASSERT_EQ(TIFFWriteEncodedStrip(t.get(), 0, other.data(), other.size() * 2), 256);
  ASSERT_TRUE(TIFFWriteDirectory(t.get()));
}

// An uncompressed strip holding fewer bytes than its rows need is damage: the array is refused
// with the strip, the bytes present and needed, never served padded with zeros; the rest of the
// file is indexed.
TEST(TiffScannerDamage, ShortUncompressedStripRefusesItsArray) {
  // RowsPerStrip larger than the image: the one strip must hold 103 rows of 1009 bytes.
  fs::path path = TempFile("short_strip.tif");
  WriteRawStrips(path, 1009, 103, 0xFFFFFFFFu, {8062});
  ScannedFile scan = testing::ScanTiffFile(path);
  EXPECT_EQ(scan.FindArray("0/0"), nullptr) << "a short strip must not be served";
  ASSERT_EQ(scan.refused.size(), 1u);
  EXPECT_EQ(scan.refused[0].path, "0/0");
  EXPECT_EQ(scan.refused[0].reason, "IFD 0: strip 0 holds 8062 bytes, its 103 rows need 103927");
  EXPECT_NE(scan.FindArray("1/0"), nullptr) << "the other series is still indexed";
  const auto* image = scan.FindGroup("0");
  ASSERT_NE(image, nullptr);
  EXPECT_FALSE(image->image) << "an image without a servable level is a plain group";
  fs::remove(path);
}

// The last strip covers only the rows left in the image: exactly those bytes are right (and
// flagged short); a strip before it with fewer bytes than a full strip is damage.
TEST(TiffScannerDamage, OnlyTheLastStripMayCoverFewerRows) {
  fs::path path = TempFile("last_strip.tif");
  WriteRawStrips(path, 10, 25, 10, {100, 100, 50});
  ScannedFile scan = testing::ScanTiffFile(path);
  const auto* a = scan.FindArray("0/0");
  ASSERT_NE(a, nullptr);
  EXPECT_TRUE(scan.refused.empty());
  ASSERT_EQ(a->chunks.size(), 3u);
  for (const auto& [index, ref] : a->chunks) {
    EXPECT_EQ((ref.flags & kChunkShort) != 0, index == 2) << index;
    EXPECT_EQ(ref.length, index == 2 ? 50u : 100u) << index;
  }
  WriteRawStrips(path, 10, 25, 10, {100, 60, 50});
  scan = testing::ScanTiffFile(path);
  EXPECT_EQ(scan.FindArray("0/0"), nullptr);
  ASSERT_EQ(scan.refused.size(), 1u);
  EXPECT_EQ(scan.refused[0].reason, "IFD 0: strip 1 holds 60 bytes, its 10 rows need 100");
  WriteRawStrips(path, 10, 25, 10, {100, 100, 49});
  scan = testing::ScanTiffFile(path);
  ASSERT_EQ(scan.refused.size(), 1u);
  EXPECT_EQ(scan.refused[0].reason, "IFD 0: strip 2 holds 49 bytes, its 5 rows need 50");
  fs::remove(path);
}

// Samples the array dtypes cannot hold (complex integers) refuse that array, not the file.
TEST(TiffScannerDamage, UnsupportedSamplesRefuseTheirArrayOnly) {
  fs::path path = TempFile("complex.tif");
  {
    testing::TiffPtr t = testing::OpenTiff(path.string(), "w");
    ASSERT_TRUE(t);
    for (uint16_t format : {SAMPLEFORMAT_COMPLEXINT, SAMPLEFORMAT_UINT}) {
      TIFFSetField(t.get(), TIFFTAG_IMAGEWIDTH, format == SAMPLEFORMAT_UINT ? 8 : 4);
      TIFFSetField(t.get(), TIFFTAG_IMAGELENGTH, 4);
      TIFFSetField(t.get(), TIFFTAG_BITSPERSAMPLE, 32);
      TIFFSetField(t.get(), TIFFTAG_SAMPLEFORMAT, format);
      TIFFSetField(t.get(), TIFFTAG_SAMPLESPERPIXEL, 1);
      TIFFSetField(t.get(), TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
      TIFFSetField(t.get(), TIFFTAG_ROWSPERSTRIP, 4);
      std::vector<uint32_t> px(32, 9);
      ASSERT_GT(TIFFWriteEncodedStrip(t.get(), 0, px.data(), (format == SAMPLEFORMAT_UINT ? 8 : 4) * 16), 0);
      ASSERT_TRUE(TIFFWriteDirectory(t.get()));
    }
  }
  ScannedFile scan = testing::ScanTiffFile(path);
  ASSERT_EQ(scan.refused.size(), 1u);
  EXPECT_EQ(scan.refused[0].path, "0/0");
  EXPECT_NE(scan.refused[0].reason.find("SampleFormat 5"), std::string::npos) << scan.refused[0].reason;
  EXPECT_NE(scan.FindArray("1/0"), nullptr);
  fs::remove(path);
}

// rasterio's corrupt.tif: tile 3 of the full-resolution image lies past the end of the file.
// That level alone is refused; the overviews and the mask series are indexed, and the image
// lists the levels that remain.
TEST(TiffScannerDamage, ChunkPastTheEndRefusesOnlyItsLevel) {
  const fs::path path = REFZARR_SHARED_DIR "/realdata/tiff/rasterio+rasterio/tests/data/corrupt.tif";
  if (!fs::exists(path)) GTEST_SKIP() << "no realdata";
  ScannedFile scan = testing::ScanTiffFile(path);
  ASSERT_EQ(scan.refused.size(), 1u);
  EXPECT_EQ(scan.refused[0].path, "0/0");
  EXPECT_EQ(scan.refused[0].reason,
            "IFD 0: tile 3 (offset 260000, 47086 bytes) lies past the end of the file "
            "(298232 bytes)");
  EXPECT_EQ(scan.FindArray("0/0"), nullptr);
  const auto* image = scan.FindGroup("0");
  ASSERT_TRUE(image && image->image);
  EXPECT_EQ(image->image->levels, (std::vector<std::string>{"1", "2", "3", "4", "5", "6"}));
  for (const std::string& level : image->image->levels) {
    EXPECT_NE(scan.FindArray("0/" + level), nullptr) << level;
  }
  const auto* mask = scan.FindGroup("1");
  ASSERT_TRUE(mask && mask->image);
  EXPECT_EQ(mask->image->levels.size(), 7u);
}

// Old-style JPEG: the header and tables libtiff's codec reads outside the strips are in the
// params; the first chunk starts after the header bytes of the first strip.
TEST(TiffScannerOldJpeg, RecordsTheJpegHeaderAndTables) {
  fs::path path = TempFile("ojpeg.tif");
  testing::OjpegSpec spec;
  spec.ycbcr_subsampling[1] = 1;
  spec.rows_per_strip = 24;
  spec.tables = testing::OjpegTables::kHeaderInInterchange;
  ASSERT_TRUE(testing::WriteOjpegTiff(path.string(), spec));
  ScannedFile scan = testing::ScanTiffFile(path);
  const auto* a = scan.FindArray("0/0");
  ASSERT_NE(a, nullptr);
  const nlohmann::json& p = a->desc.encoding.params;
  EXPECT_EQ(p["compression"], 6);
  EXPECT_EQ(p["ycbcr_subsampling"], nlohmann::json::array({2, 1}));
  // JPEGInterchangeFormat holds SOI..DHT; the first strip starts with the 14-byte SOS segment.
  auto header = DecodeBase64(p["ojpeg_header"].get<std::string>());
  ASSERT_TRUE(header.ok());
  ASSERT_GT(header->size(), 14u);
  EXPECT_EQ(header->substr(0, 2), "\xFF\xD8");
  EXPECT_EQ(header->substr(header->size() - 14, 2), "\xFF\xDA");
  EXPECT_TRUE(p["ojpeg_qtables"].empty()) << "the header holds the frame: tables are not used";
  testing::TiffPtr tif = testing::OpenTiff(path.string(), "r");
  for (const auto& [index, ref] : a->chunks) {
    uint64_t offset = TIFFGetStrileOffset(tif.get(), static_cast<uint32_t>(index));
    uint64_t count = TIFFGetStrileByteCount(tif.get(), static_cast<uint32_t>(index));
    EXPECT_EQ(ref.offset, offset + (index == 0 ? 14 : 0)) << index;
    EXPECT_EQ(ref.length, count - (index == 0 ? 14 : 0)) << index;
  }

  // Tables in tags: one per component, the chroma components sharing theirs (null).
  spec.tables = testing::OjpegTables::kTags;
  ASSERT_TRUE(testing::WriteOjpegTiff(path.string(), spec));
  scan = testing::ScanTiffFile(path);
  a = scan.FindArray("0/0");
  ASSERT_NE(a, nullptr);
  const nlohmann::json& q = a->desc.encoding.params;
  EXPECT_EQ(q["ojpeg_header"], "");
  for (const char* key : {"ojpeg_qtables", "ojpeg_dctables", "ojpeg_actables"}) {
    ASSERT_EQ(q[key].size(), 3u) << key;
    EXPECT_TRUE(q[key][0].is_string() && q[key][1].is_string() && q[key][2].is_null()) << q[key];
  }
  fs::remove(path);
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
