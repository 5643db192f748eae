// The FUSE front end module (refzarr_fuse.so): `refzarr mount` loads it, so that no other command
// maps libfuse3. See formats/core/module_loader.h.
#pragma once

#include <ostream>
#include <string_view>

#include "cli/fuse/fuse_mount.h"

namespace refzarr {

/// What the FUSE module's factory returns.
struct FuseModule {
  /// Mount() of fuse_mount.h.
  Status (*mount)(ZarrView& view, const MountOptions& options, std::ostream& log);
};

/// The module's file name, in ModuleDir().
inline constexpr std::string_view kFuseModuleFile = "refzarr_fuse.so";
/// Its factory: `const FuseModule* refzarr_fuse_module()`.
inline constexpr char kFuseModuleSymbol[] = "refzarr_fuse_module";

}  // namespace refzarr
