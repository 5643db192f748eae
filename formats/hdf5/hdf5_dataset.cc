#include "formats/hdf5/hdf5_dataset.h"

#include <algorithm>
#include <map>
#include <numeric>
#include <optional>

#include "formats/hdf5/hdf5_util.h"

namespace refzarr::internal {
namespace {

using nlohmann::json;

// Compact data lives in the object header, whose messages hold at most 64 KiB.
constexpr uint64_t kMaxCompactBytes = 64ull << 10;
// Variable-length strings are kept in the index: at most this many bytes per dataset.
constexpr uint64_t kMaxVlenBytes = 64ull << 20;

std::optional<uint64_t> Mul(uint64_t a, uint64_t b) {
  uint64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r)) return std::nullopt;
  return r;
}

std::string DimsText(const std::vector<uint64_t>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + std::to_string(v[i]);
  return out + "]";
}

std::string CoordsText(const std::vector<uint64_t>& v) {
  std::string out = "(";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + std::to_string(v[i]);
  return out + ")";
}

// Bytes of `shape` elements of `element_size` bytes, or kUnsupported when that overflows.
Result<uint64_t> ByteCount(const std::vector<uint64_t>& shape, uint64_t element_size) {
  std::optional<uint64_t> n = element_size;
  for (uint64_t d : shape) n = n ? Mul(*n, d) : std::nullopt;
  if (!n) {
    return UnsupportedError("shape " + DimsText(shape) + " of " + std::to_string(element_size) +
                            "-byte elements: its byte count overflows 64 bits");
  }
  return *n;
}

std::string BaseName(const std::string& path) {
  auto pos = path.rfind('/');
  return pos == std::string::npos ? path : path.substr(pos + 1);
}

// Dimension names in the xarray convention: netCDF-4 / HDF5 dimension scales attached through
// DIMENSION_LIST, the scale's own name for a scale, otherwise "phony_dim_<length>" (unique within
// the array), so that every array can be opened by xarray.
std::vector<std::string> DimensionNames(hid_t dset, const std::string& path, const std::vector<uint64_t>& shape) {
  std::vector<std::string> names(shape.size());
  auto cls = ReadStringAttribute(dset, "CLASS");
  if (cls.ok() && *cls == "DIMENSION_SCALE" && shape.size() == 1) {
    names[0] = BaseName(path);
    return names;
  }
  if (H5Aexists(dset, "DIMENSION_LIST") > 0) {
    H5Id attr(H5Aopen(dset, "DIMENSION_LIST", H5P_DEFAULT));
    H5Id space(attr.valid() ? H5Aget_space(attr.get()) : -1);
    H5Id mem(H5Tvlen_create(H5T_STD_REF_OBJ));
    if (space.valid() && H5Sget_simple_extent_npoints(space.get()) == static_cast<hssize_t>(shape.size())) {
      std::vector<hvl_t> lists(shape.size());
      if (H5Aread(attr.get(), mem.get(), lists.data()) >= 0) {
        for (size_t i = 0; i < shape.size(); ++i) {
          if (lists[i].len == 0) continue;
          auto* refs = static_cast<hobj_ref_t*>(lists[i].p);
          H5Id obj(H5Rdereference2(dset, H5P_DEFAULT, H5R_OBJECT, &refs[0]));
          if (!obj.valid()) continue;
          char buf[1024] = {};
          if (H5Iget_name(obj.get(), buf, sizeof buf) > 0) names[i] = BaseName(buf);
        }
        H5Dvlen_reclaim(mem.get(), space.get(), H5P_DEFAULT, lists.data());
      }
    }
  }
  H5Eclear2(H5E_DEFAULT);
  for (size_t i = 0; i < shape.size(); ++i) {
    if (!names[i].empty()) continue;
    std::string base = "phony_dim_" + std::to_string(shape[i]);
    std::string name = base;
    for (int k = 1; std::find(names.begin(), names.end(), name) != names.end(); ++k) name = base + "_" + std::to_string(k);
    names[i] = name;
  }
  return names;
}

// Byte layout of the virtual chunks of a contiguous array: chunk (outer..., ck) starts at
// outer * shape[k] * slab + ck * rows * slab, where k is the split dimension.
struct SlabSplit {
  size_t k = 0;
  uint64_t rows = 1, slab = 0, outer = 1, per_outer = 1;
};

SlabSplit SplitOf(const std::vector<uint64_t>& shape, const std::vector<uint64_t>& chunks, uint64_t esize) {
  SlabSplit s;
  // The split dimension: the last whose chunk is not the full extent (before it chunks are 1,
  // after it they are full).
  for (size_t i = 0; i < shape.size(); ++i) {
    if (chunks[i] != std::max<uint64_t>(shape[i], 1)) s.k = i;
  }
  s.rows = chunks[s.k];
  s.slab = esize;
  for (size_t i = s.k + 1; i < shape.size(); ++i) s.slab *= shape[i];
  for (size_t i = 0; i < s.k; ++i) s.outer *= shape[i];
  s.per_outer = (shape[s.k] + s.rows - 1) / s.rows;
  return s;
}

// Contiguous data, in the file or in external raw files, must lie inside its file: the plan keeps
// the byte segments, the virtual chunks are cut from them when the plan is emitted.
Status PlanContiguous(const Hdf5FileContext& ctx, hid_t dset, hid_t dcpl, uint64_t total, DatasetPlan& plan) {
  ArrayDesc& a = plan.array;
  a.chunks = a.shape.empty() ? std::vector<uint64_t>{} : ContiguousChunks(a.shape, a.dtype.size);
  const int nexternal = H5Pget_external_count(dcpl);
  if (nexternal < 0) return FromHdf5(StatusCode::kCorrupt, "external file list");
  std::vector<ContiguousSegment>& segments = plan.segments;
  if (nexternal > 0) {
    std::map<std::string, uint32_t> ids;
    uint64_t start = 0;
    for (int i = 0; i < nexternal && start < total; ++i) {
      char name[4096] = {};
      off_t offset = 0;
      hsize_t size = 0;
      RETURN_IF_ERROR(CheckErr(H5Pget_external(dcpl, i, sizeof name, name, &offset, &size), "external file list"));
      // Named relative to the HDF5 file (or absolute on its host), opened as its sibling.
      const std::string uri = ctx.context.SiblingUri(name);
      const std::string shown = uri.empty() ? std::string(name) : DisplaySource(uri);
      auto raw = ctx.context.OpenSibling(name);
      if (!raw.ok()) {
        if (ctx.latch) ctx.latch->RecordOpenFailure(raw.status());
        if (!uri.empty() && raw.status().code() == StatusCode::kNotFound) {
          return UnsupportedError("external raw data file " + shown + " is missing");
        }
        return UnsupportedError("external raw data file " + shown + " cannot be opened: " + raw.status().message());
      }
      auto stat = (*raw)->Stat();
      if (!stat.ok()) {
        if (ctx.latch) ctx.latch->Record(stat.status());
        return stat.status();
      }
      const uint64_t file_size = stat->size;
      // The segment's bytes the dataset uses (an unlimited segment runs to the end of the data).
      const uint64_t used = std::min<uint64_t>(size, total - start);
      if (offset < 0 || used > file_size || static_cast<uint64_t>(offset) > file_size - used) {
        return CorruptError("external raw data file " + shown + " holds " + std::to_string(file_size) +
                            " bytes; segment " + std::to_string(i) + " needs " + std::to_string(used) +
                            " bytes at byte " + std::to_string(offset));
      }
      auto [it, added] = ids.emplace(uri, static_cast<uint32_t>(plan.sources.size() + 1));
      if (added) plan.sources.push_back(uri);
      if (used > 0) segments.push_back({it->second, static_cast<uint64_t>(offset), used, start});
      start += used;
    }
    if (start < total) {
      return CorruptError("external raw data files hold " + std::to_string(start) + " of the dataset's " +
                          std::to_string(total) + " bytes");
    }
  } else {
    const haddr_t offset = H5Dget_offset(dset);
    H5Eclear2(H5E_DEFAULT);
    if (offset == HADDR_UNDEF) return OkStatus();  // never written: every element is the fill value
    if (H5Dget_storage_size(dset) < total) return CorruptError("contiguous storage smaller than the dataset");
    // Unlike stored addresses and H5Dget_chunk_info, H5Dget_offset includes the base address
    // (userblock) already.
    ASSIGN_OR_RETURN(const uint64_t file_size, ctx.source->Size());
    if (total > file_size || offset > file_size - total) {
      return CorruptError("contiguous data at byte " + std::to_string(offset) + ", " + std::to_string(total) +
                          " bytes long, ends past the end of the file (" + std::to_string(file_size) + " bytes)");
    }
    if (total > 0) segments.push_back({0, offset, total, 0});
  }
  if (segments.empty()) return OkStatus();
  plan.storage = DatasetPlan::Storage::kContiguous;
  if (a.shape.empty()) return OkStatus();
  if (segments.size() > 1) {
    // Every chunk must lie inside one external segment: cut the slabs at the segment boundaries.
    SlabSplit split = SplitOf(a.shape, a.chunks, a.dtype.size);
    if (split.k != 0) return UnsupportedError("external storage segments smaller than one row");
    uint64_t rows = split.rows;
    for (size_t i = 0; i + 1 < segments.size(); ++i) {
      const uint64_t boundary = segments[i + 1].start;
      if (boundary % split.slab != 0) {
        return UnsupportedError("external storage segment boundary at byte " + std::to_string(boundary) +
                                " is not on a row boundary");
      }
      rows = std::gcd(rows, boundary / split.slab);
    }
    a.chunks[0] = rows;
  }
  return OkStatus();
}

Status VisitContiguous(const DatasetPlan& plan, const StoredChunkVisitor& visit) {
  const ArrayDesc& a = plan.array;
  const std::vector<ContiguousSegment>& segments = plan.segments;
  if (a.shape.empty()) {
    const ContiguousSegment& s = segments.front();
    return visit(0, ChunkRef{s.source, s.offset, s.size, 0});
  }
  const SlabSplit split = SplitOf(a.shape, a.chunks, a.dtype.size);
  const uint64_t dim = a.shape[split.k];
  for (uint64_t outer = 0; outer < split.outer; ++outer) {
    for (uint64_t ck = 0; ck < split.per_outer; ++ck) {
      const uint64_t start = (outer * dim + ck * split.rows) * split.slab;
      const uint64_t rows = std::min(split.rows, dim - ck * split.rows);
      const uint64_t length = rows * split.slab;
      auto seg = std::find_if(segments.begin(), segments.end(),
                              [&](const ContiguousSegment& s) { return start >= s.start && start - s.start < s.size; });
      if (seg == segments.end() || start + length - seg->start > seg->size) {
        return CorruptError("contiguous chunk at byte " + std::to_string(start) + " is not inside one storage segment");
      }
      ChunkRef ref{seg->source, seg->offset + (start - seg->start), length, rows < split.rows ? kChunkShort : 0u};
      RETURN_IF_ERROR(visit(outer * split.per_outer + ck, ref));
    }
  }
  return OkStatus();
}

Status PlanCompact(hid_t dset, uint64_t total, DatasetPlan& plan) {
  ArrayDesc& a = plan.array;
  a.chunks = a.shape;
  for (auto& c : a.chunks) c = std::max<uint64_t>(c, 1);
  if (total == 0) return OkStatus();
  if (total > kMaxCompactBytes) {
    return CorruptError("compact data of " + std::to_string(total) + " bytes (the format holds at most " +
                        std::to_string(kMaxCompactBytes) + ")");
  }
  std::vector<std::byte> bytes(total);
  H5Id type(H5Dget_type(dset));
  RETURN_IF_ERROR(CheckErr(H5Dread(dset, type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, bytes.data()), "read compact data"));
  plan.inline_chunks.push_back({0, std::move(bytes)});
  plan.storage = DatasetPlan::Storage::kInline;
  return OkStatus();
}

// numcodecs' VLenUTF8 chunk: a little-endian uint32 count, then per string its uint32 byte length
// and its UTF-8 bytes.
void AppendLe32(std::vector<std::byte>& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<std::byte>((v >> (8 * i)) & 0xff));
}

// Variable-length strings live in the file's global heap, not in chunks a reference could point
// at: they are read through the library and kept in the index, one VLenUTF8 chunk per chunk of
// the dataset's own grid (or one for the whole dataset), edge chunks padded with empty strings.
Status PlanVlenStrings(hid_t dset, hid_t type, hid_t space, hid_t dcpl, DatasetPlan& plan) {
  ArrayDesc& a = plan.array;
  const size_t rank = a.shape.size();
  a.chunks = a.shape;
  if (H5Pget_layout(dcpl) == H5D_CHUNKED && rank > 0) {
    std::vector<hsize_t> c(rank);
    if (H5Pget_chunk(dcpl, static_cast<int>(rank), c.data()) == static_cast<int>(rank)) {
      a.chunks.assign(c.begin(), c.end());
    }
  }
  for (auto& c : a.chunks) c = std::max<uint64_t>(c, 1);
  a.encoding = ChunkEncoding{};
  a.encoding.filters = json::array({{{"id", "vlen-utf8"}}});
  a.fill_value = nullptr;
  RETURN_IF_ERROR(CheckExtent(a));
  ASSIGN_OR_RETURN(const uint64_t total, ByteCount(a.shape, 1));
  if (total == 0) return OkStatus();
  // Every string, padding included, costs at least its 4-byte length in the chunks kept.
  uint64_t per_chunk = 1;
  for (uint64_t c : a.chunks) per_chunk *= c;  // CheckExtent: no overflow
  const std::optional<uint64_t> padded = Mul(per_chunk, a.ChunkCount());
  if (total > kMaxVlenBytes / 8 || !padded || *padded > kMaxVlenBytes / 4) {
    return UnsupportedError("variable-length strings: " + std::to_string(total) + " of them in chunks " +
                            DimsText(a.chunks) + " are too many to keep in the index");
  }
  H5Id mem(H5Tcopy(H5T_C_S1));
  H5Tset_size(mem.get(), H5T_VARIABLE);
  H5Tset_cset(mem.get(), H5Tget_cset(type));
  std::vector<char*> raw(total, nullptr);
  RETURN_IF_ERROR(CheckErr(H5Dread(dset, mem.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, raw.data()),
                           "read variable-length strings"));
  std::vector<std::string> strings;
  strings.reserve(total);
  uint64_t bytes = 0;
  for (char* p : raw) {
    strings.push_back(ToValidUtf8(p != nullptr ? p : ""));
    bytes += strings.back().size() + 4;
  }
  H5Dvlen_reclaim(mem.get(), space, H5P_DEFAULT, raw.data());
  if (bytes > kMaxVlenBytes) {
    return UnsupportedError("variable-length strings: " + std::to_string(bytes) +
                            " bytes are too many to keep in the index");
  }
  const std::vector<uint64_t> grid = a.GridShape();
  std::vector<uint64_t> chunk(rank, 0), local(rank, 0);
  for (uint64_t linear = 0; linear < a.ChunkCount(); ++linear) {
    std::vector<std::byte> out;
    AppendLe32(out, static_cast<uint32_t>(per_chunk));
    std::fill(local.begin(), local.end(), 0);
    for (uint64_t e = 0; e < per_chunk; ++e) {
      // The element's index in the dataset, or none when the edge chunk pads past the shape.
      bool inside = true;
      uint64_t flat = 0;
      for (size_t d = 0; d < rank; ++d) {
        const uint64_t at = chunk[d] * a.chunks[d] + local[d];
        inside = inside && at < a.shape[d];
        flat = flat * a.shape[d] + at;
      }
      static const std::string kPadding;
      const std::string& s = inside ? strings[flat] : kPadding;
      AppendLe32(out, static_cast<uint32_t>(s.size()));
      const auto* b = reinterpret_cast<const std::byte*>(s.data());
      out.insert(out.end(), b, b + s.size());
      for (size_t d = rank; d-- > 0;) {  // Next element of the chunk, C order.
        if (++local[d] < a.chunks[d]) break;
        local[d] = 0;
      }
    }
    plan.inline_chunks.push_back({linear, std::move(out)});
    for (size_t d = rank; d-- > 0;) {  // Next chunk of the grid, C order.
      if (++chunk[d] < grid[d]) break;
      chunk[d] = 0;
    }
  }
  plan.storage = DatasetPlan::Storage::kInline;
  return OkStatus();
}

Status PlanChunked(hid_t dset, hid_t dcpl, DatasetPlan& plan) {
  ArrayDesc& a = plan.array;
  const int rank = static_cast<int>(a.shape.size());
  std::vector<hsize_t> cdims(rank);
  if (H5Pget_chunk(dcpl, rank, cdims.data()) != rank) return FromHdf5(StatusCode::kCorrupt, "read chunk shape");
  a.chunks.assign(cdims.begin(), cdims.end());
  for (uint64_t c : a.chunks) {
    if (c == 0) return CorruptError("chunk shape " + DimsText(a.chunks) + " has a zero dimension");
  }
  H5O_info_t oinfo;
  if (H5Oget_info2(dset, &oinfo, H5O_INFO_BASIC) >= 0) {
    plan.object_header = oinfo.addr;
  } else {
    H5Eclear2(H5E_DEFAULT);
    plan.object_header = HADDR_UNDEF;  // listed through the library
  }
  plan.storage = DatasetPlan::Storage::kChunked;
  plan.is_chunked = true;
  return OkStatus();
}

// Checks one stored chunk of a chunked dataset before it is given: inside the file, and when
// unfiltered, exactly one chunk's bytes.
struct ChunkCheck {
  std::vector<uint64_t> grid;
  uint64_t file_size = 0;
  uint64_t chunk_bytes = 0;
  uint32_t all_filters = 0;

  Status operator()(const std::vector<uint64_t>& coords, const ChunkRef& ref) const {
    for (size_t d = 0; d < grid.size(); ++d) {
      if (coords[d] >= grid[d]) {
        return CorruptError("the chunk index lists chunk " + CoordsText(coords) + " outside the grid " +
                            DimsText(grid));
      }
    }
    if (ref.length > file_size || ref.offset > file_size - ref.length) {
      return CorruptError("chunk " + CoordsText(coords) + " at byte " + std::to_string(ref.offset) + ", " +
                          std::to_string(ref.length) + " bytes long, ends past the end of the file (" +
                          std::to_string(file_size) + " bytes)");
    }
    const bool unfiltered = all_filters == 0 || (ref.flags & all_filters) == all_filters;
    if (unfiltered && ref.length != chunk_bytes) {
      return CorruptError("chunk " + CoordsText(coords) + " is stored unfiltered in " + std::to_string(ref.length) +
                          " bytes; a chunk holds " + std::to_string(chunk_bytes));
    }
    if (ref.length == 0) return CorruptError("chunk " + CoordsText(coords) + " is stored in 0 bytes");
    return OkStatus();
  }
};

Status VisitChunked(const Hdf5FileContext& ctx, const DatasetPlan& plan, const StoredChunkVisitor& visit,
                    std::vector<std::string>* notes) {
  const ArrayDesc& a = plan.array;
  ASSIGN_OR_RETURN(const uint64_t file_size, ctx.source->Size());
  const uint32_t all_filters = plan.filters.empty() ? 0 : ((1u << plan.filters.size()) - 1) & kChunkFilterMask;
  const ChunkCheck check{a.GridShape(), file_size, a.ChunkBytes(), all_filters};
  uint64_t given = 0;
  Status visit_error;  // a refused chunk or the visitor's own error: returned as it is
  auto give = [&](const std::vector<uint64_t>& coords, const ChunkRef& ref) -> Status {
    Status s = check(coords, ref);
    if (s.ok()) s = visit(LinearChunkIndex(check.grid, coords), ref);
    if (!s.ok()) {
      visit_error = s;
      return s;
    }
    ++given;
    return OkStatus();
  };
  Status parsed = plan.listing == ChunkListing::kLibrary ? UnsupportedError("library listing requested")
                  : plan.object_header == HADDR_UNDEF    ? UnsupportedError("no object header address")
                                                         : OkStatus();
  if (parsed.ok()) {
    auto layout = ReadHdf5DataLayout(*ctx.source, ctx.info, plan.object_header);
    if (!layout.ok()) {
      parsed = layout.status();
    } else if (layout->layout_class != Hdf5DataLayout::kChunked || layout->chunk_dims != a.chunks) {
      parsed = CorruptError("the data layout message disagrees with the library's chunk shape " + DimsText(a.chunks));
    } else {
      parsed = ForEachHdf5Chunk(*ctx.source, ctx.info, *layout, a.shape, plan.max_dims, [&](const Hdf5StoredChunk& c) {
        const uint32_t flags = c.unfiltered_edge ? all_filters : (c.filter_mask & kChunkFilterMask);
        return give(c.coords, ChunkRef{0, c.address, c.size, flags});
      });
    }
  }
  if (!visit_error.ok()) return visit_error;
  if (parsed.ok()) return OkStatus();
  // Chunks were given already: the library's listing would give them again.
  if (given > 0) return CorruptError("chunk index: " + parsed.message());
  H5Id dset(H5Dopen2(ctx.file, plan.h5path.c_str(), H5P_DEFAULT));
  if (!dset.valid()) return FromHdf5(StatusCode::kCorrupt, "open dataset to list its chunks");
  const size_t rank = a.shape.size();
#if H5_VERSION_GE(1, 14, 0)
  // Newer libraries iterate the index in one pass (addresses relative to the base address).
  struct IterState {
    const std::function<Status(const std::vector<uint64_t>&, const ChunkRef&)>* give;
    const std::vector<uint64_t>* chunks;
    uint64_t base;
  };
  const std::function<Status(const std::vector<uint64_t>&, const ChunkRef&)> give_fn = give;
  IterState state{&give_fn, &a.chunks, ctx.info.base_address};
  const herr_t iterated = H5Dchunk_iter(
      dset.get(), H5P_DEFAULT,
      [](const hsize_t* offset, unsigned mask, haddr_t addr, hsize_t size, void* data) -> int {
        auto* st = static_cast<IterState*>(data);
        std::vector<uint64_t> coords(st->chunks->size());
        for (size_t d = 0; d < coords.size(); ++d) coords[d] = offset[d] / (*st->chunks)[d];
        Status s = (*st->give)(coords, ChunkRef{0, st->base + addr, size, mask & kChunkFilterMask});
        return s.ok() ? H5_ITER_CONT : H5_ITER_ERROR;
      },
      &state);
  if (!visit_error.ok()) return visit_error;
  if (iterated >= 0) {
    if (notes) {
      notes->push_back("chunk index not readable from the file format (" + parsed.message() +
                       "); listed through H5Dchunk_iter instead");
    }
    return OkStatus();
  }
  H5Eclear2(H5E_DEFAULT);
  if (given > 0) return CorruptError("chunk index: " + parsed.message());
#endif
  // HDF5 1.10's only listing costs O(chunks) per chunk: a last resort.
  hsize_t n = 0;
  H5Id space(H5Dget_space(dset.get()));
  if (H5Dget_num_chunks(dset.get(), space.get(), &n) < 0) {
    return FromHdf5(StatusCode::kCorrupt, parsed.message() + "; the library cannot list the chunks either");
  }
  std::vector<hsize_t> off(rank);
  std::vector<uint64_t> coords(rank);
  const std::vector<uint64_t>& grid = check.grid;
  for (hsize_t i = 0; i < n; ++i) {
    unsigned mask = 0;
    haddr_t addr = 0;
    hsize_t size = 0;
    if (H5Dget_chunk_info(dset.get(), space.get(), i, off.data(), &mask, &addr, &size) < 0) {
      return FromHdf5(StatusCode::kCorrupt, parsed.message() + "; the library cannot list chunk " +
                                                std::to_string(i) + " either");
    }
    bool inside = true;
    for (size_t d = 0; d < rank; ++d) {
      coords[d] = off[d] / a.chunks[d];
      inside = inside && coords[d] < grid[d];
    }
    if (!inside) continue;  // left beyond the extent after shrinking: holds no data
    const Status s = give(coords, ChunkRef{0, ctx.info.base_address + addr, size, mask & kChunkFilterMask});
    if (!s.ok()) return s;
  }
  if (plan.listing == ChunkListing::kFileFormat && notes) {
    notes->push_back("chunk index not readable from the file format (" + parsed.message() +
                     "); listed through H5Dget_chunk_info instead (slow for many chunks)");
  }
  return OkStatus();
}

// Opens the source file of a virtual mapping, as planning and emitting the virtual dataset both
// need: `uri` through the openers of the virtual dataset's file, or that file itself. Its reads
// fail the scan as the file's own do (the latch); a missing file is kNotFound.
struct OpenedSource {
  std::unique_ptr<ByteSource> opened;
  std::unique_ptr<ByteSource> latched;
  H5Id file;
  Hdf5FileContext ctx;
};

Result<OpenedSource> OpenSource(const Hdf5FileContext& parent, const std::string& uri) {
  OpenedSource out;
  if (uri == parent.context.uri()) {
    out.ctx = parent;
  } else {
    auto opened = parent.context.openers().Open(uri);
    if (!opened.ok()) {
      if (parent.latch) parent.latch->RecordOpenFailure(opened.status());
      return opened.status();
    }
    out.opened = std::move(*opened);
    ByteSource* bytes = out.opened.get();
    if (parent.latch) {
      out.latched = LatchReadErrors(*out.opened, *parent.latch);
      bytes = out.latched.get();
    }
    const ScanContext context(uri, parent.context.openers());
    ASSIGN_OR_RETURN(Hdf5FileInfo info, ReadHdf5Superblock(*bytes));
    ASSIGN_OR_RETURN(out.file, OpenHdf5OnSource(*bytes, {context, parent.latch}));
    out.ctx = Hdf5FileContext{out.file.get(), bytes, info, context, bytes->Describe(), nullptr,
                              context.FileName(), parent.latch};
  }
  // The virtual dataset itself is judged by the decoder (it takes its sources' encoding).
  out.ctx.decoder = nullptr;
  return out;
}

// A virtual dataset whose mappings each place a whole chunked source dataset at a chunk-aligned
// block becomes an array over the sources' own chunks. Anything else is refused with the reason.
Status PlanVirtual(const Hdf5FileContext& ctx, hid_t dcpl, DatasetPlan& plan) {
  ArrayDesc& a = plan.array;
  const size_t rank = a.shape.size();
  size_t count = 0;
  RETURN_IF_ERROR(CheckErr(H5Pget_virtual_count(dcpl, &count), "virtual mappings"));
  if (count == 0) return UnsupportedError("virtual dataset without mappings");
  std::map<std::string, uint32_t> ids;
  bool first = true;
  for (size_t m = 0; m < count; ++m) {
    const std::string which = "virtual mapping " + std::to_string(m);
    H5Id vspace(H5Pget_virtual_vspace(dcpl, m));
    H5Id sspace(H5Pget_virtual_srcspace(dcpl, m));
    if (!vspace.valid() || !sspace.valid()) return FromHdf5(StatusCode::kCorrupt, which);
    std::vector<hsize_t> start(rank), stride(rank), cnt(rank), block(rank);
    if (H5Sget_select_type(vspace.get()) != H5S_SEL_HYPERSLABS || H5Sis_regular_hyperslab(vspace.get()) <= 0 ||
        H5Sget_regular_hyperslab(vspace.get(), start.data(), stride.data(), cnt.data(), block.data()) < 0) {
      H5Eclear2(H5E_DEFAULT);
      return UnsupportedError(which + ": the virtual selection is not one regular block");
    }
    // Block instances: count may be unlimited along one dimension (printf-style "%b" sources).
    int unlimited = -1;
    for (size_t d = 0; d < rank; ++d) {
      if (block[d] == H5S_UNLIMITED) return UnsupportedError(which + ": unlimited block");
      if (cnt[d] == H5S_UNLIMITED) {
        if (unlimited >= 0) return UnsupportedError(which + ": several unlimited dimensions");
        if (stride[d] == 0) return CorruptError(which + ": zero stride");
        unlimited = static_cast<int>(d);
        cnt[d] = start[d] >= a.shape[d] ? 0 : (a.shape[d] - start[d] + stride[d] - 1) / stride[d];
      } else if (cnt[d] != 1) {
        return UnsupportedError(which + ": the virtual selection repeats a block");
      }
    }
    const ssize_t fn_len = H5Pget_virtual_filename(dcpl, m, nullptr, 0);
    const ssize_t ds_len = H5Pget_virtual_dsetname(dcpl, m, nullptr, 0);
    if (fn_len < 0 || ds_len < 0) return FromHdf5(StatusCode::kCorrupt, which);
    std::string fname_pattern(fn_len + 1, '\0'), dname_pattern(ds_len + 1, '\0');
    H5Pget_virtual_filename(dcpl, m, fname_pattern.data(), fname_pattern.size());
    H5Pget_virtual_dsetname(dcpl, m, dname_pattern.data(), dname_pattern.size());
    fname_pattern.resize(fn_len);
    dname_pattern.resize(ds_len);
    // "%b" is the block number along the unlimited dimension, "%%" a percent sign.
    auto expand = [&](const std::string& pattern, uint64_t k) -> Result<std::string> {
      std::string out;
      for (size_t i = 0; i < pattern.size(); ++i) {
        if (pattern[i] != '%') {
          out += pattern[i];
        } else if (i + 1 < pattern.size() && pattern[i + 1] == '%') {
          out += '%';
          ++i;
        } else if (i + 1 < pattern.size() && pattern[i + 1] == 'b' && unlimited >= 0) {
          out += std::to_string(k);
          ++i;
        } else {
          return UnsupportedError(which + ": source name pattern " + pattern);
        }
      }
      return out;
    };
    const uint64_t instances = unlimited >= 0 ? cnt[unlimited] : 1;
    if (instances > 100000) return UnsupportedError(which + ": too many source blocks");
    const std::vector<hsize_t> base_start = start;
    for (uint64_t k = 0; k < instances; ++k) {
      if (unlimited >= 0) start[unlimited] = base_start[unlimited] + k * stride[unlimited];
      ASSIGN_OR_RETURN(std::string fname, expand(fname_pattern, k));
      ASSIGN_OR_RETURN(std::string dname, expand(dname_pattern, k));
      if (dname.empty()) return UnsupportedError(which + ": empty source dataset name");
      // "." is the virtual dataset's own file; other names are relative to it or absolute on its
      // host, as the library resolves them.
      const std::string src_uri = fname == "." ? ctx.context.uri() : ctx.context.SiblingUri(fname);
      if (fname != "." && src_uri.empty()) {
        return UnsupportedError(which + ": source " + fname + ": the file has no URI to find it beside");
      }
      const std::string shown = src_uri.empty() ? fname : DisplaySource(src_uri);
      auto opened = OpenSource(ctx, src_uri);
      // A missing source file reads as the fill value, like a missing chunk.
      if (!opened.ok() && unlimited >= 0 && opened.status().code() == StatusCode::kNotFound) continue;
      if (!opened.ok()) return UnsupportedError(which + ": source " + shown + ": " + opened.status().message());
      const std::string src_dataset = dname[0] == '/' ? dname : "/" + dname;
      auto src = PlanDataset(opened->ctx, src_dataset);
      if (!src.ok()) return UnsupportedError(which + ": source " + shown + ":" + dname + ": " + src.status().message());
      const ArrayDesc& sa = src->array;
      if (src->storage != DatasetPlan::Storage::kChunked) return UnsupportedError(which + ": source dataset is not chunked");
      if (H5Sget_select_type(sspace.get()) != H5S_SEL_ALL) {
        hssize_t npoints = H5Sget_select_npoints(sspace.get());
        ASSIGN_OR_RETURN(const uint64_t total, ByteCount(sa.shape, 1));
        if (npoints < 0 || static_cast<uint64_t>(npoints) != total) {
          return UnsupportedError(which + ": only part of the source dataset is mapped");
        }
      }
      if (sa.shape.size() != rank) return UnsupportedError(which + ": source rank differs");
      if (first) {
        a.chunks = sa.chunks;
        a.encoding = sa.encoding;
        plan.filters = src->filters;
        if (!(sa.dtype == a.dtype)) return UnsupportedError(which + ": source datatype differs from the virtual one");
        first = false;
      } else if (sa.chunks != a.chunks || sa.encoding.filters != a.encoding.filters ||
                 sa.encoding.compressor != a.encoding.compressor || !(sa.dtype == a.dtype)) {
        return UnsupportedError(which + ": sources differ in chunk shape, datatype or filters");
      }
      // Unwritten source chunks read as the source's fill value, which the array cannot express
      // unless it is the virtual dataset's own.
      if (sa.fill_value != a.fill_value) {
        ASSIGN_OR_RETURN(const uint64_t stored, CountStoredChunks(opened->ctx, *src));
        if (stored < sa.ChunkCount()) {
          return UnsupportedError(which + ": source has unwritten chunks and a fill value unlike the virtual dataset's");
        }
      }
      std::vector<uint64_t> offset(rank);
      for (size_t d = 0; d < rank; ++d) {
        if (block[d] != sa.shape[d]) return UnsupportedError(which + ": mapped block is not the whole source");
        if (start[d] % a.chunks[d] != 0) return UnsupportedError(which + ": block is not aligned to the source chunks");
        if (start[d] > a.shape[d] || block[d] > a.shape[d] - start[d]) {
          return UnsupportedError(which + ": block reaches past the virtual dataset's extent");
        }
        if (sa.shape[d] % a.chunks[d] != 0 && start[d] + block[d] != a.shape[d]) {
          return UnsupportedError(which + ": source has partial edge chunks inside the virtual array");
        }
        offset[d] = start[d] / a.chunks[d];
      }
      uint32_t id = 0;
      if (src_uri != ctx.context.uri()) {
        auto [it, added] = ids.emplace(src_uri, static_cast<uint32_t>(plan.sources.size() + 1));
        if (added) plan.sources.push_back(src_uri);
        id = it->second;
      }
      plan.virtual_parts.push_back({src_uri, src_dataset, id, offset});
      for (auto& w : src->warnings) plan.warnings.push_back(which + ": " + w);
    }
  }
  plan.storage = DatasetPlan::Storage::kVirtual;
  plan.is_chunked = true;
  return OkStatus();
}

Status VisitVirtual(const Hdf5FileContext& ctx, const DatasetPlan& plan, const StoredChunkVisitor& visit,
                    std::vector<std::string>* notes) {
  const std::vector<uint64_t> grid = plan.array.GridShape();
  for (const VirtualPart& part : plan.virtual_parts) {
    const std::string which = "virtual source " + DisplaySource(part.uri) + ":" + part.dataset;
    auto opened = OpenSource(ctx, part.uri);
    if (!opened.ok()) return opened.status().WithContext(which);
    auto src = PlanDataset(opened->ctx, part.dataset);
    if (!src.ok()) return src.status().WithContext(which);
    const std::vector<uint64_t> src_grid = src->array.GridShape();
    std::vector<std::string> src_notes;
    RETURN_IF_ERROR(VisitStoredChunks(opened->ctx, *src, [&](uint64_t index, const ChunkRef& ref) -> Status {
      std::vector<uint64_t> cc = ChunkCoords(src_grid, index);
      for (size_t d = 0; d < cc.size(); ++d) cc[d] += part.chunk_offset[d];
      ChunkRef r = ref;
      r.source = part.source;
      return visit(LinearChunkIndex(grid, cc), r);
    }, &src_notes));
    if (notes) {
      for (auto& n : src_notes) notes->push_back(which + ": " + n);
    }
  }
  return OkStatus();
}

Status VisitStacked(const Hdf5FileContext& ctx, const DatasetPlan& plan, const StoredChunkVisitor& visit,
                    std::vector<std::string>* notes) {
  const std::vector<uint64_t> grid = plan.array.GridShape();
  for (const StackedPart& part : plan.stacked_parts) {
    const std::vector<uint64_t> src_grid = part.plan->array.GridShape();
    RETURN_IF_ERROR(VisitStoredChunks(ctx, *part.plan, [&](uint64_t index, const ChunkRef& ref) -> Status {
      const std::vector<uint64_t> cc = ChunkCoords(src_grid, index);
      for (size_t i = 0; i < cc.size(); ++i) {
        if (cc[i] >= grid[i + 2]) return OkStatus();  // padding beyond the real image
      }
      const std::vector<uint64_t> coords = {part.t, part.c, cc[0], cc[1], cc[2]};
      return visit(LinearChunkIndex(grid, coords), ref);
    }, notes));
  }
  return OkStatus();
}

// HDF5 integers of reduced precision (the N-bit filter's "17-bit signed integer in 4 bytes") are
// read, as h5py reads them, converted to their container: the full-width integer of the same
// size, sign and byte order. Invalid when `type` needs no conversion.
H5Id ContainerIntegerType(hid_t type) {
  if (H5Tget_class(type) != H5T_INTEGER) return H5Id();
  const size_t size = H5Tget_size(type);
  if (size != 1 && size != 2 && size != 4 && size != 8) return H5Id();
  if (H5Tget_precision(type) == size * 8 && H5Tget_offset(type) == 0) return H5Id();
  H5Id container(H5Tcopy(type));
  if (!container.valid() || H5Tset_offset(container.get(), 0) < 0 ||
      H5Tset_precision(container.get(), size * 8) < 0) {
    H5Eclear2(H5E_DEFAULT);
    return H5Id();
  }
  return container;
}

}  // namespace

std::vector<uint64_t> ContiguousChunks(const std::vector<uint64_t>& shape, uint64_t element_size, uint64_t target) {
  const size_t rank = shape.size();
  std::vector<uint64_t> chunks(rank, 1);
  if (rank == 0) return chunks;
  // trailing[k]: bytes of one index step along dimension k.
  std::vector<uint64_t> trailing(rank);
  uint64_t t = element_size;
  for (size_t i = rank; i-- > 0;) {
    trailing[i] = t;
    t = shape[i] == 0 ? t : (t > UINT64_MAX / shape[i] ? UINT64_MAX : t * shape[i]);
  }
  size_t k = 0;
  while (k + 1 < rank && trailing[k] > target) ++k;
  uint64_t rows = std::max<uint64_t>(1, target / trailing[k]);
  rows = std::min<uint64_t>(rows, std::max<uint64_t>(shape[k], 1));
  for (uint64_t r = rows; r >= std::max<uint64_t>(1, rows / 2); --r) {
    if (shape[k] % r == 0) {
      rows = r;
      break;
    }
  }
  chunks[k] = rows;
  for (size_t i = k + 1; i < rank; ++i) chunks[i] = std::max<uint64_t>(shape[i], 1);
  return chunks;
}

Status CheckExtent(const ArrayDesc& a) {
  auto overflow = [&](const char* what) {
    return UnsupportedError("shape " + DimsText(a.shape) + " with chunks " + DimsText(a.chunks) + " of " +
                            std::to_string(a.dtype.size) + "-byte elements: its " + what + " overflows 64 bits");
  };
  if (a.chunks.size() != a.shape.size()) return InternalError("chunk rank differs from the shape's");
  std::optional<uint64_t> elements = a.dtype.size, grid = 1, chunk = a.dtype.size;
  for (size_t i = 0; i < a.shape.size(); ++i) {
    if (a.chunks[i] == 0) return CorruptError("chunk shape " + DimsText(a.chunks) + " has a zero dimension");
    if (a.shape[i] > UINT64_MAX - (a.chunks[i] - 1)) return overflow("chunk grid");
    elements = elements ? Mul(*elements, a.shape[i]) : std::nullopt;
    grid = grid ? Mul(*grid, (a.shape[i] + a.chunks[i] - 1) / a.chunks[i]) : std::nullopt;
    chunk = chunk ? Mul(*chunk, a.chunks[i]) : std::nullopt;
  }
  if (!elements) return overflow("byte count");
  if (!grid) return overflow("chunk count");
  if (!chunk) return overflow("chunk byte count");
  return OkStatus();
}

Result<DatasetPlan> PlanDataset(const Hdf5FileContext& ctx, const std::string& path, ChunkListing listing) {
  H5Id dset(H5Dopen2(ctx.file, path.c_str(), H5P_DEFAULT));
  if (!dset.valid()) return FromHdf5(StatusCode::kCorrupt, "open dataset");
  H5Id type(H5Dget_type(dset.get()));
  H5Id space(H5Dget_space(dset.get()));
  H5Id dcpl(H5Dget_create_plist(dset.get()));
  if (!type.valid() || !space.valid() || !dcpl.valid()) return FromHdf5(StatusCode::kCorrupt, "read dataset header");
  DatasetPlan plan;
  plan.h5path = path;
  plan.listing = listing;
  ArrayDesc& a = plan.array;
  const bool vlen_strings =
      H5Tget_class(type.get()) == H5T_STRING && H5Tis_variable_str(type.get()) > 0;
  // Reduced-precision integers are served converted to their container type (read_type).
  H5Id read_type = ContainerIntegerType(type.get());
  if (vlen_strings) {
    a.dtype = DType::Make('O', 8, '|');
  } else {
    ASSIGN_OR_RETURN(a.dtype, DTypeFromHdf5(read_type.valid() ? read_type.get() : type.get()));
  }
  const H5S_class_t sclass = H5Sget_simple_extent_type(space.get());
  if (sclass == H5S_NULL) return UnsupportedError("null dataspace (a dataset without elements)");
  if (sclass == H5S_NO_CLASS) return FromHdf5(StatusCode::kCorrupt, "read dataspace");
  if (sclass == H5S_SIMPLE) {
    const int rank = H5Sget_simple_extent_ndims(space.get());
    if (rank < 0) return FromHdf5(StatusCode::kCorrupt, "read dataspace");
    std::vector<hsize_t> d(rank), m(rank);
    if (H5Sget_simple_extent_dims(space.get(), d.data(), m.data()) < 0) return FromHdf5(StatusCode::kCorrupt, "read dataspace");
    for (int i = 0; i < rank; ++i) {
      a.shape.push_back(d[i]);
      plan.max_dims.push_back(m[i] == H5S_UNLIMITED ? UINT64_MAX : m[i]);
    }
  }
  // Element and byte counts must fit in 64 bits before anything is computed from them.
  ASSIGN_OR_RETURN(const uint64_t total, ByteCount(a.shape, vlen_strings ? 1 : a.dtype.size));
  json skipped = json::object();
  a.attributes = ReadAttributes(dset.get(), skipped);
  if (!skipped.empty()) a.attributes["_refzarr_skipped_attributes"] = skipped;
  a.dimension_names = DimensionNames(dset.get(), path, a.shape);
  a.attributes["_ARRAY_DIMENSIONS"] = a.dimension_names;
  if (vlen_strings) {
    RETURN_IF_ERROR(PlanVlenStrings(dset.get(), type.get(), space.get(), dcpl.get(), plan));
    return plan;
  }
  // Fill value in the file's own datatype (what the decoder's pipeline needs), and as the array
  // serves it (the container type of a reduced-precision integer).
  std::vector<std::byte> fill(H5Tget_size(type.get()));
  if (H5Pget_fill_value(dcpl.get(), type.get(), fill.data()) < 0) {
    H5Eclear2(H5E_DEFAULT);
    std::fill(fill.begin(), fill.end(), std::byte{0});
  }
  std::vector<std::byte> served_fill = fill;
  if (read_type.valid() && H5Pget_fill_value(dcpl.get(), read_type.get(), served_fill.data()) < 0) {
    H5Eclear2(H5E_DEFAULT);
    std::fill(served_fill.begin(), served_fill.end(), std::byte{0});
  }
  a.fill_value = FillValueJson(a.dtype, served_fill);
  ASSIGN_OR_RETURN(plan.filters, ReadFilters(dcpl.get()));
  std::string note;
  ASSIGN_OR_RETURN(a.encoding, EncodingFromFilters(plan.filters, type.get(), a.dtype, &note, read_type.get()));
  // Chunks of a pipeline refzarr does not decode in process go through the library; a filter it
  // cannot load would fail each read, which zarr-python turns into fill values.
  if (!a.encoding.native) RETURN_IF_ERROR(CheckFiltersAvailable(plan.filters));
  if (!note.empty()) plan.warnings.push_back(note);
  // The decoder recreates the pipeline; scale-offset's parameters depend on the fill value.
  a.encoding.params["fill"] = Base64(fill);
  switch (H5Pget_layout(dcpl.get())) {
    case H5D_COMPACT: RETURN_IF_ERROR(PlanCompact(dset.get(), total, plan)); break;
    case H5D_CONTIGUOUS: RETURN_IF_ERROR(PlanContiguous(ctx, dset.get(), dcpl.get(), total, plan)); break;
    case H5D_CHUNKED: RETURN_IF_ERROR(PlanChunked(dset.get(), dcpl.get(), plan)); break;
    case H5D_VIRTUAL: {
      // Sources may be virtual themselves; a cycle must not recurse forever.
      static thread_local int depth = 0;
      if (depth >= 4) return UnsupportedError("virtual dataset: sources nested too deeply (a cycle?)");
      ++depth;
      Status v = PlanVirtual(ctx, dcpl.get(), plan);
      --depth;
      if (!v.ok()) return UnsupportedError("virtual dataset: " + v.message());
      break;
    }
    default: return FromHdf5(StatusCode::kCorrupt, "unknown storage layout");
  }
  RETURN_IF_ERROR(CheckExtent(a));
  // What the decoder cannot decode would be served as errors, which zarr-python reads as fill.
  if (!a.encoding.native && ctx.decoder != nullptr) RETURN_IF_ERROR(ctx.decoder->CheckArray(a));
  return plan;
}

Status VisitStoredChunks(const Hdf5FileContext& ctx, const DatasetPlan& plan, const StoredChunkVisitor& visit,
                         std::vector<std::string>* notes) {
  switch (plan.storage) {
    case DatasetPlan::Storage::kNone:
    case DatasetPlan::Storage::kInline: return OkStatus();
    case DatasetPlan::Storage::kContiguous: return VisitContiguous(plan, visit);
    case DatasetPlan::Storage::kChunked: return VisitChunked(ctx, plan, visit, notes);
    case DatasetPlan::Storage::kVirtual: return VisitVirtual(ctx, plan, visit, notes);
    case DatasetPlan::Storage::kStacked: return VisitStacked(ctx, plan, visit, notes);
  }
  return InternalError("unknown dataset storage");
}

Result<uint64_t> CountStoredChunks(const Hdf5FileContext& ctx, const DatasetPlan& plan) {
  uint64_t n = 0;
  RETURN_IF_ERROR(VisitStoredChunks(ctx, plan, [&](uint64_t, const ChunkRef&) {
    ++n;
    return OkStatus();
  }));
  return n;
}

Status EmitPlan(const Hdf5FileContext& ctx, ScanSink& sink, std::string_view path, const DatasetPlan& plan) {
  const std::string where = plan.h5path.empty() ? "array " + std::string(path) : "dataset " + plan.h5path;
  for (const std::string& w : plan.warnings) sink.Warn(where + ": " + w);
  std::vector<uint32_t> ids(plan.sources.size() + 1, 0);
  for (size_t i = 0; i < plan.sources.size(); ++i) {
    ASSIGN_OR_RETURN(ids[i + 1], sink.AddSource(plan.sources[i]));
  }
  ASSIGN_OR_RETURN(ArrayHandle handle, sink.AddArray(path, plan.array));
  for (auto& [index, bytes] : plan.inline_chunks) RETURN_IF_ERROR(sink.AddInlineChunk(handle, index, bytes));
  Status sink_error;
  std::vector<std::string> notes;
  const Status walked = VisitStoredChunks(ctx, plan, [&](uint64_t index, const ChunkRef& ref) {
    if (ref.source >= ids.size()) return InternalError("chunk of unknown source " + std::to_string(ref.source));
    ChunkRef r = ref;
    r.source = ids[ref.source];
    sink_error = sink.AddChunk(handle, index, r);
    return sink_error;
  }, &notes);
  for (const std::string& n : notes) sink.Warn(where + ": " + n);
  RETURN_IF_ERROR(sink_error);
  // A chunk that cannot be served takes back the whole array, with the chunks given before it.
  if (!walked.ok()) return sink.RefuseArray(path, walked.message());
  return OkStatus();
}

}  // namespace refzarr::internal
