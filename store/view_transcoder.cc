#include <memory>

#include "store/transcode/caching_transcoder.h"
#include "store/view_internal.h"

namespace refzarr::internal {

ViewTranscoder MakeViewTranscoder(const ViewOptions& options) {
  auto transcoder = std::make_shared<CachingTranscoder>(options.decoders, options.cache_bytes);
  return [transcoder](int64_t node_id, const ArrayDesc& array, std::span<const uint64_t> coords,
                      const ChunkRef& ref,
                      const StoredBytesReader& read_stored) -> Result<std::string> {
    ASSIGN_OR_RETURN(auto value, transcoder->Get(static_cast<uint64_t>(node_id), array, coords,
                                                 ref, read_stored));
    return *value;
  };
}

}  // namespace refzarr::internal
