#include "samples/hdf5/hdf5_hostile_samples.h"

#include <hdf5.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>
#include <numeric>

#include "formats/hdf5/hdf5_util.h"

namespace refzarr::samples {
namespace {

using internal::CheckErr;
using internal::CheckId;
using internal::H5Id;
using Bytes = std::vector<unsigned char>;

// Every damaged file holds "data" (the damaged dataset, 64 x 64 int32 in 16 x 16 chunks unless
// said otherwise) and "ok", an intact contiguous dataset.
constexpr hsize_t kSide = 64, kChunk = 16;
constexpr uint64_t kChunkBytes = kChunk * kChunk * 4;

Bytes Le(uint64_t v, int n) {
  Bytes out(n);
  for (int i = 0; i < n; ++i) out[i] = static_cast<unsigned char>(v >> (8 * i));
  return out;
}

Bytes Cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

uint64_t LoadLe(const Bytes& b, size_t at, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | b.at(at + i);
  return v;
}

Result<Bytes> ReadAll(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return IoError("read " + path.string());
  return Bytes(std::istreambuf_iterator<char>(in), {});
}

Status WriteAll(const std::filesystem::path& path, const Bytes& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  return out ? OkStatus() : IoError("write " + path.string());
}

// Replaces the occurrences of `from` at or after `start` (at most `limit`, 0: all) by `to`
// (same size); fails unless at least one was found.
Status Patch(Bytes& bytes, const Bytes& from, const Bytes& to, const std::string& what, size_t start = 0,
             size_t limit = 0) {
  size_t n = 0;
  auto at = bytes.begin() + static_cast<std::ptrdiff_t>(std::min(start, bytes.size()));
  while ((at = std::search(at, bytes.end(), from.begin(), from.end())) != bytes.end()) {
    std::copy(to.begin(), to.end(), at);
    at += static_cast<std::ptrdiff_t>(from.size());
    if (++n == limit) break;
  }
  return n > 0 ? OkStatus() : InternalError("hostile sample: " + what + " not found in the file");
}

size_t Find(const Bytes& bytes, const std::string& text) {
  auto at = std::search(bytes.begin(), bytes.end(), text.begin(), text.end());
  return at == bytes.end() ? std::string::npos : static_cast<size_t>(at - bytes.begin());
}

H5Id Plist(hid_t cls) {
  H5Id p(H5Pcreate(cls));
  H5Pset_obj_track_times(p.get(), false);
  return p;
}

// "data" (chunked, no filters, every chunk written) and "ok" in a new file.
Status WriteBase(const std::filesystem::path& path, bool latest) {
  H5Id fapl(H5Pcreate(H5P_FILE_ACCESS));
  if (latest) H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);
  ASSIGN_OR_RETURN(H5Id f, CheckId(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()),
                                   "create " + path.string(), StatusCode::kIo));
  const hsize_t dims[2] = {kSide, kSide}, chunks[2] = {kChunk, kChunk};
  H5Id space(H5Screate_simple(2, dims, nullptr));
  H5Id dcpl = Plist(H5P_DATASET_CREATE);
  H5Pset_chunk(dcpl.get(), 2, chunks);
  ASSIGN_OR_RETURN(H5Id d, CheckId(H5Dcreate2(f.get(), "data", H5T_STD_I32LE, space.get(), H5P_DEFAULT, dcpl.get(),
                                              H5P_DEFAULT), "data", StatusCode::kIo));
  std::vector<int32_t> v(kSide * kSide);
  std::iota(v.begin(), v.end(), 0);
  RETURN_IF_ERROR(CheckErr(H5Dwrite(d.get(), H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()), "write data",
                           StatusCode::kIo));
  const hsize_t n = 8;
  H5Id small(H5Screate_simple(1, &n, nullptr));
  ASSIGN_OR_RETURN(H5Id ok, CheckId(H5Dcreate2(f.get(), "ok", H5T_STD_I32LE, small.get(), H5P_DEFAULT,
                                               Plist(H5P_DATASET_CREATE).get(), H5P_DEFAULT), "ok", StatusCode::kIo));
  return CheckErr(H5Dwrite(ok.get(), H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()), "write ok",
                  StatusCode::kIo);
}

// Address of the chunk of "data" at element offset (y, x).
Result<uint64_t> ChunkAddress(const std::filesystem::path& path, hsize_t y, hsize_t x) {
  ASSIGN_OR_RETURN(H5Id f, CheckId(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), "open " + path.string(),
                                   StatusCode::kIo));
  ASSIGN_OR_RETURN(H5Id d, CheckId(H5Dopen2(f.get(), "data", H5P_DEFAULT), "open data", StatusCode::kIo));
  const hsize_t offset[2] = {y, x};
  unsigned mask = 0;
  haddr_t addr = 0;
  hsize_t size = 0;
  RETURN_IF_ERROR(CheckErr(H5Dget_chunk_info_by_coord(d.get(), offset, &mask, &addr, &size), "chunk info",
                           StatusCode::kIo));
  return static_cast<uint64_t>(addr);
}

// The superblock (version 3, 8-byte offsets) ends with its checksum at byte 44.
Status BadSuperblockChecksum(const std::filesystem::path& path) {
  RETURN_IF_ERROR(WriteBase(path, true));
  ASSIGN_OR_RETURN(Bytes b, ReadAll(path));
  if (b.size() < 48 || b[8] != 3 || b[9] != 8) return InternalError("hostile sample: not a version 3 superblock");
  b[44] ^= 0x5a;
  return WriteAll(path, b);
}

// The root group's version 2 object header: "OHDR", version, flags, optional times (flag 0x20)
// and attribute phase change values (0x10), the size of chunk 0 (1 << (flags & 3) bytes), the
// chunk, then its checksum.
Status BadRootHeaderChecksum(const std::filesystem::path& path) {
  RETURN_IF_ERROR(WriteBase(path, true));
  ASSIGN_OR_RETURN(Bytes b, ReadAll(path));
  const uint64_t root = LoadLe(b, 36, 8);
  if (root + 8 > b.size() || std::memcmp(b.data() + root, "OHDR", 4) != 0) {
    return InternalError("hostile sample: no OHDR at the root address");
  }
  const unsigned flags = b[root + 5];
  uint64_t at = root + 6 + ((flags & 0x20) ? 16 : 0) + ((flags & 0x10) ? 4 : 0);
  const int width = 1 << (flags & 3);
  const uint64_t chunk0 = LoadLe(b, at, width);
  at += width + chunk0;
  if (at + 4 > b.size()) return InternalError("hostile sample: root object header runs past the file");
  b[at] ^= 0x5a;
  return WriteAll(path, b);
}

// The fixed array data block's first element now points at the second chunk: the bytes there are
// the wrong chunk's, and the block's checksum no longer matches.
Status BadIndexChecksum(const std::filesystem::path& path) {
  RETURN_IF_ERROR(WriteBase(path, true));
  ASSIGN_OR_RETURN(const uint64_t first, ChunkAddress(path, 0, 0));
  ASSIGN_OR_RETURN(const uint64_t second, ChunkAddress(path, 0, kChunk));
  ASSIGN_OR_RETURN(Bytes b, ReadAll(path));
  const size_t block = Find(b, "FADB");
  if (block == std::string::npos) return InternalError("hostile sample: no fixed array data block");
  RETURN_IF_ERROR(Patch(b, Le(first, 8), Le(second, 8), "the first chunk's address", block, 1));
  return WriteAll(path, b);
}

// "data" is contiguous, 1000003 int32; its dataspace now says 2^62 + 1000003 elements, whose byte
// count wraps around to the stored size (the library opens it).
Status HugeShape(const std::filesystem::path& path) {
  {
    ASSIGN_OR_RETURN(H5Id f, CheckId(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT),
                                     "create " + path.string(), StatusCode::kIo));
    const hsize_t n = 1000003, small = 8;
    std::vector<int32_t> v(n, 7);
    H5Id space(H5Screate_simple(1, &n, nullptr));
    ASSIGN_OR_RETURN(H5Id d, CheckId(H5Dcreate2(f.get(), "data", H5T_STD_I32LE, space.get(), H5P_DEFAULT,
                                                Plist(H5P_DATASET_CREATE).get(), H5P_DEFAULT), "data", StatusCode::kIo));
    RETURN_IF_ERROR(CheckErr(H5Dwrite(d.get(), H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()), "write",
                             StatusCode::kIo));
    H5Id s2(H5Screate_simple(1, &small, nullptr));
    ASSIGN_OR_RETURN(H5Id ok, CheckId(H5Dcreate2(f.get(), "ok", H5T_STD_I32LE, s2.get(), H5P_DEFAULT,
                                                 Plist(H5P_DATASET_CREATE).get(), H5P_DEFAULT), "ok", StatusCode::kIo));
    RETURN_IF_ERROR(CheckErr(H5Dwrite(ok.get(), H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()), "write",
                             StatusCode::kIo));
  }
  ASSIGN_OR_RETURN(Bytes b, ReadAll(path));
  RETURN_IF_ERROR(Patch(b, Le(1000003, 8), Le(1000003 + (uint64_t{1} << 62), 8), "the dataspace size"));
  return WriteAll(path, b);
}

// "data" is compact, 60001 int8; its dataspace now says 5.4 billion elements (the library opens
// it: the compact data is what it was). Reading it whole allocated 5.4 GB.
Status HugeCompact(const std::filesystem::path& path) {
  {
    ASSIGN_OR_RETURN(H5Id f, CheckId(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT),
                                     "create " + path.string(), StatusCode::kIo));
    const hsize_t n = 60001, small = 8;
    std::vector<int8_t> v(n, 7);
    H5Id dcpl = Plist(H5P_DATASET_CREATE);
    H5Pset_layout(dcpl.get(), H5D_COMPACT);
    H5Id space(H5Screate_simple(1, &n, nullptr));
    ASSIGN_OR_RETURN(H5Id d, CheckId(H5Dcreate2(f.get(), "data", H5T_STD_I8LE, space.get(), H5P_DEFAULT, dcpl.get(),
                                                H5P_DEFAULT), "data", StatusCode::kIo));
    RETURN_IF_ERROR(CheckErr(H5Dwrite(d.get(), H5T_NATIVE_INT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()), "write",
                             StatusCode::kIo));
    H5Id s2(H5Screate_simple(1, &small, nullptr));
    ASSIGN_OR_RETURN(H5Id ok, CheckId(H5Dcreate2(f.get(), "ok", H5T_STD_I8LE, s2.get(), H5P_DEFAULT,
                                                 Plist(H5P_DATASET_CREATE).get(), H5P_DEFAULT), "ok", StatusCode::kIo));
    RETURN_IF_ERROR(CheckErr(H5Dwrite(ok.get(), H5T_NATIVE_INT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()), "write",
                             StatusCode::kIo));
  }
  ASSIGN_OR_RETURN(Bytes b, ReadAll(path));
  RETURN_IF_ERROR(Patch(b, Le(60001, 8), Le(5400000000, 8), "the dataspace size"));
  return WriteAll(path, b);
}

// The version 1 B-tree's pointer to chunk (1, 2) now points past the end of the file.
Status ChunkPastEof(const std::filesystem::path& path) {
  RETURN_IF_ERROR(WriteBase(path, false));
  ASSIGN_OR_RETURN(const uint64_t addr, ChunkAddress(path, kChunk, 2 * kChunk));
  ASSIGN_OR_RETURN(Bytes b, ReadAll(path));
  RETURN_IF_ERROR(Patch(b, Le(addr, 8), Le(b.size() + 65536, 8), "chunk (1, 2)'s address"));
  return WriteAll(path, b);
}

// The version 1 B-tree key of chunk (1, 2) (size, filter mask, offsets (16, 32, 0)) now says 1000
// bytes: less than the 1024 of an unfiltered chunk.
Status ShortChunk(const std::filesystem::path& path) {
  RETURN_IF_ERROR(WriteBase(path, false));
  ASSIGN_OR_RETURN(Bytes b, ReadAll(path));
  const Bytes tail = Cat({Le(0, 4), Le(kChunk, 8), Le(2 * kChunk, 8), Le(0, 8)});
  RETURN_IF_ERROR(Patch(b, Cat({Le(kChunkBytes, 4), tail}), Cat({Le(1000, 4), tail}), "chunk (1, 2)'s key"));
  return WriteAll(path, b);
}

// "data" (256 int32) is stored in an external raw file that holds only half of it.
Status ExternalShort(const std::filesystem::path& dir, const std::string& name, const std::string& raw) {
  const std::filesystem::path path = dir / name;
  {
    ASSIGN_OR_RETURN(H5Id f, CheckId(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT),
                                     "create " + path.string(), StatusCode::kIo));
    const hsize_t n = 256, small = 8;
    H5Id dcpl = Plist(H5P_DATASET_CREATE);
    H5Pset_external(dcpl.get(), raw.c_str(), 0, n * 4);
    H5Id space(H5Screate_simple(1, &n, nullptr));
    // No data written through the library: it would write the raw file relative to the working
    // directory.
    RETURN_IF_ERROR(CheckId(H5Dcreate2(f.get(), "data", H5T_STD_I32LE, space.get(), H5P_DEFAULT, dcpl.get(),
                                       H5P_DEFAULT), "data", StatusCode::kIo).status());
    std::vector<int32_t> v(small, 7);
    H5Id s2(H5Screate_simple(1, &small, nullptr));
    ASSIGN_OR_RETURN(H5Id ok, CheckId(H5Dcreate2(f.get(), "ok", H5T_STD_I32LE, s2.get(), H5P_DEFAULT,
                                                 Plist(H5P_DATASET_CREATE).get(), H5P_DEFAULT), "ok", StatusCode::kIo));
    RETURN_IF_ERROR(CheckErr(H5Dwrite(ok.get(), H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()), "write",
                             StatusCode::kIo));
  }
  return WriteAll(dir / raw, Bytes(512, 0x11));
}

}  // namespace

Result<std::vector<HostileHdf5Sample>> WriteHostileHdf5Samples(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return IoError("create " + dir.string() + ": " + ec.message());
  std::lock_guard lock(internal::Hdf5Mutex());
  internal::Hdf5ErrorSilencer quiet;
  std::vector<HostileHdf5Sample> out = {
      {"bad_superblock_checksum.h5", "", "checksum", ""},
      {"bad_root_header_checksum.h5", "", "checksum", ""},
      {"bad_index_checksum.h5", "data", "checksum", "ok"},
      {"huge_shape.h5", "data", "overflows 64 bits", "ok"},
      {"huge_compact.h5", "data", "compact data of 5400000000 bytes", "ok"},
      {"chunk_past_eof.h5", "data", "ends past the end of the file", "ok"},
      {"short_chunk.h5", "data", "is stored unfiltered in 1000 bytes; a chunk holds 1024", "ok"},
      {"external_short.h5", "data", "holds 512 bytes", "ok"},
  };
  RETURN_IF_ERROR(BadSuperblockChecksum(dir / out[0].file));
  RETURN_IF_ERROR(BadRootHeaderChecksum(dir / out[1].file));
  RETURN_IF_ERROR(BadIndexChecksum(dir / out[2].file));
  RETURN_IF_ERROR(HugeShape(dir / out[3].file));
  RETURN_IF_ERROR(HugeCompact(dir / out[4].file));
  RETURN_IF_ERROR(ChunkPastEof(dir / out[5].file));
  RETURN_IF_ERROR(ShortChunk(dir / out[6].file));
  RETURN_IF_ERROR(ExternalShort(dir, out[7].file, "external_short.raw"));
  return out;
}

}  // namespace refzarr::samples
