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
using nlohmann::json;

// The library pads a filtered chunk that decodes short (with whatever its buffer held) and cuts
// one that decodes long, without an error. This filter, first in every pipeline the decoder sets
// up and so the last to run when reading, sees the decoded size and fails the read unless it is
// the chunk's. The id is in HDF5's range for private use (32768-65535).
constexpr H5Z_filter_t kSizeCheckFilterId = 65100;

// What the size check saw last; guarded by internal::Hdf5Mutex() (every decode holds it).
struct SizeCheckResult {
  bool failed = false;
  size_t decoded = 0;
};
SizeCheckResult g_size_check;

// HDF5 filter callback (a C callback: nothing may throw). cd_values: the chunk's bytes, low and
// high 32 bits.
size_t SizeCheckFilter(unsigned flags, size_t cd_nelmts, const unsigned cd_values[], size_t nbytes, size_t*,
                       void**) {
  if (!(flags & H5Z_FLAG_REVERSE)) return nbytes;  // refzarr never writes through the pipeline
  const uint64_t expected = cd_nelmts >= 2 ? (uint64_t{cd_values[1]} << 32) | cd_values[0] : 0;
  if (nbytes == expected) return nbytes;
  g_size_check = {true, nbytes};
  return 0;
}

const H5Z_class2_t kSizeCheckClass = {
    H5Z_CLASS_T_VERS, kSizeCheckFilterId, 1, 1, "refzarr decoded size check", nullptr, nullptr, SizeCheckFilter,
};

void RegisterSizeCheckFilter() {
  static std::once_flag once;
  std::call_once(once, [] { H5Zregister(&kSizeCheckClass); });
}

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

// What the params say, checked against the array: the file datatype, the served one, the fill
// value, the pipeline and the chunk shape.
struct PipelineSpec {
  std::vector<internal::Hdf5Filter> filters;
  H5Id type;       // elements as stored
  H5Id read_type;  // as served (a reduced-precision integer's container); invalid: `type`
  std::vector<std::byte> fill;
  std::vector<hsize_t> dims;
  uint64_t elements = 1;
};

// A JSON number that fits an unsigned 32-bit value (nlohmann keeps non-negative numbers parsed
// from text as unsigned, those built from an int as signed).
bool IsUnsigned32(const json& v) {
  if (v.is_number_unsigned()) return v.get<uint64_t>() <= UINT32_MAX;
  return v.is_number_integer() && v.get<int64_t>() >= 0 && v.get<int64_t>() <= int64_t{UINT32_MAX};
}

Result<uint32_t> UnsignedField(const json& j, const char* key, uint32_t dflt, const std::string& what) {
  if (!j.contains(key)) return dflt;
  const json& v = j[key];
  if (!IsUnsigned32(v)) return InvalidArgumentError(what + ": \"" + key + "\" is not a 32-bit unsigned number");
  return v.get<uint32_t>();
}

Result<PipelineSpec> ParsePipeline(const ArrayDesc& array) {
  const json& params = array.encoding.params;
  if (!params.is_object()) return InvalidArgumentError("hdf5 chunk: params are not an object");
  PipelineSpec spec;
  const json filters = params.value("filters", json::array());
  if (!filters.is_array()) return InvalidArgumentError("hdf5 chunk: \"filters\" is not a list");
  // The size check takes one of HDF5's 32 pipeline slots.
  if (filters.size() + 1 > H5Z_MAX_NFILTERS) {
    return UnsupportedError("hdf5 chunk: a pipeline of " + std::to_string(filters.size()) + " filters");
  }
  for (size_t i = 0; i < filters.size(); ++i) {
    const json& f = filters[i];
    const std::string what = "hdf5 chunk: filter " + std::to_string(i);
    if (!f.is_object()) return InvalidArgumentError(what + " is not an object");
    internal::Hdf5Filter spec_f;
    ASSIGN_OR_RETURN(const uint32_t id, UnsignedField(f, "id", 0, what));
    ASSIGN_OR_RETURN(spec_f.flags, UnsignedField(f, "flags", 0, what));
    if (id == 0 || id > 65535) return InvalidArgumentError(what + ": id " + std::to_string(id));
    spec_f.id = static_cast<int>(id);
    if (f.contains("name") && f["name"].is_string()) spec_f.name = f["name"].get<std::string>();
    const json cd = f.value("cd_values", json::array());
    if (!cd.is_array()) return InvalidArgumentError(what + ": \"cd_values\" is not a list");
    for (const json& v : cd) {
      if (!IsUnsigned32(v)) return InvalidArgumentError(what + ": a cd_value is not a 32-bit unsigned number");
      spec_f.cd_values.push_back(v.get<uint32_t>());
    }
    // H5Pset_szip's own rule, which the raw H5Pset_filter does not apply: an even number of
    // pixels per block, at most 32.
    if (spec_f.id == H5Z_FILTER_SZIP) {
      const unsigned ppb = spec_f.cd_values.size() > 1 ? spec_f.cd_values[1] : 0;
      if (ppb < 2 || ppb > 32 || ppb % 2 != 0) {
        return UnsupportedError(what + " (szip): " + std::to_string(ppb) + " pixels per block (even, 2 to 32)");
      }
    }
    if (spec_f.id == kSizeCheckFilterId) {
      return UnsupportedError("hdf5 chunk: HDF5 filter " + std::to_string(id) + " (\"" + spec_f.name +
                              "\") is an id refzarr reserves for itself");
    }
    spec.filters.push_back(std::move(spec_f));
  }
  auto decode_type = [&](const char* key) -> Result<H5Id> {
    if (!params.contains(key) || !params[key].is_string()) {
      return InvalidArgumentError(std::string("hdf5 chunk: no \"") + key + "\"");
    }
    ASSIGN_OR_RETURN(auto encoded, internal::FromBase64(params[key].get<std::string>()));
    if (encoded.empty()) return InvalidArgumentError(std::string("hdf5 chunk: empty \"") + key + "\"");
    return CheckId(H5Tdecode(encoded.data()), std::string("hdf5 chunk: decode \"") + key + "\"",
                   StatusCode::kInvalidArgument);
  };
  ASSIGN_OR_RETURN(spec.type, decode_type("type"));
  const size_t type_size = H5Tget_size(spec.type.get());
  if (params.contains("read_type")) {
    ASSIGN_OR_RETURN(spec.read_type, decode_type("read_type"));
    if (H5Tget_size(spec.read_type.get()) != type_size) {
      return InvalidArgumentError("hdf5 chunk: \"read_type\" differs in size from \"type\"");
    }
    H5T_cdata_t* cdata = nullptr;
    if (H5Tfind(spec.type.get(), spec.read_type.get(), &cdata) == nullptr) {
      return internal::FromHdf5(StatusCode::kUnsupported, "hdf5 chunk: no conversion to the served datatype");
    }
  }
  if (type_size != array.dtype.size) {
    return InvalidArgumentError("hdf5 chunk: a " + std::to_string(type_size) + "-byte datatype for " +
                                std::to_string(array.dtype.size) + "-byte elements");
  }
  if (params.contains("fill")) {
    if (!params["fill"].is_string()) return InvalidArgumentError("hdf5 chunk: \"fill\" is not a string");
    ASSIGN_OR_RETURN(spec.fill, internal::FromBase64(params["fill"].get<std::string>()));
    if (spec.fill.size() != type_size) {
      return InvalidArgumentError("hdf5 chunk: a fill value of " + std::to_string(spec.fill.size()) + " bytes for " +
                                  std::to_string(type_size) + "-byte elements");
    }
  }
  spec.dims.assign(array.chunks.begin(), array.chunks.end());
  if (spec.dims.empty()) spec.dims.push_back(1);
  for (hsize_t d : spec.dims) {
    if (d == 0) return InvalidArgumentError("hdf5 chunk: a zero chunk dimension");
    if (__builtin_mul_overflow(spec.elements, d, &spec.elements)) {
      return InvalidArgumentError("hdf5 chunk: the chunk's element count overflows 64 bits");
    }
  }
  uint64_t bytes = 0;
  // HDF5 chunks hold less than 4 GiB.
  if (__builtin_mul_overflow(spec.elements, type_size, &bytes) || bytes > UINT32_MAX) {
    return UnsupportedError("hdf5 chunk: chunks of " + std::to_string(spec.elements) + " elements of " +
                            std::to_string(type_size) + " bytes exceed HDF5's 4 GiB chunk limit");
  }
  return spec;
}

// One in-memory (core driver, no backing store) file holding a one-chunk dataset with the pipeline
// (after the size check) and datatype of the arrays that share it.
struct PipelineFile {
  H5Id file;
  H5Id dataset;
  H5Id type;       // as stored
  H5Id read_type;  // as served
  uint64_t elements = 0;
  hid_t served() const { return read_type.valid() ? read_type.get() : type.get(); }
};

std::string CoordsText(std::span<const uint64_t> coords) {
  std::string at;
  for (uint64_t c : coords) at += (at.empty() ? "" : ",") + std::to_string(c);
  return "chunk (" + at + ")";
}

class Hdf5ChunkDecoder final : public ChunkDecoder {
 public:
  Hdf5ChunkDecoder() {
    std::lock_guard lock(internal::Hdf5Mutex());
    internal::Hdf5ErrorSilencer quiet;
    internal::RegisterLzfFilter();
    RegisterSizeCheckFilter();
  }

  std::string_view Family() const override { return "hdf5"; }

  // Sets up, once per pipeline, what Decode uses: the params parse and agree with the array, each
  // filter is available to the library, and the library accepts the pipeline for this datatype and
  // chunk shape (its can_apply/set_local callbacks run when the dataset is created).
  Status CheckArray(const ArrayDesc& array) const override {
    std::lock_guard lock(internal::Hdf5Mutex());
    internal::Hdf5ErrorSilencer quiet;
    return FileFor(array).status();
  }

  Status Decode(const ArrayDesc& array, std::span<const uint64_t> chunk_coords, const ChunkRef& ref,
                std::span<const std::byte> stored, std::span<std::byte> out) const override {
    const json& filters = array.encoding.params.is_object() && array.encoding.params.contains("filters")
                              ? array.encoding.params["filters"]
                              : json::array();
    const size_t nfilters = filters.is_array() ? filters.size() : 0;
    const uint32_t mask = ref.flags & kChunkFilterMask;
    const uint32_t all = nfilters == 0 ? 0 : ((1u << std::min<size_t>(nfilters, 16)) - 1);
    const bool convert = array.encoding.params.is_object() && array.encoding.params.contains("read_type");
    if (nfilters == 0 || (mask & all) == all) {
      // Nothing to undo: the stored bytes are the chunk (or, when short, its start).
      if (stored.size() > out.size() || (stored.size() < out.size() && !(ref.flags & kChunkShort))) {
        return CorruptError("hdf5 " + CoordsText(chunk_coords) + ": " + std::to_string(stored.size()) +
                            " stored bytes for a " + std::to_string(out.size()) + "-byte chunk");
      }
      std::memcpy(out.data(), stored.data(), std::min(stored.size(), out.size()));
      if (!convert) return OkStatus();
      std::lock_guard lock(internal::Hdf5Mutex());
      internal::Hdf5ErrorSilencer quiet;
      ASSIGN_OR_RETURN(PipelineFile * pf, FileFor(array));
      const size_t n = std::min(stored.size(), out.size()) / std::max<size_t>(array.dtype.size, 1);
      return CheckErr(H5Tconvert(pf->type.get(), pf->read_type.get(), n, out.data(), nullptr, H5P_DEFAULT),
                      "hdf5 " + CoordsText(chunk_coords) + ": convert to the served datatype", StatusCode::kInternal);
    }
    std::lock_guard lock(internal::Hdf5Mutex());
    internal::Hdf5ErrorSilencer quiet;
    ASSIGN_OR_RETURN(PipelineFile * pf, FileFor(array));
    if (out.size() != pf->elements * array.dtype.size) {
      return InvalidArgumentError("hdf5 " + CoordsText(chunk_coords) + ": an output of " + std::to_string(out.size()) +
                                  " bytes for a chunk of " + std::to_string(pf->elements) + " elements");
    }
    // Bit 0 is the size check, which always runs; the stored pipeline's bits follow.
    const uint32_t shifted = mask << 1;
    const std::vector<hsize_t> offset(std::max<size_t>(array.chunks.size(), 1), 0);
    RETURN_IF_ERROR(CheckErr(H5Dwrite_chunk(pf->dataset.get(), H5P_DEFAULT, shifted, offset.data(), stored.size(),
                                            stored.data()),
                             "hdf5 " + CoordsText(chunk_coords) + ": write stored bytes", StatusCode::kInternal));
    g_size_check = {};
    const herr_t read = H5Dread(pf->dataset.get(), pf->served(), H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data());
    if (g_size_check.failed) {
      H5Eclear2(H5E_DEFAULT);
      return CorruptError("hdf5 " + CoordsText(chunk_coords) + ": the filter pipeline decodes its " +
                          std::to_string(stored.size()) + " stored bytes to " + std::to_string(g_size_check.decoded) +
                          " bytes; a chunk holds " + std::to_string(pf->elements * array.dtype.size));
    }
    return CheckErr(read, "hdf5 " + CoordsText(chunk_coords) + ": decode through the filter pipeline");
  }

 private:
  Result<PipelineFile*> FileFor(const ArrayDesc& array) const {
    std::string key = array.encoding.params.dump();
    for (uint64_t c : array.chunks) key += "," + std::to_string(c);
    key += ":" + std::to_string(array.dtype.size);
    auto it = cache_.find(key);
    if (it != cache_.end()) return it->second.get();
    ASSIGN_OR_RETURN(PipelineSpec spec, ParsePipeline(array));
    RETURN_IF_ERROR(internal::CheckFiltersAvailable(spec.filters).WithContext("hdf5 chunk"));
    if (cache_.size() >= 32) cache_.clear();
    auto pf = std::make_unique<PipelineFile>();
    pf->elements = spec.elements;
    ASSIGN_OR_RETURN(H5Id fapl, CheckId(H5Pcreate(H5P_FILE_ACCESS), "fapl", StatusCode::kInternal));
    RETURN_IF_ERROR(CheckErr(H5Pset_fapl_core(fapl.get(), 1 << 20, 0), "core driver", StatusCode::kInternal));
    // Core-driver files are known to the library by name: unique per decoder and pipeline.
    const std::string name = "refzarr-decoder-" + std::to_string(reinterpret_cast<uintptr_t>(this)) + "-" +
                             std::to_string(counter_++);
    ASSIGN_OR_RETURN(pf->file, CheckId(H5Fcreate(name.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()),
                                       "hdf5 chunk: in-memory file", StatusCode::kInternal));
    ASSIGN_OR_RETURN(H5Id space, CheckId(H5Screate_simple(static_cast<int>(spec.dims.size()), spec.dims.data(), nullptr),
                                         "space", StatusCode::kInternal));
    ASSIGN_OR_RETURN(H5Id dcpl, CheckId(H5Pcreate(H5P_DATASET_CREATE), "dcpl", StatusCode::kInternal));
    RETURN_IF_ERROR(CheckErr(H5Pset_chunk(dcpl.get(), static_cast<int>(spec.dims.size()), spec.dims.data()),
                             "hdf5 chunk: chunk shape", StatusCode::kUnsupported));
    if (!spec.fill.empty()) {
      RETURN_IF_ERROR(CheckErr(H5Pset_fill_value(dcpl.get(), spec.type.get(), spec.fill.data()),
                               "hdf5 chunk: fill value", StatusCode::kUnsupported));
    }
    const uint64_t bytes = spec.elements * H5Tget_size(spec.type.get());  // < 4 GiB (ParsePipeline)
    const unsigned expected[2] = {static_cast<unsigned>(bytes & 0xffffffffu), static_cast<unsigned>(bytes >> 32)};
    RETURN_IF_ERROR(CheckErr(H5Pset_filter(dcpl.get(), kSizeCheckFilterId, H5Z_FLAG_MANDATORY, 2, expected),
                             "hdf5 chunk: size check", StatusCode::kInternal));
    for (const internal::Hdf5Filter& f : spec.filters) {
      std::vector<unsigned> cd = UserValues(f.id, f.cd_values);
      RETURN_IF_ERROR(CheckErr(H5Pset_filter(dcpl.get(), f.id, f.flags, cd.size(), cd.data()),
                               "hdf5 chunk: filter " + std::to_string(f.id) + " (\"" + f.name + "\")",
                               StatusCode::kUnsupported));
    }
    ASSIGN_OR_RETURN(pf->dataset, CheckId(H5Dcreate2(pf->file.get(), "chunk", spec.type.get(), space.get(),
                                                     H5P_DEFAULT, dcpl.get(), H5P_DEFAULT),
                                          "hdf5 chunk: the HDF5 library refuses the filter pipeline for this "
                                          "datatype and chunk shape",
                                          StatusCode::kUnsupported));
    pf->type = std::move(spec.type);
    pf->read_type = std::move(spec.read_type);
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
