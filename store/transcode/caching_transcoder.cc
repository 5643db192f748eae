#include "store/transcode/caching_transcoder.h"

#include "store/transcode/transcode.h"

namespace refzarr {

CachingTranscoder::CachingTranscoder(std::vector<const ChunkDecoder*> decoders,
                                     uint64_t cache_bytes, int zarr_format)
    : decoders_(std::move(decoders)),
      zarr_format_(zarr_format),
      cache_(MakeChunkCache(cache_bytes)) {}

Result<ChunkCache::Value> CachingTranscoder::Get(uint64_t array_id, const ArrayDesc& array,
                                                 std::span<const uint64_t> chunk_coords,
                                                 const ChunkRef& ref, const StoredReader& read_stored) {
  const std::vector<uint64_t> grid = array.GridShape();
  const ChunkCacheKey key{array_id, LinearChunkIndex(grid, chunk_coords),
                          static_cast<uint64_t>(zarr_format_)};
  return cache_->GetOrLoad(key, [&]() -> Result<std::string> {
    ASSIGN_OR_RETURN(std::string stored, read_stored());
    return TranscodeChunk(array, chunk_coords, ref,
                          std::as_bytes(std::span<const char>(stored.data(), stored.size())),
                          decoders_, zarr_format_);
  });
}

}  // namespace refzarr
