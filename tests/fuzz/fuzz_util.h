// Helpers shared by the fuzz targets (tests/fuzz/*_fuzzer.cc).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <span>
#include <vector>

#include "formats/core/byte_source.h"
#include "formats/core/recording_sink.h"
#include "formats/core/scanner.h"

/// A property every input must keep: when `cond` is false, names the broken promise and aborts,
/// which the fuzzer (or the replay driver, under ctest) reports as a crash with its input.
#define FUZZ_CHECK(cond, what)                                        \
  do {                                                                \
    if (!(cond)) {                                                    \
      std::fprintf(stderr, "fuzz check failed: %s (%s)\n", what, #cond); \
      std::abort();                                                   \
    }                                                                 \
  } while (0)

namespace refzarr::fuzz {

/// The fuzz input as bytes.
inline std::span<const std::byte> Bytes(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const std::byte*>(data), size};
}

/// Decoded chunks larger than this are not decoded by the targets (a hostile header can describe a
/// chunk of any size; serving bounds it the same way through the chunk cache's budget).
inline constexpr uint64_t kMaxDecodedChunk = uint64_t{16} << 20;

/// What the serving side does with a scanned file, on the fuzz input itself: for every array that
/// needs `decoder` (its encoding names that family) and passes its CheckArray, decodes up to
/// `max_chunks` chunks whose stored bytes lie inside `file`. Results are ignored: the point is that
/// no input crashes, hangs or trips a sanitizer.
inline void DecodeScannedChunks(const ScannedFile& scanned, const ChunkDecoder& decoder,
                                std::span<const std::byte> file, int max_chunks) {
  for (const ScannedFile::Array& array : scanned.arrays) {
    if (array.desc.encoding.decoder != decoder.Family()) continue;
    if (array.desc.ChunkBytes() == 0 || array.desc.ChunkBytes() > kMaxDecodedChunk) continue;
    if (!decoder.CheckArray(array.desc).ok()) continue;
    const std::vector<uint64_t> grid = array.desc.GridShape();
    int decoded = 0;
    for (const auto& [linear, ref] : array.chunks) {
      if (decoded == max_chunks) break;
      if (ref.source != 0 || ref.offset > file.size() || ref.length > file.size() - ref.offset) {
        continue;
      }
      std::vector<std::byte> out(array.desc.ChunkBytes());
      const std::vector<uint64_t> coords = ChunkCoords(grid, linear);
      (void)decoder.Decode(array.desc, coords, ref, file.subspan(ref.offset, ref.length), out);
      ++decoded;
    }
  }
}

}  // namespace refzarr::fuzz
