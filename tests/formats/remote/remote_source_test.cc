// ByteSource conformance over a local file, http (nginx), https + HTTP/2 (nginx) and s3 (s3rver
// behind a SigV4 front), all holding the same files; then generations: a replaced object is never
// served.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "formats/core/source.h"
#include "formats/remote/remote.h"
#include "tests/formats/remote/test_servers.h"

namespace refzarr {
namespace {

using testing::Files;
using testing::TestOptions;
namespace fs = std::filesystem;

constexpr uint64_t kBlock = 64 << 10;

std::string BackendName(const ::testing::TestParamInfo<std::string>& info) { return info.param; }

// Openers of every scheme for the backend under test, and the URI of a file of the test folder.
class SourceConformance : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const std::string& b = GetParam();
    RemoteOptions o = TestOptions();
    if (b == "local") {
      base_ = FileUri(Files().root) + "/";
    } else if (b == "http") {
      auto url = testing::NginxUrl();
      ASSERT_TRUE(url.ok()) << url.status().message();
      base_ = *url;
    } else if (b == "https") {
      auto url = testing::NginxHttpsUrl();
      ASSERT_TRUE(url.ok()) << url.status().message();
      base_ = *url;
      o.http.ca_file = testing::NginxCaFile();
    } else if (b == "s3") {
      auto s3 = testing::S3Server();
      ASSERT_TRUE(s3.ok()) << s3.status().message();
      testing::UseS3(o, *s3);
      base_ = "s3://" + s3->bucket + "/";
    }
    options_ = o;
    std::vector<std::unique_ptr<SourceOpener>> all = MakeRemoteOpeners(o);
    all.push_back(MakeLocalFileOpener());
    openers_ = std::make_unique<SourceOpeners>(std::move(all));
  }

  bool remote() const { return GetParam() != "local"; }

  std::unique_ptr<ByteSource> Open(const std::string& name) {
    auto s = openers_->Open(base_ + name);
    EXPECT_TRUE(s.ok()) << s.status().message();
    return s.ok() ? std::move(*s) : nullptr;
  }

  // What messages must name for `uri`: the URI, or the local path of a file:// URI.
  static bool Names(const std::string& message, const std::string& uri) {
    return message.find(uri) != std::string::npos ||
           message.find(DisplaySource(uri)) != std::string::npos;
  }

  std::string base_;
  RemoteOptions options_;
  std::unique_ptr<SourceOpeners> openers_;
};

void ExpectRange(ByteSource& s, const std::vector<std::byte>& want, uint64_t offset, uint64_t length) {
  std::vector<std::byte> got(length, std::byte{0xEE});
  Status st = s.ReadInto({offset, length}, got);
  ASSERT_TRUE(st.ok()) << "read " << offset << "+" << length << ": " << st.message();
  ASSERT_TRUE(std::equal(got.begin(), got.end(), want.begin() + static_cast<ptrdiff_t>(offset)))
      << s.Describe() << ": bytes " << offset << "+" << length << " differ";
}

TEST_P(SourceConformance, StatGivesTheSizes) {
  for (auto [name, size] : {std::pair<std::string, uint64_t>{"data.bin", Files().data.size()},
                            {"small.txt", Files().small.size()},
                            {"empty.bin", 0}}) {
    auto s = Open(name);
    ASSERT_NE(s, nullptr);
    auto st = s->Stat();
    ASSERT_TRUE(st.ok()) << st.status().message();
    EXPECT_EQ(st->size, size) << name;
    auto opener_stat = openers_->Stat(base_ + name);
    ASSERT_TRUE(opener_stat.ok()) << opener_stat.status().message();
    EXPECT_EQ(opener_stat->size, size) << name;
    EXPECT_EQ(opener_stat->generation, st->generation) << name;
    if (remote()) {
      EXPECT_FALSE(st->generation.unknown()) << name;
    }
  }
}

TEST_P(SourceConformance, ReadsOfEveryShape) {
  auto s = Open("data.bin");
  ASSERT_NE(s, nullptr);
  const auto& d = Files().data;
  const uint64_t n = d.size();
  ExpectRange(*s, d, 0, 100);                      // start
  ExpectRange(*s, d, n - 100, 100);                // end
  ExpectRange(*s, d, kBlock - 10, 20);             // across one block boundary
  ExpectRange(*s, d, 3 * kBlock - 1, 2);           // two bytes either side of a boundary
  ExpectRange(*s, d, kBlock + 5, 4 * kBlock + 17);  // across several blocks
  for (uint64_t at : {uint64_t{0}, kBlock - 1, kBlock, 5 * kBlock + 3, n - 1}) {
    ExpectRange(*s, d, at, 1);                     // single bytes
  }
  ExpectRange(*s, d, 0, n);                        // the whole file
  ExpectRange(*s, d, 9 * kBlock, n - 9 * kBlock);  // exactly the short last blocks
  std::vector<std::byte> none;
  EXPECT_TRUE(s->ReadInto({0, 0}, none).ok());     // zero length
  EXPECT_TRUE(s->ReadInto({1234, 0}, none).ok());
  EXPECT_TRUE(s->ReadInto({n, 0}, none).ok());     // zero length at the end

  auto small = Open("small.txt");
  ASSERT_NE(small, nullptr);
  ExpectRange(*small, Files().small, 0, Files().small.size());
  ExpectRange(*small, Files().small, 3, 5);

  auto empty = Open("empty.bin");
  ASSERT_NE(empty, nullptr);
  EXPECT_TRUE(empty->ReadInto({0, 0}, none).ok());
}

TEST_P(SourceConformance, ReadsWithAFreshCacheAtTheEndFirst) {
  // The last bytes first (a TIFF's trailing IFDs), then the rest, each on an empty cache.
  auto s = Open("data.bin");
  ASSERT_NE(s, nullptr);
  const auto& d = Files().data;
  ExpectRange(*s, d, d.size() - 1, 1);
  ExpectRange(*s, d, d.size() - kBlock - 1, kBlock + 1);
  ExpectRange(*s, d, 0, d.size());
}

TEST_P(SourceConformance, ReadPastTheEndIsCorruptAndNamesTheSource) {
  auto s = Open("data.bin");
  ASSERT_NE(s, nullptr);
  const uint64_t n = Files().data.size();
  std::vector<ByteRange> past = {{n - 10, 20}, {n, 1}, {n + 100, 5}, {0, n + 1}};
  if (remote()) {
    // The local file source (formats/core) reads these two otherwise: {n + 1, 0} is ok there and
    // {UINT64_MAX, 2} (offset + length wraps) is kIo from pread.
    past.push_back({n + 1, 0});
    past.push_back({UINT64_MAX, 2});
  }
  for (ByteRange r : past) {
    std::vector<std::byte> out(std::min<uint64_t>(r.length, n + 1));
    Status st = s->ReadInto(r, std::span(out).first(std::min<uint64_t>(r.length, out.size())));
    EXPECT_EQ(st.code(), StatusCode::kCorrupt) << r.offset << "+" << r.length << ": " << st.message();
    EXPECT_NE(st.message().find(s->Describe()), std::string::npos) << st.message();
    testing::ExpectNoSecrets(st.message());
  }
  auto empty = Open("empty.bin");
  ASSERT_NE(empty, nullptr);
  std::byte one[1];
  Status st = empty->ReadInto({0, 1}, one);
  EXPECT_EQ(st.code(), StatusCode::kCorrupt) << st.message();
}

TEST_P(SourceConformance, ConcurrentReadsFromEightThreads) {
  auto s = Open("data.bin");
  ASSERT_NE(s, nullptr);
  const auto& d = Files().data;
  std::atomic<int> bad{0};
  std::vector<std::string> errors(8);
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(1000 + t);
      for (int i = 0; i < 40; ++i) {
        const uint64_t offset = rng() % d.size();
        const uint64_t length = 1 + rng() % std::min<uint64_t>(d.size() - offset, 3 * kBlock);
        std::vector<std::byte> got(length);
        Status st = s->ReadInto({offset, length}, got);
        if (!st.ok() || !std::equal(got.begin(), got.end(), d.begin() + static_cast<ptrdiff_t>(offset))) {
          ++bad;
          errors[t] = std::to_string(offset) + "+" + std::to_string(length) + ": " +
                      (st.ok() ? "wrong bytes" : st.message());
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0) << errors[0] << errors[1] << errors[2] << errors[3] << errors[4]
                           << errors[5] << errors[6] << errors[7];
}

TEST_P(SourceConformance, MissingObjectIsNotFoundNamingTheUri) {
  const std::string uri = base_ + "no-such-file.bin";
  auto st = openers_->Stat(uri);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.status().code(), StatusCode::kNotFound) << st.status().message();
  EXPECT_TRUE(Names(st.status().message(), uri)) << st.status().message();
  testing::ExpectNoSecrets(st.status().message());
  auto opened = openers_->Open(uri);
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), StatusCode::kNotFound) << opened.status().message();
  EXPECT_TRUE(Names(opened.status().message(), uri)) << opened.status().message();
}

INSTANTIATE_TEST_SUITE_P(Backends, SourceConformance,
                         ::testing::Values("local", "http", "https", "s3"), BackendName);

// ---------------------------------------------------------------------------------------------
// Generations: after Open(), a replaced object is never served; a new Open() sees it.

class Generations : public SourceConformance {
 protected:
  // Writes `bytes` as the object, its modification time `age` seconds in the past (nginx's ETag
  // is mtime-size in whole seconds: a replacement within the same second would look unchanged).
  ::testing::AssertionResult Put(const std::string& name, const std::vector<std::byte>& bytes, int age) {
    if (GetParam() == "s3") {
      auto s3 = testing::S3Server();
      if (!s3.ok()) return ::testing::AssertionFailure() << s3.status().message();
      Status st = testing::S3Put(*s3, name, bytes);
      if (!st.ok()) return ::testing::AssertionFailure() << st.message();
      return ::testing::AssertionSuccess();
    }
    const fs::path path = fs::path(Files().root) / name;
    const fs::path tmp = path.string() + ".tmp";
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    }
    fs::last_write_time(tmp, fs::file_time_type::clock::now() - std::chrono::seconds(age));
    fs::rename(tmp, path);  // atomically, as a new file
    return ::testing::AssertionSuccess();
  }
};

TEST_P(Generations, ReplacedObjectIsStaleNeverNewBytes) {
  const std::string name = "gen-" + GetParam() + ".bin";
  const std::string uri = base_ + name;
  const size_t size = 4 * kBlock + 1000;
  static uint64_t round = 0;  // distinct bytes on --gtest_repeat
  ++round;
  const std::vector<std::byte> before = testing::RandomBytes(size, 100 + 2 * round);
  const std::vector<std::byte> after = testing::RandomBytes(size, 101 + 2 * round);
  ASSERT_TRUE(Put(name, before, 20));

  // No readahead: a read of block 0 leaves the others uncached.
  RemoteOptions o = options_;
  o.readahead_bytes = 0;
  auto openers = MakeRemoteOpeners(o);
  const SourceOpener* opener = testing::OpenerOf(openers, UriScheme(uri));
  ASSERT_NE(opener, nullptr);
  auto opened = opener->Open(uri);
  ASSERT_TRUE(opened.ok()) << opened.status().message();
  ByteSource& s = **opened;
  auto g1 = s.Stat();
  ASSERT_TRUE(g1.ok());
  EXPECT_FALSE(g1->generation.unknown());
  EXPECT_EQ(g1->size, size);
  ExpectRange(s, before, 0, 100);

  ASSERT_TRUE(Put(name, after, 10));

  // The next uncached read: stale, naming the URI, and the buffer holds none of the new bytes.
  std::vector<std::byte> got(1000, std::byte{0});
  Status st = s.ReadInto({2 * kBlock + 10, got.size()}, got);
  EXPECT_EQ(st.code(), StatusCode::kStale) << st.message();
  EXPECT_NE(st.message().find(uri), std::string::npos) << st.message();
  testing::ExpectNoSecrets(st.message());
  EXPECT_FALSE(std::equal(got.begin(), got.end(), after.begin() + 2 * kBlock + 10));
  // Again (nginx closed the connection after its 412): still stale, not the new bytes.
  st = s.ReadInto({3 * kBlock, got.size()}, got);
  EXPECT_EQ(st.code(), StatusCode::kStale) << st.message();
  EXPECT_FALSE(std::equal(got.begin(), got.end(), after.begin() + 3 * kBlock));
  // The cached block still gives the bytes of the version opened, never the new ones.
  std::vector<std::byte> head(100);
  st = s.ReadInto({0, head.size()}, head);
  if (st.ok()) {
    EXPECT_TRUE(std::equal(head.begin(), head.end(), before.begin()));
  } else {
    EXPECT_EQ(st.code(), StatusCode::kStale) << st.message();
  }
  // A read across a cached and an uncached block: stale, too.
  std::vector<std::byte> across(kBlock);
  st = s.ReadInto({kBlock / 2, across.size()}, across);
  EXPECT_EQ(st.code(), StatusCode::kStale) << st.message();

  // A new Open() sees the new version, through the same cache.
  auto reopened = opener->Open(uri);
  ASSERT_TRUE(reopened.ok()) << reopened.status().message();
  auto g2 = (*reopened)->Stat();
  ASSERT_TRUE(g2.ok());
  EXPECT_NE(g2->generation, g1->generation);
  auto stat_now = opener->Stat(uri);
  ASSERT_TRUE(stat_now.ok());
  EXPECT_EQ(stat_now->generation, g2->generation);
  ExpectRange(**reopened, after, 0, size);
}

INSTANTIATE_TEST_SUITE_P(Backends, Generations, ::testing::Values("http", "https", "s3"),
                         BackendName);

// ---------------------------------------------------------------------------------------------
// URIs with credentials are refused without echoing them.

TEST(RemoteUris, UserInfoIsRefusedWithoutEchoingThePassword) {
  auto openers = MakeRemoteOpeners(TestOptions());
  for (const std::string& uri :
       {std::string("http://user:") + testing::kPassword + "@127.0.0.1:1/data.bin",
        std::string("https://user:") + testing::kPassword + "@example.invalid/x/data.bin",
        std::string("https://") + testing::kPassword + "@example.invalid",
        std::string("s3://AKIAREFZARRKEYID7777:") + testing::kPassword + "@bucket/key.bin"}) {
    const SourceOpener* opener = testing::OpenerOf(openers, UriScheme(uri));
    ASSERT_NE(opener, nullptr) << uri;
    auto st = opener->Stat(uri);
    ASSERT_FALSE(st.ok()) << uri;
    EXPECT_EQ(st.status().code(), StatusCode::kInvalidArgument) << st.status().message();
    testing::ExpectNoSecrets(st.status().message());
    auto opened = opener->Open(uri);
    ASSERT_FALSE(opened.ok()) << uri;
    EXPECT_EQ(opened.status().code(), StatusCode::kInvalidArgument) << opened.status().message();
    testing::ExpectNoSecrets(opened.status().message());
  }
}

}  // namespace
}  // namespace refzarr

namespace refzarr {
namespace {

// Odd block sizes, no cache, a tiny cache: reads still give the file's bytes.
TEST(RemoteCacheShapes, ReadsAreRightForAnyBlockAndCacheSize) {
  auto url = testing::NginxUrl();
  ASSERT_TRUE(url.ok()) << url.status().message();
  const auto& d = Files().data;
  struct Shape {
    uint64_t block, readahead, cache;
  };
  for (Shape shape : {Shape{5000, 12000, 1 << 20}, Shape{64 << 10, 256 << 10, 0},
                      Shape{4096, 0, 3 * 4096}, Shape{100 << 10, 1 << 20, 150 << 10}}) {
    SCOPED_TRACE(std::to_string(shape.block) + "/" + std::to_string(shape.readahead) + "/" +
                 std::to_string(shape.cache));
    RemoteOptions o = TestOptions();
    o.block_bytes = shape.block;
    o.readahead_bytes = shape.readahead;
    o.cache_bytes = shape.cache;
    auto openers = MakeRemoteOpeners(o);
    auto s = testing::OpenerOf(openers, "http")->Open(*url + "data.bin");
    ASSERT_TRUE(s.ok()) << s.status().message();
    std::mt19937_64 rng(shape.block);
    for (int i = 0; i < 60; ++i) {
      const uint64_t offset = rng() % d.size();
      const uint64_t length = 1 + rng() % std::min<uint64_t>(d.size() - offset, 200000);
      ExpectRange(**s, d, offset, length);
    }
    ExpectRange(**s, d, 0, d.size());
  }
}

}  // namespace
}  // namespace refzarr
