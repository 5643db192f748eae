// The TIFF ChunkDecoder against libtiff itself: for every tile and strip of synthetic and real files,
// decoding the stored bytes alone must give what TIFFReadEncodedTile/Strip gives on the whole file.
#include "formats/tiff/decoder/tiff_decoder.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "formats/core/recording_sink.h"
#include "formats/tiff/tiff_scanner.h"
#include "tests/formats/tiff/decoder/tiff_test_util.h"
#include "tests/formats/tiff/scan_tiff_file.h"

namespace refzarr {
namespace {

using testing::DescribeIfd;
using testing::IfdArray;
using testing::OpenTiff;
using testing::OracleChunk;
using testing::RawSegment;
using testing::SegmentCoords;
using testing::TiffSpec;
using testing::WriteTiff;

constexpr std::byte kPrefill{0x5A};

std::string TempPath(const std::string& name) {
  return (std::filesystem::path(::testing::TempDir()) / ("refzarr_tiffdec_" + name)).string();
}

struct Counts {
  int compared = 0;
  int libtiff_failed = 0;
  int refused = 0;
};

// Compares every segment of every IFD of `path` (up to max_segments per IFD) with libtiff.
// `allow_refusal` lists compressions the decoder may refuse although libtiff reads the file.
Counts CompareFile(const std::string& path, char dtype_order, const ChunkDecoder& decoder,
                   uint32_t max_segments = 1u << 30, std::vector<uint16_t> allow_refusal = {}) {
  Counts counts;
  testing::TiffPtr tif = OpenTiff(path, "r");
  if (!tif) return counts;
  for (int dir = 0; dir < 32; ++dir) {
    if (dir > 0 && !TIFFReadDirectory(tif.get())) break;
    std::optional<IfdArray> d = DescribeIfd(tif.get(), dtype_order);
    if (!d) continue;
    for (uint32_t i = 0; i < d->segments && i < max_segments; ++i) {
      SCOPED_TRACE(path + " IFD " + std::to_string(dir) + " segment " + std::to_string(i) +
                   " params " + d->array.encoding.params.dump().substr(0, 300));
      std::optional<std::vector<std::byte>> raw = RawSegment(tif.get(), *d, i);
      if (!raw) continue;
      std::vector<std::byte> want(d->array.ChunkBytes(), kPrefill);
      bool libtiff_ok = OracleChunk(tif.get(), *d, i, want);
      std::vector<std::byte> got(d->array.ChunkBytes(), kPrefill);
      std::vector<uint64_t> coords = SegmentCoords(*d, i);
      Status s = decoder.Decode(d->array, coords, ChunkRef{0, 0, raw->size(), 0}, *raw, got);
      if (!libtiff_ok) {
        ++counts.libtiff_failed;
        EXPECT_FALSE(s.ok()) << "libtiff refuses this segment, the decoder must too";
        continue;
      }
      if (!s.ok()) {
        bool allowed = std::find(allow_refusal.begin(), allow_refusal.end(), d->compression) !=
                       allow_refusal.end();
        EXPECT_TRUE(allowed) << s.ToString();
        EXPECT_NE(s.message().find("tiff chunk"), std::string::npos) << s.ToString();
        ++counts.refused;
        continue;
      }
      ++counts.compared;
      auto diff = std::mismatch(got.begin(), got.end(), want.begin());
      if (diff.first != got.end()) {
        ADD_FAILURE() << "first difference at byte " << (diff.first - got.begin()) << " of "
                      << got.size() << ": got " << int(*diff.first) << ", libtiff "
                      << int(*diff.second);
        return counts;
      }
    }
  }
  return counts;
}

struct SyntheticCase {
  std::string name;
  TiffSpec spec;
  char dtype_order = '<';
};

class TiffDecoderSynthetic : public ::testing::TestWithParam<SyntheticCase> {};

TEST_P(TiffDecoderSynthetic, EverySegmentMatchesLibtiff) {
  const SyntheticCase& c = GetParam();
  if (!TIFFIsCODECConfigured(c.spec.compression)) GTEST_SKIP() << "codec not in libtiff";
  std::string path = TempPath(c.name + ".tif");
  ASSERT_TRUE(WriteTiff(path, c.spec));
  std::unique_ptr<ChunkDecoder> decoder = MakeTiffChunkDecoder();
  Counts counts = CompareFile(path, c.dtype_order, *decoder);
  EXPECT_GT(counts.compared, 1);
  EXPECT_EQ(counts.libtiff_failed, 0);
  EXPECT_EQ(counts.refused, 0);
  std::filesystem::remove(path);
}

TiffSpec Spec(uint16_t compression, uint16_t bps, uint16_t spp, uint32_t tile) {
  TiffSpec s;
  s.compression = compression;
  s.bps = bps;
  s.spp = spp;
  s.tile = tile;
  if (spp == 3) s.photometric = PHOTOMETRIC_RGB;
  return s;
}

std::vector<SyntheticCase> SyntheticCases() {
  std::vector<SyntheticCase> v;
  v.push_back({"lzw_u16_tiled", Spec(COMPRESSION_LZW, 16, 1, 64)});
  v.push_back({"lzw_u8_strips_short_last", Spec(COMPRESSION_LZW, 8, 1, 0)});  // 150 rows / 32
  {
    TiffSpec s = Spec(COMPRESSION_LZW, 16, 1, 64);
    s.predictor = 2;
    v.push_back({"lzw_pred2_u16_tiled", s});
  }
  {
    TiffSpec s = Spec(COMPRESSION_LZW, 8, 3, 0);
    s.predictor = 2;
    v.push_back({"lzw_pred2_rgb_chunky_strips", s});
  }
  {
    TiffSpec s = Spec(COMPRESSION_ADOBE_DEFLATE, 32, 1, 32);
    s.sample_format = SAMPLEFORMAT_IEEEFP;
    s.predictor = 3;
    v.push_back({"deflate_pred3_f32_tiled", s});
  }
  {
    TiffSpec s = Spec(COMPRESSION_ADOBE_DEFLATE, 64, 1, 0);
    s.sample_format = SAMPLEFORMAT_IEEEFP;
    s.predictor = 3;
    s.big_endian = true;
    v.push_back({"deflate_pred3_f64_be_strips", s, '>'});
  }
  {
    TiffSpec s = Spec(COMPRESSION_ADOBE_DEFLATE, 16, 1, 0);
    s.predictor = 2;
    v.push_back({"deflate_pred2_u16_strips", s});
  }
  v.push_back({"jpeg_gray_tiled", Spec(COMPRESSION_JPEG, 8, 1, 64)});
  v.push_back({"jpeg_gray_strips_short_last", Spec(COMPRESSION_JPEG, 8, 1, 0)});
  {
    TiffSpec s = Spec(COMPRESSION_JPEG, 8, 3, 64);
    s.ycbcr_jpeg = true;
    v.push_back({"jpeg_ycbcr_rgb_tiled", s});
  }
  {
    TiffSpec s = Spec(COMPRESSION_JPEG, 8, 3, 0);
    s.ycbcr_jpeg = true;
    v.push_back({"jpeg_ycbcr_rgb_strips", s});
  }
  v.push_back({"jpeg_rgb_tiled", Spec(COMPRESSION_JPEG, 8, 3, 64)});
  v.push_back({"packbits_u8_strips", Spec(COMPRESSION_PACKBITS, 8, 1, 0)});
  v.push_back({"zstd_u16_tiled", Spec(COMPRESSION_ZSTD, 16, 1, 64)});
  v.push_back({"lzma_u8_strips", Spec(COMPRESSION_LZMA, 8, 1, 0)});
  v.push_back({"webp_rgb_tiled", Spec(COMPRESSION_WEBP, 8, 3, 64)});
  v.push_back({"none_u32_strips", Spec(COMPRESSION_NONE, 32, 1, 0)});
  v.push_back({"none_u8_rgb_chunky_tiled", Spec(COMPRESSION_NONE, 8, 3, 32)});
  {
    TiffSpec s = Spec(COMPRESSION_LZW, 8, 3, 32);
    s.planar = PLANARCONFIG_SEPARATE;
    v.push_back({"lzw_rgb_planar_tiled", s});
  }
  {
    TiffSpec s = Spec(COMPRESSION_ADOBE_DEFLATE, 16, 3, 0);
    s.planar = PLANARCONFIG_SEPARATE;
    v.push_back({"deflate_u16_rgb_planar_strips", s});
  }
  {
    TiffSpec s = Spec(COMPRESSION_LZW, 16, 1, 0);
    s.big_endian = true;
    v.push_back({"lzw_u16_be_to_little_dtype", s, '<'});
    v.push_back({"lzw_u16_be_to_big_dtype", s, '>'});
  }
  {
    TiffSpec s = Spec(COMPRESSION_NONE, 16, 3, 0);
    s.big_endian = true;
    v.push_back({"none_u16_rgb_be", s, '<'});
  }
  {
    TiffSpec s = Spec(COMPRESSION_LZW, 16, 1, 64);
    s.sample_format = SAMPLEFORMAT_INT;
    s.predictor = 2;
    v.push_back({"lzw_pred2_i16_tiled", s});
  }
  {
    TiffSpec s = Spec(COMPRESSION_ADOBE_DEFLATE, 32, 3, 32);
    s.sample_format = SAMPLEFORMAT_IEEEFP;
    v.push_back({"deflate_f32_rgb_chunky_tiled", s});
  }
  return v;
}

INSTANTIATE_TEST_SUITE_P(Codecs, TiffDecoderSynthetic, ::testing::ValuesIn(SyntheticCases()),
                         [](const auto& info) { return info.param.name; });

TEST(TiffDecoder, ShortLastStripFillsOnlyItsRows) {
  TiffSpec s = Spec(COMPRESSION_LZW, 8, 1, 0);  // 150 rows, 32 per strip: the last has 22
  std::string path = TempPath("short.tif");
  ASSERT_TRUE(WriteTiff(path, s));
  testing::TiffPtr tif = OpenTiff(path, "r");
  std::optional<IfdArray> d = DescribeIfd(tif.get(), '<');
  ASSERT_TRUE(d);
  ASSERT_EQ(d->segments, 5u);
  std::optional<std::vector<std::byte>> raw = RawSegment(tif.get(), *d, 4);
  ASSERT_TRUE(raw);
  std::vector<std::byte> got(d->array.ChunkBytes(), kPrefill);
  ASSERT_TRUE(MakeTiffChunkDecoder()
                  ->Decode(d->array, SegmentCoords(*d, 4), ChunkRef{0, 0, raw->size(), kChunkShort},
                           *raw, got)
                  .ok());
  const size_t covered = 22 * 200;
  EXPECT_TRUE(std::all_of(got.begin() + covered, got.end(), [](std::byte b) { return b == kPrefill; }));
  EXPECT_FALSE(std::all_of(got.begin(), got.begin() + covered, [](std::byte b) { return b == kPrefill; }));
  std::filesystem::remove(path);
}

// A chunk declared taller than the strips it holds would keep rows no strip decodes: the
// array is refused (CheckArray) and Decode refuses it too, rather than leaving those rows at the
// fill value.
TEST(TiffDecoder, RowsNoStripHoldsAreRefusedNotPadded) {
  TiffSpec s = Spec(COMPRESSION_LZW, 8, 1, 0);  // 150 rows, 32 per strip
  std::string path = TempPath("rows.tif");
  ASSERT_TRUE(WriteTiff(path, s));
  testing::TiffPtr tif = OpenTiff(path, "r");
  std::optional<IfdArray> d = DescribeIfd(tif.get(), '<');
  ASSERT_TRUE(d);
  std::optional<std::vector<std::byte>> raw = RawSegment(tif.get(), *d, 0);
  ASSERT_TRUE(raw);
  ArrayDesc taller = d->array;
  taller.chunks[3] = 48;
  std::unique_ptr<ChunkDecoder> decoder = MakeTiffChunkDecoder();
  EXPECT_TRUE(decoder->CheckArray(d->array).ok()) << decoder->CheckArray(d->array).ToString();
  Status check = decoder->CheckArray(taller);
  EXPECT_EQ(check.code(), StatusCode::kInvalidArgument) << check.ToString();
  EXPECT_NE(check.message().find("the strips are 200x32"), std::string::npos) << check.ToString();
  std::vector<std::byte> got(taller.ChunkBytes(), kPrefill);
  std::vector<uint64_t> coords = {0, 0, 0, 0, 0};
  EXPECT_FALSE(decoder->Decode(taller, coords, ChunkRef{0, 0, raw->size(), 0}, *raw, got).ok());
  std::filesystem::remove(path);
}

// Garbage and truncated bytes: never a crash, never a word on stderr, and truncated compressed
// segments are refused with a message naming the chunk and what libtiff said.
TEST(TiffDecoder, GarbageAndTruncatedBytesFailCleanly) {
  std::unique_ptr<ChunkDecoder> decoder = MakeTiffChunkDecoder();
  std::mt19937 rng(7);
  for (uint16_t compression : {COMPRESSION_NONE, COMPRESSION_LZW, COMPRESSION_ADOBE_DEFLATE,
                               COMPRESSION_JPEG, COMPRESSION_PACKBITS, COMPRESSION_ZSTD}) {
    if (!TIFFIsCODECConfigured(compression)) continue;
    TiffSpec s = Spec(compression, 8, compression == COMPRESSION_JPEG ? 3 : 1, 64);
    s.ycbcr_jpeg = compression == COMPRESSION_JPEG;
    std::string path = TempPath("garbage" + std::to_string(compression) + ".tif");
    ASSERT_TRUE(WriteTiff(path, s));
    testing::TiffPtr tif = OpenTiff(path, "r");
    std::optional<IfdArray> d = DescribeIfd(tif.get(), '<');
    ASSERT_TRUE(d);
    std::optional<std::vector<std::byte>> raw = RawSegment(tif.get(), *d, 0);
    ASSERT_TRUE(raw);
    std::vector<std::byte> out(d->array.ChunkBytes());
    ::testing::internal::CaptureStderr();
    for (int trial = 0; trial < 40; ++trial) {
      std::vector<std::byte> bytes = *raw;
      if (trial % 2 == 0) {
        bytes.resize(bytes.size() * trial / 80);  // truncated, from empty to almost whole
      } else {
        for (auto& b : bytes) b = static_cast<std::byte>(rng());
      }
      std::vector<uint64_t> coords = SegmentCoords(*d, 0);
      Status st = decoder->Decode(d->array, coords, ChunkRef{}, bytes, out);
      // libjpeg pads a truncated JPEG (a warning, as libtiff does on the whole file); PackBits
      // cannot tell a truncated run. Every other codec must notice the missing bytes.
      if (trial % 2 == 0 && compression != COMPRESSION_PACKBITS && compression != COMPRESSION_JPEG) {
        EXPECT_FALSE(st.ok()) << "compression " << compression << " truncated to " << bytes.size();
      }
      if (!st.ok()) {
        EXPECT_NE(st.message().find("tiff chunk (0,0,0,0,0)"), std::string::npos) << st.ToString();
        EXPECT_GT(st.message().size(), 40u) << st.ToString();
      }
    }
    EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
    std::filesystem::remove(path);
  }
}

TEST(TiffDecoder, RefusesParamsThatDoNotDescribeTheChunk) {
  std::unique_ptr<ChunkDecoder> decoder = MakeTiffChunkDecoder();
  ArrayDesc a;
  a.shape = {1, 1, 1, 64, 64};
  a.chunks = {1, 1, 1, 64, 64};
  a.dtype = DType::Make('u', 1);
  a.encoding.native = false;
  a.encoding.decoder = "tiff";
  std::vector<std::byte> stored(10), out(a.ChunkBytes());
  std::vector<uint64_t> coords = {0, 0, 0, 0, 0};
  a.encoding.params = {{"compression", 5}, {"image_width", 64}, {"image_length", 64}};
  EXPECT_EQ(decoder->Decode(a, coords, {}, stored, out).code(), StatusCode::kInvalidArgument)
      << "bits_per_sample missing";
  a.encoding.params["bits_per_sample"] = 16;
  EXPECT_EQ(decoder->Decode(a, coords, {}, stored, out).code(), StatusCode::kInvalidArgument)
      << "16-bit samples do not fit u1";
  a.encoding.params["bits_per_sample"] = 8;
  a.encoding.params["compression"] = 12345;
  EXPECT_EQ(decoder->Decode(a, coords, {}, stored, out).code(), StatusCode::kUnsupported);
  a.encoding.params["compression"] = 5;
  a.encoding.params["samples_per_pixel"] = 3;
  EXPECT_EQ(decoder->Decode(a, coords, {}, stored, out).code(), StatusCode::kInvalidArgument)
      << "chunky RGB needs 3 planes in the chunk";
}

// Random params (as a damaged index could hold) with random bytes: errors only, never a crash, never
// a word on stderr.
TEST(TiffDecoder, RandomParamsNeverCrash) {
  std::unique_ptr<ChunkDecoder> decoder = MakeTiffChunkDecoder();
  std::mt19937 rng(11);
  auto pick = [&](std::initializer_list<nlohmann::json> v) { return *(v.begin() + rng() % v.size()); };
  ::testing::internal::CaptureStderr();
  int ok = 0;
  for (int i = 0; i < 400; ++i) {
    nlohmann::json p = {
        {"compression", pick({1, 5, 7, 8, 32773, 50000, 34925, 50001, 2, 3, 4, 34676, 999, -1})},
        {"predictor", pick({1, 2, 3, 7})},
        {"photometric", pick({0, 1, 2, 3, 5, 6, 8, 32844})},
        {"bits_per_sample", pick({1, 4, 8, 12, 16, 24, 32, 64, 0, 65})},
        {"sample_format", pick({1, 2, 3})},
        {"samples_per_pixel", pick({1, 2, 3, 4})},
        {"planar", pick({1, 2})},
        {"tiled", pick({true, false})},
        {"tile_width", pick({16, 32, 17, 0, 1u << 20})},
        {"tile_length", pick({16, 32, 0, 1u << 20})},
        {"rows_per_strip", pick({1, 7, 32, 0xFFFFFFFFu})},
        {"image_width", pick({1, 16, 31, 100000})},
        {"image_length", pick({1, 16, 33})},
        {"byte_order", pick({"<", ">", "?"})},
        {"ycbcr_subsampling", pick({nlohmann::json::array({2, 2}), nlohmann::json::array({3, 1}), nullptr})},
        {"jpeg_colormode_rgb", pick({true, false})},
        {"jpeg_tables", pick({"/9j/2wBDAAgGBgcGBQg=", "!!", nullptr})},
    };
    ArrayDesc a;
    uint64_t planes = pick({1, 3});
    a.shape = a.chunks = {1, planes, 1, pick({16, 32}).get<uint64_t>(), pick({16, 31}).get<uint64_t>()};
    a.dtype = DType::Make('u', pick({1, 2, 4}).get<uint32_t>());
    a.encoding.params = p;
    std::vector<std::byte> stored(rng() % 3000), out(a.ChunkBytes());
    for (auto& b : stored) b = static_cast<std::byte>(rng() % 4 == 0 ? rng() : 0);
    std::vector<uint64_t> coords = {0, 0, 0, rng() % 3, 0};
    Status st = decoder->Decode(a, coords, {}, stored, out);
    if (st.ok()) ++ok;
    else EXPECT_FALSE(st.message().empty());
  }
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
  EXPECT_LT(ok, 400);
}

// CheckArray is the index-time half of Decode: for params it accepts, Decode fails only because
// of the bytes (kCorrupt from the codec), never because of the params. Random arrays whose shape
// and chunks mostly agree with their params, and random bytes.
TEST(TiffDecoder, WhatCheckArrayAcceptsDecodeRefusesOnlyForItsBytes) {
  std::unique_ptr<ChunkDecoder> decoder = MakeTiffChunkDecoder();
  std::mt19937 rng(23);
  auto pick = [&](std::initializer_list<nlohmann::json> v) { return *(v.begin() + rng() % v.size()); };
  ::testing::internal::CaptureStderr();
  int accepted = 0, refused = 0;
  for (int i = 0; i < 3000; ++i) {
    const bool tiled = rng() % 2;
    const uint64_t width = pick({16, 40, 64}).get<uint64_t>(), length = pick({16, 33, 64}).get<uint64_t>();
    const uint64_t tile = pick({16, 32}).get<uint64_t>(), rps = pick({1, 7, 16, 64}).get<uint64_t>();
    const uint64_t spp = pick({1, 2, 3, 4}).get<uint64_t>(), planar = pick({1, 1, 2}).get<uint64_t>();
    nlohmann::json p = {
        {"compression", pick({1, 2, 3, 4, 5, 6, 7, 8, 32771, 32773, 32766, 32809, 32909, 32946,
                              34661, 34676, 34677, 34925, 50000, 50001, 999})},
        {"predictor", pick({1, 1, 2, 3})},
        {"photometric", pick({0, 1, 2, 3, 6, 32844, 32845})},
        {"bits_per_sample", pick({1, 4, 8, 12, 16, 24, 32, 64})},
        {"sample_format", pick({1, 2, 3})},
        {"samples_per_pixel", spp},
        {"planar", planar},
        {"tiled", tiled},
        {"tile_width", tile},
        {"tile_length", tile},
        {"rows_per_strip", rps},
        {"image_width", width},
        {"image_length", length},
        {"byte_order", pick({"<", ">"})},
        {"ycbcr_subsampling", pick({nlohmann::json::array({2, 2}), nlohmann::json::array({1, 1}), nullptr})},
        {"jpeg_colormode_rgb", pick({true, false})},
        {"ojpeg_header", pick({"", nullptr})},
    };
    const uint64_t bps = p["bits_per_sample"].get<uint64_t>();
    ArrayDesc a;
    a.shape = {1, spp, 1, length, width};
    a.chunks = {1, planar == 1 ? spp : 1, 1, tiled ? tile : std::min(rps, length), tiled ? tile : width};
    if (rng() % 10 == 0) a.chunks[3] += 1;  // sometimes a chunk that is not the strip
    const uint32_t size = bps <= 8 ? 1 : bps <= 16 ? 2 : bps <= 32 ? 4 : 8;
    a.dtype = DType::Make(p["sample_format"] == 3 && bps >= 16 ? 'f' : 'u', rng() % 8 == 0 ? 1 : size);
    a.encoding.decoder = "tiff";
    a.encoding.params = p;
    Status check = decoder->CheckArray(a);
    if (!check.ok()) {
      ++refused;
      EXPECT_FALSE(check.message().empty());
      continue;
    }
    ++accepted;
    std::vector<std::byte> stored(rng() % 2000), out(a.ChunkBytes());
    for (auto& b : stored) b = static_cast<std::byte>(rng());
    const auto grid = a.GridShape();
    std::vector<uint64_t> coords = {0, rng() % grid[1], 0, rng() % grid[3], rng() % grid[4]};
    Status st = decoder->Decode(a, coords, {}, stored, out);
    // libtiff's words for a layout it refuses whatever the bytes.
    bool layout = false;
    for (const char* words : {"cannot describe", "not supported", "not implemented", "Missing JPEG",
                              "Inappropriate", "Sorry", "No support", "requires"}) {
      layout = layout || st.message().find(words) != std::string::npos;
    }
    EXPECT_TRUE(st.ok() || (st.code() == StatusCode::kCorrupt && !layout))
        << "CheckArray accepted " << p.dump() << " chunks " << a.chunks[3] << "x" << a.chunks[4]
        << " " << a.dtype.ToV2().dump() << ", Decode says " << st.ToString();
  }
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
  EXPECT_GT(accepted, 300);
  EXPECT_GT(refused, 300);
}

// An index written before old-style JPEG was decoded has no JPEG header in its params: refused
// at index time with a reason that says what to do, and at read time alike.
TEST(TiffDecoder, RefusesOldStyleJpegWithoutItsHeader) {
  ArrayDesc a;
  a.shape = a.chunks = {1, 3, 1, 16, 16};
  a.dtype = DType::Make('u', 1);
  a.encoding.params = {{"compression", 6}, {"photometric", 6}, {"bits_per_sample", 8},
                       {"samples_per_pixel", 3}, {"image_width", 16}, {"image_length", 16}};
  std::unique_ptr<ChunkDecoder> decoder = MakeTiffChunkDecoder();
  Status check = decoder->CheckArray(a);
  EXPECT_FALSE(check.ok());
  EXPECT_NE(check.message().find("index the file again"), std::string::npos) << check.ToString();
  std::vector<std::byte> stored(100), out(a.ChunkBytes());
  std::vector<uint64_t> coords = {0, 0, 0, 0, 0};
  EXPECT_FALSE(decoder->Decode(a, coords, {}, stored, out).ok());
}


std::vector<std::byte> ReadRange(const std::string& path, uint64_t offset, uint64_t length) {
  std::ifstream in(path, std::ios::binary);
  in.seekg(static_cast<std::streamoff>(offset));
  std::vector<std::byte> out(length);
  in.read(reinterpret_cast<char*>(out.data()), static_cast<std::streamsize>(length));
  return out;
}

// Decodes every chunk the scanner lists for array "0/0" of an old-style JPEG file from its stored
// bytes alone and compares it with libtiff's RGBA decode of the whole file `oracle` (what GDAL
// serves; by default the file itself). Returns the number of chunks equal; failures are reported.
int CompareOldJpegWithRgba(const std::string& path, std::string oracle = {}) {
  if (oracle.empty()) oracle = path;
  ScannedFile scan = testing::ScanTiffFile(path);
  for (const auto& r : scan.refused) ADD_FAILURE() << "refused " << r.path << ": " << r.reason;
  const ScannedFile::Array* a = scan.FindArray("0/0");
  if (a == nullptr) {
    ADD_FAILURE() << "no array 0/0";
    return 0;
  }
  std::unique_ptr<ChunkDecoder> decoder = MakeTiffChunkDecoder();
  Status check = decoder->CheckArray(a->desc);
  EXPECT_TRUE(check.ok()) << check.ToString();
  const std::vector<uint8_t> want = testing::RgbaPlanes(oracle);
  if (want.empty()) {
    ADD_FAILURE() << "libtiff cannot decode " << oracle;
    return 0;
  }
  const ArrayDesc& d = a->desc;
  const uint64_t samples = d.shape[1], height = d.shape[3], width = d.shape[4];
  const uint64_t h = d.chunks[3], w = d.chunks[4];
  const auto grid = d.GridShape();
  EXPECT_EQ(a->chunks.size(), grid[3] * grid[4]);
  int equal = 0;
  for (const auto& [index, ref] : a->chunks) {
    std::vector<uint64_t> coords = ChunkCoords(grid, index);
    SCOPED_TRACE("chunk " + std::to_string(coords[3]) + "," + std::to_string(coords[4]));
    std::vector<std::byte> stored = ReadRange(path, ref.offset, ref.length);
    std::vector<std::byte> got(d.ChunkBytes(), kPrefill);
    Status s = decoder->Decode(d, coords, ref, stored, got);
    if (!s.ok()) {
      ADD_FAILURE() << s.ToString();
      continue;
    }
    uint64_t differ = 0;
    for (uint64_t c = 0; c < samples; ++c) {
      for (uint64_t y = 0; y < h && coords[3] * h + y < height; ++y) {
        for (uint64_t x = 0; x < w && coords[4] * w + x < width; ++x) {
          uint8_t g = static_cast<uint8_t>(got[(c * h + y) * w + x]);
          uint8_t e = want[(c * height + coords[3] * h + y) * width + coords[4] * w + x];
          differ += g != e;
        }
      }
    }
    EXPECT_EQ(differ, 0u);
    equal += differ == 0;
  }
  return equal;
}

struct OjpegCase {
  std::string name;
  testing::OjpegSpec spec;
};

class TiffDecoderOldJpeg : public ::testing::TestWithParam<OjpegCase> {};

TEST_P(TiffDecoderOldJpeg, EveryChunkEqualsLibtiffRgbaOfTheWholeFile) {
  if (!TIFFIsCODECConfigured(COMPRESSION_OJPEG)) GTEST_SKIP() << "no old-style JPEG in libtiff";
  const OjpegCase& c = GetParam();
  std::string path = TempPath("ojpeg_" + c.name + ".tif");
  ASSERT_TRUE(testing::WriteOjpegTiff(path, c.spec));
  // libtiff 4.5 decodes the strips after the first of a big-endian old-style JPEG file wrongly
  // (byte-swapping its own ojpeg_chewey sample changes its pixels from the second strip on), and
  // GDAL with it. The oracle of a big-endian file is its little-endian twin, which holds the
  // same JPEG bytes at the same offsets.
  std::string oracle = path;
  if (c.spec.big_endian) {
    testing::OjpegSpec twin = c.spec;
    twin.big_endian = false;
    oracle = TempPath("ojpeg_" + c.name + "_little_endian.tif");
    ASSERT_TRUE(testing::WriteOjpegTiff(oracle, twin));
  }
  // The hand-made file is a real image: close to libtiff's decode of the new-style JPEG it was
  // made from (they differ by the chroma upsampling and the YCbCr conversion).
  std::vector<uint8_t> ojpeg = testing::RgbaPlanes(oracle);
  ASSERT_FALSE(ojpeg.empty());
  if (!c.spec.studio_range) {
    std::string source = TempPath("ojpeg_" + c.name + "_source.tif");
    ASSERT_TRUE(testing::WriteTiff(source, testing::OjpegSource(c.spec)));
    std::vector<uint8_t> jpeg = testing::RgbaPlanes(source);
    ASSERT_EQ(jpeg.size(), ojpeg.size());
    double sum = 0;
    for (size_t i = 0; i < jpeg.size(); ++i) sum += std::abs(int{jpeg[i]} - int{ojpeg[i]});
    EXPECT_LT(sum / jpeg.size(), 4.0);
    std::filesystem::remove(source);
  }
  const uint32_t chunks = c.spec.tile ? ((c.spec.width + c.spec.tile - 1) / c.spec.tile) *
                                            ((c.spec.length + c.spec.tile - 1) / c.spec.tile)
                                      : (c.spec.length + c.spec.rows_per_strip - 1) / c.spec.rows_per_strip;
  EXPECT_EQ(CompareOldJpegWithRgba(path, oracle), static_cast<int>(
      c.spec.tables == testing::OjpegTables::kWholeStream ? 1 : chunks));
  std::filesystem::remove(path);
  if (oracle != path) std::filesystem::remove(oracle);
}

std::vector<OjpegCase> OjpegCases() {
  using testing::OjpegTables;
  std::vector<OjpegCase> v;
  testing::OjpegSpec s;
  v.push_back({"strips_tables_subsampled_22", s});
  {
    testing::OjpegSpec t = s;
    t.ycbcr_subsampling[1] = 1;
    t.rows_per_strip = 24;
    v.push_back({"strips_tables_subsampled_21", t});
    t.tables = OjpegTables::kHeaderInInterchange;
    v.push_back({"strips_header_in_interchange_21", t});  // as libtiff's ojpeg_chewey file
  }
  {
    // libtiff's codec decodes one tile column (the decoder refuses more, see below).
    testing::OjpegSpec t = s;
    t.width = 40;
    t.tile = 48;
    v.push_back({"tiles_tables", t});
    t.tables = OjpegTables::kHeaderInInterchange;
    v.push_back({"tiles_header_in_interchange", t});
  }
  {
    testing::OjpegSpec t = s;
    t.rows_per_strip = t.length;
    v.push_back({"one_strip_tables", t});
    t.tables = OjpegTables::kWholeStream;
    v.push_back({"one_strip_whole_stream_in_interchange", t});
  }
  {
    testing::OjpegSpec t = s;
    t.spp = 1;
    t.rows_per_strip = 16;
    v.push_back({"grey_strips", t});
  }
  {
    testing::OjpegSpec t = s;
    t.big_endian = true;
    v.push_back({"big_endian", t});
    t.big_endian = false;
    t.studio_range = true;
    v.push_back({"studio_range", t});
  }
  {
    testing::OjpegSpec t = s;
    t.ycbcr_subsampling[0] = 4;
    t.ycbcr_subsampling[1] = 2;
    v.push_back({"strips_tables_subsampled_42", t});
  }
  return v;
}

INSTANTIATE_TEST_SUITE_P(Layouts, TiffDecoderOldJpeg, ::testing::ValuesIn(OjpegCases()),
                         [](const auto& info) { return info.param.name; });

// libtiff's own old-style JPEG sample (tiles of 240x224 over 234x213 pixels, tables in tags).
TEST(TiffDecoderOldJpegRealdata, ZackTheCatEqualsLibtiffRgba) {
  const std::string path = REFZARR_SHARED_DIR
      "/realdata/tiff/libsdl-org+libtiff/test/images/ojpeg_zackthecat_subsamp22_single_strip.tiff";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "no realdata";
  EXPECT_EQ(CompareOldJpegWithRgba(path), 1);
}

// Layouts libtiff's codec (or GDAL's reading of it) does not decode are refused by CheckArray,
// with the reason, and by Decode alike.
TEST(TiffDecoderOldJpeg, CheckArrayRefusesLayoutsItCannotDecode) {
  std::unique_ptr<ChunkDecoder> decoder = MakeTiffChunkDecoder();
  // SOI and a frame header of 64x64 YCbCr 2x2: enough for libtiff to describe the chunk.
  const unsigned char sof[] = {0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x11, 0x08, 0x00, 0x40, 0x00, 0x40, 0x03,
                               0x01, 0x22, 0x00, 0x02, 0x11, 0x01, 0x03, 0x11, 0x01};
  const std::string header = testing::Base64(sof, sizeof sof);
  auto array = [&](nlohmann::json changes, uint64_t planes = 3) {
    ArrayDesc a;
    a.shape = {1, 3, 1, 64, 64};
    a.chunks = {1, planes, 1, 32, 64};
    a.dtype = DType::Make('u', 1);
    a.encoding.decoder = "tiff";
    a.encoding.params = {{"compression", 6}, {"photometric", 6}, {"bits_per_sample", 8},
                         {"samples_per_pixel", 3}, {"image_width", 64}, {"image_length", 64},
                         {"rows_per_strip", 32}, {"ycbcr_subsampling", {2, 2}},
                         {"ojpeg_header", header}, {"planar", 1}};
    if (changes.is_object()) a.encoding.params.update(changes);
    return a;
  };
  EXPECT_TRUE(decoder->CheckArray(array({})).ok()) << decoder->CheckArray(array({})).ToString();
  struct Case {
    nlohmann::json changes;
    uint64_t planes;
    const char* reason;
  };
  for (const Case& c : {Case{{{"photometric", 2}}, 3, "photometric 2"},
                        Case{{{"planar", 2}}, 1, "separate sample planes"},
                        Case{{{"bits_per_sample", 12}, {"sample_format", 1}}, 3, "12-bit"},
                        Case{{{"rows_per_strip", 24}}, 3, "multiples of 16"},
                        Case{{{"tiled", true}, {"tile_width", 32}, {"tile_length", 32}}, 3,
                             "2 tiles across"},
                        Case{{{"ojpeg_qtables", {"AAAA"}}}, 3, "tables"},
                        Case{{{"ojpeg_header", ""}}, 3, "neither a JPEG header nor tables"}}) {
    ArrayDesc a = array(c.changes, c.planes);
    if (c.changes.contains("rows_per_strip")) a.chunks[3] = 24;
    if (c.changes.contains("tiled")) a.chunks[3] = a.chunks[4] = 32;
    if (c.changes.contains("bits_per_sample")) a.dtype = DType::Make('u', 2);
    Status s = decoder->CheckArray(a);
    EXPECT_FALSE(s.ok()) << c.changes.dump();
    EXPECT_NE(s.message().find(c.reason), std::string::npos) << s.ToString();
    std::vector<std::byte> stored(100), out(a.ChunkBytes());
    std::vector<uint64_t> coords = {0, 0, 0, 0, 0};
    EXPECT_FALSE(decoder->Decode(a, coords, {}, stored, out).ok()) << c.changes.dump();
  }
}

TEST(TiffDecoder, DecodesConcurrentlyFromManyThreads) {
  TiffSpec s = Spec(COMPRESSION_JPEG, 8, 3, 64);
  s.ycbcr_jpeg = true;
  s.width = 512;
  s.length = 256;
  std::string path = TempPath("threads.tif");
  ASSERT_TRUE(WriteTiff(path, s));
  testing::TiffPtr tif = OpenTiff(path, "r");
  std::optional<IfdArray> d = DescribeIfd(tif.get(), '<');
  ASSERT_TRUE(d);
  std::vector<std::vector<std::byte>> raws, wants;
  for (uint32_t i = 0; i < d->segments; ++i) {
    raws.push_back(*RawSegment(tif.get(), *d, i));
    wants.emplace_back(d->array.ChunkBytes(), kPrefill);
    ASSERT_TRUE(OracleChunk(tif.get(), *d, i, wants.back()));
  }
  std::unique_ptr<ChunkDecoder> decoder = MakeTiffChunkDecoder();
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::vector<std::byte> got(d->array.ChunkBytes());
      for (int round = 0; round < 5; ++round) {
        for (uint32_t i = t % 2; i < d->segments; ++i) {
          std::fill(got.begin(), got.end(), kPrefill);
          std::vector<uint64_t> coords = SegmentCoords(*d, i);
          if (!decoder->Decode(d->array, coords, {}, raws[i], got).ok() || got != wants[i]) ++mismatches;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
  std::filesystem::remove(path);
}

// Every TIFF of the shared real-world corpus: where libtiff decodes a segment from the whole file,
// the decoder decodes it from the stored bytes alone, identically; where libtiff fails, it fails.
TEST(TiffDecoder, RealFilesMatchLibtiff) {
  std::filesystem::path root = REFZARR_SHARED_DIR "/realdata";
  std::ifstream manifest(root / "MANIFEST.tsv");
  ASSERT_TRUE(manifest) << "no realdata at " << root;
  std::unique_ptr<ChunkDecoder> decoder = MakeTiffChunkDecoder();
  std::string line;
  std::getline(manifest, line);
  int files = 0, compared = 0;
  while (std::getline(manifest, line)) {
    std::string local = line.substr(0, line.find('\t'));
    if (local.rfind("tiff/", 0) != 0) continue;
    SCOPED_TRACE(local);
    Counts c = CompareFile((root / local).string(), '<', *decoder, 48);
    compared += c.compared;
    ++files;
    std::cout << local << ": " << c.compared << " equal, " << c.libtiff_failed
              << " refused by libtiff, " << c.refused << " refused by the decoder\n";
  }
  EXPECT_GT(files, 20);
  EXPECT_GT(compared, 200);
}

// CheckArray on every array the scanner declares for `path`; returns how many passed.
int CheckEveryArray(const std::string& path, const std::string& label) {
  std::unique_ptr<ChunkDecoder> decoder = MakeTiffChunkDecoder();
  auto source = OpenLocalFile(path);
  EXPECT_TRUE(source.ok());
  RecordingSink sink;
  if (!MakeTiffScanner()->Scan(**source, ScanContext(path), sink).ok() || !sink.Finish().ok()) return 0;
  int passed = 0;
  for (const ScannedFile::Array& a : sink.result().arrays) {
    Status s = decoder->CheckArray(a.desc);
    EXPECT_TRUE(s.ok()) << label << " " << a.path << ": " << s.ToString();
    passed += s.ok();
  }
  return passed;
}

// What the indexer's gate (CheckServable) asks of every array: each array the scanner declares
// for the realdata TIFFs and the generated samples passes CheckArray, so that no array that
// serves is refused at index time.
TEST(TiffDecoder, EveryScannedArrayPassesCheckArray) {
  std::filesystem::path root = REFZARR_SHARED_DIR "/realdata";
  std::ifstream manifest(root / "MANIFEST.tsv");
  ASSERT_TRUE(manifest) << "no realdata at " << root;
  std::string line;
  std::getline(manifest, line);
  int real = 0;
  while (std::getline(manifest, line)) {
    std::string local = line.substr(0, line.find('\t'));
    if (local.rfind("tiff/", 0) == 0) real += CheckEveryArray((root / local).string(), local);
  }
  EXPECT_GT(real, 60);

  std::filesystem::path samples = TempPath("samples");
  std::filesystem::remove_all(samples);
  std::string cmd = std::string(REFZARR_SAMPLES_BIN) + " " + samples.string() + " -q";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  int generated = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(samples)) {
    const std::string ext = e.path().extension().string();
    if (ext == ".tif" || ext == ".tiff" || ext == ".svs" || ext == ".btf") {
      generated += CheckEveryArray(e.path().string(), e.path().lexically_relative(samples).string());
    }
  }
  EXPECT_GT(generated, 60);
  std::filesystem::remove_all(samples);
}

}  // namespace
}  // namespace refzarr
