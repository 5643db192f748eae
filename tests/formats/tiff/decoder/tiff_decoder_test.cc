// The TIFF ChunkDecoder against libtiff itself: for every tile and strip of synthetic and real files,
// decoding the stored bytes alone must give what TIFFReadEncodedTile/Strip gives on the whole file.
#include "formats/tiff/decoder/tiff_decoder.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "tests/formats/tiff/decoder/tiff_test_util.h"

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

TEST(TiffDecoder, RefusesOldStyleJpeg) {
  ArrayDesc a;
  a.shape = a.chunks = {1, 3, 1, 16, 16};
  a.dtype = DType::Make('u', 1);
  a.encoding.params = {{"compression", 6}, {"photometric", 6}, {"bits_per_sample", 8},
                       {"samples_per_pixel", 3}, {"image_width", 16}, {"image_length", 16}};
  std::vector<std::byte> stored(100), out(a.ChunkBytes());
  std::vector<uint64_t> coords = {0, 0, 0, 0, 0};
  Status s = MakeTiffChunkDecoder()->Decode(a, coords, {}, stored, out);
  EXPECT_EQ(s.code(), StatusCode::kUnsupported) << s.ToString();
  EXPECT_NE(s.message().find("old-style JPEG"), std::string::npos) << s.ToString();
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

}  // namespace
}  // namespace refzarr
