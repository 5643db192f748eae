// The compression libraries behind transcoding, decoded reads and thumbnails (zlib, libdeflate,
// zstd, liblzma, c-blosc, libpng), as one table of functions. Programs link them in
// (codecs_linked.cc), except the refzarr binary, which loads them from the module
// refzarr_codecs.so the first time a chunk is decoded or encoded or a PNG written
// (codecs_module.cc): reading an index or serving stored bytes maps none of these libraries
// (docs/performance.md, cold start). Each function names the codec in its errors.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "formats/core/status.h"

namespace refzarr {

struct CodecLibs {
  /// zlib's inflate of `in` with `window_bits` (15 zlib, 31 gzip) into `out`, resized to what it
  /// holds, at most `max_out` bytes (more is kCorrupt); `name` names the codec in errors.
  Status (*inflate)(std::span<const std::byte> in, int window_bits, size_t max_out,
                    std::vector<std::byte>& out, const char* name);
  /// A zlib stream through libdeflate (whole buffers, about twice zlib's speed), else zlib.
  Status (*inflate_zlib)(std::span<const std::byte> in, size_t max_out, std::vector<std::byte>& out);
  Status (*zstd)(std::span<const std::byte> in, size_t max_out, std::vector<std::byte>& out);
  /// xz or lzma-alone (auto-detected).
  Status (*lzma)(std::span<const std::byte> in, size_t max_out, std::vector<std::byte>& out);
  /// A blosc buffer of at most `max_out` decompressed bytes.
  Status (*blosc)(std::span<const std::byte> in, size_t max_out, std::vector<std::byte>& out);
  /// A blosc buffer that decompresses to exactly out.size() bytes.
  Status (*decode_blosc)(std::span<const std::byte> in, std::span<std::byte> out);
  Result<std::string> (*encode_blosc)(std::span<const std::byte> chunk, uint32_t typesize,
                                      const char* cname, int clevel, int shuffle);
  /// One gzip member of `chunk` at `level` (0..9).
  Result<std::string> (*encode_gzip)(std::span<const std::byte> chunk, int level);
  /// ReframeZlibAsGzip (store/transcode/transcode.h).
  Result<std::string> (*reframe_zlib_as_gzip)(std::span<const std::byte> zlib,
                                              uint64_t expected_bytes);
  /// An 8-bit RGB image (width x height x 3 bytes, rows top down) as a PNG file.
  Result<std::string> (*encode_png)(uint32_t width, uint32_t height,
                                    std::span<const uint8_t> rgb);
};

/// The codecs: linked in, or loaded from the module on first call (once per process; a failure
/// to load is kIo naming the module, kept and returned to every later call).
Result<const CodecLibs*> Codecs();

/// The linked implementations (codec_libs.cc): what Codecs() returns where they are linked and
/// what the module hands out.
const CodecLibs& LinkedCodecLibs();

/// The largest chunk c-blosc compresses (BLOSC_MAX_BUFFERSIZE; checked in codec_libs.cc).
inline constexpr uint64_t kBloscMaxBufferBytes = 2147483647ull - 16;

inline constexpr const char* kCodecsModuleFile = "refzarr_codecs.so";
inline constexpr const char* kCodecsModuleSymbol = "refzarr_codecs_module";

}  // namespace refzarr
