// Transcoding: native codecs decoded in process (encoded here by zlib, libzstd and c-blosc themselves),
// TIFF chunks through the libtiff ChunkDecoder, and decode(transcode(x)) == libtiff's pixels.
#include "store/transcode/transcode.h"

#include <blosc.h>
#include <gtest/gtest.h>
#include <zlib.h>
#include <zstd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>

#include "formats/tiff/decoder/tiff_decoder.h"
#include "store/transcode/caching_transcoder.h"
#include "tests/formats/tiff/decoder/tiff_test_util.h"

namespace refzarr {
namespace {

using Bytes = std::vector<std::byte>;
using nlohmann::json;

Bytes Pattern(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<std::byte>((i / 7) % 50 + rng() % 4);
  return b;
}

ArrayDesc Array2D(uint64_t h, uint64_t w, DType dtype) {
  ArrayDesc a;
  a.shape = {h, w};
  a.chunks = {h, w};
  a.dtype = dtype;
  return a;
}

Bytes Zlib(const Bytes& in, bool gzip) {
  z_stream z{};
  deflateInit2(&z, 6, Z_DEFLATED, gzip ? 31 : 15, 8, Z_DEFAULT_STRATEGY);
  Bytes out(deflateBound(&z, in.size()) + 32);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(in.data()));
  z.avail_in = in.size();
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = out.size();
  EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

Bytes Zstd(const Bytes& in) {
  Bytes out(ZSTD_compressBound(in.size()));
  out.resize(ZSTD_compress(out.data(), out.size(), in.data(), in.size(), 3));
  return out;
}

Bytes BloscOf(const Bytes& in, size_t typesize, int shuffle, const char* cname) {
  Bytes out(in.size() + BLOSC_MAX_OVERHEAD);
  int n = blosc_compress_ctx(3, shuffle, typesize, in.size(), in.data(), out.data(), out.size(), cname, 0, 1);
  out.resize(n);
  return out;
}

Bytes Shuffle(const Bytes& in, size_t e) {
  Bytes out(in.size());
  size_t count = in.size() / e;
  for (size_t i = 0; i < count; ++i)
    for (size_t b = 0; b < e; ++b) out[b * count + i] = in[i * e + b];
  return out;
}

Bytes Decode(const ArrayDesc& a, const Bytes& stored, uint32_t flags = 0, Status* status = nullptr) {
  Bytes out(a.ChunkBytes());
  std::vector<uint64_t> coords(a.shape.size(), 0);
  Status s = DecodeChunk(a, coords, ChunkRef{0, 0, stored.size(), flags}, stored, {}, out);
  if (status) *status = s;
  EXPECT_TRUE(status || s.ok()) << s.ToString();
  return out;
}

TEST(DecodeNative, StandardCodecsDecodeToTheChunk) {
  ArrayDesc a = Array2D(64, 50, DType::Make('u', 2));
  Bytes raw = Pattern(a.ChunkBytes(), 1);
  struct Case {
    json filters, compressor;
    Bytes stored;
  };
  std::vector<Case> cases = {
      {nullptr, nullptr, raw},
      {nullptr, {{"id", "zlib"}, {"level", 6}}, Zlib(raw, false)},
      {nullptr, {{"id", "gzip"}, {"level", 6}}, Zlib(raw, true)},
      {nullptr, {{"id", "zstd"}, {"level", 3}}, Zstd(raw)},
      {nullptr, {{"id", "blosc"}, {"cname", "zstd"}, {"clevel", 3}, {"shuffle", 2}}, BloscOf(raw, 2, 2, "zstd")},
      {nullptr, {{"id", "blosc"}, {"cname", "lz4"}, {"clevel", 3}, {"shuffle", 0}}, BloscOf(raw, 2, 0, "lz4")},
      {json::array({{{"id", "shuffle"}, {"elementsize", 2}}}), {{"id", "zlib"}}, Zlib(Shuffle(raw, 2), false)},
      {json::array({{{"id", "shuffle"}, {"elementsize", 2}}}), nullptr, Shuffle(raw, 2)},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.compressor.dump() + " " + c.filters.dump());
    a.encoding.filters = c.filters;
    a.encoding.compressor = c.compressor;
    EXPECT_TRUE(Decode(a, c.stored) == raw);
  }
}

TEST(DecodeNative, FilterMaskSkipsStagesThatWereNotApplied) {
  ArrayDesc a = Array2D(20, 10, DType::Make('i', 4));
  Bytes raw = Pattern(a.ChunkBytes(), 2);
  a.encoding.filters = json::array({{{"id", "shuffle"}, {"elementsize", 4}}});
  a.encoding.compressor = {{"id", "zlib"}};
  EXPECT_TRUE(Decode(a, Zlib(raw, false), /*flags=*/0b01) == raw) << "shuffle skipped";
  EXPECT_TRUE(Decode(a, Shuffle(raw, 4), /*flags=*/0b10) == raw) << "deflate skipped";
  EXPECT_TRUE(Decode(a, raw, /*flags=*/0b11) == raw) << "both skipped";
}

TEST(DecodeNative, StoredOrderIsTransposedToCOrder) {
  // An interleaved RGB tile (y, x, s) of a (t,c,z,y,x) array with chunk (1,3,1,4,5).
  ArrayDesc a;
  a.shape = {1, 3, 1, 8, 10};
  a.chunks = {1, 3, 1, 4, 5};
  a.dtype = DType::Make('u', 2, '>');
  a.encoding.stored_order = {0, 2, 3, 4, 1};
  Bytes interleaved(a.ChunkBytes());
  Bytes want(a.ChunkBytes());
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 5; ++x)
      for (int s = 0; s < 3; ++s) {
        uint16_t v = static_cast<uint16_t>(1000 * s + 10 * y + x);
        size_t in = ((y * 5 + x) * 3 + s) * 2, out = ((s * 4 + y) * 5 + x) * 2;
        interleaved[in] = want[out] = static_cast<std::byte>(v >> 8);
        interleaved[in + 1] = want[out + 1] = static_cast<std::byte>(v & 0xFF);
      }
  a.encoding.compressor = {{"id", "zlib"}};
  EXPECT_TRUE(Decode(a, Zlib(interleaved, false)) == want);
}

TEST(DecodeNative, ShortChunkKeepsTheFillValueBeyondItsBytes) {
  ArrayDesc a = Array2D(10, 4, DType::Make('u', 2));
  a.shape[0] = 3;  // The last strip of an image: 3 rows of a 10-row strip lie inside it.
  a.fill_value = 513;  // 0x0201
  Bytes rows = Pattern(3 * 4 * 2, 3);
  Status s;
  Decode(a, rows, 0, &s);
  EXPECT_EQ(s.code(), StatusCode::kCorrupt) << "too short without the kChunkShort flag";
  Bytes got = Decode(a, rows, kChunkShort);
  EXPECT_TRUE(std::equal(rows.begin(), rows.end(), got.begin()));
  for (size_t i = rows.size(); i < got.size(); i += 2) {
    ASSERT_EQ(got[i], std::byte{1});
    ASSERT_EQ(got[i + 1], std::byte{2});
  }
}

// A short chunk may miss only what lies outside the array: fewer rows than the image has left
// would be pixels made up.
TEST(DecodeNative, AShortChunkMustCoverItsPartInsideTheArray) {
  ArrayDesc a = Array2D(10, 4, DType::Make('u', 2));
  a.shape[0] = 5;  // 5 rows of the strip lie inside the image
  Bytes three_rows = Pattern(3 * 4 * 2, 3);
  Status s;
  Decode(a, three_rows, kChunkShort, &s);
  EXPECT_EQ(s.code(), StatusCode::kCorrupt) << s.ToString();
  EXPECT_NE(s.message().find("its part inside the array needs 40"), std::string::npos) << s.message();
  Bytes five_rows = Pattern(5 * 4 * 2, 3);
  Decode(a, five_rows, kChunkShort, &s);
  EXPECT_TRUE(s.ok()) << s.ToString();
  // Interleaved samples: the stored order counts. A (1,3,1,4,2) chunk stored (y, x, s), 2 rows in.
  ArrayDesc rgb;
  rgb.shape = {1, 3, 1, 2, 2};
  rgb.chunks = {1, 3, 1, 4, 2};
  rgb.dtype = DType::Make('u', 1);
  rgb.encoding.stored_order = {0, 2, 3, 4, 1};
  const std::vector<uint64_t> at = {0, 0, 0, 0, 0};
  EXPECT_EQ(ShortChunkBytes(rgb, at), 2u * 2 * 3);
}

TEST(DecodeNative, RefusesWhatItCannotDecode) {
  ArrayDesc a = Array2D(8, 8, DType::Make('u', 1));
  Bytes raw = Pattern(64, 4);
  Status s;
  a.encoding.compressor = {{"id", "imagecodecs_jpeg2k"}};
  Decode(a, raw, 0, &s);
  EXPECT_EQ(s.code(), StatusCode::kUnsupported);
  EXPECT_NE(s.message().find("imagecodecs_jpeg2k"), std::string::npos);
  a.encoding.compressor = {{"id", "zlib"}};
  Decode(a, raw, 0, &s);
  EXPECT_EQ(s.code(), StatusCode::kCorrupt);
  EXPECT_NE(s.message().find("zlib"), std::string::npos) << s.ToString();
  Bytes zipped = Zlib(raw, false);
  zipped.resize(zipped.size() / 2);
  Decode(a, zipped, 0, &s);
  EXPECT_EQ(s.code(), StatusCode::kCorrupt) << "truncated";
  a.encoding.compressor = {{"id", "blosc"}};
  Decode(a, raw, 0, &s);
  EXPECT_EQ(s.code(), StatusCode::kCorrupt);
  Bytes big = Pattern(100, 5);
  a.encoding.compressor = {{"id", "zstd"}};
  Decode(a, Zstd(big), 0, &s);
  EXPECT_EQ(s.code(), StatusCode::kCorrupt) << "more bytes than the chunk";
  a.encoding.compressor = nullptr;
  a.encoding.native = false;
  a.encoding.decoder = "hdf5";
  Decode(a, raw, 0, &s);
  EXPECT_EQ(s.code(), StatusCode::kUnsupported) << "no hdf5 decoder given";
}

// A TIFF tile whose codec numcodecs has but this build does not decode in process: the array stays
// "native", and the TIFF decoder (libtiff) does the work. Checked against libtiff's own pixels.
TEST(DecodeChunk, NativeCodecUnknownInProcessFallsBackToTheFormatDecoder) {
  testing::TiffSpec spec;
  spec.compression = COMPRESSION_LZW;
  spec.tile = 32;
  std::string path = (std::filesystem::path(::testing::TempDir()) / "refzarr_fallback.tif").string();
  ASSERT_TRUE(testing::WriteTiff(path, spec));
  testing::TiffPtr tif = testing::OpenTiff(path, "r");
  std::optional<testing::IfdArray> d = testing::DescribeIfd(tif.get(), '<');
  ASSERT_TRUE(d);
  d->array.encoding.native = true;
  d->array.encoding.compressor = {{"id", "imagecodecs_lzw"}};
  std::vector<std::byte> want(d->array.ChunkBytes(), std::byte{0});
  ASSERT_TRUE(testing::OracleChunk(tif.get(), *d, 1, want));
  std::vector<std::byte> raw = *testing::RawSegment(tif.get(), *d, 1);
  std::vector<uint64_t> coords = testing::SegmentCoords(*d, 1);
  std::vector<std::byte> out(d->array.ChunkBytes());
  EXPECT_EQ(DecodeChunk(d->array, coords, {}, raw, {}, out).code(), StatusCode::kUnsupported)
      << "without the TIFF decoder";
  std::unique_ptr<ChunkDecoder> tiff = MakeTiffChunkDecoder();
  const ChunkDecoder* decoders[] = {tiff.get()};
  Status s = DecodeChunk(d->array, coords, {}, raw, decoders, out);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(out == want);
  std::filesystem::remove(path);
}

TEST(FillChunk, WritesTheFillValueInTheDtypeByteOrder) {
  auto fill = [](DType d, json v) {
    ArrayDesc a = Array2D(1, 2, d);
    a.fill_value = v;
    Bytes out(a.ChunkBytes(), std::byte{0xEE});
    Status s = FillChunk(a, out);
    EXPECT_TRUE(s.ok()) << s.ToString();
    std::vector<int> ints;
    for (std::byte b : out) ints.push_back(static_cast<int>(b));
    return ints;
  };
  EXPECT_EQ(fill(DType::Make('i', 2, '>'), -2), (std::vector<int>{0xFF, 0xFE, 0xFF, 0xFE}));
  EXPECT_EQ(fill(DType::Make('u', 4, '<'), 258), (std::vector<int>{2, 1, 0, 0, 2, 1, 0, 0}));
  EXPECT_EQ(fill(DType::Make('f', 2, '<'), 1.5), (std::vector<int>{0x00, 0x3E, 0x00, 0x3E}));
  EXPECT_EQ(fill(DType::Make('f', 4, '>'), -2.0), (std::vector<int>{0xC0, 0, 0, 0, 0xC0, 0, 0, 0}));
  std::vector<int> nan = fill(DType::Make('f', 8, '<'), "NaN");
  double d;
  std::memcpy(&d, std::vector<uint8_t>(nan.begin(), nan.begin() + 8).data(), 8);
  EXPECT_TRUE(std::isnan(d));
  EXPECT_EQ(fill(DType::Make('u', 1), nullptr), (std::vector<int>{0, 0}));
  EXPECT_EQ(fill(DType::Make('b', 1), true), (std::vector<int>{1, 1}));
  EXPECT_EQ(fill(DType::Make('S', 2), "AQI="), (std::vector<int>{1, 2, 1, 2}));
  ArrayDesc bad = Array2D(1, 1, DType::Make('u', 1));
  bad.fill_value = "Infinity";
  Bytes out(1);
  EXPECT_EQ(FillChunk(bad, out).code(), StatusCode::kInvalidArgument);
}

TEST(Transcode, MetadataNamesExactlyTheServedCodec) {
  EXPECT_EQ(TranscodeCodecV2(),
            json::parse(R"({"id":"blosc","cname":"lz4","clevel":5,"shuffle":1,"blocksize":0})"));
  ArrayDesc a = Array2D(4, 4, DType::Make('u', 2, '>'));
  json v3 = TranscodeCodecsV3(a);
  EXPECT_EQ(v3[0]["configuration"]["endian"], "big");
  EXPECT_EQ(v3[1]["name"], "blosc");
  EXPECT_EQ(v3[1]["configuration"]["typesize"], 2);
  EXPECT_EQ(v3[1]["configuration"]["shuffle"], "shuffle");
  // A zlib-only array is re-framed in v3: gzip at the stored stream's level.
  a.encoding.compressor = {{"id", "zlib"}, {"level", 3}};
  EXPECT_EQ(TranscodeCodecsV3(a), json::parse(R"([{"name":"bytes","configuration":{"endian":"big"}},
                                                  {"name":"gzip","configuration":{"level":3}}])"));
  EXPECT_EQ(TranscodeCodecsV3(Array2D(4, 4, DType::Make('u', 1)))[0], json({{"name", "bytes"}}));
  // The served bytes carry the same settings in their blosc header.
  Bytes chunk = Pattern(4000, 6);
  Result<std::string> enc = EncodeBlosc(chunk, 4);
  ASSERT_TRUE(enc.ok());
  size_t typesize = 0;
  int flags = 0;
  blosc_cbuffer_metainfo(enc->data(), &typesize, &flags);
  EXPECT_EQ(typesize, 4u);
  EXPECT_TRUE(flags & BLOSC_DOSHUFFLE);
  EXPECT_STREQ(blosc_cbuffer_complib(enc->data()), "LZ4");
}

TEST(Transcode, NeedsTranscodeOnlyWhatStandardClientsCannotRead) {
  ArrayDesc a = Array2D(4, 4, DType::Make('u', 1));
  a.encoding.compressor = {{"id", "zlib"}};
  EXPECT_FALSE(NeedsTranscode(a, CodecPolicy::kCompat, false));
  EXPECT_TRUE(NeedsTranscode(a, CodecPolicy::kCompat, true)) << "a flagged chunk transcodes all";
  EXPECT_FALSE(NeedsTranscode(a, CodecPolicy::kPassthrough, true));
  a.encoding.stored_order = {1, 0};
  EXPECT_TRUE(NeedsTranscode(a, CodecPolicy::kCompat, false));
  a.encoding.stored_order.clear();
  // Numcodecs shuffle and lzma: standard, but zarrita.js 0.5 reads neither, so v2 compat
  // transcodes them too.
  a.encoding.filters = json::array({json::object({{"id", "shuffle"}, {"elementsize", 1}})});
  EXPECT_TRUE(NeedsTranscode(a, CodecPolicy::kCompat, false, 2));
  a.encoding.filters = nullptr;
  a.encoding.compressor = {{"id", "lzma"}, {"format", 1}};
  EXPECT_TRUE(NeedsTranscode(a, CodecPolicy::kCompat, false, 2));
  for (const char* id : {"zlib", "gzip", "zstd", "blosc"}) {
    a.encoding.compressor = {{"id", id}};
    EXPECT_FALSE(NeedsTranscode(a, CodecPolicy::kCompat, false, 2)) << id;
  }
  a.encoding.native = false;
  a.encoding.decoder = "tiff";
  EXPECT_TRUE(NeedsTranscode(a, CodecPolicy::kCompat, false));
  EXPECT_FALSE(NeedsTranscode(a, CodecPolicy::kPassthrough, false));
}

// Zarr v3 clients know only the core codecs by their v3 names: numcodecs zlib, shuffle and lzma
// are transcoded in a v3 compat view (zlib alone re-framed as gzip), gzip, zstd and blosc are not.
// Interleaved samples are served planar in v3 too: no "transpose".
TEST(Transcode, NeedsTranscodeInZarrV3WhatIsNotACoreCodec) {
  struct Case {
    json filters, compressor;
    bool v3;
    CompatCodec codec;
  };
  const json shuffle = json::array({json::object({{"id", "shuffle"}, {"elementsize", 2}})});
  const std::vector<Case> cases = {
      {nullptr, nullptr, false, CompatCodec::kBlosc},
      {nullptr, {{"id", "gzip"}, {"level", 5}}, false, CompatCodec::kBlosc},
      {nullptr, {{"id", "zstd"}, {"level", 1}}, false, CompatCodec::kBlosc},
      {nullptr, {{"id", "blosc"}, {"cname", "lz4"}}, false, CompatCodec::kBlosc},
      {nullptr, {{"id", "zlib"}, {"level", 6}}, true, CompatCodec::kGzip},
      {json::array(), {{"id", "zlib"}, {"level", 6}}, true, CompatCodec::kGzip},
      {shuffle, {{"id", "zlib"}, {"level", 6}}, true, CompatCodec::kBlosc},
      {shuffle, nullptr, true, CompatCodec::kBlosc},
      {shuffle, {{"id", "gzip"}}, true, CompatCodec::kBlosc},
      {nullptr, {{"id", "lzma"}, {"format", 1}}, true, CompatCodec::kBlosc},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.filters.dump() + " " + c.compressor.dump());
    ArrayDesc a = Array2D(4, 4, DType::Make('u', 2));
    a.encoding.filters = c.filters;
    a.encoding.compressor = c.compressor;
    // v2 passes zlib, gzip, zstd and blosc alone (zarrita.js 0.5 has no shuffle, no lzma).
    EXPECT_EQ(NeedsTranscode(a, CodecPolicy::kCompat, false, 2),
              c.filters.is_array() && !c.filters.empty() ? true
              : c.compressor.is_object() && c.compressor.value("id", "") == "lzma");
    EXPECT_EQ(NeedsTranscode(a, CodecPolicy::kCompat, false, 3), c.v3);
    EXPECT_FALSE(NeedsTranscode(a, CodecPolicy::kPassthrough, false, 3));
    EXPECT_EQ(CompatCodecOf(a, 3), c.codec);
    EXPECT_EQ(CompatCodecOf(a, 2), CompatCodec::kBlosc) << "v2 clients all have blosc";
    for (const json& codec : TranscodeCodecsV3(a)) {
      EXPECT_TRUE(IsCompatCodecV3(codec["name"].get<std::string>())) << codec.dump();
    }
  }
  ArrayDesc rgb = Array2D(4, 4, DType::Make('u', 1));
  rgb.encoding.compressor = {{"id", "zlib"}};
  rgb.encoding.stored_order = {1, 0};
  EXPECT_TRUE(NeedsTranscode(rgb, CodecPolicy::kCompat, false, 3)) << "served planar";
  EXPECT_EQ(CompatCodecOf(rgb, 3), CompatCodec::kBlosc);
  EXPECT_FALSE(NeedsTranscode(rgb, CodecPolicy::kPassthrough, false, 3));
  ArrayDesc strings = Array2D(4, 4, DType::Make('O', 8));
  strings.encoding.filters = json::array({json::object({{"id", "vlen-utf8"}})});
  EXPECT_FALSE(NeedsTranscode(strings, CodecPolicy::kCompat, false, 3)) << "vlen-utf8 as stored";
  EXPECT_FALSE(IsCompatCodecV3("transpose"));
  EXPECT_FALSE(IsCompatCodecV3("numcodecs.zlib"));
}

// The gzip member holds the stored deflate stream byte for byte; zlib's own gzip decoder (an
// independent path: header, CRC-32 and ISIZE checks) gives back what the zlib stream inflates to.
TEST(ReframeZlibAsGzip, KeepsTheDeflateStreamAndGunzipsToTheInflatedBytes) {
  for (size_t n : {size_t{1}, size_t{1000}, size_t{65536}, size_t{300001}}) {
    SCOPED_TRACE(n);
    Bytes raw = Pattern(n, static_cast<uint32_t>(n));
    Bytes stored = Zlib(raw, false);
    Result<std::string> gz = ReframeZlibAsGzip(stored, raw.size());
    ASSERT_TRUE(gz.ok()) << gz.status().ToString();
    ASSERT_EQ(gz->size(), stored.size() - 6 + 18);
    EXPECT_EQ(static_cast<uint8_t>((*gz)[0]), 0x1f);
    EXPECT_EQ(static_cast<uint8_t>((*gz)[1]), 0x8b);
    EXPECT_EQ(std::memcmp(gz->data() + 10, stored.data() + 2, stored.size() - 6), 0)
        << "the compressed payload is the stored deflate stream";
    Bytes back(raw.size() + 16);
    z_stream z{};
    ASSERT_EQ(inflateInit2(&z, 16 + 15), Z_OK) << "gzip only, not auto-detect";
    z.next_in = reinterpret_cast<Bytef*>(gz->data());
    z.avail_in = static_cast<uInt>(gz->size());
    z.next_out = reinterpret_cast<Bytef*>(back.data());
    z.avail_out = static_cast<uInt>(back.size());
    EXPECT_EQ(inflate(&z, Z_FINISH), Z_STREAM_END) << (z.msg ? z.msg : "");
    EXPECT_EQ(z.total_in, gz->size()) << "nothing after the member";
    back.resize(z.total_out);
    inflateEnd(&z);
    EXPECT_TRUE(back == raw);
  }
}

TEST(ReframeZlibAsGzip, RefusesWhatIsNotExactlyTheChunk) {
  Bytes raw = Pattern(5000, 9);
  Bytes stored = Zlib(raw, false);
  EXPECT_EQ(ReframeZlibAsGzip(stored, raw.size() + 1).status().code(), StatusCode::kCorrupt)
      << "short";
  EXPECT_EQ(ReframeZlibAsGzip(stored, raw.size() - 1).status().code(), StatusCode::kCorrupt)
      << "long";
  Bytes cut(stored.begin(), stored.begin() + stored.size() / 2);
  Status s = ReframeZlibAsGzip(cut, raw.size()).status();
  EXPECT_EQ(s.code(), StatusCode::kCorrupt);
  EXPECT_NE(s.message().find("truncated"), std::string::npos) << s.ToString();
  Bytes bad_check = stored;
  bad_check.back() ^= std::byte{1};
  s = ReframeZlibAsGzip(bad_check, raw.size()).status();
  EXPECT_EQ(s.code(), StatusCode::kCorrupt) << "Adler-32 mismatch";
  EXPECT_EQ(ReframeZlibAsGzip(Zlib(raw, true), raw.size()).status().code(), StatusCode::kCorrupt)
      << "a gzip stream is not a zlib stream";
  Bytes dict = stored;
  dict[1] = static_cast<std::byte>(static_cast<uint8_t>(dict[1]) | 0x20);
  dict[1] = static_cast<std::byte>(
      static_cast<uint8_t>(dict[1]) -
      (((static_cast<uint8_t>(dict[0]) << 8) | static_cast<uint8_t>(dict[1])) % 31));
  EXPECT_EQ(ReframeZlibAsGzip(dict, raw.size()).status().code(), StatusCode::kCorrupt);
  // Bytes after the zlib stream (TIFF strips padded by their writer) are not served.
  Bytes padded = stored;
  padded.insert(padded.end(), 7, std::byte{0xAB});
  Result<std::string> gz = ReframeZlibAsGzip(padded, raw.size());
  ASSERT_TRUE(gz.ok()) << gz.status().ToString();
  EXPECT_EQ(gz->size(), stored.size() + 12);
}

// What a v3 compat view serves for a zlib-only array: re-framed gzip for chunks like the rest, and
// for a short strip or a chunk whose deflate stage was skipped, the decoded full chunk as gzip.
TEST(Transcode, ZarrV3ServesZlibArraysAsGzipChunks) {
  ArrayDesc a = Array2D(10, 6, DType::Make('u', 2));
  a.fill_value = 7;
  a.encoding.compressor = {{"id", "zlib"}, {"level", 6}};
  auto gunzip = [](const std::string& gz, size_t n) {
    Bytes out(n + 1);
    z_stream z{};
    inflateInit2(&z, 16 + 15);
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gz.data()));
    z.avail_in = static_cast<uInt>(gz.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    EXPECT_EQ(inflate(&z, Z_FINISH), Z_STREAM_END);
    out.resize(z.total_out);
    inflateEnd(&z);
    return out;
  };
  Bytes raw = Pattern(a.ChunkBytes(), 11);
  Bytes stored = Zlib(raw, false);
  std::vector<uint64_t> coords = {0, 0};
  Result<std::string> v3 =
      TranscodeChunk(a, coords, ChunkRef{0, 0, stored.size(), 0}, stored, {}, 3);
  ASSERT_TRUE(v3.ok()) << v3.status().ToString();
  EXPECT_EQ(std::memcmp(v3->data() + 10, stored.data() + 2, stored.size() - 6), 0) << "re-framed";
  EXPECT_TRUE(gunzip(*v3, raw.size()) == raw);
  Result<std::string> v2 =
      TranscodeChunk(a, coords, ChunkRef{0, 0, stored.size(), 0}, stored, {}, 2);
  ASSERT_TRUE(v2.ok());
  Bytes back(raw.size());
  EXPECT_TRUE(DecodeBlosc(std::as_bytes(std::span(v2->data(), v2->size())), back).ok())
      << "v2: blosc";
  // A short last strip of 3 rows (3 rows of the image left): the rest is the fill value, the
  // whole chunk gzip.
  Bytes rows(raw.begin(), raw.begin() + 3 * 6 * 2);
  Bytes short_stored = Zlib(rows, false);
  ArrayDesc edge = a;
  edge.shape[0] = 3;
  Result<std::string> s = TranscodeChunk(
      edge, coords, ChunkRef{0, 0, short_stored.size(), kChunkShort}, short_stored, {}, 3);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  Bytes got = gunzip(*s, raw.size());
  ASSERT_EQ(got.size(), raw.size());
  EXPECT_TRUE(std::equal(rows.begin(), rows.end(), got.begin()));
  EXPECT_EQ(got[rows.size()], std::byte{7});
  // HDF5 filter mask bit 0: the deflate stage was not applied, the stored bytes are the chunk.
  Result<std::string> m = TranscodeChunk(a, coords, ChunkRef{0, 0, raw.size(), 1}, raw, {}, 3);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_TRUE(gunzip(*m, raw.size()) == raw);
  // Through the cache of a v3 view.
  CachingTranscoder cached({}, 1 << 20, 3);
  auto reader = [&]() -> Result<std::string> {
    return std::string(reinterpret_cast<const char*>(stored.data()), stored.size());
  };
  auto value = cached.Get(1, a, coords, ChunkRef{0, 0, stored.size(), 0}, reader);
  ASSERT_TRUE(value.ok());
  EXPECT_EQ(**value, *v3);
}

// Index-time checks agree with what the views will do: chunks above blosc's limit are refused
// where a compat view would blosc them, and not where it serves them as stored or re-framed.
TEST(CheckServable, RefusesOnlyChunksABloscViewCouldNotHold) {
  ArrayDesc a;
  a.shape = a.chunks = {40000, 40000};
  a.dtype = DType::Make('u', 2);  // 3.2 GB chunks
  EXPECT_TRUE(CheckServable(a, {}).ok()) << "uncompressed: served as stored in both formats";
  a.encoding.compressor = {{"id", "zlib"}};
  EXPECT_TRUE(CheckServable(a, {}).ok()) << "v2 as stored, v3 re-framed: no blosc";
  a.encoding.filters = json::array({json::object({{"id", "shuffle"}, {"elementsize", 2}})});
  Status s = CheckServable(a, {});
  EXPECT_EQ(s.code(), StatusCode::kUnsupported) << "both formats would blosc shuffle+zlib";
  EXPECT_NE(s.message().find("too large to transcode"), std::string::npos) << s.ToString();
  a.encoding.filters = nullptr;
  a.encoding.stored_order = {1, 0};
  EXPECT_EQ(CheckServable(a, {}).code(), StatusCode::kUnsupported) << "planar in both formats";
  ArrayDesc small = Array2D(8, 8, DType::Make('u', 1));
  small.encoding.compressor = {{"id", "imagecodecs_jpeg2k"}};
  small.encoding.decoder = "tiff";
  EXPECT_EQ(CheckServable(small, {}).code(), StatusCode::kUnsupported) << "no decoder given";
}

TEST(Transcode, BloscRoundTripsEveryDtypeSize) {
  for (uint32_t size : {1u, 2u, 4u, 8u, 16u, 300u}) {
    Bytes chunk = Pattern(size * 1000, size);
    Result<std::string> enc = EncodeBlosc(chunk, size);
    ASSERT_TRUE(enc.ok());
    Bytes back(chunk.size());
    ASSERT_TRUE(DecodeBlosc(std::as_bytes(std::span(enc->data(), enc->size())), back).ok());
    EXPECT_TRUE(back == chunk) << size;
    Bytes wrong(chunk.size() + 1);
    EXPECT_EQ(DecodeBlosc(std::as_bytes(std::span(enc->data(), enc->size())), wrong).code(),
              StatusCode::kCorrupt);
  }
}

// decode(transcode(stored)) == libtiff's pixels, for every segment of TIFFs whose codecs standard
// clients cannot read, and of a native deflate RGB one whose interleaved samples must be transposed.
TEST(Transcode, TiffChunksRoundTripToLibtiffPixels) {
  std::unique_ptr<ChunkDecoder> tiff = MakeTiffChunkDecoder();
  const ChunkDecoder* decoders[] = {tiff.get()};
  std::vector<testing::TiffSpec> specs;
  testing::TiffSpec s;
  s.compression = COMPRESSION_LZW;
  s.bps = 16;
  s.tile = 64;
  s.predictor = 2;
  specs.push_back(s);
  s = {};
  s.compression = COMPRESSION_JPEG;
  s.spp = 3;
  s.ycbcr_jpeg = true;
  s.tile = 64;
  specs.push_back(s);
  s = {};
  s.compression = COMPRESSION_ADOBE_DEFLATE;
  s.bps = 32;
  s.sample_format = SAMPLEFORMAT_IEEEFP;
  s.predictor = 3;
  s.big_endian = true;
  specs.push_back(s);  // strips, short last one
  s = {};
  s.compression = COMPRESSION_PACKBITS;
  s.spp = 3;
  s.photometric = PHOTOMETRIC_RGB;
  s.planar = PLANARCONFIG_SEPARATE;
  specs.push_back(s);
  s = {};
  s.compression = COMPRESSION_ADOBE_DEFLATE;  // native zlib, but interleaved: stored_order
  s.spp = 3;
  s.photometric = PHOTOMETRIC_RGB;
  s.tile = 32;
  specs.push_back(s);
  const size_t kNative = specs.size() - 1;
  int compared = 0;
  for (size_t k = 0; k < specs.size(); ++k) {
    std::string path = (std::filesystem::path(::testing::TempDir()) /
                        ("refzarr_transcode_" + std::to_string(k) + ".tif")).string();
    ASSERT_TRUE(testing::WriteTiff(path, specs[k]));
    testing::TiffPtr tif = testing::OpenTiff(path, "r");
    std::optional<testing::IfdArray> d = testing::DescribeIfd(tif.get(), k == 2 ? '>' : '<');
    ASSERT_TRUE(d);
    d->array.fill_value = 0;
    if (k == kNative) {
      d->array.encoding = ChunkEncoding{};
      d->array.encoding.compressor = {{"id", "zlib"}};
      d->array.encoding.stored_order = {0, 2, 3, 4, 1};
    }
    CachingTranscoder cached({tiff.get()}, 64 << 20);
    for (uint32_t i = 0; i < d->segments; ++i) {
      std::vector<std::byte> want(d->array.ChunkBytes(), std::byte{0});
      ASSERT_TRUE(testing::OracleChunk(tif.get(), *d, i, want));
      std::vector<std::byte> raw = *testing::RawSegment(tif.get(), *d, i);
      std::vector<uint64_t> coords = testing::SegmentCoords(*d, i);
      ChunkRef ref{0, 0, raw.size(), 0};
      Result<std::string> served = TranscodeChunk(d->array, coords, ref, raw, decoders);
      ASSERT_TRUE(served.ok()) << served.status().ToString();
      std::vector<std::byte> back(d->array.ChunkBytes());
      ASSERT_TRUE(DecodeBlosc(std::as_bytes(std::span(served->data(), served->size())), back).ok());
      ASSERT_TRUE(back == want) << path << " segment " << i;
      // Through the cache: the same bytes, and the second read never touches the stored bytes.
      int reads = 0;
      auto reader = [&]() -> Result<std::string> {
        ++reads;
        return std::string(reinterpret_cast<const char*>(raw.data()), raw.size());
      };
      for (int round = 0; round < 2; ++round) {
        auto v = cached.Get(k, d->array, coords, ref, reader);
        ASSERT_TRUE(v.ok()) << v.status().ToString();
        EXPECT_EQ(**v, *served);
      }
      EXPECT_EQ(reads, 1);
      ++compared;
    }
    std::filesystem::remove(path);
  }
  EXPECT_GT(compared, 30);
}

}  // namespace
}  // namespace refzarr
