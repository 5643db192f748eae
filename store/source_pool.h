// SourcePool: the sources a view reads, opened once, validated against the index, shared by every
// front end (HTTP, FUSE, cat, the C++ API), so none of them opens a file itself.
#pragma once

#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "formats/core/byte_source.h"
#include "formats/core/source.h"
#include "store/ref_store.h"

namespace refzarr {

struct SourcePoolOptions {
  /// Openers by scheme; not owned. Null: LocalSourceOpeners().
  const SourceOpeners* openers = nullptr;
  /// A source checked within this many seconds is not checked again (no stat); 0 checks it on
  /// every use.
  double revalidate_seconds = 0;
  /// Sources whose reads validate themselves (ByteSource::ValidatesReads: remote ones) are
  /// stat'ed at most this often (each stat is a request): their uncached reads fail on another
  /// version anyway, and what they cached is the indexed version's bytes; a replaced source is
  /// refused within this time.
  double validating_revalidate_seconds = 1;
  /// Open sources kept (their descriptors); the least recently used beyond it are closed once no
  /// read holds them.
  size_t max_open = 256;
};

/// A source as indexed, and an open handle whose bytes are the indexed generation.
struct CheckedSource {
  SourceInfo indexed;
  std::shared_ptr<ByteSource> open;  ///< Null unless asked for.
};

class SourcePool {
 public:
  SourcePool(RefStore& store, SourcePoolOptions options);

  /// The source `id`, checked now: its generation (for a local file: device, inode, size, mtime,
  /// ctime) equals the one indexed; with `open`, an open handle validated the same way at its open,
  /// so no read ever goes through a descriptor of another file than the one validated; with
  /// `verify_content`, its content fingerprint too, once per pool. kStale, with a message naming
  /// the source and what changed, when it differs or is gone.
  Result<CheckedSource> Get(int64_t id, bool open, bool verify_content);

 private:
  struct Row {
    SourceInfo indexed;
    bool verified = false;
    bool validating = false;  // its reads validate themselves (its opener says so, and its handle)
    std::chrono::steady_clock::time_point checked;
  };
  using OpenList = std::list<std::pair<int64_t, std::shared_ptr<ByteSource>>>;

  std::shared_ptr<ByteSource> FindOpen(int64_t id);     // under mu_
  void KeepOpen(int64_t id, std::shared_ptr<ByteSource> source);  // under mu_

  RefStore& store_;
  SourcePoolOptions options_;
  std::mutex mu_;
  std::unordered_map<int64_t, Row> rows_;
  OpenList open_;  // most recently used first, at most options_.max_open
  std::unordered_map<int64_t, OpenList::iterator> open_index_;
};

}  // namespace refzarr
