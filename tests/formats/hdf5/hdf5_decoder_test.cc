// The "hdf5" ChunkDecoder against H5Dread: every chunk of datasets with native, non-native and
// masked chunks decodes to exactly the chunk region the HDF5 library reads.
#include "formats/hdf5/hdf5_decoder.h"

#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <random>

#include <zlib.h>
#include <thread>

#include "formats/hdf5/chunk_index.h"
#include "formats/hdf5/hdf5_scanner.h"
#include "formats/hdf5/hdf5_types.h"
#include "samples/hdf5/hdf5_samples.h"
#include "tests/formats/hdf5/hdf5_test_util.h"
#include "tests/formats/hdf5/reassemble.h"

namespace refzarr {
namespace {

using internal::H5Id;
using testing_hdf5::ChunksOf;
using testing_hdf5::ScanHdf5File;

// Decodes every stored chunk of `array` with the decoder (never the native path) and compares it
// with H5Dread of the same region into a chunk-shaped buffer. Returns the number of chunks checked.
int DecodeEveryChunk(const std::filesystem::path& file, const ScannedFile::Array& array, const ChunkDecoder& decoder) {
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
  for (const auto& [index, ref] : ChunksOf(array).stored) {
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
    auto scan = ScanHdf5File(c.file);
    ASSERT_TRUE(scan.ok()) << scan.status().message();
    const auto* a = scan->FindArray(c.array);
    const ScannedFile::Refusal* refusal = testing_hdf5::FindRefusal(*scan, c.array);
    ASSERT_NE(a, nullptr) << (refusal ? refusal->reason : "");
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
  auto scan = ScanHdf5File(file);
  ASSERT_TRUE(scan.ok()) << scan.status().message();
  auto decoder = MakeHdf5ChunkDecoder();
  const auto* a = scan->FindArray("chunked/gzip_shuffle");
  const auto* b = scan->FindArray("chunked/fletcher32");
  auto decode_all = [&](const ScannedFile::Array* arr, std::vector<std::vector<std::byte>>* out) {
    auto src = OpenLocalFile(file);
    for (const auto& [index, ref] : ChunksOf(*arr).stored) {
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

// The ArrayDesc the scanner would declare for `dataset` (dtype, chunks, "hdf5" params), built
// from the scanner's own pieces but without its refusals, so that CheckArray is what judges it.
ArrayDesc DescribeLikeTheScanner(const std::filesystem::path& file, const std::string& dataset) {
  internal::Hdf5ErrorSilencer quiet;
  ArrayDesc a;
  H5Id f(H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
  H5Id d(H5Dopen2(f.get(), dataset.c_str(), H5P_DEFAULT));
  EXPECT_TRUE(d.valid()) << file << ":" << dataset;
  if (!d.valid()) return a;
  H5Id type(H5Dget_type(d.get()));
  H5Id space(H5Dget_space(d.get()));
  H5Id dcpl(H5Dget_create_plist(d.get()));
  auto dtype = internal::DTypeFromHdf5(type.get());
  EXPECT_TRUE(dtype.ok()) << dtype.status().message();
  if (dtype.ok()) a.dtype = *dtype;
  const int rank = H5Sget_simple_extent_ndims(space.get());
  std::vector<hsize_t> dims(rank), chunks(rank);
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  H5Pget_chunk(dcpl.get(), rank, chunks.data());
  a.shape.assign(dims.begin(), dims.end());
  a.chunks.assign(chunks.begin(), chunks.end());
  auto filters = internal::ReadFilters(dcpl.get());
  EXPECT_TRUE(filters.ok());
  auto enc = internal::EncodingFromFilters(*filters, type.get(), a.dtype, nullptr);
  EXPECT_TRUE(enc.ok());
  a.encoding = *enc;
  std::vector<std::byte> fill(H5Tget_size(type.get()));
  H5Pget_fill_value(dcpl.get(), type.get(), fill.data());
  a.encoding.params["fill"] = internal::Base64(fill);
  H5Eclear2(H5E_DEFAULT);
  return a;
}

// Filters without a plugin here (see /work/shared/realdata MANIFEST.tsv): CheckArray refuses the
// array at index time, naming the filter, rather than every read failing later.
TEST(Hdf5ChunkDecoder, CheckArrayRefusesFiltersTheLibraryCannotLoad) {
  auto real = testing_hdf5::RealDataHdf5Dir();
  struct Case {
    std::string file, dataset, id;
  };
  const std::vector<Case> cases = {
      {"vchoi-hdfgroup+hdf5/tools/test/h5dump/testfiles/tudfilter.h5", "/dynlibud", "300"},
      {"vchoi-hdfgroup+hdf5/tools/test/h5dump/testfiles/tfilters.h5", "/myfilter", "405"},
      {"HDFGroup+hdf5_plugins/BSHUF/example/testfiles/h5ex_d_bshuf.h5", "/DS1", "32008"},
      {"HDFGroup+hdf5_plugins/config/cmake/binex/example/testfiles/h5ex_d_jpeg.h5", "/DS1", "32019"},
  };
  auto decoder = MakeHdf5ChunkDecoder();
  for (const Case& c : cases) {
    SCOPED_TRACE(c.file + ":" + c.dataset);
    ASSERT_TRUE(std::filesystem::exists(real / c.file)) << "realdata file missing";
    const ArrayDesc a = DescribeLikeTheScanner(real / c.file, c.dataset);
    EXPECT_FALSE(a.encoding.native);
    const Status s = decoder->CheckArray(a);
    EXPECT_EQ(s.code(), StatusCode::kUnsupported) << s.message();
    EXPECT_NE(s.message().find("HDF5 filter " + c.id), std::string::npos) << s.message();
    EXPECT_NE(s.message().find("not available"), std::string::npos) << s.message();
  }
}

TEST(Hdf5ChunkDecoder, CheckArrayAcceptsThePipelinesDecodeDecodes) {
  auto real = testing_hdf5::RealDataHdf5Dir();
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"vchoi-hdfgroup+hdf5/tools/test/h5dump/testfiles/tfilters.h5", "/szip"},
      {"vchoi-hdfgroup+hdf5/tools/test/h5dump/testfiles/tfilters.h5", "/scaleoffset"},
      {"vchoi-hdfgroup+hdf5/tools/test/h5repack/testfiles/h5repack_szip.h5", "/dset_szip"},
      {"vchoi-hdfgroup+hdf5/tools/test/h5repack/testfiles/h5repack_filters.h5", "/dset_all"},
      {"vchoi-hdfgroup+hdf5/test/testfiles/be_data.h5", "/Scale_offset_double_data_be"},
      {"HDFGroup+hdf5_plugins/LZF/example/testfiles/h5ex_d_lzf.h5", "/DS1"},
      {"HDFGroup+hdf5_plugins/LZ4/example/testfiles/h5ex_d_lz4.h5", "/DS1"},
  };
  auto decoder = MakeHdf5ChunkDecoder();
  for (const auto& [file, dataset] : cases) {
    SCOPED_TRACE(file + ":" + dataset);
    ASSERT_TRUE(std::filesystem::exists(real / file)) << "realdata file missing";
    const Status s = decoder->CheckArray(DescribeLikeTheScanner(real / file, dataset));
    EXPECT_TRUE(s.ok()) << s.message();
  }
}

// What Decode would refuse from the description alone, CheckArray refuses.
TEST(Hdf5ChunkDecoder, CheckArrayRefusesParametersTheDecoderWouldReject) {
  auto real = testing_hdf5::RealDataHdf5Dir();
  const ArrayDesc szip =
      DescribeLikeTheScanner(real / "vchoi-hdfgroup+hdf5/tools/test/h5dump/testfiles/tfilters.h5", "/szip");
  auto decoder = MakeHdf5ChunkDecoder();
  ASSERT_TRUE(decoder->CheckArray(szip).ok());
  auto refused = [&](const std::function<void(ArrayDesc&)>& change, StatusCode code, const std::string& text) {
    SCOPED_TRACE(text);
    ArrayDesc a = szip;
    change(a);
    const Status s = decoder->CheckArray(a);
    EXPECT_EQ(s.code(), code) << s.message();
    EXPECT_NE(s.message().find(text), std::string::npos) << s.message();
  };
  refused([](ArrayDesc& a) { a.encoding.params.erase("type"); }, StatusCode::kInvalidArgument, "no \"type\"");
  refused([](ArrayDesc& a) { a.encoding.params["fill"] = internal::Base64(std::vector<std::byte>(2)); },
          StatusCode::kInvalidArgument, "fill value of 2 bytes");
  refused([](ArrayDesc& a) { a.dtype = DType::Make('i', 8); }, StatusCode::kInvalidArgument, "4-byte datatype");
  refused([](ArrayDesc& a) { a.encoding.params["filters"][0]["cd_values"] = {"x"}; }, StatusCode::kInvalidArgument,
          "cd_value");
  refused([](ArrayDesc& a) { a.encoding.params["filters"][0]["id"] = 65100; }, StatusCode::kUnsupported,
          "reserves");
  // szip needs an even number of pixels per block, at most 32.
  refused([](ArrayDesc& a) { a.encoding.params["filters"][0]["cd_values"] = {4, 33}; }, StatusCode::kUnsupported,
          "33 pixels per block");
  refused([](ArrayDesc& a) { a.chunks = {1u << 20, 1u << 20}; }, StatusCode::kUnsupported, "4 GiB");
  refused([](ArrayDesc& a) { a.encoding.params["filters"] = nlohmann::json::array({{{"id", 32008}, {"name", "bs"}}}); },
          StatusCode::kUnsupported, "HDF5 filter 32008");
}

// The library itself would pad a filtered chunk that decodes short (with zeros, or whatever its
// buffer held) and cut one that decodes long: both are errors, never bytes.
TEST(Hdf5ChunkDecoder, AFilteredChunkThatDecodesToTheWrongSizeIsAnError) {
  testing_hdf5::TempDir dir;
  const auto file = dir.path() / "deflate.h5";
  {
    H5Id f(H5Fcreate(file.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
    const hsize_t dims[1] = {256};
    H5Id space(H5Screate_simple(1, dims, nullptr));
    H5Id dcpl(H5Pcreate(H5P_DATASET_CREATE));
    H5Pset_chunk(dcpl.get(), 1, dims);
    H5Pset_deflate(dcpl.get(), 1);
    H5Id d(H5Dcreate2(f.get(), "d", H5T_STD_I32LE, space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT));
    ASSERT_TRUE(d.valid());
  }
  const ArrayDesc a = DescribeLikeTheScanner(file, "/d");
  auto decoder = MakeHdf5ChunkDecoder();
  ASSERT_TRUE(decoder->CheckArray(a).ok());
  auto deflate = [](size_t elements) {
    std::vector<int32_t> v(elements, 5);
    uLongf n = compressBound(v.size() * 4);
    std::vector<std::byte> z(n);
    EXPECT_EQ(compress(reinterpret_cast<Bytef*>(z.data()), &n, reinterpret_cast<const Bytef*>(v.data()), v.size() * 4), Z_OK);
    z.resize(n);
    return z;
  };
  const std::vector<uint64_t> coords = {0};
  std::vector<std::byte> out(a.ChunkBytes());
  EXPECT_TRUE(decoder->Decode(a, coords, ChunkRef{0, 0, 0, 0}, deflate(256), out).ok());
  EXPECT_EQ(reinterpret_cast<const int32_t*>(out.data())[255], 5);
  for (size_t elements : {10u, 300u}) {
    SCOPED_TRACE(elements);
    const auto stored = deflate(elements);
    const Status s = decoder->Decode(a, coords, ChunkRef{0, 0, stored.size(), 0}, stored, out);
    EXPECT_EQ(s.code(), StatusCode::kCorrupt) << s.message();
    EXPECT_NE(s.message().find("decodes its " + std::to_string(stored.size()) + " stored bytes to " +
                               std::to_string(elements * 4) + " bytes; a chunk holds 1024"),
              std::string::npos)
        << s.message();
  }
}

// N-bit integers of odd precision decode through the library to their container type, as h5py
// reads them ("17-bit signed integer at bit offset 0 in 4 bytes" -> <i4, sign-extended).
TEST(Hdf5ChunkDecoder, ReducedPrecisionIntegersAreServedInTheirContainerType) {
  auto file = testing_hdf5::RealDataHdf5Dir() / "vchoi-hdfgroup+hdf5/tools/test/h5dump/testfiles/tfilters.h5";
  ASSERT_TRUE(std::filesystem::exists(file)) << "realdata file missing: " << file;
  auto scan = ScanHdf5File(file);
  ASSERT_TRUE(scan.ok()) << scan.status().message();
  const auto* a = scan->FindArray("nbit");
  ASSERT_NE(a, nullptr) << (testing_hdf5::FindRefusal(*scan, "nbit") ? testing_hdf5::FindRefusal(*scan, "nbit")->reason : "");
  EXPECT_EQ(a->desc.dtype.ToV2(), "<i4");
  EXPECT_FALSE(a->desc.encoding.native);
  EXPECT_TRUE(a->desc.encoding.params.contains("read_type"));
  EXPECT_TRUE(MakeHdf5ChunkDecoder()->CheckArray(a->desc).ok());
  // Every chunk equals H5Dread into the container type (DecodeEveryChunk reads with the file type,
  // which for 17-bit integers is not what is served).
  internal::Hdf5ErrorSilencer quiet;
  H5Id f(H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
  H5Id d(H5Dopen2(f.get(), "/nbit", H5P_DEFAULT));
  std::vector<int32_t> want(a->desc.shape[0] * a->desc.shape[1]);
  ASSERT_GE(H5Dread(d.get(), H5T_STD_I32LE, H5S_ALL, H5S_ALL, H5P_DEFAULT, want.data()), 0);
  auto source = OpenLocalFile(file);
  auto decoder = MakeHdf5ChunkDecoder();
  int negative = 0, chunks = 0;
  const auto grid = a->desc.GridShape();
  for (const auto& [index, ref] : ChunksOf(*a).stored) {
    auto stored = ReadRange(**source, {ref.offset, ref.length});
    ASSERT_TRUE(stored.ok());
    std::vector<std::byte> got(a->desc.ChunkBytes());
    const auto cc = ChunkCoords(grid, index);
    ASSERT_TRUE(decoder->Decode(a->desc, cc, ref, *stored, got).ok());
    const auto* v = reinterpret_cast<const int32_t*>(got.data());
    for (uint64_t y = 0; y < a->desc.chunks[0]; ++y) {
      for (uint64_t x = 0; x < a->desc.chunks[1]; ++x) {
        const uint64_t gy = cc[0] * a->desc.chunks[0] + y, gx = cc[1] * a->desc.chunks[1] + x;
        if (gy >= a->desc.shape[0] || gx >= a->desc.shape[1]) continue;
        const int32_t w = want[gy * a->desc.shape[1] + gx];
        EXPECT_EQ(v[y * a->desc.chunks[1] + x], w) << "at (" << gy << ", " << gx << ")";
        negative += w < 0;
      }
    }
    ++chunks;
  }
  EXPECT_GT(chunks, 0);
  std::cout << chunks << " chunks, " << negative << " negative values\n";
}

// Negative values of a 17-bit signed type, N-bit filtered (chunked) and unfiltered (contiguous),
// read back sign-extended in 4 bytes as H5Dread converts them.
TEST(Hdf5ChunkDecoder, ReducedPrecisionNegativeIntegersAreSignExtended) {
  testing_hdf5::TempDir dir;
  const auto file = dir.path() / "n17.h5";
  std::vector<int32_t> values(300);
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<int32_t>(i * 397) - 60000;
  {
    H5Id f(H5Fcreate(file.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
    H5Id t17(H5Tcopy(H5T_STD_I32LE));
    ASSERT_GE(H5Tset_precision(t17.get(), 17), 0);
    const hsize_t dims[1] = {300}, chunks[1] = {64};
    H5Id space(H5Screate_simple(1, dims, nullptr));
    H5Id nbit(H5Pcreate(H5P_DATASET_CREATE));
    H5Pset_chunk(nbit.get(), 1, chunks);
    H5Pset_nbit(nbit.get());
    for (auto [name, dcpl] : {std::pair<const char*, hid_t>{"nbit", nbit.get()}, {"contiguous", H5P_DEFAULT}}) {
      H5Id d(H5Dcreate2(f.get(), name, t17.get(), space.get(), H5P_DEFAULT, dcpl, H5P_DEFAULT));
      ASSERT_GE(H5Dwrite(d.get(), H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()), 0);
    }
  }
  auto scan = ScanHdf5File(file);
  ASSERT_TRUE(scan.ok()) << scan.status().message();
  auto decoder = MakeHdf5ChunkDecoder();
  for (const char* name : {"nbit", "contiguous"}) {
    SCOPED_TRACE(name);
    const auto* a = scan->FindArray(name);
    ASSERT_NE(a, nullptr);
    EXPECT_EQ(a->desc.dtype.ToV2(), "<i4");
    EXPECT_FALSE(a->desc.encoding.native);
    const std::vector<std::byte> fill(4, std::byte{0});
    auto got = testing_hdf5::Reassemble(*scan, *a, file, fill, *decoder);
    ASSERT_TRUE(got.ok()) << got.status().message();
    ASSERT_EQ(got->size(), values.size() * 4);
    EXPECT_EQ(std::memcmp(got->data(), values.data(), got->size()), 0);
  }
}

// Random byte flips in the index structures of every chunked dataset of a v4 file: the reader
// returns an error or some chunks, never crashes or loops (ASan/UBSan builds make this sharper).
// With checksums verified, a flip inside a checksummed block is an error.
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
        ++n;  // Addresses may point anywhere: VisitStoredChunks checks them against the file size.
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
