// The remote openers of MakeSourceOpeners(), in two builds like the format tables:
// remote_openers_linked.cc makes them (formats/remote linked in), remote_openers_module.cc
// stands in for them and loads the remote module at their first use.
#pragma once

#include <memory>
#include <vector>

#include "formats/core/source.h"
#include "formats/remote/remote.h"

namespace refzarr::internal {

/// The openers of http://, https:// and s3:// with `options`.
std::vector<std::unique_ptr<SourceOpener>> RemoteOpeners(const RemoteOptions& options);

}  // namespace refzarr::internal
