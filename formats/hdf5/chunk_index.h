// Reads the chunk index of a chunked HDF5 dataset straight from the file, following the published
// HDF5 file format specification (superblock, object headers, data layout message, and the chunk
// indexes: version 1 B-tree, single chunk, implicit, fixed array, extensible array, version 2 B-tree).
//
// Why not the HDF5 library: HDF5 1.10 has no H5Dchunk_iter, and H5Dget_chunk_info costs O(chunks)
// per call, so listing n chunks through it is O(n^2). This reader is O(chunks) and reads only index
// metadata, never chunk data.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "formats/core/byte_source.h"
#include "formats/core/status.h"

namespace refzarr {

/// What the superblock says about addresses in an HDF5 file.
struct Hdf5FileInfo {
  uint64_t superblock_offset = 0;  ///< Where the signature was found (0, 512, 1024, ...).
  uint64_t base_address = 0;       ///< Absolute file offset that every stored address is relative to.
  uint8_t offset_size = 8;         ///< Bytes of an address ("Size of Offsets").
  uint8_t length_size = 8;         ///< Bytes of a length ("Size of Lengths").
  int superblock_version = 0;
};

/// Finds the superblock (at 0, 512, 1024, 2048, ...) and reads it. kCorrupt when there is none or it
/// is malformed.
Result<Hdf5FileInfo> ReadHdf5Superblock(ByteSource& source);

/// Chunk index types of the version 4 data layout message (values as stored), plus the version 1
/// B-tree used by layout messages of versions 1-3.
enum class Hdf5ChunkIndexType : uint8_t {
  kBTreeV1 = 0,
  kSingleChunk = 1,
  kImplicit = 2,
  kFixedArray = 3,
  kExtensibleArray = 4,
  kBTreeV2 = 5,
};

/// Name of an index type for messages ("fixed array").
const char* Hdf5ChunkIndexName(Hdf5ChunkIndexType type);

/// The parts of a dataset's Data Layout message (and Filter Pipeline message) that locate its bytes.
struct Hdf5DataLayout {
  enum Class : uint8_t { kCompact = 0, kContiguous = 1, kChunked = 2, kVirtual = 3 };
  int version = 0;
  Class layout_class = kContiguous;
  /// Compact: the raw data held in the message.
  std::vector<std::byte> compact_data;
  /// Contiguous: relative address (undefined when never written) and size in bytes.
  uint64_t address = 0;
  uint64_t size = 0;
  /// Chunked: chunk size in elements per dataset dimension (the layout's element-size dimension is
  /// removed) and the element size in bytes.
  std::vector<uint64_t> chunk_dims;
  uint32_t element_size = 0;
  Hdf5ChunkIndexType index_type = Hdf5ChunkIndexType::kBTreeV1;
  /// Relative address of the index (B-tree node, array header, or the single/first chunk).
  uint64_t index_address = 0;
  /// Layout v4 flag: partial edge chunks are stored without the filter pipeline.
  bool dont_filter_partial_edge_chunks = false;
  /// Single chunk index with filters: stored size and filter mask of that chunk.
  bool single_chunk_filtered = false;
  uint64_t single_chunk_size = 0;
  uint32_t single_chunk_filter_mask = 0;
  /// Number of filters in the Filter Pipeline message (0 when there is none).
  int filter_count = 0;
};

/// True when `address` is the "undefined address" (all bits set) for `info`.
bool IsUndefinedAddress(const Hdf5FileInfo& info, uint64_t address);

/// Reads the object header at `object_header_address` (relative, as H5Oget_info reports it; version 1
/// or 2, following continuation blocks) and decodes its Data Layout and Filter Pipeline messages.
/// kCorrupt when the header is malformed, kNotFound when it holds no layout message.
Result<Hdf5DataLayout> ReadHdf5DataLayout(ByteSource& source, const Hdf5FileInfo& info,
                                          uint64_t object_header_address);

/// One allocated chunk of a chunked dataset.
struct Hdf5StoredChunk {
  std::vector<uint64_t> coords;  ///< Chunk-grid coordinates (element offset / chunk size).
  uint64_t address = 0;          ///< Absolute byte offset (base address applied); may lie past the end of the file.
  uint64_t size = 0;             ///< Stored bytes.
  uint32_t filter_mask = 0;      ///< As stored: bit i set = filter i was skipped.
  /// The layout stores this partial edge chunk unfiltered although filter_mask is 0
  /// (dont_filter_partial_edge_chunks).
  bool unfiltered_edge = false;
};

/// Calls `visit` once for every allocated chunk of a chunked dataset, in index order. `dims` and
/// `max_dims` are the dataspace's current and maximum sizes (UINT64_MAX for unlimited). Reads only
/// index metadata; O(number of chunks). kCorrupt on a malformed index, kUnsupported for an index
/// version this reader does not know. An error from `visit` stops the walk and is returned.
Status ForEachHdf5Chunk(ByteSource& source, const Hdf5FileInfo& info, const Hdf5DataLayout& layout,
                        const std::vector<uint64_t>& dims, const std::vector<uint64_t>& max_dims,
                        const std::function<Status(const Hdf5StoredChunk&)>& visit);

}  // namespace refzarr
