// The HTTP front end module (refzarr_http.so): `refzarr serve` loads it, so that no other command
// maps libmicrohttpd. See formats/core/module_loader.h.
#pragma once

#include <ostream>
#include <string_view>

#include "cli/http/http_server.h"

namespace refzarr {

/// What the HTTP module's factory returns.
struct HttpModule {
  /// Serve() of http_server.h, with the bundled browser pages (ServeOptions::web_assets).
  Status (*serve)(ZarrView& view, const ServeOptions& options, std::ostream& log);
};

/// The module's file name, in ModuleDir().
inline constexpr std::string_view kHttpModuleFile = "refzarr_http.so";
/// Its factory: `const HttpModule* refzarr_http_module()`.
inline constexpr char kHttpModuleSymbol[] = "refzarr_http_module";

}  // namespace refzarr
