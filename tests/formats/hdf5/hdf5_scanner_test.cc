// The HDF5 scanner against the HDF5 library: every dataset of every real-world file and of the
// generated samples reads back (from the recorded chunk references) exactly as H5Dread returns it,
// or is refused with a warning naming it.
#include "formats/hdf5/hdf5_scanner.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>

#include "formats/hdf5/hdf5_dataset.h"
#include "formats/hdf5/hdf5_decoder.h"
#include "samples/hdf5/hdf5_samples.h"
#include "tests/formats/hdf5/hdf5_test_util.h"
#include "tests/formats/hdf5/reassemble.h"

namespace refzarr {
namespace {

using internal::H5Id;
using testing_hdf5::ChunksOf;
using testing_hdf5::FindRefusal;
using testing_hdf5::ScanHdf5File;

const nlohmann::json& GroupAttrs(const ScannedFile& scan, std::string_view path) {
  static const nlohmann::json kNone = nlohmann::json::object();
  const ScannedFile::Group* g = scan.FindGroup(path);
  EXPECT_NE(g, nullptr) << "no group '" << path << "'";
  return g ? g->attributes : kNone;
}

const ImageDesc* ImageOf(const ScannedFile& scan, std::string_view path) {
  const ScannedFile::Group* g = scan.FindGroup(path);
  return g && g->image ? &*g->image : nullptr;
}

const ImageDesc& ImageAt(const ScannedFile& scan, std::string_view path) {
  static const ImageDesc kNone;
  const ImageDesc* image = ImageOf(scan, path);
  EXPECT_NE(image, nullptr) << "no image at '" << path << "'";
  return image ? *image : kNone;
}

size_t ImageCount(const ScannedFile& scan) {
  size_t n = 0;
  for (const ScannedFile::Group& g : scan.groups) n += g.image.has_value();
  return n;
}

struct Tally {
  int compared = 0;   // read back equal to H5Dread
  int refused = 0;    // refused with a reason
  int unreadable = 0; // the HDF5 library itself cannot read the data (missing plugin)
};

// For one huge array: each recorded chunk, decoded, equals H5Dread of its region. Returns 1 when
// all matched.
int CheckChunkByChunk(hid_t d, hid_t type, const ScannedFile& scan, const ScannedFile::Array& array,
                      const std::filesystem::path& path, std::span<const std::byte> fill, const ChunkDecoder& decoder) {
  const ArrayDesc& a = array.desc;
  const size_t rank = a.shape.size();
  const auto grid = a.GridShape();
  const testing_hdf5::RecordedChunks chunks = ChunksOf(array);
  int checked = 0;
  for (const auto& [index, ref] : chunks.stored) {
    if (++checked > 200) break;
    auto chunk = testing_hdf5::DecodeChunk(scan, array, chunks, path, index, fill, decoder);
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
// Variable-length strings are recorded as inline numcodecs VLenUTF8 chunks. Decoded here (count,
// then length + bytes per string, edge chunks padded) and placed by chunk coordinates, they must be
// the strings H5Dread returns.
bool VlenStringsMatch(hid_t dset, hid_t space, const ScannedFile::Array& array) {
  const ArrayDesc& a = array.desc;
  uint64_t total = 1;
  for (uint64_t s : a.shape) total *= s;
  H5Id mem(H5Tcopy(H5T_C_S1));
  H5Tset_size(mem.get(), H5T_VARIABLE);
  H5Id file_type(H5Dget_type(dset));
  H5Tset_cset(mem.get(), H5Tget_cset(file_type.get()));
  std::vector<char*> raw(total, nullptr);
  if (total > 0 && H5Dread(dset, mem.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, raw.data()) < 0) return false;
  std::vector<std::string> expected;
  for (char* p : raw) expected.emplace_back(p ? p : "");
  if (total > 0) H5Dvlen_reclaim(mem.get(), space, H5P_DEFAULT, raw.data());
  std::vector<std::string> actual(total);
  std::vector<bool> seen(total, false);
  const std::vector<uint64_t> grid = a.GridShape();
  for (const auto& [linear, bytes] : ChunksOf(array).inlined) {
    auto u32 = [&](size_t at) {
      uint32_t v = 0;
      for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(bytes.at(at + i));
      return v;
    };
    std::vector<uint64_t> chunk(grid.size());
    for (size_t d = grid.size(), rest = linear; d-- > 0;) {
      chunk[d] = rest % grid[d];
      rest /= grid[d];
    }
    const uint32_t count = u32(0);
    size_t at = 4;
    for (uint32_t e = 0; e < count; ++e) {
      const uint32_t n = u32(at);
      std::string s(reinterpret_cast<const char*>(bytes.data()) + at + 4, n);
      at += 4 + n;
      uint64_t flat = 0, rest = e;
      bool inside = true;
      std::vector<uint64_t> local(a.chunks.size());
      for (size_t d = a.chunks.size(); d-- > 0;) {
        local[d] = rest % a.chunks[d];
        rest /= a.chunks[d];
      }
      for (size_t d = 0; d < a.shape.size(); ++d) {
        const uint64_t c = chunk[d] * a.chunks[d] + local[d];
        inside = inside && c < a.shape[d];
        flat = flat * a.shape[d] + c;
      }
      if (!inside) continue;
      actual[flat] = s;
      seen[flat] = true;
    }
    if (at != bytes.size()) return false;
  }
  return actual == expected && std::all_of(seen.begin(), seen.end(), [](bool b) { return b; });
}

Tally CheckEveryDataset(const std::filesystem::path& path, const ScannedFile& scan) {
  Tally t;
  internal::Hdf5ErrorSilencer quiet;
  H5Id f(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
  if (!f.valid()) f = H5Id(H5Fopen(path.c_str(), H5F_ACC_RDONLY | H5F_ACC_SWMR_READ, H5P_DEFAULT));
  if (!f.valid()) return t;
  auto decoder = MakeHdf5ChunkDecoder();
  for (const std::string& dpath : testing_hdf5::DatasetPaths(f.get())) {
    SCOPED_TRACE(path.string() + ":" + dpath);
    const ScannedFile::Array* array = scan.FindArray(dpath.substr(1));
    if (!array) {
      const ScannedFile::Refusal* refusal = FindRefusal(scan, dpath.substr(1));
      EXPECT_TRUE(refusal != nullptr && !refusal->reason.empty()) << "dataset neither emitted nor refused";
      if (refusal && std::getenv("REFZARR_HDF5_TEST_VERBOSE")) std::cerr << dpath << " refused: " << refusal->reason << "\n";
      ++t.refused;
      continue;
    }
    EXPECT_EQ(FindRefusal(scan, dpath.substr(1)), nullptr) << "dataset both emitted and refused";
    H5Id d(H5Dopen2(f.get(), dpath.c_str(), H5P_DEFAULT));
    H5Id dcpl(H5Dget_create_plist(d.get()));
    if (H5Pget_external_count(dcpl.get()) > 0) {
      // External raw files are named relative to the HDF5 file, not to the working directory.
      H5Id dapl(H5Pcreate(H5P_DATASET_ACCESS));
      H5Pset_efile_prefix(dapl.get(), "${ORIGIN}");
      d.Reset();  // a dataset cannot be open twice with different access properties
      d = H5Id(H5Dopen2(f.get(), dpath.c_str(), dapl.get()));
    }
    H5Id type(H5Dget_type(d.get()));
    // HDF5 1.10.8 fails to read a printf-mapped virtual dataset ("unable to allocate sub dataset
    // array") unless its dataspace was fetched first.
    H5Id space(H5Dget_space(d.get()));
    if (array->desc.dtype.kind == 'O') {
      EXPECT_TRUE(VlenStringsMatch(d.get(), space.get(), *array)) << "strings differ from H5Dread";
      ++t.compared;
      continue;
    }
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
      t.compared += CheckChunkByChunk(d.get(), type.get(), scan, *array, path, fill, *decoder);
      continue;
    }
    std::vector<std::byte> expected(total);
    if (total > 0 && H5Dread(d.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, expected.data()) < 0) {
      // The library cannot read it (a filter plugin is missing): neither can our decoder, but the
      // scan must still have recorded every chunk.
      if (std::getenv("REFZARR_HDF5_TEST_VERBOSE")) {
        std::cerr << dpath << ": " << internal::FromHdf5(StatusCode::kIo, "H5Dread").message() << "\n";
      }
      H5Eclear2(H5E_DEFAULT);
      ++t.unreadable;
      continue;
    }
    auto actual = testing_hdf5::Reassemble(scan, *array, path, fill, *decoder);
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
  ASSERT_FALSE(files.empty()) << "no realdata";
  Tally total;
  for (const auto& path : files) {
    SCOPED_TRACE(path.string());
    auto scanned = ScanHdf5File(path);
    if (!scanned.ok()) {
      const Status& s = scanned.status();
      // Only files the HDF5 library itself cannot open may fail as a whole.
      internal::Hdf5ErrorSilencer quiet;
      H5Id f(H5Fopen(path.c_str(), H5F_ACC_RDONLY | H5F_ACC_SWMR_READ, H5P_DEFAULT));
      EXPECT_FALSE(f.valid()) << s.message();
      // The indexer names the file in front of the message (IndexerTest.DamagedFilesFailAloneAndAreNamed).
      EXPECT_EQ(s.message().find("open with the HDF5 library: "), 0u) << s.message();
      continue;
    }
    Tally t = CheckEveryDataset(path, *scanned);
    total.compared += t.compared;
    total.refused += t.refused;
    total.unreadable += t.unreadable;
  }
  EXPECT_GT(total.compared, 120);
  std::cout << "compared " << total.compared << ", refused " << total.refused << ", unreadable by libhdf5 "
            << total.unreadable << "\n";
}

// The indexer puts the file's path and the array in front of every refusal; the scanner's own
// reason says why, and does not repeat the file.
TEST(Hdf5Scanner, RefusalsNameTheDatasetAndTheReason) {
  auto file = testing_hdf5::RealDataHdf5Dir() / "vchoi-hdfgroup+hdf5/tools/test/h5dump/testfiles/t128bit_float.h5";
  ASSERT_TRUE(std::filesystem::exists(file)) << "realdata file missing: " << file;
  auto scanned = ScanHdf5File(file);
  ASSERT_TRUE(scanned.ok()) << scanned.status().message();
  const ScannedFile& scan = *scanned;
  EXPECT_TRUE(scan.warnings.empty());
  ASSERT_EQ(scan.refused.size(), 1u);
  EXPECT_EQ(scan.refused[0].path, "DS1");
  EXPECT_EQ(scan.refused[0].reason.find(file.string()), std::string::npos) << scan.refused[0].reason;
  EXPECT_NE(scan.refused[0].reason.find("128-bit floating point"), std::string::npos) << scan.refused[0].reason;
  EXPECT_EQ(scan.FindArray("DS1"), nullptr);
}

TEST(Hdf5Scanner, UnfilteredEdgeChunksAreFlaggedAndStillReadBack) {
  auto file = testing_hdf5::RealDataHdf5Dir() / "vchoi-hdfgroup+hdf5/tools/test/h5format_convert/testfiles/h5fc_edge_v3.h5";
  ASSERT_TRUE(std::filesystem::exists(file)) << "realdata file missing: " << file;
  auto scanned = ScanHdf5File(file);
  ASSERT_TRUE(scanned.ok()) << scanned.status().message();
  const ScannedFile& scan = *scanned;
  const auto* a = scan.FindArray("DSET_EDGE");
  ASSERT_NE(a, nullptr);
  int flagged = 0;
  for (const auto& [i, ref] : a->chunks) flagged += ref.flags != 0;
  EXPECT_EQ(flagged, 4);
  EXPECT_EQ(a->desc.encoding.compressor["id"], "zlib");
  EXPECT_EQ(CheckEveryDataset(file, scan).compared, 1);
}

TEST(Hdf5Scanner, NetCdfDimensionScalesBecomeArrayDimensions) {
  auto file = testing_hdf5::RealDataHdf5Dir() / "fsspec+kerchunk/tests/air.nc";
  ASSERT_TRUE(std::filesystem::exists(file)) << "realdata file missing: " << file;
  auto scanned = ScanHdf5File(file);
  ASSERT_TRUE(scanned.ok()) << scanned.status().message();
  const ScannedFile& scan = *scanned;
  const auto* air = scan.FindArray("air");
  ASSERT_NE(air, nullptr);
  EXPECT_EQ(air->desc.attributes["_ARRAY_DIMENSIONS"], nlohmann::json({"time", "lat", "lon"}));
  EXPECT_EQ(scan.FindArray("lat")->desc.attributes["_ARRAY_DIMENSIONS"], nlohmann::json({"lat"}));
  EXPECT_TRUE(air->desc.attributes.contains("scale_factor"));
  EXPECT_FALSE(air->desc.attributes.contains("DIMENSION_LIST"));
}

TEST(Hdf5Scanner, UserblockFileContiguousDataReadsBack) {
  auto file = testing_hdf5::RealDataHdf5Dir() / "vchoi-hdfgroup+hdf5/tools/test/h5jam/testfiles/twithub513.h5";
  ASSERT_TRUE(std::filesystem::exists(file)) << "realdata file missing: " << file;
  auto scanned = ScanHdf5File(file);
  ASSERT_TRUE(scanned.ok()) << scanned.status().message();
  const ScannedFile& scan = *scanned;
  Tally t = CheckEveryDataset(file, scan);
  EXPECT_EQ(t.compared, 4);
}

TEST(Hdf5Scanner, ExternalStorageReferencesTheRawFiles) {
  auto file = testing_hdf5::RealDataHdf5Dir() / "vchoi-hdfgroup+hdf5/tools/test/h5repack/testfiles/h5repack_int32le_1d_ex.h5";
  ASSERT_TRUE(std::filesystem::exists(file)) << "realdata file missing: " << file;
  auto scanned = ScanHdf5File(file);
  ASSERT_TRUE(scanned.ok()) << scanned.status().message();
  const ScannedFile& scan = *scanned;
  ASSERT_EQ(scan.companions.size(), 2u);
  EXPECT_EQ(scan.companions[0], FileUri(file.parent_path() / "h5repack_int32le_1d_ex-0.dat"));
  const auto* a = scan.FindArray("dset");
  ASSERT_NE(a, nullptr);
  for (const auto& [i, ref] : a->chunks) EXPECT_NE(ref.source, 0u);
  EXPECT_EQ(CheckEveryDataset(file, scan).compared, 1);
}

TEST(Hdf5Scanner, VirtualDatasetReferencesTheSourcesChunks) {
  auto file = testing_hdf5::RealDataHdf5Dir() / "vchoi-hdfgroup+hdf5/tools/test/h5dump/testfiles/vds/4_vds.h5";
  ASSERT_TRUE(std::filesystem::exists(file)) << "realdata file missing: " << file;
  auto scanned = ScanHdf5File(file);
  ASSERT_TRUE(scanned.ok()) << scanned.status().message();
  const ScannedFile& scan = *scanned;
  const auto* a = scan.FindArray("vds_dset");
  ASSERT_NE(a, nullptr) << (scan.warnings.empty() ? "" : scan.warnings[0]);
  ASSERT_EQ(scan.companions.size(), 3u);  // 4_0.h5, 4_1.h5, 4_2.h5 ("4_%b.h5")
  EXPECT_EQ(a->desc.chunks, (std::vector<uint64_t>{1, 4, 4}));
  EXPECT_EQ(a->chunks.size(), 9u);
  for (const auto& [i, ref] : a->chunks) EXPECT_EQ(ref.source, i / 3 + 1);
  EXPECT_EQ(CheckEveryDataset(file, scan).compared, 1);
}

// Bytes without a URI and files under non-file URIs scan through the ByteSource file driver:
// byte_source_vfd_test.cc (Hdf5OverByteSource*).

TEST(Hdf5Scanner, SniffsTheSignature) {
  auto scanner = MakeHdf5Scanner();
  const unsigned char sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
  EXPECT_TRUE(scanner->Sniff(std::as_bytes(std::span(sig))));
  const unsigned char tiff[8] = {'I', 'I', 42, 0, 8, 0, 0, 0};
  EXPECT_FALSE(scanner->Sniff(std::as_bytes(std::span(tiff))));
  // After a 1024-byte userblock.
  std::vector<std::byte> head(4096, std::byte{0});
  EXPECT_FALSE(scanner->Sniff(head));
  std::memcpy(head.data() + 1024, sig, 8);
  EXPECT_TRUE(scanner->Sniff(head));
}

TEST(Hdf5Scanner, NoCrashOrHangOnAnyRealDataFileIncludingCorruptOnes) {
  auto root = testing_hdf5::RealDataHdf5Dir();
  ASSERT_TRUE(!root.empty() && std::filesystem::exists(root)) << "realdata folder missing: " << root;
  int files = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(root)) {
    if (!e.is_regular_file()) continue;
    const testing_hdf5::ChildScan r = testing_hdf5::ScanInChild(e.path(), std::chrono::seconds(20), 2ull << 30);
    EXPECT_TRUE(r.exit == 0 || r.exit == 1) << e.path() << ": child ended with " << r.exit;
    ++files;
  }
  EXPECT_GT(files, 30);
}

}  // namespace
}  // namespace refzarr

namespace refzarr {
namespace {

class Hdf5Samples : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing_hdf5::TempDir();
    auto written = samples::WriteHdf5Samples(dir_->path());
    ASSERT_TRUE(written.ok()) << written.status().message();
  }
  static void TearDownTestSuite() { delete dir_; }
  static std::filesystem::path Path(const char* name) { return dir_->path() / name; }
  static testing_hdf5::TempDir* dir_;
};
testing_hdf5::TempDir* Hdf5Samples::dir_ = nullptr;

TEST_F(Hdf5Samples, EveryDatasetReadsBackAsH5DreadOrIsRefused) {
  for (const char* name : {"plain.h5", "userblock.h5", "sample.ims", "bdv.h5"}) {
    SCOPED_TRACE(name);
    auto scanned = ScanHdf5File(Path(name));
    ASSERT_TRUE(scanned.ok()) << scanned.status().message();
    const ScannedFile& scan = *scanned;
    Tally t = CheckEveryDataset(Path(name), scan);
    EXPECT_GT(t.compared, 0);
    EXPECT_EQ(t.unreadable, 0);
    EXPECT_EQ(t.refused, 0);
  }
}

TEST_F(Hdf5Samples, AttributesBecomeJsonAndWhatJsonCannotHoldIsNoted) {
  auto scanned = ScanHdf5File(Path("plain.h5"));
  ASSERT_TRUE(scanned.ok()) << scanned.status().message();
  const ScannedFile& scan = *scanned;
  const nlohmann::json& root = GroupAttrs(scan, "");
  EXPECT_EQ(root["title"], "refzarr HDF5 sample");
  EXPECT_EQ(root["version"], 3);
  const nlohmann::json& meta = GroupAttrs(scan, "meta");
  EXPECT_DOUBLE_EQ(meta["pi"].get<double>(), M_PI);
  EXPECT_EQ(meta["not_a_number"], "NaN");
  EXPECT_EQ(meta["offsets"], nlohmann::json({-3, 0, 7}));
  EXPECT_EQ(meta["big"], 18446744073709551615ull);
  EXPECT_EQ(meta["labels"], nlohmann::json({"alpha", "beta"}));
  EXPECT_EQ(meta["matrix"], nlohmann::json({{1, 2, 3}, {4, 5, 6}}));
  EXPECT_FALSE(meta.contains("self"));
  EXPECT_TRUE(meta["_refzarr_skipped_attributes"].contains("self"));
}

TEST_F(Hdf5Samples, DtypesFillValuesAndLayoutsAreDescribed) {
  auto scanned = ScanHdf5File(Path("plain.h5"));
  ASSERT_TRUE(scanned.ok()) << scanned.status().message();
  const ScannedFile& scan = *scanned;
  auto dtype = [&](const char* p) { return scan.FindArray(p)->desc.dtype.ToV2(); };
  EXPECT_EQ(dtype("chunked/big_endian_gzip"), ">i4");
  EXPECT_EQ(dtype("types/strings_S8"), "|S8");
  EXPECT_EQ(dtype("types/complex64"), "<c8");
  EXPECT_EQ(dtype("types/bool"), "|i1");
  EXPECT_EQ(dtype("types/int64_be"), ">i8");
  EXPECT_EQ(dtype("types/compound"), nlohmann::json::parse(R"([["x","<i4"],["_pad0","|V4"],["y","<f8"],["name","|S4"],["_pad1","|V4"]])"));
  EXPECT_EQ(scan.FindArray("chunked/gzip_shuffle")->desc.fill_value, 7);
  EXPECT_EQ(scan.FindArray("chunked/nan_fill")->desc.fill_value, "NaN");
  const auto& gz = scan.FindArray("chunked/gzip_shuffle")->desc.encoding;
  EXPECT_TRUE(gz.native);
  EXPECT_EQ(gz.filters, nlohmann::json::array({{{"id", "shuffle"}, {"elementsize", 2}}}));
  EXPECT_EQ(gz.compressor, nlohmann::json({{"id", "zlib"}, {"level", 5}}));
  EXPECT_FALSE(scan.FindArray("chunked/fletcher32")->desc.encoding.native);
  // The directly written raw chunk carries its filter mask; the unwritten chunk is absent.
  const auto* a = scan.FindArray("chunked/gzip_shuffle");
  EXPECT_EQ(ChunksOf(*a).stored.at(3 * 3 + 2).flags, 3u);
  EXPECT_EQ(a->chunks.size(), 3u * 2u + 1u);  // the written 96 x 64 corner plus the raw chunk
  const auto* scalar = scan.FindArray("layouts/scalar_f4");
  EXPECT_TRUE(scalar->desc.shape.empty());
  EXPECT_TRUE(scalar->desc.chunks.empty());
  EXPECT_EQ(scan.FindArray("layouts/compact_i2")->inline_chunks.size(), 1u);
  ASSERT_EQ(scan.companions.size(), 1u);
  EXPECT_EQ(scan.companions[0], FileUri(Path("plain_external.raw")));
}

TEST(Hdf5Contiguous, LargeDatasetsSplitIntoRowAlignedChunksWithAShortTail) {
  testing_hdf5::TempDir dir;
  auto path = dir.path() / "big.h5";
  {
    H5Id f(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
    hsize_t dims[2] = {1031, 8192};  // 1031 rows (prime) of 8 KiB: 8.05 MiB
    H5Id space(H5Screate_simple(2, dims, nullptr));
    H5Id d(H5Dcreate2(f.get(), "rows", H5T_STD_U8LE, space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    std::vector<uint8_t> v(dims[0] * dims[1]);
    for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<uint8_t>(i * 31 + i / 8192);
    ASSERT_GE(H5Dwrite(d.get(), H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()), 0);
  }
  auto scanned = ScanHdf5File(path);
  ASSERT_TRUE(scanned.ok()) << scanned.status().message();
  const ScannedFile& scan = *scanned;
  const auto* a = scan.FindArray("rows");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->desc.chunks, (std::vector<uint64_t>{512, 8192}));
  ASSERT_EQ(a->chunks.size(), 3u);
  EXPECT_EQ(ChunksOf(*a).stored.at(0).length, 4u << 20);
  EXPECT_EQ(ChunksOf(*a).stored.at(2).flags, kChunkShort);
  EXPECT_EQ(ChunksOf(*a).stored.at(2).length, 7u * 8192);
  EXPECT_EQ(CheckEveryDataset(path, scan).compared, 1);
}

}  // namespace
}  // namespace refzarr

namespace refzarr {
namespace {

// Reads the 3-D dataset `path` with H5Dread, as uint16 (what the image declares).
std::vector<uint16_t> ReadVolume(hid_t file, const std::string& path, std::vector<hsize_t>* dims) {
  H5Id d(H5Dopen2(file, path.c_str(), H5P_DEFAULT));
  H5Id space(H5Dget_space(d.get()));
  dims->assign(3, 0);
  H5Sget_simple_extent_dims(space.get(), dims->data(), nullptr);
  std::vector<uint16_t> v((*dims)[0] * (*dims)[1] * (*dims)[2]);
  // Reading signed BigDataViewer cells through an unsigned memory type would clamp: read as stored.
  H5Id type(H5Dget_type(d.get()));
  EXPECT_GE(H5Dread(d.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()), 0);
  return v;
}

// Each level (t, c, z, y, x) equals the datasets at `dataset_path(t, c, level)`, cropped.
void ExpectLevelsMatchDatasets(const std::filesystem::path& file, const ScannedFile& scan, const std::string& image,
                               const std::function<std::string(int, int, int)>& dataset_path) {
  const ImageDesc& desc = ImageAt(scan, image);
  auto decoder = MakeHdf5ChunkDecoder();
  H5Id f(H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
  for (size_t r = 0; r < desc.levels.size(); ++r) {
    SCOPED_TRACE("level " + std::to_string(r));
    const auto* a = scan.FindArray(image + "/" + desc.levels[r]);
    ASSERT_NE(a, nullptr);
    const auto& s = a->desc.shape;
    ASSERT_EQ(s.size(), 5u);
    std::vector<std::byte> fill(2, std::byte{0});
    auto got = testing_hdf5::Reassemble(scan, *a, file, fill, *decoder);
    ASSERT_TRUE(got.ok()) << got.status().message();
    const auto* px = reinterpret_cast<const uint16_t*>(got->data());
    for (uint64_t t = 0; t < s[0]; ++t) {
      for (uint64_t c = 0; c < s[1]; ++c) {
        std::vector<hsize_t> dims;
        auto vol = ReadVolume(f.get(), dataset_path(t, c, r), &dims);
        ASSERT_GE(dims[0], s[2]);
        uint64_t mismatches = 0;
        for (uint64_t z = 0; z < s[2]; ++z)
          for (uint64_t y = 0; y < s[3]; ++y)
            for (uint64_t x = 0; x < s[4]; ++x) {
              const uint64_t i = (((t * s[1] + c) * s[2] + z) * s[3] + y) * s[4] + x;
              mismatches += px[i] != vol[(z * dims[1] + y) * dims[2] + x];
              mismatches += px[i] != samples::SampleVoxel(t, c, r, z, y, x);
            }
        EXPECT_EQ(mismatches, 0u) << "t=" << t << " c=" << c;
      }
    }
  }
}

TEST_F(Hdf5Samples, ImarisBecomesOneCroppedMultiscaleImage) {
  auto scanned = ScanHdf5File(Path("sample.ims"));
  ASSERT_TRUE(scanned.ok()) << scanned.status().message();
  const ScannedFile& scan = *scanned;
  EXPECT_EQ(GroupAttrs(scan, "")["bioformats2raw.layout"], 3);
  ASSERT_EQ((ImageOf(scan, "0") != nullptr ? 1u : 0u), 1u);
  const ImageDesc& img = ImageAt(scan, "0");
  const samples::ImarisSampleGeometry g;
  ASSERT_EQ(img.levels.size(), static_cast<size_t>(g.levels));
  const auto* l0 = scan.FindArray("0/0");
  ASSERT_NE(l0, nullptr);
  EXPECT_EQ(l0->desc.shape, (std::vector<uint64_t>{2, 2, 9, 70, 100}));
  EXPECT_EQ(l0->desc.chunks, (std::vector<uint64_t>{1, 1, 4, 16, 32}));
  EXPECT_EQ(scan.FindArray("0/1")->desc.shape, (std::vector<uint64_t>{2, 2, 5, 35, 50}));
  // 0.5 um pixels, 2 um planes; origin from ExtMin.
  EXPECT_EQ(img.axes[4].unit, "micrometer");
  EXPECT_NEAR(img.scales[0][4], 0.5, 1e-9);
  EXPECT_NEAR(img.scales[0][2], 2.0, 1e-9);
  EXPECT_NEAR(img.scales[1][4], 1.0, 1e-9);
  EXPECT_NEAR(img.translations[0][3], 20.0, 1e-9);
  ASSERT_EQ(img.channels.size(), 2u);
  EXPECT_EQ(img.channels[1].label, "GFP");
  EXPECT_EQ(img.channels[1].color, 0x00FF00u);
  EXPECT_EQ(img.channels[0].window, std::make_pair(0.0, 4000.0));
  // The raw hierarchy stays reachable, with Imaris' character-array attributes joined.
  EXPECT_EQ(GroupAttrs(scan, "DataSetInfo/Image")["X"], "100");
  EXPECT_NE(scan.FindArray("DataSet/ResolutionLevel 0/TimePoint 1/Channel 1/Data"), nullptr);
  ExpectLevelsMatchDatasets(Path("sample.ims"), scan, "0", [](int t, int c, int r) {
    return "/DataSet/ResolutionLevel " + std::to_string(r) + "/TimePoint " + std::to_string(t) + "/Channel " +
           std::to_string(c) + "/Data";
  });
}

TEST_F(Hdf5Samples, BigDataViewerSetupsBecomeChannelsWithXmlVoxelSizes) {
  auto scanned = ScanHdf5File(Path("bdv.h5"));
  ASSERT_TRUE(scanned.ok()) << scanned.status().message();
  const ScannedFile& scan = *scanned;
  ASSERT_EQ(ImageCount(scan), 1u);
  const ImageDesc& img = ImageAt(scan, "0");
  ASSERT_EQ(img.levels.size(), 2u);
  const auto* l0 = scan.FindArray("0/0");
  ASSERT_NE(l0, nullptr);
  EXPECT_EQ(l0->desc.shape, (std::vector<uint64_t>{2, 2, 6, 40, 50}));
  EXPECT_EQ(l0->desc.dtype.ToV2(), "<u2");
  EXPECT_EQ(scan.FindArray("t00000/s00/0/cells")->desc.dtype.ToV2(), "<i2");
  EXPECT_EQ(img.scales[0], (std::vector<double>{1, 1, 1.5, 0.25, 0.25}));
  EXPECT_EQ(img.scales[1], (std::vector<double>{1, 1, 3.0, 0.5, 0.5}));
  EXPECT_EQ(img.axes[2].unit, "micrometer");
  ASSERT_EQ(img.channels.size(), 2u);
  EXPECT_EQ(img.channels[1].label, "channel green");
  ExpectLevelsMatchDatasets(Path("bdv.h5"), scan, "0", [](int t, int c, int r) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "/t%05d/s%02d/%d/cells", t, c, r);
    return std::string(buf);
  });
}

TEST_F(Hdf5Samples, BigDataViewerXmlIsFoundByItsImageLoaderWhenNamedDifferently) {
  testing_hdf5::TempDir dir;
  std::filesystem::copy_file(Path("bdv.h5"), dir.path() / "bdv.h5");
  std::filesystem::copy_file(Path("bdv.xml"), dir.path() / "project.xml");
  auto scanned = ScanHdf5File(dir.path() / "bdv.h5");
  ASSERT_TRUE(scanned.ok()) << scanned.status().message();
  const ScannedFile& scan = *scanned;
  ASSERT_EQ((ImageOf(scan, "0") != nullptr ? 1u : 0u), 1u);
  EXPECT_EQ(ImageAt(scan, "0").scales[0], (std::vector<double>{1, 1, 1.5, 0.25, 0.25}));
  // Without any XML: unit voxels and setup names.
  std::filesystem::remove(dir.path() / "project.xml");
  auto scanned_bare = ScanHdf5File(dir.path() / "bdv.h5");
  ASSERT_TRUE(scanned_bare.ok()) << scanned_bare.status().message();
  const ScannedFile& bare = *scanned_bare;
  EXPECT_EQ(ImageAt(bare, "0").scales[1], (std::vector<double>{1, 1, 2, 2, 2}));
  EXPECT_EQ(ImageAt(bare, "0").channels[0].label, "s00");
}

// A real HDF5 file under a URI that is not a local file scans from its bytes, exactly as the local
// file does: Hdf5OverByteSource.EverySampleScansFromMemoryAsFromItsLocalFile (and its siblings,
// the external raw file and the XML, open beside it through its openers).

TEST_F(Hdf5Samples, PlainFilesDeclareNoImage) {
  auto scanned = ScanHdf5File(Path("plain.h5"));
  ASSERT_TRUE(scanned.ok()) << scanned.status().message();
  const ScannedFile& scan = *scanned;
  EXPECT_TRUE(ImageCount(scan) == 0);
  EXPECT_FALSE(GroupAttrs(scan, "").contains("bioformats2raw.layout"));
}

}  // namespace
}  // namespace refzarr

namespace refzarr {
namespace {

// The scanner's fallback (the library's listing) and its normal path (the file-format reader) give
// the same chunk references for every chunked dataset.
TEST(Hdf5Scanner, LibraryFallbackListsTheSameChunksAsTheFileFormatReader) {
  testing_hdf5::TempDir dir;
  ASSERT_TRUE(samples::WriteHdf5Samples(dir.path()).ok());
  auto real = testing_hdf5::RealDataHdf5Dir();
  std::vector<std::filesystem::path> files = {
      dir.path() / "plain.h5", dir.path() / "userblock.h5", dir.path() / "sample.ims",
      real / "jamesmudd+jhdf/jhdf/src/test/resources/hdf5/chunked_v4_datasets.hdf5",
      real / "vchoi-hdfgroup+hdf5/tools/test/h5format_convert/testfiles/old_h5fc_ext_none.h5",
      real / "vchoi-hdfgroup+hdf5/tools/test/h5repack/testfiles/h5repack_layout3.h5"};
  int compared = 0;
  internal::Hdf5ErrorSilencer quiet;
  for (const auto& file : files) {
    if (!std::filesystem::exists(file)) continue;
    auto source = OpenLocalFile(file);
    ASSERT_TRUE(source.ok());
    auto info = ReadHdf5Superblock(**source);
    ASSERT_TRUE(info.ok());
    H5Id f(H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
    internal::Hdf5FileContext ctx{f.get(), source->get(), *info, ScanContext(file), (*source)->Describe(), nullptr,
                                  file.filename().string()};
    for (const std::string& path : testing_hdf5::DatasetPaths(f.get())) {
      SCOPED_TRACE(file.string() + ":" + path);
      // Both listings, sorted by chunk index, with the notes each walk made.
      auto list = [&](internal::ChunkListing listing, std::vector<std::string>* notes)
          -> Result<std::map<uint64_t, ChunkRef>> {
        ASSIGN_OR_RETURN(internal::DatasetPlan plan, internal::PlanDataset(ctx, path, listing));
        if (!plan.is_chunked) return NotFoundError("not chunked");
        std::map<uint64_t, ChunkRef> out;
        RETURN_IF_ERROR(internal::VisitStoredChunks(ctx, plan, [&](uint64_t index, const ChunkRef& ref) {
          return out.emplace(index, ref).second ? OkStatus() : InvalidArgumentError("chunk listed twice");
        }, notes));
        return out;
      };
      std::vector<std::string> notes;
      auto ours = list(internal::ChunkListing::kFileFormat, &notes);
      // The library's listing is O(n^2): keep to datasets it lists quickly.
      if (!ours.ok() || ours->size() > 1500) continue;
      auto lib = list(internal::ChunkListing::kLibrary, nullptr);
      ASSERT_TRUE(lib.ok()) << lib.status().message();
      EXPECT_TRUE(*ours == *lib);
      EXPECT_TRUE(notes.empty()) << notes[0];
      ++compared;
    }
  }
  EXPECT_GT(compared, 50);
}

}  // namespace
}  // namespace refzarr
