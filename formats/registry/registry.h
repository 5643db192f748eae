// The explicit tables of formats: adding a format is one line in registry_linked.cc (and its
// folder).
//
// Two builds of these functions (formats/registry/CMakeLists.txt): registry_linked.cc links the
// formats in (tests, API users, the formats module itself); registry_module.cc, the refzarr
// binary's, loads them from the formats module (formats_module.h) on first use.
#pragma once

#include <memory>
#include <vector>

#include "formats/core/scanner.h"
#include "formats/core/source.h"
#include "formats/remote/remote.h"

namespace refzarr {

/// Every scanner refzarr knows, in sniffing order. The module build loads the formats module
/// here; when it cannot, one scanner that claims every file and fails each scan with the load
/// error (naming the module's path).
std::vector<std::unique_ptr<Scanner>> DefaultScanners();

/// Every chunk decoder refzarr knows (for views that transcode). The module build loads the
/// formats module at the first Decode or CheckArray; when it cannot, those return the load error.
std::vector<std::unique_ptr<ChunkDecoder>> DefaultDecoders();

/// Every source opener refzarr knows, by URI scheme: file://, then http://, https:// and s3://
/// with `options`. The module build loads the remote module (remote_module.h) the first time a
/// remote URI is stat'ed, opened or listed; when it cannot, those fail with the load error.
std::unique_ptr<SourceOpeners> MakeSourceOpeners(const RemoteOptions& options);

/// MakeSourceOpeners(RemoteOptionsFromEnvironment()), made at the first call: what the indexer,
/// its scan workers and the views use. Lives as long as the process.
const SourceOpeners& DefaultSourceOpeners();

}  // namespace refzarr
