// The factory of the remote module: MakeRemoteOpeners behind one C symbol.
#include "formats/remote/remote_module.h"

#include "formats/core/module_loader.h"

REFZARR_MODULE_EXPORT const refzarr::RemoteModule* refzarr_remote_module() {
  static const refzarr::RemoteModule module{&refzarr::MakeRemoteOpeners};
  return &module;
}
