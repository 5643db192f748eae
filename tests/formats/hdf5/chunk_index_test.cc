// Cross-checks the file-format chunk index reader against the HDF5 library's H5Dget_chunk_info, for
// files written here with every index type and for every real-world HDF5 file.
#include "formats/hdf5/chunk_index.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <numeric>
#include <tuple>

#include "tests/formats/hdf5/hdf5_test_util.h"

namespace refzarr {
namespace {

using internal::H5Id;
using testing_hdf5::DatasetPaths;
using testing_hdf5::TempDir;

struct ChunkFacts {
  uint64_t address, size;
  uint32_t mask;
  bool operator==(const ChunkFacts& o) const {
    return std::tie(address, size, mask) == std::tie(o.address, o.size, o.mask);
  }
};
using ChunkMap = std::map<std::vector<uint64_t>, ChunkFacts>;  // element offsets -> facts

struct Extent {
  std::vector<uint64_t> dims, max_dims;
};

Extent GetExtent(hid_t dset) {
  H5Id space(H5Dget_space(dset));
  int rank = H5Sget_simple_extent_ndims(space.get());
  std::vector<hsize_t> d(std::max(rank, 0)), m(std::max(rank, 0));
  H5Sget_simple_extent_dims(space.get(), d.data(), m.data());
  Extent e;
  for (int i = 0; i < rank; ++i) {
    e.dims.push_back(d[i]);
    e.max_dims.push_back(m[i] == H5S_UNLIMITED ? UINT64_MAX : m[i]);
  }
  return e;
}

// The oracles. HDF5 1.10 reports chunk addresses relative to the base address (like the file
// format), and both H5Dget_chunk_info and H5Dget_chunk_info_by_coord cost O(chunks) per call, so large
// datasets are checked on a stride of chunks rather than all of them. H5Dget_chunk_info's offsets are
// wrong (not unswizzled) for extensible arrays whose unlimited dimension is not the first, so chunks
// are matched by address through
// H5Dget_chunk_info; by coordinates, H5Dread_chunk's raw bytes must be those at the parsed address.
constexpr uint64_t kFullCheckLimit = 1500;
constexpr uint64_t kSamples = 200;

uint64_t Stride(uint64_t n) { return n <= kFullCheckLimit ? 1 : n / kSamples; }

void CheckAgainstLibrary(const std::filesystem::path& file, hid_t dset, const ChunkMap& parsed, uint64_t base,
                         bool known_miscount) {
  hsize_t n = 0;
  H5Id space(H5Dget_space(dset));
  ASSERT_GE(H5Dget_num_chunks(dset, space.get(), &n), 0)
      << internal::FromHdf5(StatusCode::kInternal, "H5Dget_num_chunks").message();
  // h5fc_ext_none.h5:/DSET_EA was written by a pre-release library that numbered extensible-array
  // elements over the current rather than the maximum chunk grid; HDF5 1.10.8 (like this reader)
  // maps two of its four elements outside the extent, H5Dread returns fill there, and
  // H5Dget_num_chunks still counts them.
  if (known_miscount) {
    ASSERT_LE(parsed.size(), n);
  } else {
    ASSERT_EQ(parsed.size(), n);
  }
  std::map<uint64_t, ChunkFacts> by_address;
  for (const auto& [off, facts] : parsed) by_address[facts.address - base] = facts;
  const int rank = H5Sget_simple_extent_ndims(space.get());
  for (hsize_t i = 0; i < n; i += Stride(n)) {
    std::vector<hsize_t> off(rank);
    unsigned mask = 0;
    haddr_t addr = 0;
    hsize_t size = 0;
    ASSERT_GE(H5Dget_chunk_info(dset, space.get(), i, off.data(), &mask, &addr, &size), 0);
    auto it = by_address.find(addr);
    if (known_miscount && it == by_address.end()) continue;
    ASSERT_NE(it, by_address.end()) << "library chunk " << i << " at address " << addr << " not found";
    EXPECT_EQ(it->second.size, size);
    EXPECT_EQ(it->second.mask, mask);
  }
#if H5_VERSION_GE(1, 14, 0)
  // Newer libraries list the index in one pass: the same chunks at the same coordinates.
  ChunkMap iterated;
  H5Dchunk_iter(
      dset, H5P_DEFAULT,
      [](const hsize_t* offset, unsigned mask, haddr_t addr, hsize_t size, void* data) -> int {
        auto* m = static_cast<std::pair<ChunkMap*, int>*>(data);
        (*m->first)[std::vector<uint64_t>(offset, offset + m->second)] = {addr, size, mask};
        return H5_ITER_CONT;
      },
      std::make_unique<std::pair<ChunkMap*, int>>(&iterated, rank).get());
  for (const auto& [off, facts] : parsed) {
    auto it = iterated.find(off);
    ASSERT_NE(it, iterated.end());
    EXPECT_EQ(it->second, (ChunkFacts{facts.address - base, facts.size, facts.mask}));
  }
#endif
  // By coordinates: the raw bytes H5Dread_chunk returns for a chunk are the bytes at its parsed address.
  uint64_t k = 0;
  for (const auto& [off, facts] : parsed) {
    if (k++ % Stride(n) != 0) continue;
    std::vector<hsize_t> offset(off.begin(), off.end());
    hsize_t size = 0;
    ASSERT_GE(H5Dget_chunk_storage_size(dset, offset.data(), &size), 0);
    ASSERT_EQ(facts.size, size) << "chunk at element offset " << off[0];
    std::vector<char> expected(size), actual(size);
    uint32_t mask = 0;
    ASSERT_GE(H5Dread_chunk(dset, H5P_DEFAULT, offset.data(), &mask, expected.data()), 0);
    EXPECT_EQ(facts.mask, mask);
    std::FILE* fp = std::fopen(file.c_str(), "rb");
    ASSERT_NE(fp, nullptr);
    std::fseek(fp, static_cast<long>(facts.address), SEEK_SET);
    ASSERT_EQ(std::fread(actual.data(), 1, size, fp), size);
    std::fclose(fp);
    EXPECT_EQ(actual, expected) << "chunk at element offset " << off[0] << " (" << off.size() << "-D)";
  }
}

Result<ChunkMap> ParsedChunks(const std::filesystem::path& file, hid_t dset, Hdf5DataLayout* layout_out = nullptr,
                              uint64_t* base = nullptr) {
  ASSIGN_OR_RETURN(auto source, OpenLocalFile(file));
  ASSIGN_OR_RETURN(auto info, ReadHdf5Superblock(*source));
  if (base) *base = info.base_address;
  H5O_info_t oinfo;
  if (H5Oget_info2(dset, &oinfo, H5O_INFO_BASIC) < 0) return InternalError("H5Oget_info2");
  ASSIGN_OR_RETURN(auto layout, ReadHdf5DataLayout(*source, info, oinfo.addr));
  if (layout_out) *layout_out = layout;
  Extent e = GetExtent(dset);
  ChunkMap out;
  RETURN_IF_ERROR(ForEachHdf5Chunk(*source, info, layout, e.dims, e.max_dims, [&](const Hdf5StoredChunk& c) -> Status {
    std::vector<uint64_t> off(c.coords.size());
    for (size_t i = 0; i < off.size(); ++i) off[i] = c.coords[i] * layout.chunk_dims[i];
    if (!out.emplace(off, ChunkFacts{c.address, c.size, c.filter_mask}).second) {
      return CorruptError("chunk listed twice");
    }
    return OkStatus();
  }));
  return out;
}

// Checks every chunked dataset of `file`; returns how many were compared.
int CrossCheckFile(const std::filesystem::path& file, std::map<Hdf5ChunkIndexType, int>* seen = nullptr) {
  internal::Hdf5ErrorSilencer quiet;
  H5Id f(H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
  if (!f.valid()) return 0;
  int compared = 0;
  for (const std::string& path : DatasetPaths(f.get())) {
    H5Id d(H5Dopen2(f.get(), path.c_str(), H5P_DEFAULT));
    if (!d.valid()) continue;
    H5Id dcpl(H5Dget_create_plist(d.get()));
    if (H5Pget_layout(dcpl.get()) != H5D_CHUNKED) continue;
    SCOPED_TRACE(file.string() + ":" + path);
    Hdf5DataLayout layout;
    uint64_t base = 0;
    auto parsed = ParsedChunks(file, d.get(), &layout, &base);
    if (!parsed.ok()) {
      ADD_FAILURE() << parsed.status().message();
      continue;
    }
    CheckAgainstLibrary(file, d.get(), *parsed, base,
                        file.filename() == "h5fc_ext_none.h5" && path == "/DSET_EA");
    if (seen) ++(*seen)[layout.index_type];
    ++compared;
  }
  return compared;
}

// Writes one chunked dataset per index type, filtered and not, with the library's own writer.
class ChunkIndexFiles : public ::testing::Test {
 protected:
  struct Spec {
    std::string name;
    std::vector<hsize_t> dims, max_dims, chunk;
    bool deflate = false;
    bool early = false;
    double fraction = 1.0;  // share of the chunk grid that gets written
  };

  void Write(hid_t file, const Spec& s) {
    const int rank = static_cast<int>(s.dims.size());
    std::vector<hsize_t> max = s.max_dims.empty() ? s.dims : s.max_dims;
    for (auto& m : max) {
      if (m == 0) m = H5S_UNLIMITED;
    }
    H5Id space(H5Screate_simple(rank, s.dims.data(), max.data()));
    H5Id dcpl(H5Pcreate(H5P_DATASET_CREATE));
    ASSERT_GE(H5Pset_chunk(dcpl.get(), rank, s.chunk.data()), 0);
    if (s.deflate) {
      H5Pset_shuffle(dcpl.get());
      H5Pset_deflate(dcpl.get(), 4);
    }
    if (s.early) H5Pset_alloc_time(dcpl.get(), H5D_ALLOC_TIME_EARLY);
    H5Id d(H5Dcreate2(file, s.name.c_str(), H5T_STD_I32LE, space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT));
    ASSERT_TRUE(d.valid()) << s.name;
    uint64_t n = 1;
    for (auto v : s.dims) n *= v;
    std::vector<int32_t> data(n);
    std::iota(data.begin(), data.end(), 1);
    if (s.fraction >= 1.0) {
      ASSERT_GE(H5Dwrite(d.get(), H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, data.data()), 0);
      return;
    }
    // Sparse: write the first `fraction` of the leading dimension only.
    std::vector<hsize_t> start(rank, 0), count = s.dims;
    count[0] = std::max<hsize_t>(1, static_cast<hsize_t>(s.dims[0] * s.fraction));
    H5Id fspace(H5Dget_space(d.get()));
    H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr);
    H5Id mspace(H5Screate_simple(rank, count.data(), nullptr));
    ASSERT_GE(H5Dwrite(d.get(), H5T_NATIVE_INT32, mspace.get(), fspace.get(), H5P_DEFAULT, data.data()), 0);
  }

  std::filesystem::path MakeFile(const std::string& name, bool latest, hsize_t userblock,
                                 const std::vector<Spec>& specs) {
    auto path = dir_.path() / name;
    H5Id fapl(H5Pcreate(H5P_FILE_ACCESS));
    if (latest) H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);
    H5Id fcpl(H5Pcreate(H5P_FILE_CREATE));
    if (userblock) H5Pset_userblock(fcpl.get(), userblock);
    H5Id f(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, fcpl.get(), fapl.get()));
    EXPECT_TRUE(f.valid());
    for (const auto& s : specs) Write(f.get(), s);
    return path;
  }

  TempDir dir_;
};

TEST_F(ChunkIndexFiles, EveryVersion4IndexTypeMatchesTheLibrary) {
  std::vector<Spec> specs = {
      {"fixed", {40, 30}, {}, {7, 4}},
      {"fixed_deflate", {40, 30}, {}, {7, 4}, true},
      {"fixed_larger_max", {10, 10}, {20, 30}, {3, 4}},
      {"fixed_paged", {150, 20}, {}, {1, 1}, false, false, 0.5},
      {"fixed_paged_deflate", {150, 20}, {}, {1, 1}, true},
      {"implicit", {20, 9}, {}, {6, 4}, false, true},
      {"single", {5, 6}, {}, {5, 6}},
      {"single_deflate", {5, 6}, {}, {5, 6}, true},
      {"earray", {3000}, {0}, {1}},
      {"earray_deflate", {3000}, {0}, {1}, true},
      {"earray_sparse", {3000}, {0}, {1}, false, false, 0.3},
      // Beyond 65,540 elements the extensible array's data blocks exceed 1,024 elements: paged.
      {"earray_paged", {70000}, {0}, {1}, false, false, 0.99},
      {"earray_dim1", {3, 50}, {3, 0}, {2, 4}},
      {"earray_2d_deflate", {300, 7}, {0, 7}, {1, 3}, true},
      {"btree2", {30, 40}, {0, 0}, {3, 4}},
      {"btree2_deflate", {30, 40}, {0, 0}, {3, 4}, true},
      {"btree2_deep", {100, 100}, {0, 0}, {1, 1}},
      {"btree2_deep_deflate", {30, 100}, {0, 0}, {1, 1}, true},
  };
  auto path = MakeFile("v4.h5", true, 0, specs);
  std::map<Hdf5ChunkIndexType, int> seen;
  EXPECT_EQ(CrossCheckFile(path, &seen), static_cast<int>(specs.size()));
  for (auto t : {Hdf5ChunkIndexType::kSingleChunk, Hdf5ChunkIndexType::kImplicit, Hdf5ChunkIndexType::kFixedArray,
                 Hdf5ChunkIndexType::kExtensibleArray, Hdf5ChunkIndexType::kBTreeV2}) {
    EXPECT_GT(seen[t], 0) << "no dataset used the " << Hdf5ChunkIndexName(t) << " index";
  }
}

TEST_F(ChunkIndexFiles, Version1BTreeMatchesTheLibraryAcrossLevels) {
  auto path = MakeFile("v1.h5", false, 0,
                       {{"small", {50, 60}, {}, {7, 8}, true},
                        {"many", {5000}, {}, {1}},
                        {"sparse", {5000}, {0}, {1}, false, false, 0.4}});
  std::map<Hdf5ChunkIndexType, int> seen;
  EXPECT_EQ(CrossCheckFile(path, &seen), 3);
  EXPECT_EQ(seen[Hdf5ChunkIndexType::kBTreeV1], 3);
}

TEST_F(ChunkIndexFiles, UserblockShiftsEveryAddress) {
  auto path = MakeFile("ub.h5", true, 1024, {{"fixed", {40, 30}, {}, {7, 4}, true}, {"b2", {9, 9}, {0, 0}, {2, 2}}});
  auto v1 = MakeFile("ub1.h5", false, 2048, {{"v1", {40, 30}, {}, {7, 4}, true}});
  EXPECT_EQ(CrossCheckFile(path), 2);
  EXPECT_EQ(CrossCheckFile(v1), 1);
  auto source = OpenLocalFile(path);
  ASSERT_TRUE(source.ok());
  auto info = ReadHdf5Superblock(**source);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->base_address, 1024u);
}

TEST_F(ChunkIndexFiles, DirectlyWrittenChunkKeepsItsFilterMask) {
  auto path = MakeFile("mask.h5", true, 0, {{"fixed", {8, 8}, {}, {4, 4}, true}, {"b2", {8, 8}, {0, 0}, {4, 4}, true},
                                             {"ea", {8, 8}, {0, 8}, {4, 4}, true}});
  {
    H5Id f(H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT));
    for (const char* name : {"fixed", "b2", "ea"}) {
      H5Id d(H5Dopen2(f.get(), name, H5P_DEFAULT));
      std::vector<int32_t> raw(16, 7);
      hsize_t offset[2] = {4, 4};
      // Filter mask 0b11: neither shuffle nor deflate applied, the bytes are raw.
      ASSERT_GE(H5Dwrite_chunk(d.get(), H5P_DEFAULT, 3, offset, raw.size() * 4, raw.data()), 0);
    }
  }
  EXPECT_EQ(CrossCheckFile(path), 3);
  internal::Hdf5ErrorSilencer quiet;
  H5Id f(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
  H5Id d(H5Dopen2(f.get(), "fixed", H5P_DEFAULT));
  auto parsed = ParsedChunks(path, d.get());
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->at({4, 4}).mask, 3u);
  EXPECT_EQ(parsed->at({0, 0}).mask, 0u);
}

TEST(ChunkIndexRealData, EveryChunkedDatasetMatchesTheLibrary) {
  auto files = testing_hdf5::RealDataHdf5Files();
  ASSERT_FALSE(files.empty()) << "REFZARR_SHARED_DIR/realdata/hdf5 not available";
  std::map<Hdf5ChunkIndexType, int> seen;
  int total = 0;
  for (const auto& f : files) total += CrossCheckFile(f, &seen);
  EXPECT_GT(total, 80);
  for (auto t : {Hdf5ChunkIndexType::kBTreeV1, Hdf5ChunkIndexType::kSingleChunk, Hdf5ChunkIndexType::kImplicit,
                 Hdf5ChunkIndexType::kFixedArray, Hdf5ChunkIndexType::kExtensibleArray, Hdf5ChunkIndexType::kBTreeV2}) {
    EXPECT_GT(seen[t], 0) << Hdf5ChunkIndexName(t);
  }
}

TEST(ChunkIndexRealData, EdgeChunksStoredUnfilteredAreFlagged) {
  auto file = testing_hdf5::RealDataHdf5Dir() / "vchoi-hdfgroup+hdf5/tools/test/h5format_convert/testfiles/h5fc_edge_v3.h5";
  ASSERT_TRUE(std::filesystem::exists(file)) << "realdata file missing: " << file;
  internal::Hdf5ErrorSilencer quiet;
  H5Id f(H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
  H5Id d(H5Dopen2(f.get(), "/DSET_EDGE", H5P_DEFAULT));
  auto source = OpenLocalFile(file);
  ASSERT_TRUE(source.ok());
  auto info = ReadHdf5Superblock(**source);
  ASSERT_TRUE(info.ok());
  H5O_info_t oinfo;
  ASSERT_GE(H5Oget_info2(d.get(), &oinfo, H5O_INFO_BASIC), 0);
  auto layout = ReadHdf5DataLayout(**source, *info, oinfo.addr);
  ASSERT_TRUE(layout.ok()) << layout.status().message();
  EXPECT_TRUE(layout->dont_filter_partial_edge_chunks);
  Extent e = GetExtent(d.get());
  int edges = 0, full = 0;
  ASSERT_TRUE(ForEachHdf5Chunk(**source, *info, *layout, e.dims, e.max_dims, [&](const Hdf5StoredChunk& c) {
                (c.unfiltered_edge ? edges : full)++;
                // Unfiltered edge chunks hold exactly a full chunk of raw floats.
                if (c.unfiltered_edge) {
                  EXPECT_EQ(c.size, 5u * 5u * 4u);
                }
                return OkStatus();
              }).ok());
  EXPECT_EQ(edges, 4);
  EXPECT_EQ(full, 2);
}

TEST(ChunkIndexCorrupt, GarbageIndexAddressIsAnErrorNotACrash) {
  // A layout that points its B-tree into random bytes: every index type must refuse cleanly.
  std::vector<std::byte> bytes(4096);
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<std::byte>((i * 7919) >> 3);
  auto source = MakeMemorySource(bytes, "garbage");
  Hdf5FileInfo info;
  for (int t = 0; t <= 5; ++t) {
    Hdf5DataLayout layout;
    layout.layout_class = Hdf5DataLayout::kChunked;
    layout.chunk_dims = {4, 4};
    layout.element_size = 4;
    layout.index_type = static_cast<Hdf5ChunkIndexType>(t);
    layout.index_address = 100;
    int calls = 0;
    Status s = ForEachHdf5Chunk(*source, info, layout, {16, 16}, {t == 4 ? UINT64_MAX : 16, t == 5 ? UINT64_MAX : 16},
                                [&](const Hdf5StoredChunk&) {
                                  ++calls;
                                  return OkStatus();
                                });
    if (t == 1 || t == 2) {
      EXPECT_TRUE(s.ok()) << s.message();  // no index structure to validate
    } else {
      EXPECT_EQ(s.code(), StatusCode::kCorrupt) << Hdf5ChunkIndexName(layout.index_type) << ": " << s.message();
      EXPECT_EQ(calls, 0);
    }
  }
}

}  // namespace
}  // namespace refzarr
