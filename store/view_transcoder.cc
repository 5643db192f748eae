#include <memory>

#include "store/transcode/caching_transcoder.h"
#include "store/view_internal.h"

namespace refzarr::internal {

ViewTranscoder MakeViewTranscoder(const ViewOptions& options) {
  // The view's Zarr format decides the served encoding (CompatCodecOf): the same array is blosc in
  // a v2 view and may be re-framed gzip in a v3 view, as the view's metadata says.
  auto transcoder = std::make_shared<CachingTranscoder>(options.decoders, options.cache_bytes,
                                                        options.zarr_format);
  return [transcoder](int64_t node_id, const ArrayDesc& array, std::span<const uint64_t> coords,
                      const ChunkRef& ref,
                      const StoredBytesReader& read_stored) -> Result<std::string> {
    ASSIGN_OR_RETURN(auto value, transcoder->Get(static_cast<uint64_t>(node_id), array, coords,
                                                 ref, read_stored));
    return *value;
  };
}

}  // namespace refzarr::internal
