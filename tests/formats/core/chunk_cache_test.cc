#include "formats/core/chunk_cache.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <random>
#include <thread>
#include <vector>

namespace refzarr {
namespace {

ChunkCacheKey Key(uint64_t i) { return {7, i, 0}; }

Result<std::string> Bytes(size_t n, char c) { return std::string(n, c); }

TEST(ChunkCache, EvictsLeastRecentlyUsedFirst) {
  const uint64_t entry = 1000 + ChunkCache::kEntryOverhead;
  auto cache = MakeChunkCache(3 * entry);  // small: a single shard
  for (uint64_t i = 0; i < 3; ++i) {
    ASSERT_TRUE(cache->GetOrLoad(Key(i), [&] { return Bytes(1000, 'a' + i); }).ok());
  }
  EXPECT_EQ(cache->CurrentBytes(), 3 * entry);
  ASSERT_NE(cache->Lookup(Key(0)), nullptr);  // 0 is now the most recently used
  ASSERT_TRUE(cache->GetOrLoad(Key(3), [] { return Bytes(1000, 'd'); }).ok());
  EXPECT_EQ(cache->Lookup(Key(1)), nullptr) << "1 was the least recently used";
  EXPECT_NE(cache->Lookup(Key(0)), nullptr);
  EXPECT_NE(cache->Lookup(Key(2)), nullptr);
  EXPECT_EQ(*cache->Lookup(Key(3)), std::string(1000, 'd'));
  EXPECT_EQ(cache->CurrentBytes(), 3 * entry);
  EXPECT_EQ(cache->Stats().evictions, 1u);
}

TEST(ChunkCache, HitDoesNotCallTheLoader) {
  auto cache = MakeChunkCache(1 << 20);
  int calls = 0;
  auto load = [&] {
    ++calls;
    return Bytes(10, 'x');
  };
  auto first = cache->GetOrLoad(Key(1), load);
  auto second = cache->GetOrLoad(Key(1), load);
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(first->get(), second->get()) << "the same shared value";
  ChunkCacheStats st = cache->Stats();
  EXPECT_EQ(st.hits, 1u);
  EXPECT_EQ(st.misses, 1u);
  EXPECT_EQ(st.entries, 1u);
}

TEST(ChunkCache, ValueLargerThanCapacityIsReturnedButNotKept) {
  auto cache = MakeChunkCache(4096);
  auto v = cache->GetOrLoad(Key(1), [] { return Bytes(5000, 'z'); });
  ASSERT_TRUE(v.ok());
  EXPECT_EQ((*v)->size(), 5000u);
  EXPECT_EQ(cache->CurrentBytes(), 0u);
  EXPECT_EQ(cache->Lookup(Key(1)), nullptr);
}

TEST(ChunkCache, ZeroCapacityCachesNothing) {
  auto cache = MakeChunkCache(0);
  int calls = 0;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(cache->GetOrLoad(Key(1), [&] {
                       ++calls;
                       return Bytes(1, 'x');
                     }).ok());
  }
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(cache->CurrentBytes(), 0u);
}

TEST(ChunkCache, FailedLoadIsNotCached) {
  auto cache = MakeChunkCache(1 << 20);
  auto bad = cache->GetOrLoad(Key(1), []() -> Result<std::string> { return CorruptError("bad tile"); });
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "bad tile");
  auto good = cache->GetOrLoad(Key(1), [] { return Bytes(3, 'k'); });
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(**good, "kkk");
}

TEST(ChunkCache, KeysDifferingInAnyFieldAreDistinct) {
  auto cache = MakeChunkCache(1 << 20);
  ASSERT_TRUE(cache->GetOrLoad({1, 2, 3}, [] { return Bytes(1, 'a'); }).ok());
  EXPECT_EQ(cache->Lookup({1, 2, 4}), nullptr);
  EXPECT_EQ(cache->Lookup({1, 3, 3}), nullptr);
  EXPECT_EQ(cache->Lookup({2, 2, 3}), nullptr);
  EXPECT_NE(cache->Lookup({1, 2, 3}), nullptr);
}

TEST(ChunkCache, ConcurrentRequestsForOneMissingChunkLoadItOnce) {
  auto cache = MakeChunkCache(1 << 20);
  std::atomic<int> calls{0};
  std::vector<ChunkCache::Value> got(8);
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      auto v = cache->GetOrLoad(Key(42), [&] {
        ++calls;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        return Bytes(100, 'q');
      });
      if (v.ok()) got[t] = *v;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(calls.load(), 1);
  for (const auto& v : got) {
    ASSERT_NE(v, nullptr);
    EXPECT_EQ(v.get(), got[0].get());
  }
}

TEST(ChunkCache, ConcurrentWaitersAllSeeAFailedLoad) {
  auto cache = MakeChunkCache(1 << 20);
  std::atomic<int> calls{0}, failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&] {
      auto v = cache->GetOrLoad(Key(5), [&]() -> Result<std::string> {
        ++calls;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        return IoError("disk gone");
      });
      if (!v.ok() && v.status().message() == "disk gone") ++failures;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 6);
  EXPECT_LE(calls.load(), 6);
  EXPECT_LT(calls.load(), 6) << "waiters joined the in-flight load instead of loading again";
}

// Many threads, random keys and sizes, a capacity much smaller than the working set: every value is
// the right one and the charged bytes, sampled all the time by another thread, never exceed the bound.
TEST(ChunkCache, ByteLimitHoldsUnderConcurrentLoad) {
  const uint64_t capacity = 40ull << 20;  // 2 shards of 20 MiB
  auto cache = MakeChunkCache(capacity);
  std::atomic<bool> done{false};
  std::atomic<uint64_t> max_seen{0}, wrong{0};
  std::thread monitor([&] {
    while (!done.load()) {
      uint64_t b = cache->CurrentBytes();
      uint64_t m = max_seen.load();
      while (b > m && !max_seen.compare_exchange_weak(m, b)) {
      }
    }
  });
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(t);
      for (int i = 0; i < 3000; ++i) {
        uint64_t k = rng() % 400;
        size_t size = 1000 + (k * 7919) % (400 << 10);  // up to 400 KiB, fixed per key
        auto v = cache->GetOrLoad(Key(k), [&] { return Bytes(size, static_cast<char>('a' + k % 26)); });
        if (!v.ok() || (*v)->size() != size || (**v)[size / 2] != static_cast<char>('a' + k % 26)) {
          ++wrong;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  done = true;
  monitor.join();
  ChunkCacheStats st = cache->Stats();
  EXPECT_EQ(wrong.load(), 0u);
  EXPECT_LE(max_seen.load(), capacity);
  EXPECT_LE(st.bytes, capacity);
  EXPECT_GT(st.bytes, capacity / 2) << "the cache is used, not just bounded";
  EXPECT_GT(st.evictions, 0u);
  EXPECT_GT(st.hits, 0u);
  EXPECT_EQ(st.hits + st.misses, 8u * 3000u);
}

}  // namespace
}  // namespace refzarr
