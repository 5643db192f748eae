// Hostile HDF5 files (samples/hdf5/hdf5_hostile_samples.h): each is refused, or fails as a whole,
// with a reason naming the damage, in bounded time and memory; the rest of the file is indexed.
// Scans run in a child process, so a hang or an unbounded allocation fails the test, not the run.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>

#include "formats/hdf5/hdf5_dataset.h"
#include "samples/hdf5/hdf5_hostile_samples.h"
#include "tests/formats/hdf5/hdf5_test_util.h"

namespace refzarr {
namespace {

using testing_hdf5::ChildScan;
using testing_hdf5::ScanInChild;
using testing_hdf5::TempDir;

constexpr auto kTimeLimit = std::chrono::seconds(20);
constexpr uint64_t kMemoryLimit = 1ull << 30;

class Hdf5Hostile : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    auto written = samples::WriteHostileHdf5Samples(dir_->path());
    ASSERT_TRUE(written.ok()) << written.status().message();
    samples_ = new std::vector<samples::HostileHdf5Sample>(std::move(*written));
  }
  static void TearDownTestSuite() {
    delete samples_;
    delete dir_;
  }
  static const samples::HostileHdf5Sample& Sample(const std::string& file) {
    for (const auto& s : *samples_) {
      if (s.file == file) return s;
    }
    static const samples::HostileHdf5Sample kNone;
    ADD_FAILURE() << "no hostile sample " << file;
    return kNone;
  }
  static ChildScan Scan(const std::string& file) { return ScanInChild(dir_->path() / file, kTimeLimit, kMemoryLimit); }
  static std::string Reason(const ChildScan& r, const std::string& array) {
    for (const auto& refusal : r.refused) {
      if (refusal.path == array) return refusal.reason;
    }
    return "";
  }
  static bool Indexed(const ChildScan& r, const std::string& array) {
    return std::find(r.arrays.begin(), r.arrays.end(), array) != r.arrays.end();
  }
  static TempDir* dir_;
  static std::vector<samples::HostileHdf5Sample>* samples_;
};
TempDir* Hdf5Hostile::dir_ = nullptr;
std::vector<samples::HostileHdf5Sample>* Hdf5Hostile::samples_ = nullptr;

TEST_F(Hdf5Hostile, EveryHostileFileIsRefusedByNameInBoundedTimeAndMemory) {
  ASSERT_GE(samples_->size(), 8u);
  for (const auto& s : *samples_) {
    SCOPED_TRACE(s.file);
    const ChildScan r = Scan(s.file);
    ASSERT_NE(r.exit, testing_hdf5::kChildTimedOut) << "no answer within " << kTimeLimit.count() << " s";
    if (s.array.empty()) {
      EXPECT_EQ(r.exit, 1) << "the file should fail as a whole";
      EXPECT_NE(r.error.find(s.reason), std::string::npos) << r.error;
      continue;
    }
    ASSERT_EQ(r.exit, 0) << r.error;
    const std::string reason = Reason(r, s.array);
    EXPECT_NE(reason.find(s.reason), std::string::npos) << "refusal of " << s.array << ": '" << reason << "'";
    EXPECT_FALSE(Indexed(r, s.array)) << "a refused array is not indexed";
    if (!s.intact.empty()) {
      EXPECT_TRUE(Indexed(r, s.intact)) << "the rest of the file is indexed";
    }
    EXPECT_LT(r.seconds, 10.0);
  }
}

// SWMR-read mode retries a bad checksum 100 times with a doubling sleep by default (a superblock
// with a bad checksum took forever): the open that takes over when the plain one fails must give
// up at once. A bad root group header fails when the objects are visited.
TEST_F(Hdf5Hostile, ABadMetadataChecksumFailsTheFileQuicklyWithTheLibrarysReason) {
  const std::pair<const char*, const char*> cases[] = {
      {"bad_superblock_checksum.h5", "open with the HDF5 library: "},
      {"bad_root_header_checksum.h5", "the root group cannot be read (visit the file's objects: "},
  };
  for (const auto& [file, start] : cases) {
    SCOPED_TRACE(file);
    const ChildScan r = Scan(file);
    ASSERT_NE(r.exit, testing_hdf5::kChildTimedOut);
    EXPECT_EQ(r.exit, 1);
    EXPECT_EQ(r.error.find(start), 0u) << r.error;
    EXPECT_NE(r.error.find("incorrect metadata checksum"), std::string::npos) << r.error;
    EXPECT_LT(r.seconds, 5.0);
  }
}

TEST_F(Hdf5Hostile, ReasonsNameTheChunkItsBytesAndTheFileSize) {
  const ChildScan past = Scan("chunk_past_eof.h5");
  ASSERT_EQ(past.exit, 0) << past.error;
  const uint64_t size = std::filesystem::file_size(dir_->path() / "chunk_past_eof.h5");
  EXPECT_EQ(Reason(past, "data"), "chunk (1, 2) at byte " + std::to_string(size + 65536) +
                                      ", 1024 bytes long, ends past the end of the file (" + std::to_string(size) +
                                      " bytes)");
  const ChildScan shortened = Scan("short_chunk.h5");
  ASSERT_EQ(shortened.exit, 0) << shortened.error;
  EXPECT_EQ(Reason(shortened, "data"), "chunk (1, 2) is stored unfiltered in 1000 bytes; a chunk holds 1024");
  const ChildScan huge = Scan("huge_shape.h5");
  ASSERT_EQ(huge.exit, 0) << huge.error;
  EXPECT_EQ(Reason(huge, "data"), "shape [4611686018428387907] of 4-byte elements: its byte count overflows 64 bits");
  const ChildScan index = Scan("bad_index_checksum.h5");
  ASSERT_EQ(index.exit, 0) << index.error;
  EXPECT_NE(Reason(index, "data").find("fixed array data block"), std::string::npos) << Reason(index, "data");
}

// A refusal found late in a dataset's walk, after its references were spilled to disk, still takes
// back the whole array.
TEST_F(Hdf5Hostile, ALateBadChunkTakesBackReferencesAlreadySpilled) {
  auto scan = testing_hdf5::ScanHdf5File(dir_->path() / "chunk_past_eof.h5", /*max_refs_in_memory=*/2);
  ASSERT_TRUE(scan.ok()) << scan.status().message();
  EXPECT_EQ(scan->FindArray("data"), nullptr);
  ASSERT_NE(testing_hdf5::FindRefusal(*scan, "data"), nullptr);
  EXPECT_NE(scan->FindArray("ok"), nullptr);
}

TEST(Hdf5Extent, OverflowingCountsAreRefusedNamingTheShape) {
  ArrayDesc a;
  a.dtype = DType::Make('i', 4);
  a.shape = {uint64_t{1} << 40, uint64_t{1} << 40};
  a.chunks = {1, 1};
  Status s = internal::CheckExtent(a);
  EXPECT_EQ(s.code(), StatusCode::kUnsupported);
  EXPECT_NE(s.message().find("[1099511627776, 1099511627776]"), std::string::npos) << s.message();
  a.shape = {UINT64_MAX};
  a.chunks = {2};
  EXPECT_FALSE(internal::CheckExtent(a).ok());  // the grid's rounding up overflows
  a.shape = {4};
  a.chunks = {uint64_t{1} << 62};
  EXPECT_NE(internal::CheckExtent(a).message().find("chunk byte count"), std::string::npos);
  a.chunks = {2};
  EXPECT_TRUE(internal::CheckExtent(a).ok());
}

}  // namespace
}  // namespace refzarr
