// The FUSE front end against an in-memory view, through the kernel: real stat/readdir/read calls on
// a real mount. Skips only where /dev/fuse is missing or mounting is not permitted.
#include "cli/fuse/fuse_mount.h"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "fake_zarr_view.h"
#include "store/ref_store.h"
#include "store/zarr_view.h"

namespace refzarr {
namespace {

using testing::FakeZarrView;
namespace fs = std::filesystem;

std::string RandomBytes(size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::string out(n, '\0');
  for (char& c : out) c = static_cast<char>(gen() & 0xff);
  return out;
}

std::string FileBytes(const fs::path& path, uint64_t offset, uint64_t length) {
  std::ifstream in(path, std::ios::binary);
  in.seekg(static_cast<std::streamoff>(offset));
  std::string out(length, '\0');
  in.read(out.data(), static_cast<std::streamsize>(length));
  out.resize(static_cast<size_t>(in.gcount()));
  return out;
}

std::string ReadWhole(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool IsMountPoint(const fs::path& dir) {
  struct stat self {}, parent {};
  if (::stat(dir.c_str(), &self) != 0 || ::stat(dir.parent_path().c_str(), &parent) != 0) {
    return false;
  }
  return self.st_dev != parent.st_dev;
}

std::vector<std::string> ReadDirNames(const fs::path& dir) {
  std::vector<std::string> names;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return names;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  ::closedir(d);
  return names;
}

constexpr uint64_t kSliceOffset = 4321;
constexpr uint64_t kSliceLength = 300000;
constexpr int kManyChunks = 5000;

// Empty when FUSE works here; otherwise why not. Probed once with a throwaway mount, so a test only
// skips where the machine cannot mount at all, never because of a bug in the mount code under test.
const std::string& FuseUnavailableReason() {
  static const std::string reason = [] {
    int fd = ::open("/dev/fuse", O_RDWR | O_CLOEXEC);
    if (fd < 0) return "no /dev/fuse or no permission to open it (" + std::string(std::strerror(errno)) + ")";
    ::close(fd);
    fs::path probe = fs::temp_directory_path() / ("refzarr_fuse_probe_" + std::to_string(::getpid()));
    fs::create_directories(probe);
    FakeZarrView empty;
    MountOptions options;
    options.mountpoint = probe;
    auto mount = StartFuseMount(empty, options);
    std::string why = mount.ok() ? "" : "mounting is not permitted: " + mount.status().message();
    if (mount.ok()) (*mount)->Unmount().IgnoreError();
    std::error_code ec;
    fs::remove(probe, ec);
    return why;
  }();
  return reason;
}

class FuseMountTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!FuseUnavailableReason().empty()) {
      GTEST_SKIP() << FuseUnavailableReason() << ": FUSE tests skipped";
    }
    dir_ = fs::temp_directory_path() /
           ("refzarr_fuse_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_ / "mnt");
    mnt_ = dir_ / "mnt";
    source_ = dir_ / "source.tif";
    std::ofstream(source_, std::ios::binary) << RandomBytes(400000, 3);
    memory_chunk_ = RandomBytes(5000, 5);

    view_.AddBytes(".zgroup", R"({"zarr_format":2})", true);
    view_.AddBytes("img/.zattrs", R"({"multiscales":[]})", true);
    view_.AddBytes("img/0/.zarray", R"({"zarr_format":2,"shape":[1]})", true);
    view_.AddBytes("img/0/0.0", memory_chunk_);
    view_.AddSlice("img/0/0.1", FakeZarrView::LocalSlice(source_, kSliceOffset, kSliceLength));
    view_.AddError("bad/0.0",
                   StaleError("source " + source_.string() + " changed since it was indexed"), 77);
    view_.AddBytes("img/0/empty", "");
    view_.AddBytes("odd name/a b", "x");
    for (int i = 0; i < kManyChunks; ++i) view_.AddBytes("big/0." + std::to_string(i), "c");
  }

  void TearDown() override {
    if (mount_) mount_->Unmount().IgnoreError();
    mount_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // Mounts the view (FUSE is known to work here, so a failure is a failure).
  bool Mount(MountOptions options = {}) {
    options.mountpoint = mnt_;
    options.error_log = &errors_;
    auto mount = StartFuseMount(view_, options);
    if (!mount.ok()) {
      ADD_FAILURE() << mount.status().ToString();
      return false;
    }
    mount_ = std::move(*mount);
    return true;
  }

  fs::path dir_, mnt_, source_;
  std::string memory_chunk_;
  FakeZarrView view_;
  std::ostringstream errors_;
  std::unique_ptr<FuseMount> mount_;
};

TEST_F(FuseMountTest, StatGivesExactSizesAndKinds) {
  ASSERT_TRUE(Mount());
  EXPECT_TRUE(IsMountPoint(mnt_));
  EXPECT_EQ(fs::file_size(mnt_ / "img/0/0.1"), kSliceLength);
  EXPECT_EQ(fs::file_size(mnt_ / "img/0/0.0"), memory_chunk_.size());
  EXPECT_EQ(fs::file_size(mnt_ / "img/0/.zarray"), std::strlen(R"({"zarr_format":2,"shape":[1]})"));
  EXPECT_EQ(fs::file_size(mnt_ / "img/0/empty"), 0u);
  EXPECT_TRUE(fs::is_directory(mnt_ / "img"));
  EXPECT_TRUE(fs::is_directory(mnt_ / "img/0"));
  EXPECT_TRUE(fs::is_regular_file(mnt_ / "img/0/0.0"));
  struct stat st {};
  EXPECT_EQ(::stat((mnt_ / "img/0/9.9").c_str(), &st), -1);
  EXPECT_EQ(errno, ENOENT);
  ASSERT_EQ(::stat((mnt_ / "img/0/0.0").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0444u);
}

TEST_F(FuseMountTest, ReadDirListsTheViewsChildren) {
  ASSERT_TRUE(Mount());
  std::vector<std::string> root = ReadDirNames(mnt_);
  EXPECT_EQ(std::set<std::string>(root.begin(), root.end()),
            (std::set<std::string>{".zgroup", "bad", "big", "img", "odd name"}));
  std::vector<std::string> level = ReadDirNames(mnt_ / "img/0");
  EXPECT_EQ(std::set<std::string>(level.begin(), level.end()),
            (std::set<std::string>{".zarray", "0.0", "0.1", "empty"}));
}

TEST_F(FuseMountTest, ReadDirPagesThroughThousandsOfChunks) {
  ASSERT_TRUE(Mount());
  std::vector<std::string> names = ReadDirNames(mnt_ / "big");
  EXPECT_EQ(names.size(), static_cast<size_t>(kManyChunks));
  std::set<std::string> unique(names.begin(), names.end());
  EXPECT_EQ(unique.size(), static_cast<size_t>(kManyChunks)) << "no entry twice across pages";
  EXPECT_TRUE(unique.count("big") == 0 && unique.count("0.4999") == 1);
  EXPECT_GE(view_.list_pages(), 5) << "the listing was read from the view in pages";
}

TEST_F(FuseMountTest, ListingGivesKnownSizesSoStatsNeedNoLookups) {
  ASSERT_TRUE(Mount());
  ReadDirNames(mnt_ / "img/0");
  EXPECT_EQ(fs::file_size(mnt_ / "img/0/0.1"), kSliceLength);
  EXPECT_EQ(fs::file_size(mnt_ / "img/0/0.0"), memory_chunk_.size());
  EXPECT_EQ(view_.stat_calls("img/0/0.1"), 0) << "the listing carried the size";
  EXPECT_EQ(view_.stat_calls("img/0/0.0"), 0) << "the listing carried the size";
  // Metadata sizes are not in listings: the kernel asks.
  EXPECT_EQ(fs::file_size(mnt_ / "img/0/.zarray"), std::strlen(R"({"zarr_format":2,"shape":[1]})"));
  EXPECT_EQ(view_.stat_calls("img/0/.zarray"), 1);
}

TEST_F(FuseMountTest, ReadsReturnTheValuesBytes) {
  ASSERT_TRUE(Mount());
  EXPECT_EQ(ReadWhole(mnt_ / "img/0/0.0"), memory_chunk_);
  EXPECT_EQ(ReadWhole(mnt_ / "img/0/.zarray"), R"({"zarr_format":2,"shape":[1]})");
  EXPECT_EQ(ReadWhole(mnt_ / "img/0/empty"), "");
  EXPECT_EQ(ReadWhole(mnt_ / "odd name/a b"), "x");
  std::string slice = ReadWhole(mnt_ / "img/0/0.1");
  EXPECT_TRUE(slice == FileBytes(source_, kSliceOffset, kSliceLength)) << "slice bytes differ";
}

TEST_F(FuseMountTest, RandomPreadsOfASliceMatchTheSourceFile) {
  ASSERT_TRUE(Mount());
  int fd = ::open((mnt_ / "img/0/0.1").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  std::mt19937 gen(1);
  for (int i = 0; i < 50; ++i) {
    uint64_t offset = gen() % (kSliceLength + 100);
    size_t length = 1 + gen() % 20000;
    std::string buf(length, '\0');
    ssize_t n = ::pread(fd, buf.data(), length, static_cast<off_t>(offset));
    ASSERT_GE(n, 0);
    buf.resize(static_cast<size_t>(n));
    uint64_t expected = offset >= kSliceLength ? 0 : std::min<uint64_t>(length, kSliceLength - offset);
    ASSERT_EQ(static_cast<uint64_t>(n), expected) << "at " << offset;
    EXPECT_TRUE(buf == FileBytes(source_, kSliceOffset + offset, expected)) << "at " << offset;
  }
  ::close(fd);
  // Slices went from the source file to the kernel; the view never copied them.
  EXPECT_EQ(view_.materialize_calls(), 0);
}

TEST_F(FuseMountTest, AValueLargerThanOneKernelReadIsFetchedOnce) {
  const std::string big = RandomBytes(3 << 20, 9);
  view_.AddBytes("img/0/big", big);
  ASSERT_TRUE(Mount());
  EXPECT_TRUE(ReadWhole(mnt_ / "img/0/big") == big) << "bytes differ";
  // The kernel asks in pieces of at most 1 MiB; the value is copied out of the view once.
  EXPECT_EQ(view_.get_calls("img/0/big"), 1);
}

// A view that moved to a new state of its index (a re-index) changes what a key holds without
// any source changing: once the attributes expire, the kernel sees the new state's mtime and drops
// the pages it cached, and the mount drops the values it kept, so the new bytes are read.
TEST_F(FuseMountTest, AValueChangedByAReindexIsReadAnewOnceAttributesExpire) {
  const std::string before = RandomBytes(3 << 20, 21), after = RandomBytes(3 << 20, 22);
  view_.AddBytes("img/0/re", before);
  view_.set_version({1, 1'000'000'000'000'000'000});
  MountOptions options;
  options.revalidate_seconds = 0.2;
  ASSERT_TRUE(Mount(options));
  ASSERT_TRUE(ReadWhole(mnt_ / "img/0/re") == before);
  ASSERT_TRUE(ReadWhole(mnt_ / "img/0/re") == before);  // now from the page cache
  struct stat st {};
  ASSERT_EQ(::stat((mnt_ / "img/0/re").c_str(), &st), 0);
  EXPECT_EQ(st.st_mtim.tv_sec, 1'000'000'000);
  view_.AddBytes("img/0/re", after);  // same size: only the mtime tells
  view_.set_version({2, 1'000'000'005'000'000'000});
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_TRUE(ReadWhole(mnt_ / "img/0/re") == after) << "the mount served the old state's bytes";
  ASSERT_EQ(::stat((mnt_ / "img/0/re").c_str(), &st), 0);
  EXPECT_EQ(st.st_mtim.tv_sec, 1'000'000'005);
}

// Each slice holds its own handle of its source (as a view's SourcePool hands them out, dropping
// its own reference when it closes the least recently used; SourcePoolTest covers that).
TEST_F(FuseMountTest, SlicesOfManySourcesAreRightUnderConcurrentReads) {
  constexpr int kSources = 8, kSlicesPerSource = 6, kThreads = 4;
  std::vector<std::pair<std::string, std::string>> expected;  // key, bytes
  for (int s = 0; s < kSources; ++s) {
    fs::path source = dir_ / ("source" + std::to_string(s) + ".bin");
    std::ofstream(source, std::ios::binary) << RandomBytes(200000, 100 + s);
    for (int i = 0; i < kSlicesPerSource; ++i) {
      std::string key = "many/" + std::to_string(s) + "." + std::to_string(i);
      view_.AddSlice(key, FakeZarrView::LocalSlice(source, 1000u + 30000u * i, 25000));
      expected.emplace_back(key, FileBytes(source, 1000u + 30000u * i, 25000));
    }
  }
  ASSERT_TRUE(Mount(MountOptions{}));
  std::atomic<int> wrong{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < kThreads; ++t) {
    readers.emplace_back([&, t] {
      // Interleaved so that the threads ask for different sources at the same time.
      for (size_t i = t; i < expected.size(); i += kThreads) {
        if (ReadWhole(mnt_ / expected[i].first) != expected[i].second) ++wrong;
      }
    });
  }
  for (std::thread& r : readers) r.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST_F(FuseMountTest, ModificationsFailWithEROFS) {
  ASSERT_TRUE(Mount());
  auto expect_erofs = [](int rc, const char* what) {
    EXPECT_EQ(rc, -1) << what;
    EXPECT_EQ(errno, EROFS) << what << ": " << std::strerror(errno);
  };
  expect_erofs(::open((mnt_ / "img/0/0.0").c_str(), O_WRONLY), "open for writing");
  expect_erofs(::open((mnt_ / "img/0/0.0").c_str(), O_RDWR), "open read-write");
  expect_erofs(::open((mnt_ / "img/0/new").c_str(), O_WRONLY | O_CREAT, 0644), "create");
  expect_erofs(::mkdir((mnt_ / "img/new").c_str(), 0755), "mkdir");
  expect_erofs(::unlink((mnt_ / "img/0/0.0").c_str()), "unlink");
  expect_erofs(::rmdir((mnt_ / "img/0").c_str()), "rmdir");
  expect_erofs(::rename((mnt_ / "img/0/0.0").c_str(), (mnt_ / "img/0/0.9").c_str()), "rename");
  expect_erofs(::truncate((mnt_ / "img/0/0.0").c_str(), 0), "truncate");
  expect_erofs(::chmod((mnt_ / "img/0/0.0").c_str(), 0777), "chmod");
  EXPECT_EQ(ReadWhole(mnt_ / "img/0/0.0"), memory_chunk_) << "nothing changed";
}

TEST_F(FuseMountTest, StaleSourceFailsReadsWithEIOAndNamesIt) {
  ASSERT_TRUE(Mount());
  EXPECT_EQ(fs::file_size(mnt_ / "bad/0.0"), 77u) << "stat needs no source";
  // Opens never reach the view (the kernel's no-open mode); every read that misses the page cache
  // does, and this one fails.
  int fd = ::open((mnt_ / "bad/0.0").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  char buf[16];
  EXPECT_EQ(::read(fd, buf, sizeof buf), -1);
  EXPECT_EQ(errno, EIO);
  ::close(fd);
  EXPECT_NE(errors_.str().find(source_.string()), std::string::npos) << errors_.str();
}

TEST_F(FuseMountTest, ConcurrentReadersGetCorrectBytes) {
  ASSERT_TRUE(Mount());
  const std::string slice = FileBytes(source_, kSliceOffset, kSliceLength);
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        bool use_slice = (i + t) % 2 == 0;
        std::string got = ReadWhole(mnt_ / (use_slice ? "img/0/0.1" : "img/0/0.0"));
        if (got != (use_slice ? slice : memory_chunk_)) ++wrong;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST_F(FuseMountTest, RecursiveCopyReproducesTheTree) {
  ASSERT_TRUE(Mount());
  fs::path copy = dir_ / "copy";
  std::string cmd = "cp -r '" + (mnt_ / "img").string() + "' '" + copy.string() + "'";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  EXPECT_EQ(ReadWhole(copy / "0/0.0"), memory_chunk_);
  EXPECT_TRUE(ReadWhole(copy / "0/0.1") == FileBytes(source_, kSliceOffset, kSliceLength));
  EXPECT_EQ(ReadWhole(copy / ".zattrs"), R"({"multiscales":[]})");
}

TEST_F(FuseMountTest, UnmountDetachesAndIsIdempotent) {
  ASSERT_TRUE(Mount());
  ASSERT_TRUE(IsMountPoint(mnt_));
  auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(mount_->Unmount().ok());
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 5.0);
  EXPECT_FALSE(IsMountPoint(mnt_));
  EXPECT_FALSE(fs::exists(mnt_ / ".zgroup"));
  EXPECT_TRUE(mount_->Unmount().ok());
}

TEST_F(FuseMountTest, ExternalFusermountEndsTheMount) {
  ASSERT_TRUE(Mount());
  std::string cmd = "fusermount3 -u '" + mnt_.string() + "'";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  EXPECT_FALSE(IsMountPoint(mnt_));
  auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(mount_->Unmount().ok());  // The loop has ended; this only joins.
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 5.0);
}

TEST_F(FuseMountTest, EveryEIOIsLoggedWithItsKeyAndReason) {
  view_.AddListError("img", IoError("disk on fire"));
  ASSERT_TRUE(Mount());
  EXPECT_TRUE(ReadDirNames(mnt_ / "img").empty());
  std::ifstream in(mnt_ / "bad/0.0");
  char c;
  EXPECT_FALSE(in.read(&c, 1));
  const std::string text = errors_.str();
  EXPECT_NE(text.find("refzarr mount: list img: disk on fire\n"), std::string::npos) << text;
  EXPECT_NE(text.find("refzarr mount: read bad/0.0: source " + source_.string()), std::string::npos)
      << text;
}

// libfuse mounts over a file and over a mount point; both leave a broken or hidden mount.
TEST_F(FuseMountTest, MountOnAFileIsRefused) {
  fs::path file = dir_ / "file";
  std::ofstream(file) << "x";
  MountOptions options;
  options.mountpoint = file;
  auto mount = StartFuseMount(view_, options);
  ASSERT_FALSE(mount.ok());
  EXPECT_EQ(mount.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(mount.status().message().find(file.string() + ": not a directory"), std::string::npos)
      << mount.status().message();
  EXPECT_FALSE(IsMountPoint(file));
}

TEST_F(FuseMountTest, MountOnAMountPointIsRefused) {
  ASSERT_TRUE(Mount());
  MountOptions options;
  options.mountpoint = mnt_;
  auto second = StartFuseMount(view_, options);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find("already a mount point"), std::string::npos)
      << second.status().message();
  EXPECT_EQ(ReadWhole(mnt_ / "img/0/0.0"), memory_chunk_) << "the first mount still serves";
}

TEST_F(FuseMountTest, MountOnANonEmptyDirectoryWarns) {
  std::ofstream(mnt_ / "hidden") << "x";
  ASSERT_TRUE(Mount());
  EXPECT_NE(errors_.str().find(mnt_.string() + " is not empty"), std::string::npos)
      << errors_.str();
  EXPECT_FALSE(fs::exists(mnt_ / "hidden"));
}

TEST_F(FuseMountTest, MountOnAMissingDirectoryIsAClearError) {
  MountOptions options;
  options.mountpoint = dir_ / "does-not-exist";
  auto mount = StartFuseMount(view_, options);
  ASSERT_FALSE(mount.ok());
  EXPECT_NE(mount.status().message().find("does-not-exist"), std::string::npos);
}

// A real index through the kernel: once its source changes, the file's metadata, listings and
// chunks all fail with EIO (zarr-python would otherwise open the array and read fill values), and
// each failure is logged naming the source.
TEST_F(FuseMountTest, AStaleSourceFailsMetadataListingsAndChunksWithEIO) {
  fs::path data = dir_ / "data.bin";
  std::ofstream(data, std::ios::binary) << RandomBytes(64, 1);
  fs::path index = dir_ / "v.refs.db";
  {
    auto store = OpenRefStore(index, OpenMode::kReadWrite);
    ASSERT_TRUE(store.ok());
    ScannedFile f;
    ScannedFile::Array a;
    a.path = "0";
    a.desc.shape = {4, 6};
    a.desc.chunks = {2, 3};
    a.desc.dtype = DType::Make('u', 1, '|');
    for (uint64_t i : {0, 1, 2, 3}) a.chunks.emplace_back(i, ChunkRef{0, i * 6, 6, 0});
    f.arrays.push_back(a);
    auto source = ProbeSource(FileUri(data));
    ASSERT_TRUE(source.ok());
    ASSERT_TRUE((*store)->PutFile(*source, "f.bin", "test", f, {}).ok());
  }
  auto view = OpenZarrView(index, ViewOptions{});
  ASSERT_TRUE(view.ok()) << view.status().message();
  MountOptions options;
  options.mountpoint = mnt_;
  options.error_log = &errors_;
  options.revalidate_seconds = 0;  // Every open looks the path up again.
  auto mount = StartFuseMount(**view, options);
  ASSERT_TRUE(mount.ok()) << mount.status().message();
  EXPECT_EQ(ReadWhole(mnt_ / "f.bin/0/0/0").size(), 6u);
  EXPECT_FALSE(ReadWhole(mnt_ / "f.bin/0/.zarray").empty());

  fs::last_write_time(data, fs::last_write_time(data) + std::chrono::seconds(3));
  auto expect_eio = [&](const fs::path& path) {
    errno = 0;
    int fd = ::open(path.c_str(), O_RDONLY);
    int err = errno;
    if (fd >= 0) {
      char buf[64];
      ssize_t n = ::read(fd, buf, sizeof buf);
      err = n < 0 ? errno : 0;
      ::close(fd);
    }
    EXPECT_EQ(err, EIO) << path << ": " << std::strerror(err);
  };
  for (const char* key : {"f.bin/0/.zarray", "f.bin/0/.zattrs", "f.bin/.zattrs", "f.bin/.zgroup",
                          "f.bin/.zmetadata", "f.bin/0/1/1"}) {
    expect_eio(mnt_ / key);
  }
  errno = 0;
  DIR* d = ::opendir((mnt_ / "f.bin/0").c_str());
  EXPECT_EQ(d, nullptr);
  EXPECT_EQ(errno, EIO);
  if (d != nullptr) ::closedir(d);
  EXPECT_NE(ReadDirNames(mnt_).size(), 0u) << "the folder above the file stays readable";
  (*mount)->Unmount().IgnoreError();
  const std::string text = errors_.str();
  EXPECT_NE(text.find(data.string() + " changed since it was indexed"), std::string::npos) << text;
}

}  // namespace
}  // namespace refzarr
