// Rebuilds a whole array from the chunk references a scanner recorded, decoding native codecs
// independently (zlib, zstd, blosc, shuffle) and anything else through the given decoder.
#pragma once

#include <filesystem>
#include <span>
#include <vector>

#include "formats/core/scanner.h"
#include "tests/formats/hdf5/hdf5_test_util.h"

namespace refzarr::testing_hdf5 {

/// Decoded bytes of one chunk of `array` (recorded in `scan` of `file`, its chunks `chunks`):
/// array.ChunkBytes(), pre-filled with `fill` per element.
Result<std::vector<std::byte>> DecodeChunk(const ScannedFile& scan, const ScannedFile::Array& array,
                                           const RecordedChunks& chunks, const std::filesystem::path& file,
                                           uint64_t index, std::span<const std::byte> fill,
                                           const ChunkDecoder& decoder);

/// The whole array in C order (missing chunks = `fill`, one element's bytes).
Result<std::vector<std::byte>> Reassemble(const ScannedFile& scan, const ScannedFile::Array& array,
                                          const std::filesystem::path& file, std::span<const std::byte> fill,
                                          const ChunkDecoder& decoder);

}  // namespace refzarr::testing_hdf5
