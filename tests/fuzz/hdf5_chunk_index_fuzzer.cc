// Fuzz target: the HDF5 chunk-index reader (formats/hdf5/chunk_index.h) on its own, without the HDF5
// library: superblock, object header, data layout and filter pipeline messages, and every chunk
// index (B-tree v1/v2, fixed and extensible arrays, single chunk, implicit).
//
// Input: a little header, then the file.
//   u64 LE  object header address of the dataset (relative, as H5Oget_info gives it)
//   u8      rank r (1..4)
//   r x u32 LE current dims; the max dims equal them, or are unlimited when bit 7 of rank is set
//   ...     the file bytes
// Seeds (tests/fuzz/hdf5_chunk_index/) come from make_seeds.py, which writes small chunked
// datasets of each index type with h5py and prepends their addresses and dims.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "formats/core/byte_source.h"
#include "formats/hdf5/chunk_index.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

template <typename T>
T Take(const uint8_t*& data, size_t& size) {
  T v{};
  std::memcpy(&v, data, sizeof v);
  data += sizeof v;
  size -= sizeof v;
  return v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace refzarr;
  if (size < 9) return 0;
  const uint64_t header_address = Take<uint64_t>(data, size);
  const uint8_t rank_byte = Take<uint8_t>(data, size);
  const size_t rank = rank_byte & 0x7f;
  if (rank < 1 || rank > 4 || size < rank * 4) return 0;
  std::vector<uint64_t> dims, max_dims;
  for (size_t i = 0; i < rank; ++i) {
    dims.push_back(Take<uint32_t>(data, size));
    max_dims.push_back((rank_byte & 0x80) ? std::numeric_limits<uint64_t>::max() : dims.back());
  }
  const std::span<const std::byte> file = fuzz::Bytes(data, size);
  auto source = MakeMemorySource(std::vector<std::byte>(file.begin(), file.end()), "fuzz.h5");
  Result<Hdf5FileInfo> info = ReadHdf5Superblock(*source);
  if (!info.ok()) return 0;
  Result<Hdf5DataLayout> layout = ReadHdf5DataLayout(*source, *info, header_address);
  if (!layout.ok() || layout->layout_class != Hdf5DataLayout::kChunked) return 0;
  if (layout->chunk_dims.size() != rank) return 0;
  // A hostile index can claim any number of chunks; the walk must end (and stay in memory bounds)
  // by itself, so the visitor only counts them, and stops a walk that is plainly runaway.
  uint64_t visited = 0;
  (void)ForEachHdf5Chunk(*source, *info, *layout, dims, max_dims,
                         [&](const Hdf5StoredChunk& chunk) -> Status {
                           FUZZ_CHECK(chunk.coords.size() == rank,
                                      "one chunk coordinate per dimension");
                           if (++visited > (uint64_t{1} << 20)) {
                             return CorruptError("fuzz: more than 2^20 chunks");
                           }
                           return OkStatus();
                         });
  return 0;
}
