// Chunk references kept out of memory: a file with more references than an index run should hold
// in RAM writes them, sorted, to an anonymous temporary file, and they are merged back in chunk
// order when the file is committed.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <queue>
#include <utility>
#include <vector>

#include "formats/core/model.h"
#include "formats/core/status.h"

namespace refzarr {

/// One array's references moved out of memory: sorted runs in an unlinked temporary file (in
/// $TMPDIR, else /tmp), 32 bytes a reference. Gone with the object.
class SpilledRefs {
 public:
  /// kIo when no temporary file can be made.
  static Result<std::shared_ptr<SpilledRefs>> Create();
  ~SpilledRefs();
  SpilledRefs(const SpilledRefs&) = delete;
  SpilledRefs& operator=(const SpilledRefs&) = delete;

  /// Sorts `refs` by chunk index, appends them as one run and empties `refs`, freeing its memory.
  /// kIo when the write fails (a full disk).
  Status AppendRun(std::vector<std::pair<uint64_t, ChunkRef>>& refs);
  /// References in all runs.
  uint64_t size() const { return count_; }
  /// Whether any reference written carries flags (kChunk* bits).
  bool any_flagged() const { return any_flagged_; }
  /// (first record, record count) of each run, in the order they were written.
  const std::vector<std::pair<uint64_t, uint64_t>>& runs() const { return runs_; }
  /// Replaces `out` with records [first, first + n). kIo on a failed read.
  Status Read(uint64_t first, uint64_t n, std::vector<std::pair<uint64_t, ChunkRef>>& out) const;

 private:
  explicit SpilledRefs(int fd) : fd_(fd) {}
  int fd_;
  uint64_t count_ = 0;
  bool any_flagged_ = false;
  std::vector<std::pair<uint64_t, uint64_t>> runs_;
};

/// Every reference of an array in chunk order: the spilled runs (each read a buffer at a time) and
/// the in-memory ones, merged. Memory: one buffer per run plus 8 bytes per in-memory reference
/// when those are not already in order. Neither argument is owned; both must outlive this.
class SortedChunkRefs {
 public:
  SortedChunkRefs(const std::vector<std::pair<uint64_t, ChunkRef>>& in_memory,
                  const SpilledRefs* spilled);
  /// The next reference, or nullopt after the last. kIo when a run cannot be read.
  Result<std::optional<std::pair<uint64_t, ChunkRef>>> Next();

 private:
  struct Run {
    uint64_t next = 0, end = 0;  // Records of the run still to read from the file.
    std::vector<std::pair<uint64_t, ChunkRef>> buffer;
    size_t pos = 0;
  };
  Status Refill(Run& run);
  // The next pending index of source `s` (runs first, then the in-memory list), if any.
  std::optional<uint64_t> Head(size_t s) const;
  // Queues source `s`'s next reference, reading its run further when needed.
  Status Push(size_t s);

  const std::vector<std::pair<uint64_t, ChunkRef>>& in_memory_;
  const SpilledRefs* spilled_;
  std::vector<size_t> order_;  // In-memory positions by index; empty when already in order.
  size_t memory_pos_ = 0;
  std::vector<Run> runs_;
  // (chunk index, source) of every source's next reference: a min-heap, so each reference costs
  // O(log runs).
  std::priority_queue<std::pair<uint64_t, size_t>, std::vector<std::pair<uint64_t, size_t>>,
                      std::greater<>>
      heads_;
  bool started_ = false;
};

}  // namespace refzarr
