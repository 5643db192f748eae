#include "store/view_internal.h"

namespace refzarr::internal {

ViewTranscoder MakeViewTranscoder(const ViewOptions& options) {
  return [](int64_t, const ArrayDesc& array, std::span<const uint64_t>, const ChunkRef&,
            const std::string&) -> Result<std::string> {
    return UnsupportedError("this chunk needs transcoding (" + array.encoding.decoder +
                            "), which is not available yet; use --codecs passthrough");
  };
}

}  // namespace refzarr::internal
