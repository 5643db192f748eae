// Export of an index as a kerchunk reference file (spec version 1), for fsspec/zarr-python/GDAL.
#pragma once

#include <filesystem>
#include <ostream>
#include <string>
#include <vector>

#include "formats/core/status.h"

namespace refzarr {

/// What an export wrote.
struct ExportReport {
  uint64_t metadata_keys = 0;
  uint64_t chunk_refs = 0;
  uint64_t inline_chunks = 0;
  /// Arrays whose stored chunks need codecs outside numcodecs (e.g. imagecodecs) or whose chunks
  /// are not all encoded alike, with the reason.
  std::vector<std::string> needs_imagecodecs;
};

/// Writes `{"version": 1, "refs": {...}}` for the whole index to `out`: Zarr v2 metadata of the
/// passthrough view, and [path, offset, length] for every stored chunk (inline chunks as
/// "base64:..."). Chunk bytes are what the files store, so arrays in ExportReport::needs_imagecodecs
/// are only readable by clients that have those codecs. Every source is checked first: a source
/// that changed since indexing is kStale and nothing is written.
Result<ExportReport> ExportKerchunk(const std::filesystem::path& index, std::ostream& out);

}  // namespace refzarr
