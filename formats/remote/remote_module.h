// The remote module (refzarr_remote.so): the openers of http://, https:// and s3:// with libcurl
// and what it pulls in (TLS, HTTP/2), loaded by the refzarr binary the first time a remote URI is
// opened (formats/registry/registry_module.cc), so that reading local archives never maps them.
// See formats/core/module_loader.h.
#pragma once

#include <memory>
#include <string_view>
#include <vector>

#include "formats/remote/remote.h"

namespace refzarr {

/// What the remote module's factory returns.
struct RemoteModule {
  /// MakeRemoteOpeners() of the module's own copy of formats/remote.
  std::vector<std::unique_ptr<SourceOpener>> (*openers)(const RemoteOptions& options);
};

/// The module's file name, in ModuleDir().
inline constexpr std::string_view kRemoteModuleFile = "refzarr_remote.so";
/// Its factory: `const RemoteModule* refzarr_remote_module()`.
inline constexpr char kRemoteModuleSymbol[] = "refzarr_remote_module";

}  // namespace refzarr
