// What a long index run reports while it runs: the indexer fills IndexProgress and hands it to a
// ProgressSink the caller implements (the CLI draws a status line or writes JSON lines); the
// library itself never prints progress.
#pragma once

#include <cstdint>

namespace refzarr {

/// A run's counts so far.
struct IndexProgress {
  uint64_t files_done = 0;   ///< Files looked at: indexed, unchanged, failed or skipped.
  /// Files the run looks at in all, when known: counted by a walk of the inputs beside the run's
  /// (local inputs without --files-from; a walk only lists folders). 0 until known.
  uint64_t files_total = 0;
  bool total_known = false;
  uint64_t indexed = 0, unchanged = 0, failed = 0;
  uint64_t bytes_done = 0;   ///< Bytes of the files indexed or found unchanged (their sizes).
  uint64_t chunks = 0;       ///< Chunk references committed.
  double elapsed_seconds = 0;
};

/// Receives the progress of an index run. Called from the run's committing thread only: Update
/// after each file (so it must be cheap, and decides itself how often to show anything), Done
/// once at the end (also when the run stops early or fails).
class ProgressSink {
 public:
  virtual ~ProgressSink() = default;
  virtual void Update(const IndexProgress& progress) = 0;
  virtual void Done(const IndexProgress& progress) = 0;
};

}  // namespace refzarr
