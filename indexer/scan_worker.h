// Crash-isolated scanning: each scan runs in a worker process (refzarr itself, started once per
// scanning thread and reused), which streams what it finds back to the indexer over a socket. A
// file that crashes libtiff or libhdf5 (SIGSEGV), loops (a hang, an IFD cycle the library misses),
// or eats memory (a decompression bomb, a hostile shape) kills or stops only its worker: the file
// is recorded as failed with the reason, a new worker is started, and the run goes on. libhdf5's
// and libtiff's global state never enters the indexing process.
//
// Protocol (one connected socket per worker, little-endian): the indexer sends a job (u32 length;
// the scanner's name, the source's URI, the CPU milliseconds allowed); the worker answers with
// records (u8 type, u32 length, payload) replaying the ScanSink calls of the scan (companions by
// URI), then a 'D' record with the scan's status. Replayed into the indexer's own sink (a
// RecordingSink, which bounds memory), they are exactly what an in-process scan would have
// produced.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "indexer/scan_runner.h"

namespace refzarr {

struct IsolationOptions {
  /// argv of a worker process: a program that runs RunScanWorker on its stdin (a socket; its
  /// stdout is its stderr), e.g. {"/proc/self/exe", "scan-worker"} for refzarr itself.
  std::vector<std::string> command;
  /// Worker processes at most (one per scanning thread: a scan never waits for a worker).
  unsigned workers = 1;
  /// Address-space limit of each worker in bytes (RLIMIT_AS); 0: none. A scan that needs more
  /// fails with "out of memory".
  uint64_t memory_bytes = 0;
  /// Wall-clock and CPU time one scan may take, in seconds; 0: no limit. A scan over the limit is
  /// killed and its file fails ("scan timed out after N s").
  double timeout_seconds = 0;
};

/// A ScanRunner over a pool of worker processes. Starts the first worker at once, so a command
/// that cannot run is an error here (kInternal naming the command) rather than a failure per file.
/// Later failures to start a worker fail the file being scanned.
Result<std::unique_ptr<ScanRunner>> MakeIsolatedScanRunner(IsolationOptions options);

/// The worker's side: announces itself, then scans every job read from `fd` (a connected socket,
/// also written to) with `scanners` through ScanFileInto, opening sources and their companions
/// through `openers` (not owned) with `settings`, and streams the results back, until the
/// other end closes. Returns the process exit status (0 on a clean close). After running out of
/// memory (std::bad_alloc) it reports the failure and returns 1, since library state may be
/// inconsistent; the pool starts a fresh worker.
int RunScanWorker(int fd, const std::vector<std::unique_ptr<Scanner>>& scanners,
                  const std::vector<const ChunkDecoder*>& decoders,
                  const SourceOpeners& openers = LocalSourceOpeners(),
                  ScanSettings settings = {});

}  // namespace refzarr
