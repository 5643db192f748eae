// The HDF5 scanner reading through the ByteSource file driver from sources that are not local
// files: every sample and real-world file scanned from memory, under a URI that is not file://,
// records exactly what the scan of the local file records; a failed read anywhere fails the scan
// naming the source; a virtual dataset finds its sources beside it through the openers. The
// local files are removed before the remote-like scans, so nothing can be read from the disk.
#include "tests/support/memory_opener.h"
#include "formats/hdf5/byte_source_vfd.h"

#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <iostream>
#include <map>

#include "formats/hdf5/hdf5_dataset.h"
#include "formats/hdf5/hdf5_scanner.h"
#include "samples/hdf5/hdf5_samples.h"
#include "tests/formats/hdf5/hdf5_test_util.h"

namespace refzarr {
namespace {

namespace fs = std::filesystem;
using internal::H5Id;
using testing_hdf5::ChunksOf;

constexpr std::string_view kBucket = "mem://bucket/dir/";

// Counts the reads made through it (calls and bytes); fails the read numbered `fail_at` (1-based,
// counted over every source sharing `counter`) with kIo, and with `keep_failing` every later one.
struct ReadCounter {
  std::atomic<uint64_t> reads{0}, bytes{0};
  uint64_t fail_at = 0;  // 0: never
  bool keep_failing = false;
};

class CountingSource final : public ByteSource {
 public:
  CountingSource(std::unique_ptr<ByteSource> inner, ReadCounter& counter)
      : inner_(std::move(inner)), counter_(counter) {}
  Result<SourceStat> Stat() override { return inner_->Stat(); }
  Status ReadInto(ByteRange range, std::span<std::byte> out) override {
    const uint64_t n = ++counter_.reads;
    counter_.bytes += range.length;
    if (n == counter_.fail_at || (counter_.keep_failing && counter_.fail_at != 0 && n > counter_.fail_at)) return IoError(Describe() + ": injected failure of read " + std::to_string(n));
    return inner_->ReadInto(range, out);
  }
  std::string Describe() const override { return inner_->Describe(); }

 private:
  std::unique_ptr<ByteSource> inner_;
  ReadCounter& counter_;
};

// The "mem" objects of the tests (tests/support/memory_opener.h); their sources count their
// reads in `counter`.
class MemoryOpener final : public testing::MemoryOpener {
 public:
  mutable ReadCounter counter;
  MemoryOpener() {
    wrap = [this](std::unique_ptr<ByteSource> s) -> std::unique_ptr<ByteSource> {
      return std::make_unique<CountingSource>(std::move(s), counter);
    };
  }
};

std::vector<std::byte> FileBytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::string s((std::istreambuf_iterator<char>(in)), {});
  const auto* b = reinterpret_cast<const std::byte*>(s.data());
  return std::vector<std::byte>(b, b + s.size());
}

// A remote-like copy of the folder `root`: every file under it, as mem://bucket/dir/<relative>.
struct MemoryBucket {
  SourceOpeners openers;
  MemoryOpener* mem;

  explicit MemoryBucket(const fs::path& root) : openers(Make(root, &mem)) {}
  static std::vector<std::unique_ptr<SourceOpener>> Make(const fs::path& root, MemoryOpener** out) {
    auto opener = std::make_unique<MemoryOpener>();
    for (const auto& e : fs::recursive_directory_iterator(root)) {
      if (!e.is_regular_file()) continue;
      opener->objects[UriOf(root, e.path())] = FileBytes(e.path());
    }
    *out = opener.get();
    std::vector<std::unique_ptr<SourceOpener>> v;
    v.push_back(std::move(opener));
    return v;
  }
  static std::string UriOf(const fs::path& root, const fs::path& file) {
    return std::string(kBucket) + PercentEncodePath(fs::relative(file, root).generic_string());
  }
};

// Scans `uri` from the bucket (no local file involved: the source is an in-memory copy).
Result<ScannedFile> ScanFromBucket(const MemoryBucket& bucket, const std::string& uri) {
  ASSIGN_OR_RETURN(auto source, bucket.openers.Open(uri));
  RecordingSink sink;
  RETURN_IF_ERROR(MakeHdf5Scanner()->Scan(*source, ScanContext(uri, bucket.openers), sink));
  RETURN_IF_ERROR(sink.Finish());
  return std::move(sink).result();
}

// Messages name files: the local scan by path or file URI, the bucket's by mem:// URI. Both
// become "<dir>/".
std::string Normalised(std::string s, const fs::path& root) {
  const std::string dir = root.string() + "/";
  const std::string forms[] = {"memory:" + std::string(kBucket), std::string(kBucket), "file:" + dir,
                               FileUri(root) + "/", dir};
  for (const std::string& from : forms) {
    for (size_t at; (at = s.find(from)) != std::string::npos;) s.replace(at, from.size(), "<dir>/");
  }
  // mem:// URIs are shown percent-encoded ("vchoi-hdfgroup%2Bhdf5"), local paths are not.
  for (size_t at; (at = s.find("%2B")) != std::string::npos;) s.replace(at, 3, "+");
  return s;
}

// Every field of two recordings, one from the local file and one from the bucket, is the same
// (file names in messages and companion URIs compared after Normalised).
void ExpectSameScan(const ScannedFile& local, const ScannedFile& remote, const fs::path& root) {
  auto norm = [&](const std::string& s) { return Normalised(s, root); };
  ASSERT_EQ(local.companions.size(), remote.companions.size());
  for (size_t i = 0; i < local.companions.size(); ++i) {
    EXPECT_EQ(norm(local.companions[i]), norm(remote.companions[i]));
    EXPECT_TRUE(remote.companions[i].starts_with(kBucket)) << remote.companions[i];
  }
  ASSERT_EQ(local.groups.size(), remote.groups.size());
  for (size_t i = 0; i < local.groups.size(); ++i) {
    const auto &a = local.groups[i], &b = remote.groups[i];
    SCOPED_TRACE("group " + a.path);
    EXPECT_EQ(a.path, b.path);
    EXPECT_EQ(a.attributes, b.attributes);
    ASSERT_EQ(a.image.has_value(), b.image.has_value());
    if (a.image) {
      EXPECT_EQ(a.image->ToJson(), b.image->ToJson());
    }
  }
  ASSERT_EQ(local.arrays.size(), remote.arrays.size());
  for (size_t i = 0; i < local.arrays.size(); ++i) {
    const auto &a = local.arrays[i], &b = remote.arrays[i];
    SCOPED_TRACE("array " + a.path);
    EXPECT_EQ(a.path, b.path);
    EXPECT_EQ(a.desc.ToJson(), b.desc.ToJson());
    EXPECT_EQ(a.desc.shape, b.desc.shape);
    EXPECT_EQ(a.desc.chunks, b.desc.chunks);
    EXPECT_TRUE(a.desc.dtype == b.desc.dtype);
    EXPECT_EQ(a.desc.fill_value, b.desc.fill_value);
    EXPECT_EQ(a.desc.encoding.filters, b.desc.encoding.filters);
    EXPECT_EQ(a.desc.encoding.compressor, b.desc.encoding.compressor);
    EXPECT_EQ(a.desc.encoding.native, b.desc.encoding.native);
    EXPECT_EQ(a.desc.encoding.decoder, b.desc.encoding.decoder);
    EXPECT_EQ(a.desc.encoding.params, b.desc.encoding.params);
    EXPECT_EQ(a.desc.encoding.stored_order, b.desc.encoding.stored_order);
    EXPECT_EQ(a.desc.dimension_names, b.desc.dimension_names);
    EXPECT_EQ(a.desc.attributes, b.desc.attributes);
    const auto ca = ChunksOf(a), cb = ChunksOf(b);
    EXPECT_TRUE(ca.stored == cb.stored) << ca.stored.size() << " vs " << cb.stored.size() << " stored chunks";
    EXPECT_TRUE(ca.inlined == cb.inlined) << ca.inlined.size() << " vs " << cb.inlined.size() << " inline chunks";
  }
  ASSERT_EQ(local.files.size(), remote.files.size());
  for (size_t i = 0; i < local.files.size(); ++i) {
    EXPECT_EQ(local.files[i].path, remote.files[i].path);
    EXPECT_EQ(local.files[i].bytes, remote.files[i].bytes);
  }
  ASSERT_EQ(local.warnings.size(), remote.warnings.size());
  for (size_t i = 0; i < local.warnings.size(); ++i) EXPECT_EQ(norm(local.warnings[i]), norm(remote.warnings[i]));
  ASSERT_EQ(local.refused.size(), remote.refused.size());
  for (size_t i = 0; i < local.refused.size(); ++i) {
    EXPECT_EQ(local.refused[i].path, remote.refused[i].path);
    EXPECT_EQ(norm(local.refused[i].reason), norm(remote.refused[i].reason));
  }
}

bool IsHdf5(const std::vector<std::byte>& bytes) {
  static constexpr unsigned char kSignature[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
  for (size_t at = 0; at + 8 <= bytes.size(); at = at == 0 ? 512 : at * 2) {
    if (std::memcmp(bytes.data() + at, kSignature, 8) == 0) return true;
  }
  return false;
}

// For every HDF5 file under `root`: the scan of the local file and the scan of its in-memory copy
// under a mem:// URI (its siblings in memory too) record the same; both fail alike. The local
// files are copied to a folder removed before the bucket is scanned.
int ExpectBucketScansLikeLocalFiles(const fs::path& root) {
  auto copy = std::make_unique<testing_hdf5::TempDir>();
  const fs::path root_copy = copy->path();
  fs::copy(root, root_copy, fs::copy_options::recursive);
  std::map<std::string, Result<ScannedFile>> local;
  for (const auto& e : fs::recursive_directory_iterator(root_copy)) {
    if (!e.is_regular_file() || !IsHdf5(FileBytes(e.path()))) continue;
    local.emplace(MemoryBucket::UriOf(root_copy, e.path()), testing_hdf5::ScanHdf5File(e.path()));
  }
  MemoryBucket bucket(root_copy);
  copy.reset();  // nothing local is left to read
  EXPECT_FALSE(fs::exists(root_copy));
  int compared = 0;
  for (const auto& [uri, scan] : local) {
    SCOPED_TRACE(uri);
    auto remote = ScanFromBucket(bucket, uri);
    EXPECT_EQ(scan.ok(), remote.ok()) << (scan.ok() ? remote.status().message() : scan.status().message());
    if (scan.ok() != remote.ok()) continue;
    if (!scan.ok()) {
      EXPECT_EQ(scan.status().code(), remote.status().code());
      EXPECT_EQ(Normalised(scan.status().message(), root_copy), Normalised(remote.status().message(), root_copy));
      continue;
    }
    ExpectSameScan(*scan, *remote, root_copy);
    ++compared;
  }
  return compared;
}

class Hdf5OverByteSource : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing_hdf5::TempDir();
    auto written = samples::WriteHdf5Samples(dir_->path());
    ASSERT_TRUE(written.ok()) << written.status().message();
  }
  static void TearDownTestSuite() { delete dir_; }
  static fs::path Samples() { return dir_->path(); }
  static testing_hdf5::TempDir* dir_;
};
testing_hdf5::TempDir* Hdf5OverByteSource::dir_ = nullptr;

// (a) The generated samples (plain.h5 with its external raw file, userblock.h5, sample.ims,
// bdv.h5 with its XML) from memory under mem://: the same groups, attributes, images, arrays,
// chunk references, inline chunks, companions, warnings and refusals as from the local files.
TEST_F(Hdf5OverByteSource, EverySampleScansFromMemoryAsFromItsLocalFile) {
  EXPECT_EQ(ExpectBucketScansLikeLocalFiles(Samples()), 4);
}

// (a) Every real-world file (virtual datasets with "%b" sources, external storage, userblocks,
// netCDF, damaged files that fail or have refused arrays), the same way.
TEST(Hdf5OverByteSourceRealData, EveryRealDataFileScansFromMemoryAsFromItsLocalFile) {
  const fs::path root = testing_hdf5::RealDataHdf5Dir();
  ASSERT_TRUE(!root.empty() && fs::exists(root)) << "realdata folder missing: " << root;
  EXPECT_GT(ExpectBucketScansLikeLocalFiles(root), 25);
}

// The parity above compares two scans through the driver. Here the driver is compared with the
// library's own (sec2) driver: every dataset of every sample plans and lists its chunks alike.
TEST_F(Hdf5OverByteSource, DatasetsPlanAsThroughTheLibrarysOwnFileDriver) {
  int compared = 0;
  std::vector<fs::path> files = {Samples() / "plain.h5", Samples() / "userblock.h5", Samples() / "sample.ims",
                                 Samples() / "bdv.h5"};
  const fs::path vds = testing_hdf5::RealDataHdf5Dir() / "vchoi-hdfgroup+hdf5/tools/test/h5dump/testfiles/vds/4_vds.h5";
  if (fs::exists(vds)) files.push_back(vds);
  std::lock_guard lock(internal::Hdf5Mutex());
  internal::Hdf5ErrorSilencer quiet;
  for (const fs::path& file : files) {
    SCOPED_TRACE(file.string());
    auto source = OpenLocalFile(file);
    ASSERT_TRUE(source.ok());
    auto info = ReadHdf5Superblock(**source);
    ASSERT_TRUE(info.ok());
    H5Id sec2(H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
    ASSERT_TRUE(sec2.valid());
    auto ours = internal::OpenHdf5OnSource(**source, {ScanContext(file), nullptr});
    ASSERT_TRUE(ours.ok()) << ours.status().message();
    auto plan_all = [&](hid_t f) {
      std::map<std::string, std::pair<std::string, std::map<uint64_t, ChunkRef>>> out;
      internal::Hdf5FileContext ctx{f, source->get(), *info, ScanContext(file), (*source)->Describe(), nullptr,
                                    file.filename().string()};
      for (const std::string& path : testing_hdf5::DatasetPaths(f)) {
        auto plan = internal::PlanDataset(ctx, path);
        H5Eclear2(H5E_DEFAULT);
        if (!plan.ok()) {
          out[path].first = "refused: " + plan.status().message();
          continue;
        }
        out[path].first = plan->array.ToJson().dump();
        Status s = internal::VisitStoredChunks(ctx, *plan, [&](uint64_t index, const ChunkRef& ref) {
          out[path].second.emplace(index, ref);
          return OkStatus();
        });
        if (!s.ok()) out[path].first += " listing failed: " + s.message();
      }
      return out;
    };
    const auto expected = plan_all(sec2.get());
    const auto actual = plan_all(ours->get());
    ASSERT_EQ(expected.size(), actual.size());
    for (const auto& [path, plan] : expected) {
      SCOPED_TRACE(path);
      ASSERT_TRUE(actual.contains(path));
      EXPECT_EQ(plan.first, actual.at(path).first);
      EXPECT_TRUE(plan.second == actual.at(path).second);
      ++compared;
    }
  }
  EXPECT_GT(compared, 40);
}

// The reads the library makes through the driver, for the report and for the block cache that
// will coalesce them: printed, and bounded so that a change multiplying them is noticed.
TEST_F(Hdf5OverByteSource, ReadsAreCountedPerSample) {
  MemoryBucket bucket(Samples());
  for (const char* name : {"plain.h5", "userblock.h5", "sample.ims", "bdv.h5"}) {
    SCOPED_TRACE(name);
    const std::string uri = std::string(kBucket) + name;
    bucket.mem->counter.reads = 0;
    bucket.mem->counter.bytes = 0;
    auto scan = ScanFromBucket(bucket, uri);
    ASSERT_TRUE(scan.ok()) << scan.status().message();
    const uint64_t size = bucket.mem->objects.at(uri).size();
    std::cout << name << ": " << size << " bytes, " << scan->arrays.size() << " arrays, " << scan->ChunkCount()
              << " chunks: " << bucket.mem->counter.reads << " reads of " << bucket.mem->counter.bytes
              << " bytes\n";
    EXPECT_GT(bucket.mem->counter.reads, 0u);
    EXPECT_LT(bucket.mem->counter.reads, 5000u);
  }
}

// (b) Whichever read fails (each one in turn, over the whole scan of the file and of the sources
// beside it), the scan fails with kIo naming the source and the failure: never a success with
// part of the file, never a crash.
void ExpectEveryFailedReadFailsTheScan(const fs::path& root, const std::string& name) {
  MemoryBucket bucket(root);
  const std::string uri = std::string(kBucket) + name;
  auto clean = ScanFromBucket(bucket, uri);
  ASSERT_TRUE(clean.ok()) << clean.status().message();
  const uint64_t reads = bucket.mem->counter.reads;
  ASSERT_GT(reads, 3u);
  const ssize_t open_before = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
  for (uint64_t k = 1; k <= reads; ++k) {
    SCOPED_TRACE("read " + std::to_string(k) + " of " + std::to_string(reads) + " fails");
    bucket.mem->counter.reads = 0;
    bucket.mem->counter.fail_at = k;
    auto scan = ScanFromBucket(bucket, uri);
    ASSERT_FALSE(scan.ok()) << "the scan succeeded with " << scan->arrays.size() << " arrays";
    EXPECT_EQ(scan.status().code(), StatusCode::kIo) << scan.status().message();
    const std::string m = scan.status().message();
    EXPECT_NE(m.find("injected failure of read " + std::to_string(k)), std::string::npos) << m;
    EXPECT_NE(m.find("memory:mem://bucket/dir/"), std::string::npos) << m;
    // Nothing is left open: every file, dataset, group, type and property list was closed.
    EXPECT_EQ(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL), open_before) << m;
  }
}

TEST_F(Hdf5OverByteSource, AFailedReadAnywhereFailsTheScanNamingTheSource) {
  for (const char* name : {"plain.h5", "sample.ims", "bdv.h5"}) {
    SCOPED_TRACE(name);
    ExpectEveryFailedReadFailsTheScan(Samples(), name);
  }
}

TEST(Hdf5OverByteSourceRealData, AFailedReadOfAVirtualDatasetsSourceFailsTheScan) {
  const fs::path dir = testing_hdf5::RealDataHdf5Dir() / "vchoi-hdfgroup+hdf5/tools/test/h5dump/testfiles/vds";
  ASSERT_TRUE(fs::exists(dir / "4_vds.h5")) << "realdata file missing";
  ExpectEveryFailedReadFailsTheScan(dir, "4_vds.h5");
}

// A failed read is an HDF5 error too, with the source's name and message, for callers of the
// library other than the scanner.
TEST_F(Hdf5OverByteSource, AFailedReadIsAnHdf5ErrorNamingTheSource) {
  MemoryBucket bucket(Samples());
  auto source = bucket.openers.Open(std::string(kBucket) + "plain.h5");
  ASSERT_TRUE(source.ok());
  std::lock_guard lock(internal::Hdf5Mutex());
  internal::Hdf5ErrorSilencer quiet;
  bucket.mem->counter.reads = 0;
  bucket.mem->counter.fail_at = 1;
  bucket.mem->counter.keep_failing = true;
  auto file = internal::OpenHdf5OnSource(**source);
  ASSERT_FALSE(file.ok());
  EXPECT_EQ(file.status().message().find("open with the HDF5 library: "), 0u) << file.status().message();
  // (without a latch the open is retried in SWMR-read mode, whose first read fails too)
  EXPECT_NE(file.status().message().find("driver read request failed; memory:mem://bucket/dir/plain.h5: injected failure of read "),
            std::string::npos)
      << file.status().message();
  bucket.mem->counter.fail_at = 0;
  auto ok = internal::OpenHdf5OnSource(**source);
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  // The file's access properties carry a copy of the driver's info (fapl_get, fapl_copy,
  // fapl_free), which opens the same source again: the library shares the open file.
  H5Id fapl(H5Fget_access_plist(ok->get()));
  ASSERT_TRUE(fapl.valid());
  const uint64_t reads = bucket.mem->counter.reads;
  H5Id again(H5Fopen("/byte-source/memory:mem:||bucket|dir|plain.h5", H5F_ACC_RDONLY, fapl.get()));
  ASSERT_TRUE(again.valid()) << internal::FromHdf5(StatusCode::kCorrupt, "reopen").message();
  EXPECT_EQ(bucket.mem->counter.reads, reads);  // shared: its superblock is not read again
}

// (c) A virtual dataset whose "%b" sources sit beside it under a mem:// URI: the library (for the
// extent) and the scanner (for the chunks) both open them through the openers, the array
// references their chunks, and its companions are their mem:// URIs.
TEST(Hdf5OverByteSourceRealData, VirtualDatasetSourcesOpenBesideItThroughTheOpeners) {
  const fs::path dir = testing_hdf5::RealDataHdf5Dir() / "vchoi-hdfgroup+hdf5/tools/test/h5dump/testfiles/vds";
  ASSERT_TRUE(fs::exists(dir / "4_vds.h5")) << "realdata file missing";
  MemoryBucket bucket(dir);
  const std::string uri = std::string(kBucket) + "4_vds.h5";
  auto scanned = ScanFromBucket(bucket, uri);
  ASSERT_TRUE(scanned.ok()) << scanned.status().message();
  const ScannedFile& scan = *scanned;
  const auto* a = scan.FindArray("vds_dset");
  ASSERT_NE(a, nullptr) << (scan.warnings.empty() ? "" : scan.warnings[0]);
  EXPECT_EQ(scan.companions, (std::vector<std::string>{std::string(kBucket) + "4_0.h5", std::string(kBucket) + "4_1.h5",
                                                        std::string(kBucket) + "4_2.h5"}));
  EXPECT_EQ(a->desc.shape, (std::vector<uint64_t>{9, 4, 4}));  // the extent found from 3 sources
  EXPECT_EQ(a->chunks.size(), 9u);
  for (const auto& [i, ref] : a->chunks) EXPECT_EQ(ref.source, i / 3 + 1);
  // The sources were opened through the opener; the first missing one ends the "%b" series.
  auto opened = [&](const std::string& name) {
    return std::count(bucket.mem->opened.begin(), bucket.mem->opened.end(), std::string(kBucket) + name);
  };
  EXPECT_GE(opened("4_0.h5"), 2);  // by the library for the extent and by the scanner
  EXPECT_GE(opened("4_3.h5"), 1);
  // Without its sources: refused, naming the first missing source, not a crash or a local read.
  for (const char* name : {"4_0.h5", "4_1.h5", "4_2.h5"}) bucket.mem->objects.erase(std::string(kBucket) + name);
  auto bare = ScanFromBucket(bucket, uri);
  ASSERT_TRUE(bare.ok()) << bare.status().message();
  EXPECT_EQ(bare->FindArray("vds_dset") == nullptr || bare->FindArray("vds_dset")->chunks.empty(), true);
}

// A virtual dataset written here, its source in a subfolder (a fixed mapping, which the library
// does not open while it describes the dataset): found beside it under mem://.
TEST(Hdf5OverByteSourceVirtual, SourcesInASubfolderResolveBesideTheFile) {
  testing_hdf5::TempDir dir;
  fs::create_directories(dir.path() / "parts");
  {
    H5Id f(H5Fcreate((dir.path() / "parts/src.h5").c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
    hsize_t dims[2] = {8, 6}, chunk[2] = {4, 3};
    H5Id space(H5Screate_simple(2, dims, nullptr));
    H5Id dcpl(H5Pcreate(H5P_DATASET_CREATE));
    H5Pset_chunk(dcpl.get(), 2, chunk);
    H5Id d(H5Dcreate2(f.get(), "data", H5T_STD_I32LE, space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT));
    std::vector<int32_t> v(48);
    for (int i = 0; i < 48; ++i) v[i] = i * 7;
    ASSERT_GE(H5Dwrite(d.get(), H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()), 0);
  }
  {
    H5Id f(H5Fcreate((dir.path() / "vds.h5").c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
    hsize_t vdims[2] = {16, 6}, sdims[2] = {8, 6};
    H5Id vspace(H5Screate_simple(2, vdims, nullptr));
    H5Id sspace(H5Screate_simple(2, sdims, nullptr));
    hsize_t start[2] = {8, 0}, count[2] = {1, 1}, block[2] = {8, 6};
    H5Sselect_hyperslab(vspace.get(), H5S_SELECT_SET, start, nullptr, count, block);
    H5Id dcpl(H5Pcreate(H5P_DATASET_CREATE));
    ASSERT_GE(H5Pset_virtual(dcpl.get(), vspace.get(), "parts/src.h5", "/data", sspace.get()), 0);
    H5Id all(H5Screate_simple(2, vdims, nullptr));
    H5Id d(H5Dcreate2(f.get(), "v", H5T_STD_I32LE, all.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT));
    ASSERT_TRUE(d.valid());
  }
  auto local = testing_hdf5::ScanHdf5File(dir.path() / "vds.h5");
  ASSERT_TRUE(local.ok()) << local.status().message();
  MemoryBucket bucket(dir.path());
  auto remote = ScanFromBucket(bucket, std::string(kBucket) + "vds.h5");
  ASSERT_TRUE(remote.ok()) << remote.status().message();
  ASSERT_NE(remote->FindArray("v"), nullptr) << (remote->refused.empty() ? "" : remote->refused[0].reason);
  EXPECT_EQ(remote->companions, (std::vector<std::string>{std::string(kBucket) + "parts/src.h5"}));
  EXPECT_EQ(remote->FindArray("v")->chunks.size(), 4u);
  ExpectSameScan(*local, *remote, dir.path());
}

// Bytes without a URI (an in-memory source alone) scan too; only what lies beside them cannot be
// found (plain.h5's external raw file: that array is refused, saying why).
TEST_F(Hdf5OverByteSource, BytesWithoutAUriScanAndRefuseOnlyWhatNeedsASibling) {
  auto source = MakeMemorySource(FileBytes(Samples() / "plain.h5"), "plain.h5");
  RecordingSink sink;
  ASSERT_TRUE(MakeHdf5Scanner()->Scan(*source, ScanContext{}, sink).ok());
  ASSERT_TRUE(sink.Finish().ok());
  const ScannedFile& scan = sink.result();
  EXPECT_NE(scan.FindArray("chunked/gzip_shuffle"), nullptr);
  EXPECT_TRUE(scan.companions.empty());
  ASSERT_EQ(scan.refused.size(), 1u);
  EXPECT_NE(scan.refused[0].reason.find("external raw data file plain_external.raw cannot be opened: the scanned bytes have no URI"), std::string::npos)
      << scan.refused[0].reason;
}

// Bytes that are not HDF5 fail as corrupt, through the driver as through the library's own.
TEST(Hdf5OverByteSourceVirtual, BytesThatAreNotHdf5FailAsCorrupt) {
  auto source = MakeMemorySource(std::vector<std::byte>(4096), "zeros");
  RecordingSink sink;
  Status s = MakeHdf5Scanner()->Scan(*source, ScanContext("mem://bucket/zeros.h5", LocalSourceOpeners()), sink);
  EXPECT_EQ(s.code(), StatusCode::kCorrupt) << s.message();
}

}  // namespace
}  // namespace refzarr
