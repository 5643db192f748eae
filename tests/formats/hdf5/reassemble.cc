#include "tests/formats/hdf5/reassemble.h"

#include <blosc.h>
#include <zlib.h>
#include <zstd.h>

#include <cstring>

namespace refzarr::testing_hdf5 {
namespace {

Result<std::vector<std::byte>> ApplyDecode(const nlohmann::json& codec, std::vector<std::byte> in, uint64_t size) {
  const std::string id = codec.value("id", "");
  std::vector<std::byte> out(size);
  if (id == "zlib") {
    uLongf n = size;
    if (uncompress(reinterpret_cast<Bytef*>(out.data()), &n, reinterpret_cast<const Bytef*>(in.data()), in.size()) != Z_OK) {
      return CorruptError("zlib decode failed");
    }
    out.resize(n);
    return out;
  }
  if (id == "zstd") {
    size_t n = ZSTD_decompress(out.data(), size, in.data(), in.size());
    if (ZSTD_isError(n)) return CorruptError(std::string("zstd: ") + ZSTD_getErrorName(n));
    out.resize(n);
    return out;
  }
  if (id == "blosc") {
    int n = blosc_decompress_ctx(in.data(), out.data(), size, 1);
    if (n < 0) return CorruptError("blosc decode failed");
    out.resize(n);
    return out;
  }
  if (id == "shuffle") {
    const uint64_t es = codec.value("elementsize", 1u);
    const uint64_t count = in.size() / es;
    out.assign(in.begin(), in.end());
    for (uint64_t i = 0; i < count; ++i) {
      for (uint64_t j = 0; j < es; ++j) out[i * es + j] = in[j * count + i];
    }
    return out;
  }
  return UnsupportedError("test decoder lacks codec " + id);
}

}  // namespace

Result<std::vector<std::byte>> DecodeChunk(const ScannedFile& scan, const ScannedFile::Array& array,
                                           const RecordedChunks& chunks, const std::filesystem::path& file,
                                           uint64_t index, std::span<const std::byte> fill,
                                           const ChunkDecoder& decoder) {
  const ArrayDesc& d = array.desc;
  const uint64_t chunk_bytes = d.ChunkBytes();
  std::vector<std::byte> out(chunk_bytes);
  for (uint64_t i = 0; i + fill.size() <= chunk_bytes && !fill.empty(); i += fill.size()) {
    std::memcpy(out.data() + i, fill.data(), fill.size());
  }
  if (auto it = chunks.inlined.find(index); it != chunks.inlined.end()) {
    if (it->second.size() != chunk_bytes) return CorruptError("inline chunk of wrong size");
    return it->second;
  }
  auto it = chunks.stored.find(index);
  if (it == chunks.stored.end()) return out;
  const ChunkRef& ref = it->second;
  std::filesystem::path path = file;
  if (ref.source != 0) {
    ASSIGN_OR_RETURN(path, LocalPathOfUri(scan.companions.at(ref.source - 1)));
  }
  ASSIGN_OR_RETURN(auto src, OpenLocalFile(path));
  ASSIGN_OR_RETURN(auto stored, ReadRange(*src, {ref.offset, ref.length}));
  if (d.encoding.native && ref.flags == 0 && d.encoding.stored_order.empty()) {
    std::vector<std::byte> bytes = std::move(stored);
    if (!d.encoding.compressor.is_null()) {
      ASSIGN_OR_RETURN(bytes, ApplyDecode(d.encoding.compressor, std::move(bytes), chunk_bytes));
    }
    if (d.encoding.filters.is_array()) {
      for (auto f = d.encoding.filters.rbegin(); f != d.encoding.filters.rend(); ++f) {
        ASSIGN_OR_RETURN(bytes, ApplyDecode(*f, std::move(bytes), chunk_bytes));
      }
    }
    if (bytes.size() != chunk_bytes) return CorruptError("decoded chunk has " + std::to_string(bytes.size()) + " bytes");
    return bytes;
  }
  std::vector<uint64_t> coords = ChunkCoords(d.GridShape(), index);
  RETURN_IF_ERROR(decoder.Decode(d, coords, ref, stored, out));
  return out;
}

Result<std::vector<std::byte>> Reassemble(const ScannedFile& scan, const ScannedFile::Array& array,
                                          const std::filesystem::path& file, std::span<const std::byte> fill,
                                          const ChunkDecoder& decoder) {
  const RecordedChunks chunks = ChunksOf(array);
  const ArrayDesc& d = array.desc;
  const size_t rank = d.shape.size();
  const uint64_t es = d.dtype.size;
  uint64_t total = 1;
  for (uint64_t s : d.shape) total *= s;
  std::vector<std::byte> out(total * es);
  if (total == 0) return out;
  const std::vector<uint64_t> grid = d.GridShape();
  const uint64_t nchunks = d.ChunkCount();
  for (uint64_t index = 0; index < nchunks; ++index) {
    ASSIGN_OR_RETURN(auto chunk, DecodeChunk(scan, array, chunks, file, index, fill, decoder));
    std::vector<uint64_t> cc = ChunkCoords(grid, index);
    // Copy the part of the chunk inside the array, one innermost row at a time.
    std::vector<uint64_t> extent(rank);
    for (size_t i = 0; i < rank; ++i) extent[i] = std::min(d.chunks[i], d.shape[i] - cc[i] * d.chunks[i]);
    if (rank == 0) {
      std::memcpy(out.data(), chunk.data(), es);
      continue;
    }
    std::vector<uint64_t> pos(rank, 0);
    while (true) {
      uint64_t src = 0, dst = 0;
      for (size_t i = 0; i < rank; ++i) {
        src = src * d.chunks[i] + pos[i];
        dst = dst * d.shape[i] + cc[i] * d.chunks[i] + pos[i];
      }
      std::memcpy(out.data() + dst * es, chunk.data() + src * es, extent[rank - 1] * es);
      size_t i = rank - 1;
      while (i-- > 0) {
        if (++pos[i] < extent[i]) break;
        pos[i] = 0;
      }
      if (i == static_cast<size_t>(-1)) break;
    }
  }
  return out;
}

}  // namespace refzarr::testing_hdf5
