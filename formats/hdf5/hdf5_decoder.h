// ChunkDecoder for family "hdf5": decodes a stored chunk through the HDF5 library's own filter
// pipeline, for codecs Zarr readers lack (fletcher32, szip, nbit, scaleoffset, plugin filters the
// library can load) and for chunks whose filter mask skipped filters.
#pragma once

#include <memory>

#include "formats/core/scanner.h"

namespace refzarr {

/// Decodes chunks described by ChunkEncoding::params as the HDF5 scanner writes them:
/// {"filters": [{"id", "flags", "cd_values", "name"}...], "type": base64 H5Tencode, "dtype"}.
/// ChunkRef::flags bits 0-15 are the chunk's HDF5 filter mask; kChunkShort marks a short
/// unfiltered chunk (the tail of a contiguous dataset) whose bytes fill the start of the chunk.
/// HDF5 calls are serialised with a process-wide lock; one in-memory file per pipeline is cached.
std::unique_ptr<ChunkDecoder> MakeHdf5ChunkDecoder();

}  // namespace refzarr
