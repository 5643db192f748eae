// The FUSE front end: a ZarrView as a read-only file system (libfuse3, high-level API).
//
// Groups are directories, metadata and chunks are files with exact sizes. Pass-through chunks are
// read with splice straight from their source file. Every modification fails with EROFS.
// See docs/frontends.md.
#pragma once

#include <filesystem>
#include <memory>
#include <ostream>

#include "formats/core/status.h"
#include "store/zarr_view.h"

namespace refzarr {

/// How to mount a view.
struct MountOptions {
  /// An existing directory to mount on.
  std::filesystem::path mountpoint;
  /// Mount(): true stays in the foreground; false detaches into the background once mounted.
  bool foreground = true;
  /// Let other users read the mount (needs user_allow_other in /etc/fuse.conf for non-root).
  bool allow_other = false;
  /// Most worker threads serving requests at once (0: libfuse's default).
  unsigned max_threads = 0;
  /// Seconds the kernel may cache names, attributes and negative lookups. The view is read-only,
  /// so a long time is safe.
  double cache_seconds = 3600;
  /// libfuse debug output on stderr.
  bool debug = false;
  /// Where errors met while serving requests are reported (kStale names the source); not owned,
  /// may be null.
  std::ostream* error_log = nullptr;
};

/// A mount served by background threads (for tests and embedding). Destroying it unmounts.
class FuseMount {
 public:
  virtual ~FuseMount() = default;
  /// Unmounts (lazily, if files are still open) and waits for the worker threads. Idempotent;
  /// also fine after an external `fusermount3 -u`.
  virtual Status Unmount() = 0;
};

/// Mounts `view` (not owned; must outlive the mount) and serves it on background threads.
/// kIo when the mount fails (no /dev/fuse, not permitted, mountpoint missing or busy).
Result<std::unique_ptr<FuseMount>> StartFuseMount(ZarrView& view, const MountOptions& options);

/// Mounts `view`, writes "mounted ..." to `log` and serves until the file system is unmounted
/// (`fusermount3 -u`, `umount`) or SIGINT/SIGTERM/SIGHUP arrive (handlers installed for the call),
/// then unmounts. With options.foreground false it detaches first (fuse_daemonize): `view` must own
/// no threads at that point.
Status Mount(ZarrView& view, const MountOptions& options, std::ostream& log);

}  // namespace refzarr
