// Transcoding throughput: decoded MB/s per core for TIFF tiles (LZW, JPEG, deflate + predictor),
// the blosc re-encoding, whole transcodes, and the cost of a cache hit.
//
//   refzarr-bench-transcode [--benchmark_filter=...]
//
// bytes_per_second is decoded (pixel) bytes. Tiles are 256x256, written by libtiff from smooth
// pixels with a little noise (16-bit tiles hold 12-bit data, like a microscope camera's).
#include <benchmark/benchmark.h>

#include <filesystem>
#include <map>

#include "formats/tiff/decoder/tiff_decoder.h"
#include "store/transcode/caching_transcoder.h"
#include "store/transcode/transcode.h"
#include "tests/formats/tiff/decoder/tiff_test_util.h"

namespace refzarr {
namespace {

struct Tile {
  ArrayDesc array;
  std::vector<uint64_t> coords;
  std::vector<std::byte> stored;
};

testing::TiffSpec TileSpec(const std::string& kind) {
  testing::TiffSpec s;
  s.width = s.length = 512;
  s.tile = 256;
  s.noise = 0.003;  // 16-bit: 12-bit data (range 1/16) with +-12 counts of noise; 8-bit: +-1 level
  if (kind != "jpeg_ycbcr_rgb") s.range = 1.0 / 16;
  if (kind == "lzw_u16") {
    s.compression = COMPRESSION_LZW;
    s.bps = 16;
  } else if (kind == "lzw_pred2_u16") {
    s.compression = COMPRESSION_LZW;
    s.bps = 16;
    s.predictor = 2;
  } else if (kind == "jpeg_ycbcr_rgb") {
    s.compression = COMPRESSION_JPEG;
    s.spp = 3;
    s.ycbcr_jpeg = true;
  } else if (kind == "tiny_none_u8") {  // 16x16 uncompressed: the fixed cost of one decode
    s.width = s.length = 16;
    s.tile = 16;
  } else if (kind == "deflate_pred2_u16") {
    s.compression = COMPRESSION_ADOBE_DEFLATE;
    s.bps = 16;
    s.predictor = 2;
  }
  return s;
}

// One stored tile of each kind, written once by libtiff.
const Tile& GetTile(const std::string& kind) {
  static std::map<std::string, Tile> tiles;
  auto it = tiles.find(kind);
  if (it != tiles.end()) return it->second;
  std::string path = (std::filesystem::temp_directory_path() / ("refzarr_bench_" + kind + ".tif")).string();
  if (!testing::WriteTiff(path, TileSpec(kind))) std::abort();
  testing::TiffPtr tif = testing::OpenTiff(path, "r");
  std::optional<testing::IfdArray> d = testing::DescribeIfd(tif.get(), '<');
  Tile t;
  t.array = d->array;
  t.coords = testing::SegmentCoords(*d, 0);
  t.stored = *testing::RawSegment(tif.get(), *d, 0);
  std::filesystem::remove(path);
  return tiles.emplace(kind, std::move(t)).first->second;
}

void BM_Decode(benchmark::State& state, const std::string& kind) {
  const Tile& t = GetTile(kind);
  std::unique_ptr<ChunkDecoder> decoder = MakeTiffChunkDecoder();
  std::vector<std::byte> out(t.array.ChunkBytes());
  for (auto _ : state) {
    Status s = decoder->Decode(t.array, t.coords, {}, t.stored, out);
    if (!s.ok()) state.SkipWithError(s.message().c_str());
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(state.iterations() * out.size());
  state.counters["ratio"] = static_cast<double>(out.size()) / t.stored.size();
}

void BM_Transcode(benchmark::State& state, const std::string& kind) {
  const Tile& t = GetTile(kind);
  std::unique_ptr<ChunkDecoder> decoder = MakeTiffChunkDecoder();
  const ChunkDecoder* decoders[] = {decoder.get()};
  size_t served = 0;
  for (auto _ : state) {
    Result<std::string> r = TranscodeChunk(t.array, t.coords, {}, t.stored, decoders);
    if (!r.ok()) state.SkipWithError(r.status().message().c_str());
    served = r.ok() ? r->size() : 0;
    benchmark::DoNotOptimize(served);
  }
  state.SetBytesProcessed(state.iterations() * t.array.ChunkBytes());
  state.counters["served_bytes"] = static_cast<double>(served);
}

void BM_EncodeBlosc(benchmark::State& state, const std::string& kind) {
  const Tile& t = GetTile(kind);
  std::unique_ptr<ChunkDecoder> decoder = MakeTiffChunkDecoder();
  std::vector<std::byte> chunk(t.array.ChunkBytes());
  if (!decoder->Decode(t.array, t.coords, {}, t.stored, chunk).ok()) std::abort();
  for (auto _ : state) {
    Result<std::string> r = EncodeBlosc(chunk, t.array.dtype.size);
    benchmark::DoNotOptimize(r.ok());
  }
  state.SetBytesProcessed(state.iterations() * chunk.size());
}

// A view's read of a chunk already transcoded: cache lookup plus the copy into the reply string.
void BM_CacheHit(benchmark::State& state) {
  const Tile& t = GetTile("jpeg_ycbcr_rgb");
  std::unique_ptr<ChunkDecoder> decoder = MakeTiffChunkDecoder();
  CachingTranscoder transcoder({decoder.get()}, 256ull << 20);
  auto read = [&]() -> Result<std::string> {
    return std::string(reinterpret_cast<const char*>(t.stored.data()), t.stored.size());
  };
  if (!transcoder.Get(1, t.array, t.coords, {}, read).ok()) std::abort();
  for (auto _ : state) {
    Result<ChunkCache::Value> v = transcoder.Get(1, t.array, t.coords, {}, read);
    std::string reply = **v;
    benchmark::DoNotOptimize(reply.data());
  }
}

void BM_CacheHitLookupOnly(benchmark::State& state) {
  auto cache = MakeChunkCache(256ull << 20);
  for (uint64_t i = 0; i < 1000; ++i) {
    (void)cache->GetOrLoad({1, i, 0}, [] { return Result<std::string>(std::string(100000, 'x')); });
  }
  uint64_t i = 0;
  for (auto _ : state) {
    ChunkCache::Value v = cache->Lookup({1, i++ % 1000, 0});
    benchmark::DoNotOptimize(v.get());
  }
}

BENCHMARK_CAPTURE(BM_Decode, lzw_u16, std::string("lzw_u16"));
BENCHMARK_CAPTURE(BM_Decode, lzw_pred2_u16, std::string("lzw_pred2_u16"));
BENCHMARK_CAPTURE(BM_Decode, jpeg_ycbcr_rgb, std::string("jpeg_ycbcr_rgb"));
BENCHMARK_CAPTURE(BM_Decode, deflate_pred2_u16, std::string("deflate_pred2_u16"));
BENCHMARK_CAPTURE(BM_Decode, tiny_none_u8, std::string("tiny_none_u8"));
BENCHMARK_CAPTURE(BM_Transcode, lzw_u16, std::string("lzw_u16"));
BENCHMARK_CAPTURE(BM_Transcode, jpeg_ycbcr_rgb, std::string("jpeg_ycbcr_rgb"));
BENCHMARK_CAPTURE(BM_Transcode, deflate_pred2_u16, std::string("deflate_pred2_u16"));
BENCHMARK_CAPTURE(BM_EncodeBlosc, u16, std::string("lzw_u16"));
BENCHMARK_CAPTURE(BM_EncodeBlosc, rgb_u8, std::string("jpeg_ycbcr_rgb"));
BENCHMARK(BM_CacheHit);
BENCHMARK(BM_CacheHitLookupOnly);

}  // namespace
}  // namespace refzarr

BENCHMARK_MAIN();
