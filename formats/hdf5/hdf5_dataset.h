// Internal: describes one HDF5 dataset as a Zarr array plus the references of its stored chunks,
// without touching a ScanSink, so a refused dataset leaves nothing half-declared. Shared by the
// scanner and the Imaris/BigDataViewer layouts.
#pragma once

#include <hdf5.h>

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "formats/core/byte_source.h"
#include "formats/core/model.h"
#include "formats/hdf5/chunk_index.h"
#include "formats/hdf5/hdf5_types.h"

namespace refzarr::internal {

/// What every dataset of one open file shares.
struct Hdf5FileContext {
  hid_t file = -1;                    ///< Open file (not owned).
  ByteSource* source = nullptr;       ///< The same file's bytes (not owned).
  Hdf5FileInfo info;                  ///< Its superblock.
  std::filesystem::path path;         ///< Local path (for external files), may be empty.
  std::string describe;               ///< source->Describe(), for messages.
};

/// A dataset ready to be emitted.
struct DatasetPlan {
  ArrayDesc array;
  /// (linear chunk index, reference). ChunkRef::source is an index into `sources` + 1 (0 = the file).
  std::vector<std::pair<uint64_t, ChunkRef>> chunks;
  std::vector<std::pair<uint64_t, std::vector<std::byte>>> inline_chunks;
  std::vector<std::filesystem::path> sources;
  std::vector<std::string> warnings;  ///< Non-fatal notes (codec names, fallback to the library).
  bool is_chunked = false;            ///< HDF5 chunked layout (chunks are the file's own).
  std::vector<Hdf5Filter> filters;    ///< The pipeline, for compatibility checks.
};

/// How chunked datasets' chunks are listed.
enum class ChunkListing {
  kFileFormat,  ///< chunk_index.cc (O(chunks)); the library only when that fails.
  kLibrary,     ///< The library alone (H5Dchunk_iter, else H5Dget_chunk_info): for cross-checks.
};

/// Plans the dataset at `path` ("/a/b"). kUnsupported/kCorrupt with the reason when the dataset
/// cannot be represented; the caller reports it and carries on.
Result<DatasetPlan> PlanDataset(const Hdf5FileContext& ctx, const std::string& path,
                                ChunkListing listing = ChunkListing::kFileFormat);

/// Target size of the virtual chunks contiguous datasets are split into.
inline constexpr uint64_t kContiguousChunkBytes = 4ull << 20;

/// Chunk shape for a contiguous array: leading-dimension slabs of about `target` bytes, preferring a
/// row count that divides the dimension.
std::vector<uint64_t> ContiguousChunks(const std::vector<uint64_t>& shape, uint64_t element_size,
                                       uint64_t target = kContiguousChunkBytes);

}  // namespace refzarr::internal
