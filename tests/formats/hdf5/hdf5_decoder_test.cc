// The "hdf5" ChunkDecoder against H5Dread: every chunk of datasets with native, non-native and
// masked chunks decodes to exactly the chunk region the HDF5 library reads.
#include "formats/hdf5/hdf5_decoder.h"

#include <gtest/gtest.h>

#include <random>
#include <thread>

#include "formats/hdf5/chunk_index.h"
#include "formats/hdf5/hdf5_scanner.h"
#include "samples/hdf5/hdf5_samples.h"
#include "tests/formats/hdf5/hdf5_test_util.h"
#include "tests/formats/hdf5/recording_sink.h"

namespace refzarr {
namespace {

using internal::H5Id;
using testing_hdf5::RecordingSink;

// Decodes every stored chunk of `array` with the decoder (never the native path) and compares it
// with H5Dread of the same region into a chunk-shaped buffer. Returns the number of chunks checked.
int DecodeEveryChunk(const std::filesystem::path& file, const RecordingSink::Array& array, const ChunkDecoder& decoder) {
  internal::Hdf5ErrorSilencer quiet;
  H5Id f(H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
  H5Id d(H5Dopen2(f.get(), ("/" + array.path).c_str(), H5P_DEFAULT));
  H5Id type(H5Dget_type(d.get()));
  const ArrayDesc& a = array.desc;
  const size_t rank = a.shape.size();
  const auto grid = a.GridShape();
  auto source = OpenLocalFile(file);
  EXPECT_TRUE(source.ok());
  int n = 0;
  for (const auto& [index, ref] : array.chunks) {
    auto stored = ReadRange(**source, {ref.offset, ref.length});
    EXPECT_TRUE(stored.ok());
    std::vector<std::byte> got(a.ChunkBytes(), std::byte{0}), want(a.ChunkBytes(), std::byte{0});
    auto cc = ChunkCoords(grid, index);
    Status s = decoder.Decode(a, cc, ref, *stored, got);
    EXPECT_TRUE(s.ok()) << array.path << " chunk " << index << ": " << s.message();
    std::vector<hsize_t> start(rank), count(rank), full(a.chunks.begin(), a.chunks.end()), zero(rank, 0);
    for (size_t i = 0; i < rank; ++i) {
      start[i] = cc[i] * a.chunks[i];
      count[i] = std::min<uint64_t>(a.chunks[i], a.shape[i] - start[i]);
    }
    H5Id fs(H5Dget_space(d.get()));
    H5Sselect_hyperslab(fs.get(), H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr);
    H5Id ms(H5Screate_simple(static_cast<int>(rank), full.data(), nullptr));
    H5Sselect_hyperslab(ms.get(), H5S_SELECT_SET, zero.data(), nullptr, count.data(), nullptr);
    EXPECT_GE(H5Dread(d.get(), type.get(), ms.get(), fs.get(), H5P_DEFAULT, want.data()), 0);
    // Compare only the region inside the array (the decoder also fills the edge padding).
    std::vector<std::byte> got_in = want;
    H5Id mem(H5Screate_simple(static_cast<int>(rank), full.data(), nullptr));
    H5Sselect_hyperslab(mem.get(), H5S_SELECT_SET, zero.data(), nullptr, count.data(), nullptr);
    bool same = true;
    std::vector<uint64_t> pos(rank, 0);
    const uint64_t es = a.dtype.size;
    for (uint64_t e = 0; e < a.ChunkBytes() / es; ++e) {
      uint64_t rem = e;
      bool inside = true;
      for (size_t i = rank; i-- > 0;) {
        pos[i] = rem % a.chunks[i];
        rem /= a.chunks[i];
        inside = inside && pos[i] < count[i];
      }
      if (inside && std::memcmp(got.data() + e * es, want.data() + e * es, es) != 0) same = false;
    }
    EXPECT_TRUE(same) << array.path << " chunk " << index << " (flags " << ref.flags << ") differs from H5Dread";
    ++n;
  }
  return n;
}

TEST(Hdf5ChunkDecoder, EveryChunkMatchesH5DreadIncludingMaskedAndNonNativeOnes) {
  testing_hdf5::TempDir dir;
  ASSERT_TRUE(samples::WriteHdf5Samples(dir.path()).ok());
  auto decoder = MakeHdf5ChunkDecoder();
  EXPECT_EQ(decoder->Family(), "hdf5");
  struct Case {
    std::filesystem::path file;
    std::string array;
  };
  auto real = testing_hdf5::RealDataHdf5Dir();
  std::vector<Case> cases = {
      {dir.path() / "plain.h5", "chunked/gzip_shuffle"},  // one chunk with filter mask 3
      {dir.path() / "plain.h5", "chunked/fletcher32"},
      {dir.path() / "plain.h5", "chunked/big_endian_gzip"},
      {real / "vchoi-hdfgroup+hdf5/tools/test/h5format_convert/testfiles/h5fc_edge_v3.h5", "DSET_EDGE"},
      {real / "vchoi-hdfgroup+hdf5/tools/test/h5repack/testfiles/h5repack_filters.h5", "dset_all"},
      {real / "vchoi-hdfgroup+hdf5/tools/test/h5dump/testfiles/tfilters.h5", "szip"},
      {real / "vchoi-hdfgroup+hdf5/test/testfiles/be_data.h5", "Scale_offset_double_data_be"},
      {real / "vchoi-hdfgroup+hdf5/test/testfiles/be_data.h5", "Scale_offset_int_data_le"},
  };
  int masked = 0, total = 0;
  for (const Case& c : cases) {
    if (!std::filesystem::exists(c.file)) continue;
    SCOPED_TRACE(c.file.string() + ":" + c.array);
    RecordingSink sink;
    auto source = OpenLocalFile(c.file);
    ASSERT_TRUE(source.ok());
    ASSERT_TRUE(MakeHdf5Scanner()->Scan(**source, ScanContext{c.file}, sink).ok());
    const auto* a = sink.FindArray(c.array);
    ASSERT_NE(a, nullptr);
    for (const auto& [i, ref] : a->chunks) masked += ref.flags != 0;
    total += DecodeEveryChunk(c.file, *a, *decoder);
  }
  EXPECT_GT(total, 30);
  EXPECT_GE(masked, 1);
}

TEST(Hdf5ChunkDecoder, DecodesConcurrently) {
  testing_hdf5::TempDir dir;
  ASSERT_TRUE(samples::WriteHdf5Samples(dir.path()).ok());
  auto file = dir.path() / "plain.h5";
  RecordingSink sink;
  auto source = OpenLocalFile(file);
  ASSERT_TRUE(MakeHdf5Scanner()->Scan(**source, ScanContext{file}, sink).ok());
  auto decoder = MakeHdf5ChunkDecoder();
  const auto* a = sink.FindArray("chunked/gzip_shuffle");
  const auto* b = sink.FindArray("chunked/fletcher32");
  auto decode_all = [&](const RecordingSink::Array* arr, std::vector<std::vector<std::byte>>* out) {
    auto src = OpenLocalFile(file);
    for (const auto& [index, ref] : arr->chunks) {
      auto stored = ReadRange(**src, {ref.offset, ref.length});
      std::vector<std::byte> chunk(arr->desc.ChunkBytes());
      Status s = decoder->Decode(arr->desc, ChunkCoords(arr->desc.GridShape(), index), ref, *stored, chunk);
      if (!s.ok()) chunk.clear();
      out->push_back(std::move(chunk));
    }
  };
  std::vector<std::vector<std::byte>> serial_a, serial_b, par_a, par_b;
  decode_all(a, &serial_a);
  decode_all(b, &serial_b);
  std::thread t1([&] { for (int i = 0; i < 5; ++i) { par_a.clear(); decode_all(a, &par_a); } });
  std::thread t2([&] { for (int i = 0; i < 5; ++i) { par_b.clear(); decode_all(b, &par_b); } });
  t1.join();
  t2.join();
  EXPECT_EQ(par_a, serial_a);
  EXPECT_EQ(par_b, serial_b);
  for (const auto& c : serial_a) EXPECT_FALSE(c.empty());
}

TEST(Hdf5ChunkDecoder, UnavailableFilterIsAClearError) {
  auto file = testing_hdf5::RealDataHdf5Dir() / "vchoi-hdfgroup+hdf5/tools/test/h5dump/testfiles/tudfilter.h5";
  ASSERT_TRUE(std::filesystem::exists(file)) << "realdata file missing: " << file;
  RecordingSink sink;
  auto source = OpenLocalFile(file);
  ASSERT_TRUE(MakeHdf5Scanner()->Scan(**source, ScanContext{file}, sink).ok());
  const auto* a = sink.FindArray("dynlibud");
  ASSERT_NE(a, nullptr);
  EXPECT_FALSE(a->desc.encoding.native);
  const auto& [index, ref] = *a->chunks.begin();
  auto stored = ReadRange(**source, {ref.offset, ref.length});
  std::vector<std::byte> out(a->desc.ChunkBytes());
  Status s = MakeHdf5ChunkDecoder()->Decode(a->desc, ChunkCoords(a->desc.GridShape(), index), ref, *stored, out);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("300"), std::string::npos) << s.message();
}

// Random byte flips in the index structures of every chunked dataset of a v4 file: the reader
// returns an error or some chunks, never crashes or loops (ASan/UBSan builds make this sharper).
TEST(ChunkIndexFuzz, CorruptedIndexesFailCleanly) {
  auto file = testing_hdf5::RealDataHdf5Dir() / "jamesmudd+jhdf/jhdf/src/test/resources/hdf5/chunked_v4_datasets.hdf5";
  ASSERT_TRUE(std::filesystem::exists(file)) << "realdata file missing: " << file;
  auto src = OpenLocalFile(file);
  ASSERT_TRUE(src.ok());
  auto size = (*src)->Size();
  auto bytes = ReadRange(**src, {0, *size});
  ASSERT_TRUE(bytes.ok());
  auto info = ReadHdf5Superblock(**src);
  ASSERT_TRUE(info.ok());
  struct Target {
    uint64_t address;
    std::vector<uint64_t> dims, max_dims;
  };
  std::vector<Target> targets;
  {
    internal::Hdf5ErrorSilencer quiet;
    H5Id f(H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
    for (const auto& p : testing_hdf5::DatasetPaths(f.get())) {
      H5Id d(H5Dopen2(f.get(), p.c_str(), H5P_DEFAULT));
      H5O_info_t oi;
      H5Oget_info2(d.get(), &oi, H5O_INFO_BASIC);
      H5Id sp(H5Dget_space(d.get()));
      int r = H5Sget_simple_extent_ndims(sp.get());
      std::vector<hsize_t> dd(std::max(r, 0)), mm(std::max(r, 0));
      H5Sget_simple_extent_dims(sp.get(), dd.data(), mm.data());
      Target t{oi.addr, {}, {}};
      for (int i = 0; i < r; ++i) {
        t.dims.push_back(dd[i]);
        t.max_dims.push_back(mm[i] == H5S_UNLIMITED ? UINT64_MAX : mm[i]);
      }
      targets.push_back(t);
    }
  }
  std::mt19937_64 rng(12345);
  int errors = 0, runs = 0;
  for (int iter = 0; iter < 300; ++iter) {
    std::vector<std::byte> mutated = *bytes;
    for (int k = 0; k < 16; ++k) {
      mutated[512 + rng() % (mutated.size() - 512)] = static_cast<std::byte>(rng());
    }
    auto mem = MakeMemorySource(std::move(mutated), "fuzz");
    for (const Target& t : targets) {
      auto layout = ReadHdf5DataLayout(*mem, *info, t.address);
      if (!layout.ok() || layout->layout_class != Hdf5DataLayout::kChunked) continue;
      uint64_t n = 0;
      Status s = ForEachHdf5Chunk(*mem, *info, *layout, t.dims, t.max_dims, [&](const Hdf5StoredChunk& c) {
        ++n;
        EXPECT_LE(c.address, *size);
        return n > 10'000'000 ? InternalError("runaway") : OkStatus();
      });
      errors += !s.ok();
      ++runs;
      EXPECT_NE(s.code(), StatusCode::kInternal) << s.message();
    }
  }
  EXPECT_GT(runs, 1000);
  std::cout << runs << " index walks over corrupted bytes, " << errors << " refused\n";
}

}  // namespace
}  // namespace refzarr
