// The explicit tables of formats: adding a format is one line here (and its folder).
#pragma once

#include <memory>
#include <vector>

#include "formats/core/scanner.h"

namespace refzarr {

/// Every scanner refzarr knows, in sniffing order.
std::vector<std::unique_ptr<Scanner>> DefaultScanners();

/// Every chunk decoder refzarr knows (for views that transcode).
std::vector<std::unique_ptr<ChunkDecoder>> DefaultDecoders();

}  // namespace refzarr
