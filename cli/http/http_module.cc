// The factory of the HTTP front end module.
#include "cli/http/http_module.h"

#include "formats/core/module_loader.h"

REFZARR_MODULE_EXPORT const refzarr::HttpModule* refzarr_http_module() {
  static const refzarr::HttpModule module{&refzarr::Serve};
  return &module;
}
