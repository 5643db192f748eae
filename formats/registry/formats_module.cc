// The factory of the formats module: the linked tables (registry_linked.cc) behind one C symbol.
#include "formats/registry/formats_module.h"

#include <tiffio.h>

#include "formats/core/module_loader.h"
#include "formats/registry/registry.h"

REFZARR_MODULE_EXPORT const refzarr::FormatsModule* refzarr_formats_module() {
  // The start-up of the libraries the module brings, once, when it is first loaded: libtiff's
  // process-wide handlers would print to stderr (the scanners and the decoder install per-handle
  // ones; this silences what is left).
  static const refzarr::FormatsModule module = [] {
    TIFFSetErrorHandler(nullptr);
    TIFFSetWarningHandler(nullptr);
    return refzarr::FormatsModule{&refzarr::DefaultScanners, &refzarr::DefaultDecoders};
  }();
  return &module;
}
