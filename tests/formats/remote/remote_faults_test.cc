// Faults and the block cache, through the fault proxy in front of nginx: retries of 503/429,
// resets and truncated bodies, giving up after the policy's tries, added latency; and the number
// of requests that reach the origin for repeated, concurrent, consecutive and spanning reads.
#include <gtest/gtest.h>

#include <chrono>
#include <latch>
#include <thread>

#include "formats/core/source.h"
#include "formats/remote/remote.h"
#include "tests/formats/remote/test_servers.h"

namespace refzarr {
namespace {

using testing::Files;
constexpr uint64_t kBlock = 64 << 10;

class ThroughProxy : public ::testing::Test {
 protected:
  void SetUp() override {
    auto url = testing::ProxyUrl();
    ASSERT_TRUE(url.ok()) << url.status().message();
    uri_ = *url + "data.bin";
    ASSERT_TRUE(testing::ProxyControl(R"({"clear": true, "reset_stats": true})").ok());
    MakeOpeners(testing::TestOptions());
  }
  void TearDown() override { (void)testing::ProxyControl(R"({"clear": true})"); }

  void MakeOpeners(const RemoteOptions& o) {
    openers_ = MakeRemoteOpeners(o);
    opener_ = testing::OpenerOf(openers_, "http");
  }

  // Opens data.bin (its probe is one request), then zeroes the proxy's counters.
  std::unique_ptr<ByteSource> Open() {
    auto s = opener_->Open(uri_);
    EXPECT_TRUE(s.ok()) << s.status().message();
    EXPECT_TRUE(testing::ProxyControl(R"({"reset_stats": true})").ok());
    return s.ok() ? std::move(*s) : nullptr;
  }

  uint64_t Requests() {
    auto n = testing::ProxyRequests();
    EXPECT_TRUE(n.ok()) << n.status().message();
    return n.ok() ? *n : 0;
  }

  static void Faults(const std::string& kind, int count) {
    ASSERT_TRUE(testing::ProxyControl(R"({"fail_next": [{"kind": ")" + kind + R"(", "count": )" +
                                      std::to_string(count) + "}]}")
                    .ok());
  }

  static ::testing::AssertionResult ReadsRight(ByteSource& s, uint64_t offset, uint64_t length) {
    std::vector<std::byte> got(length);
    Status st = s.ReadInto({offset, length}, got);
    if (!st.ok()) return ::testing::AssertionFailure() << st.message();
    if (!std::equal(got.begin(), got.end(), Files().data.begin() + static_cast<ptrdiff_t>(offset))) {
      return ::testing::AssertionFailure() << "wrong bytes at " << offset << "+" << length;
    }
    return ::testing::AssertionSuccess();
  }

  std::string uri_;
  std::vector<std::unique_ptr<SourceOpener>> openers_;
  const SourceOpener* opener_ = nullptr;
};

// --- faults

TEST_F(ThroughProxy, Two503sThenSuccess) {
  auto s = Open();
  ASSERT_NE(s, nullptr);
  Faults("503", 2);
  EXPECT_TRUE(ReadsRight(*s, 1000, 5000));
  EXPECT_EQ(Requests(), 3u);
}

TEST_F(ThroughProxy, Two429sThenSuccess) {
  auto s = Open();
  ASSERT_NE(s, nullptr);
  Faults("429", 2);
  EXPECT_TRUE(ReadsRight(*s, 1000, 5000));
  EXPECT_EQ(Requests(), 3u);
}

TEST_F(ThroughProxy, ResetMidBodyIsRetried) {
  auto s = Open();
  ASSERT_NE(s, nullptr);
  Faults("reset", 1);
  EXPECT_TRUE(ReadsRight(*s, 0, 3 * kBlock));
  EXPECT_EQ(Requests(), 2u);
}

TEST_F(ThroughProxy, TruncatedBodyIsRetried) {
  auto s = Open();
  ASSERT_NE(s, nullptr);
  Faults("truncate", 1);
  EXPECT_TRUE(ReadsRight(*s, kBlock + 7, 2 * kBlock));
  EXPECT_EQ(Requests(), 2u);
}

TEST_F(ThroughProxy, FaultsWhileOpeningAreRetried) {
  Faults("503", 1);
  Faults("reset", 1);
  auto s = opener_->Open(uri_);
  ASSERT_TRUE(s.ok()) << s.status().message();
  auto st = (*s)->Stat();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->size, Files().data.size());
  EXPECT_EQ(Requests(), 3u);
}

TEST_F(ThroughProxy, MoreFaultsThanTriesIsIoNamingTheUri) {
  RemoteOptions o = testing::TestOptions();
  o.http.retry.attempts = 3;
  o.http.retry.base_delay = std::chrono::milliseconds(1);
  MakeOpeners(o);
  auto s = Open();
  ASSERT_NE(s, nullptr);
  for (const std::string kind : {"503", "429", "reset", "truncate"}) {
    SCOPED_TRACE(kind);
    ASSERT_TRUE(testing::ProxyControl(R"({"clear": true, "reset_stats": true})").ok());
    Faults(kind, 5);
    std::vector<std::byte> got(5000);
    Status st = s->ReadInto({kBlock * (kind == "503" ? 1 : kind == "429" ? 3 : kind == "reset" ? 5 : 7), got.size()}, got);
    EXPECT_EQ(st.code(), StatusCode::kIo) << st.message();
    EXPECT_NE(st.message().find(uri_), std::string::npos) << st.message();
    EXPECT_NE(st.message().find("after 3 tries"), std::string::npos) << st.message();
    testing::ExpectNoSecrets(st.message());
    EXPECT_EQ(Requests(), 3u);
  }
  // The faults spent, the same source reads again.
  ASSERT_TRUE(testing::ProxyControl(R"({"clear": true})").ok());
  EXPECT_TRUE(ReadsRight(*s, kBlock, 5000));
}

TEST_F(ThroughProxy, LatencyIsWaitedFor) {
  auto s = Open();
  ASSERT_NE(s, nullptr);
  ASSERT_TRUE(testing::ProxyControl(R"({"latency_ms": 200})").ok());
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(ReadsRight(*s, 2 * kBlock, 100));
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, std::chrono::milliseconds(200));
  EXPECT_EQ(Requests(), 1u);
}

TEST_F(ThroughProxy, StalledTransfersAreAbandonedAndRetried) {
  RemoteOptions o = testing::TestOptions();
  o.http.retry.attempts = 2;
  o.http.stall_timeout = std::chrono::milliseconds(1000);
  MakeOpeners(o);
  auto s = Open();
  ASSERT_NE(s, nullptr);
  // Each answer waits 2.5 s: longer than the stall timeout, so both tries are abandoned.
  ASSERT_TRUE(testing::ProxyControl(R"({"latency_ms": 2500})").ok());
  std::vector<std::byte> got(100);
  Status st = s->ReadInto({kBlock, got.size()}, got);
  EXPECT_EQ(st.code(), StatusCode::kIo) << st.message();
  EXPECT_NE(st.message().find(uri_), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("after 2 tries"), std::string::npos) << st.message();
  ASSERT_TRUE(testing::ProxyControl(R"({"latency_ms": 0})").ok());
  EXPECT_TRUE(ReadsRight(*s, kBlock, 100));
}

// --- the block cache, counted at the origin

TEST_F(ThroughProxy, SameRangeTwiceIsOneRequest) {
  auto s = Open();
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(ReadsRight(*s, 5000, 3000));
  EXPECT_TRUE(ReadsRight(*s, 5000, 3000));
  EXPECT_EQ(Requests(), 1u);
}

TEST_F(ThroughProxy, ConcurrentReadsOfOneBlockAreOneRequest) {
  auto s = Open();
  ASSERT_NE(s, nullptr);
  // Latency holds the first request open while the others arrive: they must wait for it.
  ASSERT_TRUE(testing::ProxyControl(R"({"latency_ms": 100})").ok());
  std::latch go(8);
  std::vector<std::thread> threads;
  std::atomic<int> bad{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      go.arrive_and_wait();
      if (!ReadsRight(*s, 4 * kBlock + 100 * t, 500)) ++bad;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(Requests(), 1u);
}

TEST_F(ThroughProxy, ConsecutiveSmallReadsAreFewRequests) {
  auto s = Open();
  ASSERT_NE(s, nullptr);
  for (int i = 0; i < 16; ++i) EXPECT_TRUE(ReadsRight(*s, 1024 * i, 100));
  EXPECT_EQ(Requests(), 1u);
  // Small reads a block apart: readahead (256 KiB, four blocks) brings the next ones too.
  ASSERT_TRUE(testing::ProxyControl(R"({"reset_stats": true})").ok());
  for (int i = 1; i < 11; ++i) EXPECT_TRUE(ReadsRight(*s, kBlock * i + 10, 100));
  EXPECT_LE(Requests(), 3u);
}

TEST_F(ThroughProxy, ReadSpanningUncachedBlocksIsOneRequest) {
  auto s = Open();
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(ReadsRight(*s, kBlock + 100, 5 * kBlock));
  EXPECT_EQ(Requests(), 1u);
  // Again, with some of its blocks cached: only the missing runs are asked for.
  ASSERT_TRUE(testing::ProxyControl(R"({"reset_stats": true})").ok());
  EXPECT_TRUE(ReadsRight(*s, 0, Files().data.size()));
  EXPECT_LE(Requests(), 2u);
}

TEST_F(ThroughProxy, HeadersAreSentButNeverInMessages) {
  RemoteOptions o = testing::TestOptions();
  o.headers.push_back(std::string("Authorization: Bearer ") + testing::kBearer);
  MakeOpeners(o);
  auto s = opener_->Stat(uri_ + ".missing");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kNotFound);
  testing::ExpectNoSecrets(s.status().message());
  Faults("503", 10);
  RemoteOptions few = o;
  few.http.retry.attempts = 2;
  MakeOpeners(few);
  auto failed = opener_->Stat(uri_);
  ASSERT_FALSE(failed.ok());
  testing::ExpectNoSecrets(failed.status().message());
}

}  // namespace
}  // namespace refzarr
