// Internal: describes one HDF5 dataset as a Zarr array (a DatasetPlan: the array, its companion
// files, how its chunks are found), then streams its chunk references to a ScanSink as they are
// found, so that memory does not grow with a dataset's chunk count. A dataset that cannot be
// described is refused before anything is declared; one whose chunk turns out unservable while
// it is streamed (past the end of its file, short) is taken back with ScanSink::RefuseArray.
// Shared by the scanner and the Imaris/BigDataViewer layouts.
#pragma once

#include <hdf5.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "formats/core/byte_source.h"
#include "formats/core/model.h"
#include "formats/core/scanner.h"
#include "formats/hdf5/byte_source_vfd.h"
#include "formats/hdf5/chunk_index.h"
#include "formats/hdf5/hdf5_types.h"

namespace refzarr::internal {

/// What every dataset of one open file shares.
struct Hdf5FileContext {
  hid_t file = -1;                    ///< Open file (not owned).
  ByteSource* source = nullptr;       ///< The same file's bytes (not owned).
  Hdf5FileInfo info;                  ///< Its superblock.
  /// Its URI and how the files next to it open (external raw files, virtual datasets' sources);
  /// without a URI those cannot be opened.
  ScanContext context;
  std::string describe;               ///< source->Describe(), for messages.
  /// The "hdf5" decoder that will decode non-native chunks (not owned), or null. When set,
  /// PlanDataset refuses a non-native array its CheckArray rejects (a pipeline the library cannot
  /// set up, such as H5Z-ZFP refusing the parameters of a file from another ZFP version).
  const ChunkDecoder* decoder = nullptr;
  std::string file_name;              ///< The source's file name (ScanContext::FileName()).
  /// Records the read errors of the sources opened for this file (virtual datasets' sources), as
  /// the scan's own source records its own; may be null.
  ReadErrorLatch* latch = nullptr;
};

/// How chunked datasets' chunks are listed.
enum class ChunkListing {
  kFileFormat,  ///< chunk_index.cc (O(chunks)); the library only when that fails before any chunk.
  kLibrary,     ///< The library alone (H5Dchunk_iter, else H5Dget_chunk_info): for cross-checks.
};

/// One byte range of a contiguous dataset's data: bytes [start, start + size) of the dataset's
/// data lie at `offset` in source `source` (0 = the file, else an index into DatasetPlan::sources
/// + 1).
struct ContiguousSegment {
  uint32_t source = 0;
  uint64_t offset = 0, size = 0, start = 0;
};

struct DatasetPlan;

/// A chunked source dataset of a virtual dataset, placed at a chunk-aligned block.
struct VirtualPart {
  std::string uri;                    ///< The source's HDF5 file.
  std::string dataset;                ///< Its path in that file ("/a/b").
  uint32_t source = 0;                ///< Source id of `file` in the virtual plan (0: this file).
  std::vector<uint64_t> chunk_offset; ///< Chunk-grid offset of the block in the virtual array.
};

/// One dataset of an image level stack: its chunk (k, j, i) is the level's chunk (t, c, k, j, i).
struct StackedPart {
  std::shared_ptr<const DatasetPlan> plan;
  uint64_t t = 0, c = 0;
};

/// A dataset ready to be emitted. Holds no stored chunk references (they are found while the
/// plan is emitted); inline chunks (compact data, variable-length strings) are bounded in size.
struct DatasetPlan {
  enum class Storage {
    kNone,        ///< Nothing stored (never written): every element is the fill value.
    kInline,      ///< Only `inline_chunks`.
    kContiguous,  ///< `segments`, split into virtual chunks of about kContiguousChunkBytes.
    kChunked,     ///< The file's own chunks, listed from the chunk index at `object_header`.
    kVirtual,     ///< The chunks of the `virtual_parts` source datasets.
    kStacked,     ///< The chunks of the `stacked_parts` datasets (an image level).
  };
  std::string h5path;  ///< "/a/b" in its file.
  ArrayDesc array;
  Storage storage = Storage::kNone;
  std::vector<std::pair<uint64_t, std::vector<std::byte>>> inline_chunks;
  std::vector<ContiguousSegment> segments;
  uint64_t object_header = 0;         ///< kChunked: relative address of the object header.
  std::vector<uint64_t> max_dims;     ///< kChunked: maximum dims (UINT64_MAX = unlimited).
  ChunkListing listing = ChunkListing::kFileFormat;
  std::vector<VirtualPart> virtual_parts;
  std::vector<StackedPart> stacked_parts;
  std::vector<std::string> sources;   ///< URIs of companion files; ChunkRef::source i+1 is
                                      ///< sources[i].
  std::vector<std::string> warnings;  ///< Non-fatal notes (codec names).
  bool is_chunked = false;            ///< HDF5 chunked layout (chunks are the file's own).
  std::vector<Hdf5Filter> filters;    ///< The pipeline, for compatibility checks.
};

/// Plans the dataset at `path` ("/a/b"). kUnsupported/kCorrupt with the reason when the dataset
/// cannot be represented (a datatype without numpy equivalent, an extent whose element or chunk
/// count overflows 64 bits, contiguous data that does not lie inside its file, ...); the caller
/// refuses it and carries on.
Result<DatasetPlan> PlanDataset(const Hdf5FileContext& ctx, const std::string& path,
                                ChunkListing listing = ChunkListing::kFileFormat);

/// Receives one stored chunk reference: linear chunk index and the reference, whose `source` is
/// the plan's (0, or an index into DatasetPlan::sources + 1).
using StoredChunkVisitor = std::function<Status(uint64_t index, const ChunkRef& ref)>;

/// Calls `visit` for every stored chunk of `plan`, as the chunk index lists them (no order).
/// Every chunk is checked before it is given: it lies inside its file, and an unfiltered chunk (no
/// filters, or each filter masked off) holds exactly the chunk's bytes, as HDF5 stores them even
/// at the edges. kCorrupt naming the chunk, its bytes and the file size (or the bytes present and
/// needed) when one does not, or when the chunk index is damaged after chunks were given; then the
/// caller refuses the array. An error from `visit` stops the walk and is returned as it is.
/// `notes` (optional) receives non-fatal notes (a listing through the library instead).
Status VisitStoredChunks(const Hdf5FileContext& ctx, const DatasetPlan& plan, const StoredChunkVisitor& visit,
                         std::vector<std::string>* notes = nullptr);

/// Emits `plan` as the array at `path`: registers its companion files, declares the array, gives
/// its inline chunks, then streams its stored chunks. When a chunk turns out unservable the array
/// is refused (ScanSink::RefuseArray) with the reason; only the sink's own errors are returned.
Status EmitPlan(const Hdf5FileContext& ctx, ScanSink& sink, std::string_view path, const DatasetPlan& plan);

/// Number of stored chunks `plan` lists (a walk that keeps none of them).
Result<uint64_t> CountStoredChunks(const Hdf5FileContext& ctx, const DatasetPlan& plan);

/// Target size of the virtual chunks contiguous datasets are split into.
inline constexpr uint64_t kContiguousChunkBytes = 4ull << 20;

/// Chunk shape for a contiguous array: leading-dimension slabs of about `target` bytes, preferring a
/// row count that divides the dimension.
std::vector<uint64_t> ContiguousChunks(const std::vector<uint64_t>& shape, uint64_t element_size,
                                       uint64_t target = kContiguousChunkBytes);

/// Checks that `array`'s element count, byte count, chunk count and chunk bytes fit in 64 bits:
/// kUnsupported "shape [...] with chunks [...] of N-byte elements: ... overflows 64 bits" otherwise.
Status CheckExtent(const ArrayDesc& array);

}  // namespace refzarr::internal
