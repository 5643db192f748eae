// The factory of the HTTP front end module.
#include "cli/http/http_module.h"

#include "cli/http/web/web_assets.h"
#include "formats/core/module_loader.h"

namespace refzarr {
namespace {

// `refzarr serve` serves the browser pages bundled into this module.
Status ServeWithBrowserPages(ZarrView& view, const ServeOptions& options, std::ostream& log) {
  ServeOptions with_pages = options;
  with_pages.web_assets = BundledWebAssets();
  return Serve(view, with_pages, log);
}

}  // namespace
}  // namespace refzarr

REFZARR_MODULE_EXPORT const refzarr::HttpModule* refzarr_http_module() {
  static const refzarr::HttpModule module{&refzarr::ServeWithBrowserPages};
  return &module;
}
