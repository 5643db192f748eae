// Fuzz target: the TIFF chunk decoder (formats/tiff/decoder): libtiff's codecs (LZW, deflate,
// PackBits, JPEG, zstd, LZMA, WebP), the predictors (horizontal, floating point), bit unpacking,
// de-interleaving and YCbCr conversion, over one stored tile or strip.
//
// Input: an 8-byte header that picks the chunk's description from small tables, then the stored
// bytes.
//   [0] compression   index into kCompressions
//   [1] predictor     1 + value % 3
//   [2] sample type   index into kSamples (bits, SampleFormat, dtype)
//   [3] bit 0 tiled; bit 1 big-endian file; bits 2-3 pixels: 1 sample, 3 chunky RGB, 3 planar,
//       1 sample with FillOrder 2; bit 4: JPEG as YCbCr 2x2 converted to RGB
//   [4] tiled: tile width 16 * (1 + v % 4), image width that times 1 + (v / 4) % 4, less v / 16
//       strips: image width 1 + v
//   [5] the same for lengths (strips: rows per strip 1 + v % 16, image length 1 + v)
//   [6] chunk row (modulo the rows of chunks), [7] chunk column (modulo the columns)
// Seeds (tests/fuzz/tiff_decoder/): make_seeds.py takes the first chunk of small TIFFs it writes
// with tifffile, with the header that describes them.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

#include "formats/tiff/decoder/tiff_decoder.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

constexpr uint16_t kCompressions[] = {1, 5, 8, 32773, 50000, 34925, 7, 32946, 50001};
struct Sample {
  uint16_t bits, format;
  char kind;
  uint32_t size;
};
constexpr Sample kSamples[] = {{8, 1, 'u', 1},  {16, 1, 'u', 2}, {32, 3, 'f', 4}, {16, 2, 'i', 2},
                               {64, 3, 'f', 8}, {1, 1, 'u', 1},  {4, 1, 'u', 1},  {12, 1, 'u', 2},
                               {32, 1, 'u', 4}, {24, 1, 'u', 4}, {16, 3, 'f', 2}, {8, 2, 'i', 1}};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace refzarr;
  static const std::unique_ptr<ChunkDecoder> decoder = MakeTiffChunkDecoder();
  if (size < 8) return 0;
  const uint16_t compression = kCompressions[data[0] % std::size(kCompressions)];
  const uint16_t predictor = 1 + data[1] % 3;
  const Sample sample = kSamples[data[2] % std::size(kSamples)];
  const bool tiled = data[3] & 1, big_endian = data[3] & 2, ycbcr = data[3] & 16;
  const int pixels = (data[3] >> 2) & 3;
  const uint32_t spp = (pixels == 1 || pixels == 2) ? 3 : 1;
  const uint32_t planar = pixels == 2 ? 2 : 1;

  nlohmann::json p = {{"compression", compression},
                      {"predictor", predictor},
                      {"photometric", spp == 3 ? 2 : 1},
                      {"bits_per_sample", sample.bits},
                      {"sample_format", sample.format},
                      {"samples_per_pixel", spp},
                      {"planar", planar},
                      {"fill_order", pixels == 3 ? 2 : 1},
                      {"byte_order", big_endian ? ">" : "<"},
                      {"tiled", tiled}};
  uint64_t width, length, chunk_w, chunk_h;
  if (tiled) {
    chunk_w = 16 * (1 + data[4] % 4);
    chunk_h = 16 * (1 + data[5] % 4);
    width = std::max<int64_t>(1, int64_t(chunk_w * (1 + (data[4] / 4) % 4)) - data[4] / 16);
    length = std::max<int64_t>(1, int64_t(chunk_h * (1 + (data[5] / 4) % 4)) - data[5] / 16);
    p["tile_width"] = chunk_w;
    p["tile_length"] = chunk_h;
  } else {
    width = 1 + data[4];
    length = 1 + data[5];
    chunk_w = width;
    chunk_h = std::min<uint64_t>(1 + data[5] % 16, length);
    p["rows_per_strip"] = chunk_h;
  }
  p["image_width"] = width;
  p["image_length"] = length;
  if (compression == 7 && ycbcr && spp == 3 && planar == 1) {
    p["photometric"] = 6;
    p["ycbcr_subsampling"] = {2, 2};
    p["jpeg_colormode_rgb"] = true;
  }

  ArrayDesc array;
  array.shape = {1, spp, 1, length, width};
  array.chunks = {1, planar == 1 ? spp : 1, 1, chunk_h, chunk_w};
  array.dtype = DType::Make(sample.kind, sample.size, '<');
  array.encoding.native = false;
  array.encoding.decoder = "tiff";
  array.encoding.params = p;
  if (!decoder->CheckArray(array).ok()) return 0;

  const std::vector<uint64_t> grid = array.GridShape();
  const std::vector<uint64_t> coords = {0, planar == 2 ? data[6] % spp : 0u, 0, data[6] % grid[3],
                                        data[7] % grid[4]};
  ChunkRef ref{0, 0, size - 8, 0};
  if (!tiled && coords[3] == grid[3] - 1 && length % chunk_h != 0) ref.flags = kChunkShort;
  std::vector<std::byte> out(array.ChunkBytes());
  (void)decoder->Decode(array, coords, ref, fuzz::Bytes(data + 8, size - 8), out);
  return 0;
}
