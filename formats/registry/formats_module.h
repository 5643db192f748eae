// The formats module (refzarr_formats.so): the scanners and decoders of every format, with the
// libraries they need (libtiff, libhdf5, ...), loaded by the refzarr binary on first use
// (registry_module.cc). See formats/core/module_loader.h.
#pragma once

#include <memory>
#include <vector>

#include "formats/core/scanner.h"

namespace refzarr {

/// What the formats module's factory returns: the linked tables of registry.h.
struct FormatsModule {
  /// Every scanner, in sniffing order (DefaultScanners() of the formats linked in).
  std::vector<std::unique_ptr<Scanner>> (*scanners)();
  /// Every chunk decoder (DefaultDecoders() of the formats linked in).
  std::vector<std::unique_ptr<ChunkDecoder>> (*decoders)();
};

/// The module's file name, in ModuleDir().
inline constexpr std::string_view kFormatsModuleFile = "refzarr_formats.so";
/// Its factory: `const FormatsModule* refzarr_formats_module()`.
inline constexpr char kFormatsModuleSymbol[] = "refzarr_formats_module";

}  // namespace refzarr
