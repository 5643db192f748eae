// The HDF5 scanner against the HDF5 library: every dataset of every real-world file and of the
// generated samples reads back (from the recorded chunk references) exactly as H5Dread returns it,
// or is refused with a warning naming it.
#include "formats/hdf5/hdf5_scanner.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "formats/hdf5/hdf5_decoder.h"
#include "tests/formats/hdf5/hdf5_test_util.h"
#include "tests/formats/hdf5/reassemble.h"
#include "tests/formats/hdf5/recording_sink.h"

namespace refzarr {
namespace {

using internal::H5Id;
using testing_hdf5::RecordingSink;

Status ScanFile(const std::filesystem::path& path, RecordingSink& sink) {
  ASSIGN_OR_RETURN(auto source, OpenLocalFile(path));
  ScanContext ctx{path};
  return MakeHdf5Scanner()->Scan(*source, ctx, sink);
}

struct Tally {
  int compared = 0;   // read back equal to H5Dread
  int refused = 0;    // skipped with a warning
  int unreadable = 0; // the HDF5 library itself cannot read the data (missing plugin)
};

// For one huge array: each recorded chunk, decoded, equals H5Dread of its region. Returns 1 when
// all matched.
int CheckChunkByChunk(hid_t d, hid_t type, const RecordingSink& sink, const RecordingSink::Array& array,
                      const std::filesystem::path& path, std::span<const std::byte> fill, const ChunkDecoder& decoder) {
  const ArrayDesc& a = array.desc;
  const size_t rank = a.shape.size();
  const auto grid = a.GridShape();
  int checked = 0;
  for (const auto& [index, ref] : array.chunks) {
    if (++checked > 200) break;
    auto chunk = testing_hdf5::DecodeChunk(sink, array, path, index, fill, decoder);
    if (!chunk.ok()) {
      ADD_FAILURE() << chunk.status().message();
      return 0;
    }
    auto cc = ChunkCoords(grid, index);
    std::vector<hsize_t> start(rank), count(rank), full(a.chunks.begin(), a.chunks.end());
    for (size_t i = 0; i < rank; ++i) {
      start[i] = cc[i] * a.chunks[i];
      count[i] = std::min<uint64_t>(a.chunks[i], a.shape[i] - start[i]);
    }
    H5Id fspace(H5Dget_space(d));
    H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr);
    // Read into a chunk-shaped buffer so the comparison is byte for byte.
    H5Id mspace(H5Screate_simple(static_cast<int>(rank), full.data(), nullptr));
    std::vector<hsize_t> zero(rank, 0);
    H5Sselect_hyperslab(mspace.get(), H5S_SELECT_SET, zero.data(), nullptr, count.data(), nullptr);
    std::vector<std::byte> expected = *chunk;
    if (H5Dread(d, type, mspace.get(), fspace.get(), H5P_DEFAULT, expected.data()) < 0) {
      ADD_FAILURE() << "H5Dread of chunk " << index << " failed";
      return 0;
    }
    if (expected != *chunk) {
      ADD_FAILURE() << "chunk " << index << " differs from H5Dread";
      return 0;
    }
  }
  return 1;
}

// Compares every dataset of `path` with H5Dread. Returns the tally.
Tally CheckEveryDataset(const std::filesystem::path& path, const RecordingSink& sink) {
  Tally t;
  internal::Hdf5ErrorSilencer quiet;
  H5Id f(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
  if (!f.valid()) f = H5Id(H5Fopen(path.c_str(), H5F_ACC_RDONLY | H5F_ACC_SWMR_READ, H5P_DEFAULT));
  if (!f.valid()) return t;
  auto decoder = MakeHdf5ChunkDecoder();
  for (const std::string& dpath : testing_hdf5::DatasetPaths(f.get())) {
    SCOPED_TRACE(path.string() + ":" + dpath);
    const RecordingSink::Array* array = sink.FindArray(dpath.substr(1));
    if (!array) {
      bool warned = false;
      for (const auto& w : sink.warnings) warned = warned || w.find(dpath) != std::string::npos;
      EXPECT_TRUE(warned) << "dataset neither emitted nor refused";
      ++t.refused;
      continue;
    }
    // External raw files are named relative to the HDF5 file, not to the working directory.
    H5Id dapl(H5Pcreate(H5P_DATASET_ACCESS));
    H5Pset_efile_prefix(dapl.get(), "${ORIGIN}");
    H5Id d(H5Dopen2(f.get(), dpath.c_str(), dapl.get()));
    H5Id type(H5Dget_type(d.get()));
    H5Id dcpl(H5Dget_create_plist(d.get()));
    uint64_t total = array->desc.dtype.size;
    for (uint64_t s : array->desc.shape) total *= s;
    if (H5Tget_size(type.get()) != array->desc.dtype.size) {
      ADD_FAILURE() << "element size differs";
      continue;
    }
    std::vector<std::byte> fill(array->desc.dtype.size);
    if (H5Pget_fill_value(dcpl.get(), type.get(), fill.data()) < 0) {
      H5Eclear2(H5E_DEFAULT);  // undefined fill value: the scanner declares zeros
      std::fill(fill.begin(), fill.end(), std::byte{0});
    }
    if (total > (64u << 20)) {
      // Too big to read whole (tbigdims, tlayouto): check every recorded chunk against the
      // hyperslab H5Dread returns for it.
      t.compared += CheckChunkByChunk(d.get(), type.get(), sink, *array, path, fill, *decoder);
      continue;
    }
    std::vector<std::byte> expected(total);
    if (total > 0 && H5Dread(d.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, expected.data()) < 0) {
      // The library cannot read it (a filter plugin is missing): neither can our decoder, but the
      // scan must still have recorded every chunk.
      H5Eclear2(H5E_DEFAULT);
      ++t.unreadable;
      continue;
    }
    auto actual = testing_hdf5::Reassemble(sink, *array, path, fill, *decoder);
    if (!actual.ok()) {
      ADD_FAILURE() << actual.status().message();
      continue;
    }
    EXPECT_TRUE(*actual == expected) << "array differs from H5Dread";
    ++t.compared;
  }
  return t;
}

TEST(Hdf5Scanner, EveryRealDataDatasetReadsBackAsH5DreadOrIsRefused) {
  auto files = testing_hdf5::RealDataHdf5Files();
  if (files.empty()) GTEST_SKIP() << "no realdata";
  Tally total;
  for (const auto& path : files) {
    SCOPED_TRACE(path.string());
    RecordingSink sink;
    Status s = ScanFile(path, sink);
    if (!s.ok()) {
      // Only files the HDF5 library itself cannot open may fail as a whole.
      internal::Hdf5ErrorSilencer quiet;
      H5Id f(H5Fopen(path.c_str(), H5F_ACC_RDONLY | H5F_ACC_SWMR_READ, H5P_DEFAULT));
      EXPECT_FALSE(f.valid()) << s.message();
      EXPECT_NE(s.message().find(path.string()), std::string::npos) << "message must name the file: " << s.message();
      continue;
    }
    Tally t = CheckEveryDataset(path, sink);
    total.compared += t.compared;
    total.refused += t.refused;
    total.unreadable += t.unreadable;
  }
  EXPECT_GT(total.compared, 120);
  std::cout << "compared " << total.compared << ", refused " << total.refused << ", unreadable by libhdf5 "
            << total.unreadable << "\n";
}

TEST(Hdf5Scanner, RefusalsNameTheFileTheDatasetAndTheReason) {
  auto file = testing_hdf5::RealDataHdf5Dir() / "vchoi-hdfgroup+hdf5/tools/test/h5dump/testfiles/t128bit_float.h5";
  if (!std::filesystem::exists(file)) GTEST_SKIP();
  RecordingSink sink;
  ASSERT_TRUE(ScanFile(file, sink).ok());
  ASSERT_EQ(sink.warnings.size(), 1u);
  EXPECT_NE(sink.warnings[0].find(file.string()), std::string::npos);
  EXPECT_NE(sink.warnings[0].find("/DS1"), std::string::npos);
  EXPECT_NE(sink.warnings[0].find("128-bit floating point"), std::string::npos) << sink.warnings[0];
}

TEST(Hdf5Scanner, UnfilteredEdgeChunksAreFlaggedAndStillReadBack) {
  auto file = testing_hdf5::RealDataHdf5Dir() / "vchoi-hdfgroup+hdf5/tools/test/h5format_convert/testfiles/h5fc_edge_v3.h5";
  if (!std::filesystem::exists(file)) GTEST_SKIP();
  RecordingSink sink;
  ASSERT_TRUE(ScanFile(file, sink).ok());
  const auto* a = sink.FindArray("DSET_EDGE");
  ASSERT_NE(a, nullptr);
  int flagged = 0;
  for (const auto& [i, ref] : a->chunks) flagged += ref.flags != 0;
  EXPECT_EQ(flagged, 4);
  EXPECT_EQ(a->desc.encoding.compressor["id"], "zlib");
  EXPECT_EQ(CheckEveryDataset(file, sink).compared, 1);
}

TEST(Hdf5Scanner, NetCdfDimensionScalesBecomeArrayDimensions) {
  auto file = testing_hdf5::RealDataHdf5Dir() / "fsspec+kerchunk/tests/air.nc";
  if (!std::filesystem::exists(file)) GTEST_SKIP();
  RecordingSink sink;
  ASSERT_TRUE(ScanFile(file, sink).ok());
  const auto* air = sink.FindArray("air");
  ASSERT_NE(air, nullptr);
  EXPECT_EQ(air->desc.attributes["_ARRAY_DIMENSIONS"], nlohmann::json({"time", "lat", "lon"}));
  EXPECT_EQ(sink.FindArray("lat")->desc.attributes["_ARRAY_DIMENSIONS"], nlohmann::json({"lat"}));
  EXPECT_TRUE(air->desc.attributes.contains("scale_factor"));
  EXPECT_FALSE(air->desc.attributes.contains("DIMENSION_LIST"));
}

TEST(Hdf5Scanner, UserblockFileContiguousDataReadsBack) {
  auto file = testing_hdf5::RealDataHdf5Dir() / "vchoi-hdfgroup+hdf5/tools/test/h5jam/testfiles/twithub513.h5";
  if (!std::filesystem::exists(file)) GTEST_SKIP();
  RecordingSink sink;
  ASSERT_TRUE(ScanFile(file, sink).ok());
  Tally t = CheckEveryDataset(file, sink);
  EXPECT_EQ(t.compared, 4);
}

TEST(Hdf5Scanner, ExternalStorageReferencesTheRawFiles) {
  auto file = testing_hdf5::RealDataHdf5Dir() / "vchoi-hdfgroup+hdf5/tools/test/h5repack/testfiles/h5repack_int32le_1d_ex.h5";
  if (!std::filesystem::exists(file)) GTEST_SKIP();
  RecordingSink sink;
  ASSERT_TRUE(ScanFile(file, sink).ok());
  ASSERT_EQ(sink.sources.size(), 2u);
  EXPECT_EQ(sink.sources[0].filename(), "h5repack_int32le_1d_ex-0.dat");
  const auto* a = sink.FindArray("dset");
  ASSERT_NE(a, nullptr);
  for (const auto& [i, ref] : a->chunks) EXPECT_NE(ref.source, 0u);
  EXPECT_EQ(CheckEveryDataset(file, sink).compared, 1);
}

TEST(Hdf5Scanner, NeedsALocalPath) {
  auto source = MakeMemorySource(std::vector<std::byte>(64), "x");
  RecordingSink sink;
  Status s = MakeHdf5Scanner()->Scan(*source, ScanContext{}, sink);
  EXPECT_EQ(s.code(), StatusCode::kUnsupported);
  EXPECT_NE(s.message().find("memory:x"), std::string::npos);
}

TEST(Hdf5Scanner, SniffsTheSignature) {
  auto scanner = MakeHdf5Scanner();
  const unsigned char sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
  EXPECT_TRUE(scanner->Sniff(std::as_bytes(std::span(sig))));
  const unsigned char tiff[8] = {'I', 'I', 42, 0, 8, 0, 0, 0};
  EXPECT_FALSE(scanner->Sniff(std::as_bytes(std::span(tiff))));
}

// Scans `path` in a child process so that a crash or a hang in the HDF5 library or in the chunk
// index reader is caught: returns the child's exit code, -signal, or -1000 on timeout.
int ScanInChild(const std::filesystem::path& path, std::chrono::seconds limit) {
  pid_t pid = fork();
  if (pid == 0) {
    RecordingSink sink;
    Status s = ScanFile(path, sink);
    _exit(s.ok() ? 0 : 1);
  }
  auto deadline = std::chrono::steady_clock::now() + limit;
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (waitpid(pid, &status, WNOHANG) == pid) {
      return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  return -1000;
}

TEST(Hdf5Scanner, NoCrashOrHangOnAnyRealDataFileIncludingCorruptOnes) {
  auto root = testing_hdf5::RealDataHdf5Dir();
  if (root.empty() || !std::filesystem::exists(root)) GTEST_SKIP();
  int files = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(root)) {
    if (!e.is_regular_file()) continue;
    int rc = ScanInChild(e.path(), std::chrono::seconds(20));
    EXPECT_TRUE(rc == 0 || rc == 1) << e.path() << ": child ended with " << rc;
    ++files;
  }
  EXPECT_GT(files, 30);
}

}  // namespace
}  // namespace refzarr
