// The FUSE front end: a ZarrView as a read-only file system (libfuse3, high-level API).
//
// Groups are directories, metadata and chunks are files with exact sizes. Pass-through chunks are
// read with splice straight from their source file. Opens never reach the process (the kernel's
// no-open mode), so a file already in the page cache is read without leaving the kernel. Every
// modification fails with EROFS.
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
  /// Seconds the kernel may keep a name and its attributes, and the mount an in-memory value,
  /// before asking the view again: the longest a file of a source changed since indexing can still
  /// be opened. Reads that miss the kernel's page cache always check the source.
  double revalidate_seconds = 5;
  /// Seconds the kernel may remember that a key does not exist: also how long a key that a
  /// re-index adds can stay unseen by a process that looked for it before.
  double negative_seconds = 5;
  /// Bound in bytes of the in-memory values (metadata, transcoded chunks) kept between the kernel
  /// requests that read one value in pieces.
  uint64_t value_cache_bytes = 64ull << 20;
  /// libfuse debug output on stderr.
  bool debug = false;
  /// Where errors met while serving requests are reported, one line each, flushed (kStale names
  /// the source): every EIO with its key and reason. Not owned, may be null.
  std::ostream* error_log = nullptr;
};

/// What CheckMountpoint found about a mount point it accepts.
struct MountpointCheck {
  /// False when the directory has entries: they are hidden while mounted (a warning, no error).
  bool empty = true;
};

/// Whether a mount may go on `mountpoint`. kInvalidArgument when it is not a directory or is
/// already a mount point (libfuse mounts over both and leaves a broken or hidden mount); kIo when
/// it cannot be stat'ed (missing). StartFuseMount and Mount check this first.
Result<MountpointCheck> CheckMountpoint(const std::filesystem::path& mountpoint);

/// A mount served by background threads (for tests and embedding). Destroying it unmounts.
class FuseMount {
 public:
  virtual ~FuseMount() = default;
  /// Unmounts (lazily, if files are still open) and waits for the worker threads. Idempotent;
  /// also fine after an external `fusermount3 -u`.
  virtual Status Unmount() = 0;
};

/// Mounts `view` (not owned; must outlive the mount) and serves it on background threads.
/// CheckMountpoint's errors, its warning on `error_log`; kIo when the mount fails (no /dev/fuse,
/// not permitted).
Result<std::unique_ptr<FuseMount>> StartFuseMount(ZarrView& view, const MountOptions& options);

/// Mounts `view`, writes "mounted ..." to `log` and serves until the file system is unmounted
/// (`fusermount3 -u`, `umount`) or SIGINT/SIGTERM/SIGHUP arrive (handlers installed for the call),
/// then unmounts and writes "unmounted ...". The mount point is checked first (CheckMountpoint;
/// its warning goes to `log`). With options.foreground false it detaches first (fuse_daemonize):
/// `view` must own no threads at that point, and `log` is gone (stderr becomes /dev/null), so
/// these lines also go to options.error_log when it is another stream.
Status Mount(ZarrView& view, const MountOptions& options, std::ostream& log);

}  // namespace refzarr
