#include "formats/hdf5/hdf5_decoder.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
#include <mutex>

#include "formats/hdf5/hdf5_types.h"
#include "formats/hdf5/hdf5_util.h"
#include "formats/hdf5/lzf_filter.h"

namespace refzarr {
namespace {

using internal::CheckErr;
using internal::CheckId;
using internal::H5Id;

// One in-memory (core driver, no backing store) file holding a one-chunk dataset with the pipeline
// and datatype of the arrays that share it.
struct PipelineFile {
  H5Id file;
  H5Id dataset;
  H5Id type;
};

// User-level filter parameters: the library recomputes the rest (set_local) from the datatype and
// chunk shape, which are the same as the original dataset's.
std::vector<unsigned> UserValues(int id, const std::vector<unsigned>& stored) {
  switch (id) {
    case H5Z_FILTER_SHUFFLE:
    case H5Z_FILTER_FLETCHER32:
    case H5Z_FILTER_NBIT: return {};
    case H5Z_FILTER_SZIP:
    case H5Z_FILTER_SCALEOFFSET: return {stored.begin(), stored.begin() + std::min<size_t>(2, stored.size())};
    default: return stored;
  }
}

class Hdf5ChunkDecoder final : public ChunkDecoder {
 public:
  Hdf5ChunkDecoder() {
    std::lock_guard lock(internal::Hdf5Mutex());
    internal::RegisterLzfFilter();
  }

  std::string_view Family() const override { return "hdf5"; }

  Status CheckArray(const ArrayDesc& array) const override {
    const nlohmann::json& filters = array.encoding.params.value("filters", nlohmann::json::array());
    if (filters.empty()) return OkStatus();
    std::lock_guard lock(internal::Hdf5Mutex());
    internal::Hdf5ErrorSilencer quiet;
    return FileFor(array).status();
  }

  Status Decode(const ArrayDesc& array, std::span<const uint64_t> chunk_coords, const ChunkRef& ref,
                std::span<const std::byte> stored, std::span<std::byte> out) const override {
    const nlohmann::json& filters = array.encoding.params.value("filters", nlohmann::json::array());
    const uint32_t mask = ref.flags & kChunkFilterMask;
    const uint32_t all = filters.empty() ? 0 : (1u << filters.size()) - 1;
    if (filters.empty() || (mask & all) == all) {
      // Nothing to undo: the stored bytes are the chunk (or, when short, its start).
      if (stored.size() > out.size() || (stored.size() < out.size() && !(ref.flags & kChunkShort))) {
        return CorruptError("hdf5 chunk: " + std::to_string(stored.size()) + " stored bytes for a " +
                            std::to_string(out.size()) + "-byte chunk");
      }
      std::memcpy(out.data(), stored.data(), std::min(stored.size(), out.size()));
      return OkStatus();
    }
    std::lock_guard lock(internal::Hdf5Mutex());
    internal::Hdf5ErrorSilencer quiet;
    ASSIGN_OR_RETURN(PipelineFile * pf, FileFor(array));
    const std::vector<hsize_t> offset(array.chunks.size(), 0);
    RETURN_IF_ERROR(CheckErr(H5Dwrite_chunk(pf->dataset.get(), H5P_DEFAULT, mask, offset.data(), stored.size(),
                                            stored.data()),
                             "hdf5 chunk: write stored bytes", StatusCode::kInternal));
    Status s = CheckErr(H5Dread(pf->dataset.get(), pf->type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()),
                        "hdf5 chunk: decode through the filter pipeline");
    if (!s.ok()) {
      std::string at;
      for (uint64_t c : chunk_coords) at += (at.empty() ? "" : ",") + std::to_string(c);
      return s.WithContext("chunk (" + at + ")");
    }
    return OkStatus();
  }

 private:
  Result<PipelineFile*> FileFor(const ArrayDesc& array) const {
    std::string key = array.encoding.params.dump();
    for (uint64_t c : array.chunks) key += "," + std::to_string(c);
    auto it = cache_.find(key);
    if (it != cache_.end()) return it->second.get();
    if (cache_.size() >= 32) cache_.clear();
    auto pf = std::make_unique<PipelineFile>();
    ASSIGN_OR_RETURN(auto encoded, internal::FromBase64(array.encoding.params.value("type", std::string())));
    ASSIGN_OR_RETURN(pf->type, CheckId(H5Tdecode(encoded.data()), "hdf5 chunk: decode datatype", StatusCode::kInvalidArgument));
    ASSIGN_OR_RETURN(H5Id fapl, CheckId(H5Pcreate(H5P_FILE_ACCESS), "fapl", StatusCode::kInternal));
    RETURN_IF_ERROR(CheckErr(H5Pset_fapl_core(fapl.get(), 1 << 20, 0), "core driver", StatusCode::kInternal));
    const std::string name = "refzarr-decoder-" + std::to_string(counter_++);
    ASSIGN_OR_RETURN(pf->file, CheckId(H5Fcreate(name.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()),
                                       "hdf5 chunk: in-memory file", StatusCode::kInternal));
    std::vector<hsize_t> dims(array.chunks.begin(), array.chunks.end());
    if (dims.empty()) dims.push_back(1);
    ASSIGN_OR_RETURN(H5Id space, CheckId(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), "space", StatusCode::kInternal));
    ASSIGN_OR_RETURN(H5Id dcpl, CheckId(H5Pcreate(H5P_DATASET_CREATE), "dcpl", StatusCode::kInternal));
    RETURN_IF_ERROR(CheckErr(H5Pset_chunk(dcpl.get(), static_cast<int>(dims.size()), dims.data()), "chunk", StatusCode::kInternal));
    if (array.encoding.params.contains("fill")) {
      ASSIGN_OR_RETURN(auto fill, internal::FromBase64(array.encoding.params["fill"].get<std::string>()));
      if (fill.size() == H5Tget_size(pf->type.get())) {
        RETURN_IF_ERROR(CheckErr(H5Pset_fill_value(dcpl.get(), pf->type.get(), fill.data()), "fill value", StatusCode::kInternal));
      }
    }
    for (const auto& f : array.encoding.params.value("filters", nlohmann::json::array())) {
      const int id = f.value("id", 0);
      if (H5Zfilter_avail(id) <= 0) {
        H5Eclear2(H5E_DEFAULT);
        return UnsupportedError("hdf5 chunk: HDF5 filter " + std::to_string(id) + " (\"" + f.value("name", std::string()) +
                                "\") is not available to the HDF5 library (no plugin loaded)");
      }
      std::vector<unsigned> cd = UserValues(id, f.value("cd_values", std::vector<unsigned>{}));
      RETURN_IF_ERROR(CheckErr(H5Pset_filter(dcpl.get(), id, f.value("flags", 0u), cd.size(), cd.data()),
                               "hdf5 chunk: filter " + std::to_string(id), StatusCode::kUnsupported));
    }
    ASSIGN_OR_RETURN(pf->dataset, CheckId(H5Dcreate2(pf->file.get(), "chunk", pf->type.get(), space.get(),
                                                     H5P_DEFAULT, dcpl.get(), H5P_DEFAULT),
                                          "hdf5 chunk: set up the filter pipeline (filter not available?)",
                                          StatusCode::kUnsupported));
    PipelineFile* raw = pf.get();
    cache_.emplace(std::move(key), std::move(pf));
    return raw;
  }

  // Guarded by internal::Hdf5Mutex().
  mutable std::map<std::string, std::unique_ptr<PipelineFile>> cache_;
  mutable std::atomic<uint64_t> counter_{0};
};

}  // namespace

std::unique_ptr<ChunkDecoder> MakeHdf5ChunkDecoder() { return std::make_unique<Hdf5ChunkDecoder>(); }

}  // namespace refzarr
