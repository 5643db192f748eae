#include "formats/hdf5/hdf5_types.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>

#include "formats/hdf5/hdf5_util.h"
#include "formats/hdf5/lzf_filter.h"
#include "formats/core/base64.h"

namespace refzarr::internal {
namespace {

using nlohmann::json;

char ByteOrder(hid_t type) { return H5Tget_order(type) == H5T_ORDER_BE ? '>' : '<'; }

std::string ClassName(H5T_class_t cls) {
  switch (cls) {
    case H5T_TIME: return "time datatype";
    case H5T_OPAQUE: return "opaque datatype";
    case H5T_REFERENCE: return "reference datatype";
    case H5T_VLEN: return "variable-length datatype";
    case H5T_ARRAY: return "array datatype";
    case H5T_COMPOUND: return "compound datatype";
    default: return "datatype class " + std::to_string(static_cast<int>(cls));
  }
}

uint64_t LoadUnsigned(std::span<const std::byte> b, char order) {
  uint64_t v = 0;
  const size_t n = std::min<size_t>(b.size(), 8);
  for (size_t i = 0; i < n; ++i) {
    const size_t src = order == '>' ? n - 1 - i : i;
    v |= static_cast<uint64_t>(b[src]) << (8 * i);
  }
  return v;
}

double HalfToDouble(uint16_t h) {
  const int exp = (h >> 10) & 0x1f;
  const int mant = h & 0x3ff;
  double v;
  if (exp == 0) {
    v = std::ldexp(mant, -24);
  } else if (exp == 31) {
    v = mant ? std::numeric_limits<double>::quiet_NaN() : std::numeric_limits<double>::infinity();
  } else {
    v = std::ldexp(mant + 1024, exp - 25);
  }
  return (h & 0x8000) ? -v : v;
}

json FloatJson(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  return v;
}


// Nests a flat list of values into the attribute's dataspace shape.
json Nest(const std::vector<json>& flat, const std::vector<hsize_t>& dims, size_t dim, size_t& pos) {
  json arr = json::array();
  for (hsize_t i = 0; i < dims[dim]; ++i) {
    if (dim + 1 == dims.size()) {
      arr.push_back(pos < flat.size() ? flat[pos] : json());
      ++pos;
    } else {
      arr.push_back(Nest(flat, dims, dim + 1, pos));
    }
  }
  return arr;
}

// Reads one attribute into JSON, or returns kUnsupported with the reason.
Result<json> AttributeJson(hid_t attr) {
  H5Id space(H5Aget_space(attr));
  H5Id type(H5Aget_type(attr));
  if (!space.valid() || !type.valid()) return FromHdf5(StatusCode::kCorrupt, "attribute dataspace/type");
  const H5S_class_t sclass = H5Sget_simple_extent_type(space.get());
  if (sclass == H5S_NULL) return json(nullptr);
  const int rank = H5Sget_simple_extent_ndims(space.get());
  std::vector<hsize_t> dims(std::max(rank, 0));
  if (rank > 0) H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  const hssize_t npoints = H5Sget_simple_extent_npoints(space.get());
  if (npoints < 0 || npoints > (1 << 24)) return UnsupportedError("attribute with " + std::to_string(npoints) + " values");
  const size_t n = static_cast<size_t>(npoints);
  H5T_class_t cls = H5Tget_class(type.get());
  std::vector<json> flat;
  flat.reserve(n);
  if (cls == H5T_ENUM) {
    H5Id base(H5Tget_super(type.get()));
    cls = H5Tget_class(base.get());
  }
  if (cls == H5T_INTEGER || cls == H5T_BITFIELD || H5Tget_class(type.get()) == H5T_ENUM) {
    const bool is_signed = H5Tget_class(type.get()) != H5T_BITFIELD && [&] {
      if (H5Tget_class(type.get()) == H5T_ENUM) {
        H5Id base(H5Tget_super(type.get()));
        return H5Tget_sign(base.get()) == H5T_SGN_2;
      }
      return H5Tget_sign(type.get()) == H5T_SGN_2;
    }();
    if (is_signed) {
      std::vector<long long> v(n);
      RETURN_IF_ERROR(CheckErr(H5Aread(attr, H5T_NATIVE_LLONG, v.data()), "read integer attribute"));
      for (auto x : v) flat.push_back(x);
    } else {
      std::vector<unsigned long long> v(n);
      RETURN_IF_ERROR(CheckErr(H5Aread(attr, H5T_NATIVE_ULLONG, v.data()), "read integer attribute"));
      for (auto x : v) flat.push_back(x);
    }
  } else if (cls == H5T_FLOAT) {
    if (H5Tget_size(type.get()) > 8) return UnsupportedError("float attribute wider than 64 bits");
    std::vector<double> v(n);
    RETURN_IF_ERROR(CheckErr(H5Aread(attr, H5T_NATIVE_DOUBLE, v.data()), "read float attribute"));
    for (auto x : v) flat.push_back(FloatJson(x));
  } else if (cls == H5T_STRING) {
    if (H5Tis_variable_str(type.get()) > 0) {
      H5Id mem(H5Tcopy(H5T_C_S1));
      H5Tset_size(mem.get(), H5T_VARIABLE);
      H5Tset_cset(mem.get(), H5Tget_cset(type.get()));
      std::vector<char*> v(n, nullptr);
      RETURN_IF_ERROR(CheckErr(H5Aread(attr, mem.get(), v.data()), "read string attribute"));
      for (char* s : v) flat.push_back(ToValidUtf8(s ? s : ""));
      H5Dvlen_reclaim(mem.get(), space.get(), H5P_DEFAULT, v.data());
    } else {
      const size_t size = H5Tget_size(type.get());
      std::vector<char> buf(size * n);
      H5Id mem(H5Tcopy(type.get()));
      RETURN_IF_ERROR(CheckErr(H5Aread(attr, mem.get(), buf.data()), "read string attribute"));
      // Imaris writes every value as an array of one-character strings: join them.
      const bool char_array = size == 1 && rank == 1;
      for (size_t i = 0; i < (char_array ? 1 : n); ++i) {
        std::string_view s(buf.data() + i * size, char_array ? n : size);
        s = s.substr(0, s.find('\0'));
        flat.push_back(ToValidUtf8(s));
      }
      if (char_array) return flat[0];
    }
  } else {
    return UnsupportedError(ClassName(cls));
  }
  if (rank == 0 || sclass == H5S_SCALAR) return flat.empty() ? json(nullptr) : flat[0];
  size_t pos = 0;
  return Nest(flat, dims, 0, pos);
}


}  // namespace

// JSON strings must be UTF-8: bytes that are not are replaced, never passed through (nlohmann
// would throw when dumping).
std::string ToValidUtf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    int n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    bool ok = n > 0 && i + n <= s.size();
    for (int k = 1; ok && k < n; ++k) ok = (static_cast<unsigned char>(s[i + k]) >> 6) == 2;
    if (ok) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

std::string Base64(std::span<const std::byte> bytes) { return EncodeBase64(bytes); }

Result<std::vector<std::byte>> FromBase64(std::string_view text) {
  ASSIGN_OR_RETURN(std::string raw, DecodeBase64(text));
  auto b = std::as_bytes(std::span(raw.data(), raw.size()));
  return std::vector<std::byte>(b.begin(), b.end());
}

Result<DType> DTypeFromHdf5(hid_t type) {
  const H5T_class_t cls = H5Tget_class(type);
  const size_t size = H5Tget_size(type);
  switch (cls) {
    case H5T_INTEGER: {
      if (size != 1 && size != 2 && size != 4 && size != 8) {
        return UnsupportedError(std::to_string(size * 8) + "-bit integer");
      }
      const bool is_signed = H5Tget_sign(type) == H5T_SGN_2;
      const size_t precision = H5Tget_precision(type);
      const int offset = H5Tget_offset(type);
      if (precision != size * 8 && (is_signed || offset != 0)) {
        return UnsupportedError(std::to_string(precision) + "-bit " + (is_signed ? "signed" : "unsigned") +
                                " integer at bit offset " + std::to_string(offset) + " in " +
                                std::to_string(size) + " bytes");
      }
      return DType::Make(is_signed ? 'i' : 'u', static_cast<uint32_t>(size), ByteOrder(type));
    }
    case H5T_BITFIELD:
      if (size != 1 && size != 2 && size != 4 && size != 8) return UnsupportedError("odd-sized bitfield");
      return DType::Make('u', static_cast<uint32_t>(size), ByteOrder(type));
    case H5T_FLOAT: {
      if (H5Tget_order(type) == H5T_ORDER_VAX) return UnsupportedError("VAX floating-point byte order");
      size_t spos, epos, esize, mpos, msize;
      H5Tget_fields(type, &spos, &epos, &esize, &mpos, &msize);
      const bool ieee = (size == 2 && spos == 15 && epos == 10 && esize == 5 && mpos == 0 && msize == 10) ||
                        (size == 4 && spos == 31 && epos == 23 && esize == 8 && mpos == 0 && msize == 23) ||
                        (size == 8 && spos == 63 && epos == 52 && esize == 11 && mpos == 0 && msize == 52);
      if (!ieee) {
        return UnsupportedError(std::to_string(size * 8) + "-bit floating point (" + std::to_string(esize) +
                                "-bit exponent, " + std::to_string(msize) + "-bit mantissa) has no numpy dtype");
      }
      return DType::Make('f', static_cast<uint32_t>(size), ByteOrder(type));
    }
    case H5T_STRING:
      if (H5Tis_variable_str(type) > 0) return UnsupportedError("variable-length string");
      return DType::Make('S', static_cast<uint32_t>(size), '|');
    case H5T_ENUM: {
      H5Id base(H5Tget_super(type));
      return DTypeFromHdf5(base.get());
    }
    case H5T_COMPOUND: {
      const int n = H5Tget_nmembers(type);
      struct Member {
        std::string name;
        size_t offset;
        H5Id type;
      };
      std::vector<Member> members;
      for (int i = 0; i < n; ++i) {
        char* name = H5Tget_member_name(type, i);
        Member m{name ? name : "", H5Tget_member_offset(type, i), H5Id(H5Tget_member_type(type, i))};
        H5free_memory(name);
        members.push_back(std::move(m));
      }
      // h5py's complex numbers: {r, i} of one float type.
      if (n == 2 && members[0].name == "r" && members[1].name == "i" &&
          H5Tget_class(members[0].type.get()) == H5T_FLOAT &&
          H5Tequal(members[0].type.get(), members[1].type.get()) > 0 && members[0].offset == 0 &&
          members[1].offset == size / 2 && H5Tget_size(members[0].type.get()) == size / 2) {
        ASSIGN_OR_RETURN(DType f, DTypeFromHdf5(members[0].type.get()));
        return DType::Make('c', static_cast<uint32_t>(size), f.byte_order);
      }
      std::sort(members.begin(), members.end(), [](const Member& a, const Member& b) { return a.offset < b.offset; });
      json fields = json::array();
      size_t pos = 0;
      int pads = 0;
      for (const Member& m : members) {
        if (m.offset < pos) return UnsupportedError("compound with overlapping members");
        if (m.offset > pos) fields.push_back({"_pad" + std::to_string(pads++), "|V" + std::to_string(m.offset - pos)});
        hid_t mt = m.type.get();
        json entry = json::array({m.name});
        if (H5Tget_class(mt) == H5T_ARRAY) {
          H5Id base(H5Tget_super(mt));
          ASSIGN_OR_RETURN(DType bd, DTypeFromHdf5(base.get()));
          const int ar = H5Tget_array_ndims(mt);
          std::vector<hsize_t> adims(std::max(ar, 0));
          H5Tget_array_dims2(mt, adims.data());
          entry.push_back(bd.ToV2());
          entry.push_back(adims);
        } else {
          auto md = DTypeFromHdf5(mt);
          if (!md.ok()) return UnsupportedError("compound member '" + m.name + "': " + md.status().message());
          entry.push_back(md->ToV2());
        }
        fields.push_back(std::move(entry));
        pos = m.offset + H5Tget_size(mt);
      }
      if (pos < size) fields.push_back({"_pad" + std::to_string(pads++), "|V" + std::to_string(size - pos)});
      DType d = DType::Make('V', static_cast<uint32_t>(size), '|');
      d.fields = std::move(fields);
      return d;
    }
    default:
      return UnsupportedError(ClassName(cls));
  }
}

json FillValueJson(const DType& dtype, std::span<const std::byte> bytes) {
  if (bytes.size() < dtype.size) return nullptr;
  switch (dtype.kind) {
    case 'b':
    case 'u':
      return LoadUnsigned(bytes.first(dtype.size), dtype.byte_order);
    case 'i': {
      uint64_t u = LoadUnsigned(bytes.first(dtype.size), dtype.byte_order);
      const int shift = 64 - 8 * static_cast<int>(dtype.size);
      return shift == 0 ? static_cast<int64_t>(u) : (static_cast<int64_t>(u << shift) >> shift);
    }
    case 'f': {
      uint64_t u = LoadUnsigned(bytes.first(dtype.size), dtype.byte_order);
      if (dtype.size == 2) return FloatJson(HalfToDouble(static_cast<uint16_t>(u)));
      if (dtype.size == 4) return FloatJson(std::bit_cast<float>(static_cast<uint32_t>(u)));
      return FloatJson(std::bit_cast<double>(u));
    }
    case 'c': {
      const uint32_t half = dtype.size / 2;
      DType f = DType::Make('f', half, dtype.byte_order);
      return json::array({FillValueJson(f, bytes.first(half)), FillValueJson(f, bytes.subspan(half, half))});
    }
    default:
      return Base64(bytes.first(dtype.size));
  }
}

json ReadAttributes(hid_t obj, json& skipped) {
  std::vector<std::string> names;
  hsize_t idx = 0;
  H5Aiterate2(
      obj, H5_INDEX_NAME, H5_ITER_NATIVE, &idx,
      [](hid_t, const char* name, const H5A_info_t*, void* data) -> herr_t {
        static_cast<std::vector<std::string>*>(data)->push_back(name);
        return 0;
      },
      &names);
  H5Eclear2(H5E_DEFAULT);
  json out = json::object();
  for (const std::string& raw_name : names) {
    if (raw_name == "DIMENSION_LIST" || raw_name == "REFERENCE_LIST") continue;
    const std::string name = ToValidUtf8(raw_name);
    H5Id attr(H5Aopen(obj, raw_name.c_str(), H5P_DEFAULT));
    if (!attr.valid()) {
      skipped[name] = FromHdf5(StatusCode::kCorrupt, "open").message();
      continue;
    }
    auto value = AttributeJson(attr.get());
    if (value.ok()) {
      out[name] = *value;
    } else {
      skipped[name] = value.status().message();
      H5Eclear2(H5E_DEFAULT);
    }
  }
  return out;
}

Result<std::string> ReadStringAttribute(hid_t obj, const char* name) {
  if (H5Aexists(obj, name) <= 0) {
    H5Eclear2(H5E_DEFAULT);
    return NotFoundError(std::string("no attribute ") + name);
  }
  H5Id attr(H5Aopen(obj, name, H5P_DEFAULT));
  if (!attr.valid()) return FromHdf5(StatusCode::kCorrupt, std::string("open attribute ") + name);
  ASSIGN_OR_RETURN(json v, AttributeJson(attr.get()));
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number()) return v.dump();
  if (v.is_array() && v.size() == 1 && v[0].is_string()) return v[0].get<std::string>();
  if (v.is_array() && v.size() == 1 && v[0].is_number()) return v[0].dump();
  return InvalidArgumentError(std::string("attribute ") + name + " is not text");
}

Result<std::vector<Hdf5Filter>> ReadFilters(hid_t dcpl) {
  std::vector<Hdf5Filter> out;
  const int n = H5Pget_nfilters(dcpl);
  if (n < 0) return FromHdf5(StatusCode::kCorrupt, "read filter pipeline");
  for (int i = 0; i < n; ++i) {
    Hdf5Filter f;
    size_t nvalues = 64;
    f.cd_values.resize(nvalues);
    char name[257] = {};
    unsigned config = 0;
    H5Z_filter_t id = H5Pget_filter2(dcpl, static_cast<unsigned>(i), &f.flags, &nvalues, f.cd_values.data(),
                                     sizeof name - 1, name, &config);
    if (id < 0) return FromHdf5(StatusCode::kCorrupt, "read filter " + std::to_string(i));
    f.id = static_cast<int>(id);
    f.cd_values.resize(std::min<size_t>(nvalues, 64));
    f.name = ToValidUtf8(name);
    out.push_back(std::move(f));
  }
  return out;
}

Result<std::vector<std::byte>> EncodeType(hid_t type) {
  size_t encoded_size = 0;
  H5Tencode(type, nullptr, &encoded_size);
  std::vector<std::byte> encoded(encoded_size);
  if (encoded_size == 0 || H5Tencode(type, encoded.data(), &encoded_size) < 0) {
    return FromHdf5(StatusCode::kInternal, "encode datatype");
  }
  return encoded;
}

Status CheckFiltersAvailable(const std::vector<Hdf5Filter>& filters) {
  RegisterLzfFilter();
  for (const Hdf5Filter& f : filters) {
    if (H5Zfilter_avail(f.id) <= 0) {
      H5Eclear2(H5E_DEFAULT);
      return UnsupportedError("HDF5 filter " + std::to_string(f.id) + " (\"" + f.name +
                              "\") is not available to the HDF5 library (no plugin loaded)");
    }
  }
  return OkStatus();
}

Result<ChunkEncoding> EncodingFromFilters(const std::vector<Hdf5Filter>& filters, hid_t type, const DType& dtype,
                                          std::string* note, hid_t read_type) {
  ChunkEncoding enc;
  std::vector<json> codecs;
  std::vector<std::string> foreign;
  json described = json::array();
  for (const Hdf5Filter& f : filters) {
    const auto& cd = f.cd_values;
    auto cd_or = [&](size_t i, unsigned dflt) { return i < cd.size() ? cd[i] : dflt; };
    json codec;
    bool native = true;
    switch (f.id) {
      case H5Z_FILTER_DEFLATE: codec = {{"id", "zlib"}, {"level", cd_or(0, 6)}}; break;
      case H5Z_FILTER_SHUFFLE: codec = {{"id", "shuffle"}, {"elementsize", cd_or(0, dtype.size)}}; break;
      case 32001: {
        static const char* kNames[] = {"blosclz", "lz4", "lz4hc", "snappy", "zlib", "zstd"};
        const unsigned c = cd_or(6, 0);
        codec = {{"id", "blosc"}, {"cname", c < 6 ? kNames[c] : "blosclz"}, {"clevel", cd_or(4, 5)},
                 {"shuffle", cd_or(5, 1)}, {"blocksize", 0}};
        break;
      }
      case 32015: codec = {{"id", "zstd"}, {"level", cd_or(0, 0)}}; break;
      case H5Z_FILTER_FLETCHER32: codec = {{"id", "fletcher32"}}; native = false; break;
      case H5Z_FILTER_SZIP: codec = {{"id", "szip"}, {"mask", cd_or(0, 0)}, {"pixels_per_block", cd_or(1, 0)}}; native = false; break;
      case H5Z_FILTER_NBIT: codec = {{"id", "hdf5_nbit"}}; native = false; break;
      case H5Z_FILTER_SCALEOFFSET: codec = {{"id", "hdf5_scaleoffset"}, {"scale_type", cd_or(0, 0)}, {"scale_factor", cd_or(1, 0)}}; native = false; break;
      case 32000: codec = {{"id", "imagecodecs_lzf"}}; native = false; break;
      case 32004: codec = {{"id", "imagecodecs_lz4h5"}}; native = false; break;
      case 32008: codec = {{"id", "bitshuffle"}, {"compression", cd_or(4, 0)}}; native = false; break;
      default: codec = {{"id", "hdf5_filter_" + std::to_string(f.id)}}; native = false; break;
    }
    if (!native) {
      enc.native = false;
      foreign.push_back(codec["id"].get<std::string>() + " (HDF5 filter " + std::to_string(f.id) +
                        (f.name.empty() ? "" : ", \"" + f.name + "\"") + ")");
    }
    codecs.push_back(std::move(codec));
    described.push_back({{"id", f.id}, {"flags", f.flags}, {"cd_values", f.cd_values}, {"name", f.name}});
  }
  if (!codecs.empty()) {
    enc.compressor = codecs.back();
    codecs.pop_back();
    if (!codecs.empty()) enc.filters = codecs;
  }
  enc.decoder = "hdf5";
  ASSIGN_OR_RETURN(const std::vector<std::byte> encoded, EncodeType(type));
  enc.params = {{"filters", described}, {"type", Base64(encoded)}, {"dtype", dtype.ToV2()}};
  std::string converted;
  if (read_type >= 0) {
    ASSIGN_OR_RETURN(const std::vector<std::byte> container, EncodeType(read_type));
    enc.params["read_type"] = Base64(container);
    enc.native = false;
    converted = std::to_string(H5Tget_precision(type)) + "-bit integers at bit offset " +
                std::to_string(H5Tget_offset(type)) + " are converted to " + dtype.ToV2().dump() +
                " through the HDF5 library";
  }
  if (note && !foreign.empty()) {
    *note = "stored with codecs that standard Zarr v2 readers lack, decoded through the HDF5 library: ";
    for (size_t i = 0; i < foreign.size(); ++i) *note += (i ? ", " : "") + foreign[i];
  }
  if (note && !converted.empty()) *note += (note->empty() ? "" : "; ") + converted;
  return enc;
}

}  // namespace refzarr::internal
