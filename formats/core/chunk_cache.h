// ChunkCache: a bounded, thread-safe LRU of immutable byte values with single-flight loads: the one
// cache of the project (transcoded chunks of the views, blocks of remote sources).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "formats/core/status.h"

namespace refzarr {

/// What identifies a value: for a transcoded chunk, the array (its node id in the index), the
/// chunk's linear index, and an opaque tag of the view options that shape the bytes (0 when a cache
/// serves one view); for a block of a remote source, the source's serial, the block's index, 0.
struct ChunkCacheKey {
  uint64_t array_id = 0;
  uint64_t chunk_index = 0;
  uint64_t variant = 0;
  friend bool operator==(const ChunkCacheKey&, const ChunkCacheKey&) = default;
};

/// Counters of a cache; a snapshot, each field read atomically.
struct ChunkCacheStats {
  uint64_t capacity_bytes = 0;  ///< The bound.
  uint64_t bytes = 0;           ///< Bytes charged now (values plus a fixed per-entry overhead).
  uint64_t entries = 0;
  uint64_t hits = 0;            ///< Lookups served from the cache (including waits for a load).
  uint64_t misses = 0;          ///< Lookups that found nothing.
  uint64_t loads = 0;           ///< Loader calls (single flight: one per missing key at a time).
  uint64_t evictions = 0;
};

/// Bounded LRU of immutable chunk values. All methods are safe to call from several threads at once;
/// at no moment do the charged bytes exceed the capacity (a value too large for the cache is
/// returned to the caller but not kept).
class ChunkCache {
 public:
  using Value = std::shared_ptr<const std::string>;
  using Loader = std::function<Result<std::string>()>;

  virtual ~ChunkCache() = default;

  /// The cached value of `key`, or null. Marks it most recently used.
  virtual Value Lookup(const ChunkCacheKey& key) = 0;

  /// The cached value of `key`; when missing, calls `load` and caches its value. Concurrent calls
  /// for the same missing key share one call of `load` (the others wait for it). A failed load is
  /// not cached: its Status goes to every caller that waited on it.
  virtual Result<Value> GetOrLoad(const ChunkCacheKey& key, const Loader& load) = 0;

  /// Bytes charged now (<= capacity). Each entry is charged its value's size plus kEntryOverhead.
  virtual uint64_t CurrentBytes() const = 0;

  virtual ChunkCacheStats Stats() const = 0;

  /// Bytes charged per entry on top of its value (keys, list and map nodes).
  static constexpr uint64_t kEntryOverhead = 128;
};

/// A cache holding at most `capacity_bytes`; 0 disables caching (every GetOrLoad loads, although
/// concurrent loads of one key are still shared). The cache is split into shards, each with its own
/// lock and an equal part of the capacity, so a single value larger than capacity/shards is not
/// kept; `shards` is rounded down to a power of two (at most 64; fewer when the capacity is small, so a
/// shard holds at least 16 MiB).
std::unique_ptr<ChunkCache> MakeChunkCache(uint64_t capacity_bytes, uint32_t shards = 16);

}  // namespace refzarr
