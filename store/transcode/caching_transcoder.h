// CachingTranscoder: what a compat view calls for a chunk that must be transcoded (or, in Zarr v3,
// re-framed). A chunk read again is served from a ChunkCache without reading or decoding its
// stored bytes.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "formats/core/model.h"
#include "formats/core/scanner.h"
#include "formats/core/chunk_cache.h"

namespace refzarr {

class CachingTranscoder {
 public:
  /// Reads a chunk's stored bytes; called only on a cache miss.
  using StoredReader = std::function<Result<std::string>()>;

  /// `decoders` are not owned and must outlive this object; `cache_bytes` bounds the cache;
  /// `zarr_format` (2 or 3) is the view's, which decides how chunks are encoded (CompatCodecOf).
  CachingTranscoder(std::vector<const ChunkDecoder*> decoders, uint64_t cache_bytes,
                    int zarr_format = 2);

  /// The transcoded bytes (TranscodeChunk for the view's format) of the chunk at `chunk_coords` of
  /// array `array_id`, from the cache or by reading with `read_stored` and transcoding (once,
  /// however many threads ask at the same moment). Errors of the reader or the decoder are
  /// returned, not cached.
  Result<ChunkCache::Value> Get(uint64_t array_id, const ArrayDesc& array,
                                std::span<const uint64_t> chunk_coords, const ChunkRef& ref,
                                const StoredReader& read_stored);

  ChunkCache& cache() { return *cache_; }

 private:
  std::vector<const ChunkDecoder*> decoders_;
  int zarr_format_;
  std::unique_ptr<ChunkCache> cache_;
};

}  // namespace refzarr
