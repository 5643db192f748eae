// Internal seam between the view and the transcoder (store/transcode): how a chunk that cannot be
// served as stored becomes a chunk in the compat encoding of the view's Zarr format
// (CompatCodecOf: blosc, or in Zarr v3 re-framed gzip), the one its metadata names.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>

#include "formats/core/model.h"
#include "store/zarr_view.h"

namespace refzarr::internal {

/// Reads the stored bytes of the chunk being transcoded (called only on a cache miss).
using StoredBytesReader = std::function<Result<std::string>()>;

/// Re-encodes one stored chunk of array `node_id` for a compat view.
using ViewTranscoder = std::function<Result<std::string>(
    int64_t node_id, const ArrayDesc& array, std::span<const uint64_t> coords, const ChunkRef& ref,
    const StoredBytesReader& read_stored)>;

/// The transcoder for a view with `options` (decoders, cache size, Zarr format).
ViewTranscoder MakeViewTranscoder(const ViewOptions& options);

}  // namespace refzarr::internal
