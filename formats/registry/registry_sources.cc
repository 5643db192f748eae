// The table of source openers, the same in both builds of the registry: the local-file opener,
// then the remote ones (remote_openers.h: linked in, or loaded from the remote module).
#include "formats/registry/registry.h"
#include "formats/registry/remote_openers.h"

namespace refzarr {

std::unique_ptr<SourceOpeners> MakeSourceOpeners(const RemoteOptions& options) {
  std::vector<std::unique_ptr<SourceOpener>> o;
  o.push_back(MakeLocalFileOpener());
  for (auto& remote : internal::RemoteOpeners(options)) o.push_back(std::move(remote));
  return std::make_unique<SourceOpeners>(std::move(o));
}

const SourceOpeners& DefaultSourceOpeners() {
  static const SourceOpeners* table = MakeSourceOpeners(RemoteOptionsFromEnvironment()).release();
  return *table;
}

}  // namespace refzarr
