#include "formats/core/chunk_cache.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <future>
#include <list>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace refzarr {
namespace {

// Below this, a shard could not hold a typical transcoded tile; small caches get fewer shards.
constexpr uint64_t kMinShardBytes = 16ull << 20;

struct KeyHash {
  size_t operator()(const ChunkCacheKey& k) const {
    auto mix = [](uint64_t x) {  // splitmix64 finaliser
      x ^= x >> 30;
      x *= 0xbf58476d1ce4e5b9ull;
      x ^= x >> 27;
      x *= 0x94d049bb133111ebull;
      return x ^ (x >> 31);
    };
    return mix(k.array_id ^ mix(k.chunk_index ^ mix(k.variant)));
  }
};

using Value = ChunkCache::Value;
using Flight = std::shared_future<Result<Value>>;

class Shard {
 public:
  uint64_t capacity = 0;

  // Returns the value and marks it most recently used, or null.
  Value Find(const ChunkCacheKey& key) {
    auto it = index_.find(key);
    if (it == index_.end()) return nullptr;
    lru_.splice(lru_.begin(), lru_, it->second);
    return it->second->value;
  }

  // Keeps `value` unless it cannot fit; evicts least recently used entries first, so the charged
  // bytes never exceed the capacity. `total` is the cache-wide counter, updated the same way.
  void Insert(const ChunkCacheKey& key, Value value, std::atomic<uint64_t>& total,
              std::atomic<uint64_t>& evictions) {
    const uint64_t cost = value->size() + ChunkCache::kEntryOverhead;
    if (cost > capacity || index_.count(key)) return;
    while (bytes_ + cost > capacity && !lru_.empty()) {
      Entry& victim = lru_.back();
      bytes_ -= victim.cost;
      total.fetch_sub(victim.cost);
      evictions.fetch_add(1);
      index_.erase(victim.key);
      lru_.pop_back();
    }
    lru_.push_front(Entry{key, std::move(value), cost});
    index_[key] = lru_.begin();
    bytes_ += cost;
    total.fetch_add(cost);
  }

  size_t entries() const { return lru_.size(); }

  std::unordered_map<ChunkCacheKey, Flight, KeyHash> in_flight;
  std::mutex mu;

 private:
  struct Entry {
    ChunkCacheKey key;
    Value value;
    uint64_t cost;
  };
  std::list<Entry> lru_;
  std::unordered_map<ChunkCacheKey, std::list<Entry>::iterator, KeyHash> index_;
  uint64_t bytes_ = 0;
};

class ShardedChunkCache final : public ChunkCache {
 public:
  ShardedChunkCache(uint64_t capacity, uint32_t shards) : capacity_(capacity), shards_(shards) {
    for (Shard& s : shards_) s.capacity = capacity / shards;
  }

  Value Lookup(const ChunkCacheKey& key) override {
    Shard& s = ShardOf(key);
    std::lock_guard lock(s.mu);
    Value v = s.Find(key);
    (v ? hits_ : misses_).fetch_add(1);
    return v;
  }

  Result<Value> GetOrLoad(const ChunkCacheKey& key, const Loader& load) override {
    Shard& s = ShardOf(key);
    std::promise<Result<Value>> promise;
    {
      std::unique_lock lock(s.mu);
      if (Value v = s.Find(key)) {
        hits_.fetch_add(1);
        return v;
      }
      auto flying = s.in_flight.find(key);
      if (flying != s.in_flight.end()) {
        Flight flight = flying->second;
        lock.unlock();
        hits_.fetch_add(1);
        return flight.get();
      }
      misses_.fetch_add(1);
      s.in_flight.emplace(key, promise.get_future().share());
    }
    // This thread loads; the shard is unlocked meanwhile so other keys are served.
    loads_.fetch_add(1);
    Result<Value> result = InternalError("chunk cache: loader threw");
    try {
      Result<std::string> loaded = load();
      if (loaded.ok()) {
        result = Value(std::make_shared<const std::string>(std::move(*loaded)));
      } else {
        result = loaded.status();
      }
    } catch (const std::exception& e) {
      result = InternalError(std::string("chunk cache: loader threw: ") + e.what());
    } catch (...) {
    }
    {
      std::lock_guard lock(s.mu);
      if (result.ok()) s.Insert(key, *result, bytes_, evictions_);
      s.in_flight.erase(key);
    }
    promise.set_value(result);
    return result;
  }

  uint64_t CurrentBytes() const override { return bytes_.load(); }

  ChunkCacheStats Stats() const override {
    ChunkCacheStats st;
    st.capacity_bytes = capacity_;
    st.bytes = bytes_.load();
    for (Shard& s : shards_) {
      std::lock_guard lock(s.mu);
      st.entries += s.entries();
    }
    st.hits = hits_.load();
    st.misses = misses_.load();
    st.loads = loads_.load();
    st.evictions = evictions_.load();
    return st;
  }

 private:
  Shard& ShardOf(const ChunkCacheKey& key) {
    return shards_[KeyHash{}(key) & (shards_.size() - 1)];
  }

  const uint64_t capacity_;
  mutable std::vector<Shard> shards_;
  std::atomic<uint64_t> bytes_{0}, hits_{0}, misses_{0}, loads_{0}, evictions_{0};
};

}  // namespace

std::unique_ptr<ChunkCache> MakeChunkCache(uint64_t capacity_bytes, uint32_t shards) {
  uint64_t n = std::clamp<uint64_t>(shards, 1, 64);
  n = std::min<uint64_t>(n, std::max<uint64_t>(1, capacity_bytes / kMinShardBytes));
  n = std::bit_floor(n);
  return std::make_unique<ShardedChunkCache>(capacity_bytes, static_cast<uint32_t>(n));
}

}  // namespace refzarr
