#include "formats/hdf5/hdf5_dataset.h"

#include <algorithm>
#include <map>
#include <numeric>

#include "formats/hdf5/hdf5_util.h"

namespace refzarr::internal {
namespace {

using nlohmann::json;

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

Status PlanContiguous(const Hdf5FileContext& ctx, hid_t dset, hid_t dcpl, DatasetPlan& plan) {
  ArrayDesc& a = plan.array;
  uint64_t total = a.dtype.size;
  for (uint64_t d : a.shape) total *= d;
  const int nexternal = H5Pget_external_count(dcpl);
  struct Segment {
    uint32_t source;
    uint64_t offset, size, start;
  };
  std::vector<Segment> segments;
  if (nexternal > 0) {
    std::map<std::filesystem::path, uint32_t> ids;
    uint64_t start = 0;
    for (int i = 0; i < nexternal; ++i) {
      char name[4096] = {};
      off_t offset = 0;
      hsize_t size = 0;
      RETURN_IF_ERROR(CheckErr(H5Pget_external(dcpl, i, sizeof name, name, &offset, &size), "external file list"));
      std::filesystem::path p(name);
      if (p.is_relative()) {
        if (ctx.path.empty()) return UnsupportedError("external raw data file " + p.string() + " needs a local HDF5 path");
        p = ctx.path.parent_path() / p;
      }
      std::error_code ec;
      if (!std::filesystem::is_regular_file(p, ec)) return UnsupportedError("external raw data file " + p.string() + " is missing");
      auto [it, added] = ids.emplace(p, static_cast<uint32_t>(plan.sources.size() + 1));
      if (added) plan.sources.push_back(p);
      const uint64_t seg_size = size == H5F_UNLIMITED ? UINT64_MAX - start : size;
      segments.push_back({it->second, static_cast<uint64_t>(offset), seg_size, start});
      start += seg_size;
      if (start >= total) break;
    }
  } else {
    const haddr_t offset = H5Dget_offset(dset);
    H5Eclear2(H5E_DEFAULT);
    if (offset == HADDR_UNDEF) {
      a.chunks = a.shape.empty() ? std::vector<uint64_t>{} : ContiguousChunks(a.shape, a.dtype.size);
      return OkStatus();  // never written: every element is the fill value
    }
    if (H5Dget_storage_size(dset) < total) return CorruptError("contiguous storage smaller than the dataset");
    // Unlike stored addresses and H5Dget_chunk_info, H5Dget_offset includes the base address
    // (userblock) already.
    segments.push_back({0, offset, total, 0});
  }
  if (a.shape.empty()) {
    a.chunks = {};
    const Segment& s = segments.front();
    plan.chunks.push_back({0, ChunkRef{s.source, s.offset, total, 0}});
    return OkStatus();
  }
  a.chunks = ContiguousChunks(a.shape, a.dtype.size);
  if (total == 0) return OkStatus();
  SlabSplit split = SplitOf(a.shape, a.chunks, a.dtype.size);
  if (segments.size() > 1) {
    // Every chunk must lie inside one external segment: cut the slabs at the segment boundaries.
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
    split = SplitOf(a.shape, a.chunks, a.dtype.size);
  }
  const uint64_t dim = a.shape[split.k];
  for (uint64_t outer = 0; outer < split.outer; ++outer) {
    for (uint64_t ck = 0; ck < split.per_outer; ++ck) {
      const uint64_t start = (outer * dim + ck * split.rows) * split.slab;
      const uint64_t rows = std::min(split.rows, dim - ck * split.rows);
      const uint64_t length = rows * split.slab;
      auto seg = std::find_if(segments.begin(), segments.end(),
                              [&](const Segment& s) { return start >= s.start && start - s.start < s.size; });
      if (seg == segments.end() || start + length - seg->start > seg->size) {
        return CorruptError("contiguous chunk at byte " + std::to_string(start) + " is not inside one storage segment");
      }
      ChunkRef ref{seg->source, seg->offset + (start - seg->start), length, rows < split.rows ? kChunkShort : 0u};
      plan.chunks.push_back({outer * split.per_outer + ck, ref});
    }
  }
  return OkStatus();
}

Status PlanCompact(hid_t dset, DatasetPlan& plan) {
  ArrayDesc& a = plan.array;
  uint64_t total = a.dtype.size;
  for (uint64_t d : a.shape) total *= d;
  a.chunks = a.shape;
  for (auto& c : a.chunks) c = std::max<uint64_t>(c, 1);
  if (total == 0) return OkStatus();
  std::vector<std::byte> bytes(total);
  H5Id type(H5Dget_type(dset));
  RETURN_IF_ERROR(CheckErr(H5Dread(dset, type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, bytes.data()), "read compact data"));
  plan.inline_chunks.push_back({0, std::move(bytes)});
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
  constexpr uint64_t kMaxBytes = 64ull << 20;
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
  uint64_t total = 1;
  for (uint64_t d : a.shape) total *= d;
  if (total == 0) return OkStatus();
  if (total > kMaxBytes / 8) {
    return UnsupportedError("variable-length strings: " + std::to_string(total) +
                            " of them are too many to keep in the index");
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
  if (bytes > kMaxBytes) {
    return UnsupportedError("variable-length strings: " + std::to_string(bytes) +
                            " bytes are too many to keep in the index");
  }
  const std::vector<uint64_t> grid = a.GridShape();
  uint64_t per_chunk = 1;
  for (uint64_t c : a.chunks) per_chunk *= c;
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
  return OkStatus();
}

Status PlanChunked(const Hdf5FileContext& ctx, hid_t dset, hid_t dcpl, const std::vector<uint64_t>& max_dims,
                   ChunkListing listing, DatasetPlan& plan) {
  ArrayDesc& a = plan.array;
  const int rank = static_cast<int>(a.shape.size());
  std::vector<hsize_t> cdims(rank);
  if (H5Pget_chunk(dcpl, rank, cdims.data()) != rank) return FromHdf5(StatusCode::kCorrupt, "read chunk shape");
  a.chunks.assign(cdims.begin(), cdims.end());
  plan.is_chunked = true;
  const std::vector<uint64_t> grid = a.GridShape();
  const uint32_t all_filters = plan.filters.empty() ? 0 : ((1u << plan.filters.size()) - 1) & kChunkFilterMask;
  H5O_info_t oinfo;
  Status parsed = listing == ChunkListing::kLibrary ? UnsupportedError("library listing requested")
                                                    : CheckErr(H5Oget_info2(dset, &oinfo, H5O_INFO_BASIC), "object info");
  if (parsed.ok()) {
    auto layout = ReadHdf5DataLayout(*ctx.source, ctx.info, oinfo.addr);
    if (layout.ok()) {
      parsed = ForEachHdf5Chunk(*ctx.source, ctx.info, *layout, a.shape, max_dims, [&](const Hdf5StoredChunk& c) {
        const uint32_t flags = c.unfiltered_edge ? all_filters : (c.filter_mask & kChunkFilterMask);
        plan.chunks.push_back({LinearChunkIndex(grid, c.coords), ChunkRef{0, c.address, c.size, flags}});
        return OkStatus();
      });
    } else {
      parsed = layout.status();
    }
  }
  if (parsed.ok()) return OkStatus();
  plan.chunks.clear();
#if H5_VERSION_GE(1, 14, 0)
  // Newer libraries iterate the index in one pass (addresses relative to the base address).
  struct IterState {
    DatasetPlan* plan;
    const std::vector<uint64_t>* grid;
    const std::vector<uint64_t>* chunks;
    uint64_t base;
  } state{&plan, &grid, &a.chunks, ctx.info.base_address};
  const herr_t iterated = H5Dchunk_iter(
      dset, H5P_DEFAULT,
      [](const hsize_t* offset, unsigned mask, haddr_t addr, hsize_t size, void* data) -> int {
        auto* st = static_cast<IterState*>(data);
        std::vector<uint64_t> coords(st->grid->size());
        for (size_t d = 0; d < coords.size(); ++d) {
          coords[d] = offset[d] / (*st->chunks)[d];
          if (coords[d] >= (*st->grid)[d]) return H5_ITER_CONT;
        }
        st->plan->chunks.push_back(
            {LinearChunkIndex(*st->grid, coords), ChunkRef{0, st->base + addr, size, mask & kChunkFilterMask}});
        return H5_ITER_CONT;
      },
      &state);
  if (iterated >= 0) {
    plan.warnings.push_back("chunk index not readable from the file format (" + parsed.message() +
                            "); listed through H5Dchunk_iter instead");
    return OkStatus();
  }
  H5Eclear2(H5E_DEFAULT);
  plan.chunks.clear();
#endif
  // HDF5 1.10's only listing costs O(chunks) per chunk: a last resort.
  if (listing == ChunkListing::kFileFormat) {
    plan.warnings.push_back("chunk index not readable from the file format (" + parsed.message() +
                            "); listed through H5Dget_chunk_info instead (slow for many chunks)");
  }
  hsize_t n = 0;
  H5Id space(H5Dget_space(dset));
  RETURN_IF_ERROR(CheckErr(H5Dget_num_chunks(dset, space.get(), &n), "count chunks"));
  std::vector<hsize_t> off(rank);
  std::vector<uint64_t> coords(rank);
  for (hsize_t i = 0; i < n; ++i) {
    unsigned mask = 0;
    haddr_t addr = 0;
    hsize_t size = 0;
    RETURN_IF_ERROR(CheckErr(H5Dget_chunk_info(dset, space.get(), i, off.data(), &mask, &addr, &size), "chunk info"));
    bool inside = true;
    for (int d = 0; d < rank; ++d) {
      coords[d] = off[d] / a.chunks[d];
      inside = inside && coords[d] < grid[d];
    }
    if (!inside) continue;
    plan.chunks.push_back({LinearChunkIndex(grid, coords), ChunkRef{0, ctx.info.base_address + addr, size, mask & kChunkFilterMask}});
  }
  return OkStatus();
}


// A virtual dataset whose mappings each place a whole chunked source dataset at a chunk-aligned
// block becomes an array over the sources' own chunks. Anything else is refused with the reason.
Status PlanVirtual(const Hdf5FileContext& ctx, hid_t dcpl, DatasetPlan& plan) {
  ArrayDesc& a = plan.array;
  const size_t rank = a.shape.size();
  size_t count = 0;
  RETURN_IF_ERROR(CheckErr(H5Pget_virtual_count(dcpl, &count), "virtual mappings"));
  if (count == 0) return UnsupportedError("virtual dataset without mappings");
  std::map<std::filesystem::path, uint32_t> ids;
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
    std::filesystem::path src_path = fname == "." ? ctx.path : std::filesystem::path(fname);
    if (src_path.is_relative()) {
      if (ctx.path.empty()) return UnsupportedError(which + ": source files need a local HDF5 path");
      src_path = ctx.path.parent_path() / src_path;
    }
    // A missing source file reads as the fill value, like a missing chunk.
    if (unlimited >= 0 && !std::filesystem::exists(src_path)) continue;
    // Plan the source dataset with its own file.
    auto src_bytes = OpenLocalFile(src_path);
    if (!src_bytes.ok()) return UnsupportedError(which + ": source " + src_path.string() + ": " + src_bytes.status().message());
    ASSIGN_OR_RETURN(Hdf5FileInfo src_info, ReadHdf5Superblock(**src_bytes));
    H5Id src_file(H5Fopen(src_path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
    if (!src_file.valid()) return FromHdf5(StatusCode::kUnsupported, which + ": open source " + src_path.string());
    Hdf5FileContext src_ctx{src_file.get(), src_bytes->get(), src_info, src_path, (*src_bytes)->Describe()};
    auto src = PlanDataset(src_ctx, dname[0] == '/' ? dname : "/" + dname);
    if (!src.ok()) return UnsupportedError(which + ": source " + src_path.string() + ":" + dname + ": " + src.status().message());
    const ArrayDesc& sa = src->array;
    if (!src->is_chunked || !src->sources.empty() || !src->inline_chunks.empty()) {
      return UnsupportedError(which + ": source dataset is not chunked");
    }
    if (H5Sget_select_type(sspace.get()) != H5S_SEL_ALL) {
      hssize_t npoints = H5Sget_select_npoints(sspace.get());
      uint64_t total = 1;
      for (uint64_t v : sa.shape) total *= v;
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
    if (sa.fill_value != a.fill_value && src->chunks.size() < sa.ChunkCount()) {
      return UnsupportedError(which + ": source has unwritten chunks and a fill value unlike the virtual dataset's");
    }
    std::vector<uint64_t> offset(rank);
    for (size_t d = 0; d < rank; ++d) {
      if (block[d] != sa.shape[d]) return UnsupportedError(which + ": mapped block is not the whole source");
      if (start[d] % a.chunks[d] != 0) return UnsupportedError(which + ": block is not aligned to the source chunks");
      if (sa.shape[d] % a.chunks[d] != 0 && start[d] + block[d] != a.shape[d]) {
        return UnsupportedError(which + ": source has partial edge chunks inside the virtual array");
      }
      offset[d] = start[d] / a.chunks[d];
    }
    uint32_t id = 0;
    if (src_path != ctx.path) {
      auto [it, added] = ids.emplace(src_path, static_cast<uint32_t>(plan.sources.size() + 1));
      if (added) plan.sources.push_back(src_path);
      id = it->second;
    }
    const std::vector<uint64_t> src_grid = sa.GridShape();
    const std::vector<uint64_t> grid = a.GridShape();
    for (auto& [index, ref] : src->chunks) {
      std::vector<uint64_t> cc = ChunkCoords(src_grid, index);
      for (size_t d = 0; d < rank; ++d) cc[d] += offset[d];
      ChunkRef r = ref;
      r.source = id;
      plan.chunks.push_back({LinearChunkIndex(grid, cc), r});
    }
    for (auto& w : src->warnings) plan.warnings.push_back(which + ": " + w);
    }
  }
  plan.is_chunked = true;
  return OkStatus();
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

Result<DatasetPlan> PlanDataset(const Hdf5FileContext& ctx, const std::string& path, ChunkListing listing) {
  H5Id dset(H5Dopen2(ctx.file, path.c_str(), H5P_DEFAULT));
  if (!dset.valid()) return FromHdf5(StatusCode::kCorrupt, "open dataset");
  H5Id type(H5Dget_type(dset.get()));
  H5Id space(H5Dget_space(dset.get()));
  H5Id dcpl(H5Dget_create_plist(dset.get()));
  if (!type.valid() || !space.valid() || !dcpl.valid()) return FromHdf5(StatusCode::kCorrupt, "read dataset header");
  DatasetPlan plan;
  ArrayDesc& a = plan.array;
  const bool vlen_strings =
      H5Tget_class(type.get()) == H5T_STRING && H5Tis_variable_str(type.get()) > 0;
  if (vlen_strings) {
    a.dtype = DType::Make('O', 8, '|');
  } else {
    ASSIGN_OR_RETURN(a.dtype, DTypeFromHdf5(type.get()));
  }
  const H5S_class_t sclass = H5Sget_simple_extent_type(space.get());
  if (sclass == H5S_NULL) return UnsupportedError("null dataspace (a dataset without elements)");
  std::vector<uint64_t> max_dims;
  if (sclass == H5S_SIMPLE) {
    const int rank = H5Sget_simple_extent_ndims(space.get());
    std::vector<hsize_t> d(rank), m(rank);
    H5Sget_simple_extent_dims(space.get(), d.data(), m.data());
    for (int i = 0; i < rank; ++i) {
      a.shape.push_back(d[i]);
      max_dims.push_back(m[i] == H5S_UNLIMITED ? UINT64_MAX : m[i]);
    }
  }
  json skipped = json::object();
  a.attributes = ReadAttributes(dset.get(), skipped);
  if (!skipped.empty()) a.attributes["_refzarr_skipped_attributes"] = skipped;
  a.dimension_names = DimensionNames(dset.get(), path, a.shape);
  a.attributes["_ARRAY_DIMENSIONS"] = a.dimension_names;
  if (vlen_strings) {
    RETURN_IF_ERROR(PlanVlenStrings(dset.get(), type.get(), space.get(), dcpl.get(), plan));
    return plan;
  }
  // Fill value in the file's own datatype, hence in the dtype's byte order.
  std::vector<std::byte> fill(H5Tget_size(type.get()));
  if (H5Pget_fill_value(dcpl.get(), type.get(), fill.data()) >= 0) {
    a.fill_value = FillValueJson(a.dtype, fill);
  } else {
    H5Eclear2(H5E_DEFAULT);
    std::fill(fill.begin(), fill.end(), std::byte{0});
    a.fill_value = FillValueJson(a.dtype, fill);
  }
  ASSIGN_OR_RETURN(plan.filters, ReadFilters(dcpl.get()));
  std::string note;
  ASSIGN_OR_RETURN(a.encoding, EncodingFromFilters(plan.filters, type.get(), a.dtype, &note));
  if (!note.empty()) plan.warnings.push_back(note);
  // The decoder recreates the pipeline; scale-offset's parameters depend on the fill value.
  a.encoding.params["fill"] = Base64(fill);
  switch (H5Pget_layout(dcpl.get())) {
    case H5D_COMPACT: RETURN_IF_ERROR(PlanCompact(dset.get(), plan)); break;
    case H5D_CONTIGUOUS: RETURN_IF_ERROR(PlanContiguous(ctx, dset.get(), dcpl.get(), plan)); break;
    case H5D_CHUNKED: RETURN_IF_ERROR(PlanChunked(ctx, dset.get(), dcpl.get(), max_dims, listing, plan)); break;
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
  return plan;
}

}  // namespace refzarr::internal
