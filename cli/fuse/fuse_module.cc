// The factory of the FUSE front end module.
#include "cli/fuse/fuse_module.h"

#include "formats/core/module_loader.h"

REFZARR_MODULE_EXPORT const refzarr::FuseModule* refzarr_fuse_module() {
  static const refzarr::FuseModule module{&refzarr::Mount};
  return &module;
}
