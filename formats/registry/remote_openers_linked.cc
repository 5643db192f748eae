#include "formats/registry/remote_openers.h"

namespace refzarr::internal {

std::vector<std::unique_ptr<SourceOpener>> RemoteOpeners(const RemoteOptions& options) {
  return MakeRemoteOpeners(options);
}

}  // namespace refzarr::internal
