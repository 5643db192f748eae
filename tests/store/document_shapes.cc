#include "tests/store/document_shapes.h"

#include <algorithm>
#include <regex>
#include <set>

namespace refzarr::testing {
namespace {

using nlohmann::json;

// Collects problems with a common prefix.
class Report {
 public:
  explicit Report(Problems& out) : out_(out) {}
  void Add(const std::string& where, const std::string& what) {
    out_.push_back(where.empty() ? what : where + ": " + what);
  }
  // Adds a problem unless `ok`; returns `ok`.
  bool Check(bool ok, const std::string& where, const std::string& what) {
    if (!ok) Add(where, what);
    return ok;
  }

 private:
  Problems& out_;
};

bool IsUint(const json& v) {
  return v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0);
}

bool IsIntList(const json& v, bool positive) {
  if (!v.is_array()) return false;
  for (const json& e : v) {
    if (!IsUint(e) || (positive && e.get<uint64_t>() == 0)) return false;
  }
  return true;
}

void OnlyKeys(const json& doc, std::initializer_list<const char*> allowed, Report& r,
              const std::string& where) {
  for (auto it = doc.begin(); it != doc.end(); ++it) {
    if (std::none_of(allowed.begin(), allowed.end(),
                     [&](const char* k) { return it.key() == k; })) {
      r.Add(where, "unknown member \"" + it.key() + "\"");
    }
  }
}

bool IsCodecObject(const json& c) {
  return c.is_object() && c.contains("id") && c["id"].is_string() &&
         !c["id"].get<std::string>().empty();
}

// ---- Zarr v2 ----

// The kind letter and size of a simple numpy typestr, or kind 0 when it is not one.
std::pair<char, int> Typestr(const json& dtype) {
  static const std::regex kTypestr(R"(^[<>|]([biufcmMOSUV])(\d*)$)");
  std::smatch m;
  if (!dtype.is_string()) return {0, 0};
  std::string s = dtype.get<std::string>();
  if (!std::regex_match(s, m, kTypestr)) return {0, 0};
  char kind = m[1].str()[0];
  if (m[2].str().empty() && kind != 'O') return {0, 0};
  return {kind, m[2].str().empty() ? 0 : std::stoi(m[2].str())};
}

bool IsV2Dtype(const json& dtype) {
  if (dtype.is_string()) return Typestr(dtype).first != 0;
  if (!dtype.is_array() || dtype.empty()) return false;
  for (const json& field : dtype) {  // structured: [[name, dtype(, shape)], ...]
    if (!field.is_array() || field.size() < 2 || field.size() > 3 || !field[0].is_string()) {
      return false;
    }
    if (!IsV2Dtype(field[1])) return false;
    if (field.size() == 3 && !IsIntList(field[2], true)) return false;
  }
  return true;
}

bool IsFloatFill(const json& v) {
  if (v.is_number()) return true;
  if (!v.is_string()) return false;
  const std::string s = v.get<std::string>();
  return s == "NaN" || s == "Infinity" || s == "-Infinity";
}

std::string FillProblemV2(const json& fill, const json& dtype) {
  if (fill.is_null()) return "";
  if (!dtype.is_string()) {
    return fill.is_string() || (fill.is_number() && fill.get<double>() == 0)
               ? ""
               : "fill_value of a structured dtype must be base64 text";
  }
  switch (Typestr(dtype).first) {
    case 'i':
    case 'u':
      return fill.is_number_integer() ? "" : "fill_value of an integer dtype must be an integer";
    case 'f':
      return IsFloatFill(fill) ? ""
                               : "fill_value of a float dtype must be a number or NaN/Infinity";
    case 'b':
      return fill.is_boolean() || fill.is_number_integer() ? "" : "fill_value of a bool dtype";
    case 'c':
      if (fill.is_array() && fill.size() == 2 && IsFloatFill(fill[0]) && IsFloatFill(fill[1]))
        return "";
      return IsFloatFill(fill) ? "" : "fill_value of a complex dtype must be [real, imag]";
    case 'O':
      return fill.is_string() ? "" : "fill_value of an object dtype must be null or text";
    default:  // S, U, V, m, M: zarr-python 2 writes base64 text (0 stands for zeros)
      return fill.is_string() || (fill.is_number() && fill.get<double>() == 0)
                 ? ""
                 : "fill_value of a bytes dtype must be base64 text";
  }
}

// ---- Zarr v3 ----

// Bytes per element of a v3 data type, 0 for "string", -1 when it is not a core data type.
int V3DataTypeSize(const json& t) {
  if (!t.is_string()) return -1;
  const std::string s = t.get<std::string>();
  if (s == "bool" || s == "int8" || s == "uint8") return 1;
  if (s == "int16" || s == "uint16" || s == "float16") return 2;
  if (s == "int32" || s == "uint32" || s == "float32") return 4;
  if (s == "int64" || s == "uint64" || s == "float64" || s == "complex64") return 8;
  if (s == "complex128") return 16;
  if (s == "string") return 0;  // zarr-python 3's variable-length strings (an extension)
  static const std::regex kRaw(R"(^r([1-9]\d*)$)");
  std::smatch m;
  if (std::regex_match(s, m, kRaw)) {
    int bits = std::stoi(m[1].str());
    return bits % 8 == 0 ? bits / 8 : -1;
  }
  return -1;
}

bool IsV3FloatFill(const json& v) {
  if (IsFloatFill(v)) return true;
  static const std::regex kHex(R"(^0x[0-9a-fA-F]+$)");
  return v.is_string() && std::regex_match(v.get<std::string>(), kHex);
}

std::string FillProblemV3(const json& fill, const std::string& type, int size) {
  if (type == "bool") return fill.is_boolean() ? "" : "fill_value of bool must be true/false";
  if (type.starts_with("int") || type.starts_with("uint")) {
    if (!fill.is_number_integer()) return "fill_value of " + type + " must be an integer";
    if (type.starts_with("uint") && !IsUint(fill)) return "fill_value of " + type + " is negative";
    return "";
  }
  if (type.starts_with("float")) {
    return IsV3FloatFill(fill)
               ? ""
               : "fill_value of " + type + " must be a number, NaN, Infinity or hex";
  }
  if (type.starts_with("complex")) {
    return fill.is_array() && fill.size() == 2 && IsV3FloatFill(fill[0]) && IsV3FloatFill(fill[1])
               ? ""
               : "fill_value of " + type + " must be [real, imag]";
  }
  if (type == "string") return fill.is_string() ? "" : "fill_value of string must be text";
  // r<N>: one integer 0..255 per byte.
  if (!fill.is_array() || static_cast<int>(fill.size()) != size) {
    return "fill_value of " + type + " must be a list of " + std::to_string(size) + " byte values";
  }
  for (const json& b : fill) {
    if (!IsUint(b) || b.get<uint64_t>() > 255) return "fill_value of " + type + " holds a non-byte";
  }
  return "";
}

enum class CodecKind { kArrayToArray, kArrayToBytes, kBytesToBytes };

CodecKind KindOf(const std::string& name) {
  static const std::set<std::string> kArrayToArray = {
      "transpose",          "numcodecs.delta",  "numcodecs.fixedscaleoffset", "numcodecs.quantize",
      "numcodecs.bitround", "numcodecs.astype", "numcodecs.packbits"};
  if (kArrayToArray.count(name)) return CodecKind::kArrayToArray;
  if (name == "bytes" || name == "vlen-utf8" || name == "vlen-bytes" ||
      name == "sharding_indexed") {
    return CodecKind::kArrayToBytes;
  }
  return CodecKind::kBytesToBytes;  // the core compressors and every other numcodecs wrapper
}

void CheckCoreCodecConfig(const std::string& name, const json& conf, const std::string& type,
                          int elem_size, size_t rank, Report& r, const std::string& where) {
  auto has_int = [&](const char* key, int64_t lo, int64_t hi, bool required) {
    if (!conf.contains(key)) {
      if (required) r.Add(where, std::string("\"") + key + "\" is required");
      return;
    }
    const json& v = conf[key];
    r.Check(v.is_number_integer() && v.get<int64_t>() >= lo && v.get<int64_t>() <= hi, where,
            std::string("\"") + key + "\" must be an integer in " + std::to_string(lo) + ".." +
                std::to_string(hi));
  };
  if (name == "bytes") {
    OnlyKeys(conf, {"endian"}, r, where);
    if (conf.contains("endian")) {
      r.Check(conf["endian"] == "little" || conf["endian"] == "big", where,
              "endian must be \"little\" or \"big\"");
    } else {
      // Numbers wider than a byte have a byte order; raw bytes (r<N>) and bool do not.
      bool ordered = elem_size > 1 && (type.starts_with("int") || type.starts_with("uint") ||
                                       type.starts_with("float") || type.starts_with("complex"));
      r.Check(!ordered, where, "endian is required for " + type);
    }
  } else if (name == "gzip") {
    OnlyKeys(conf, {"level"}, r, where);
    has_int("level", 0, 9, true);
  } else if (name == "zstd") {
    OnlyKeys(conf, {"level", "checksum"}, r, where);
    has_int("level", -131072, 22, true);
    r.Check(conf.contains("checksum") && conf["checksum"].is_boolean(), where,
            "\"checksum\" must be true/false");
  } else if (name == "blosc") {
    OnlyKeys(conf, {"cname", "clevel", "shuffle", "typesize", "blocksize"}, r, where);
    static const std::set<std::string> kCnames = {"blosclz", "lz4",  "lz4hc",
                                                  "snappy",  "zlib", "zstd"};
    r.Check(conf.contains("cname") && conf["cname"].is_string() &&
                kCnames.count(conf["cname"].get<std::string>()),
            where, "\"cname\" must be a blosc compressor name");
    has_int("clevel", 0, 9, true);
    r.Check(conf.contains("shuffle") &&
                (conf["shuffle"] == "noshuffle" || conf["shuffle"] == "shuffle" ||
                 conf["shuffle"] == "bitshuffle"),
            where, "\"shuffle\" must be noshuffle, shuffle or bitshuffle");
    has_int("typesize", 1, 255, conf.value("shuffle", "") != "noshuffle");
    has_int("blocksize", 0, INT64_MAX, true);
  } else if (name == "transpose") {
    OnlyKeys(conf, {"order"}, r, where);
    std::vector<uint64_t> order;
    if (conf.contains("order") && IsIntList(conf["order"], false)) {
      order = conf["order"].get<std::vector<uint64_t>>();
    }
    std::vector<uint64_t> sorted = order;
    std::sort(sorted.begin(), sorted.end());
    bool permutation = sorted.size() == rank;
    for (size_t i = 0; permutation && i < sorted.size(); ++i) permutation = sorted[i] == i;
    r.Check(
        permutation, where,
        "\"order\" must be a permutation of the array's " + std::to_string(rank) + " dimensions");
  } else if (name == "crc32c") {
    r.Check(conf.empty(), where, "crc32c takes no configuration");
  }
}

void CheckV3Codecs(const json& codecs, const std::string& type, int elem_size, size_t rank,
                   V3Codecs allowed, Report& r) {
  if (!r.Check(codecs.is_array() && !codecs.empty(), "codecs", "must be a non-empty list")) return;
  int array_to_bytes = 0;
  for (size_t i = 0; i < codecs.size(); ++i) {
    const json& c = codecs[i];
    const std::string where = "codecs[" + std::to_string(i) + "]";
    if (!r.Check(c.is_object() && c.contains("name") && c["name"].is_string(), where,
                 "must be an object with a string \"name\"")) {
      continue;
    }
    OnlyKeys(c, {"name", "configuration"}, r, where);
    const std::string name = c["name"].get<std::string>();
    const json conf = c.contains("configuration") ? c["configuration"] : json::object();
    r.Check(conf.is_object(), where, "\"configuration\" must be an object");
    if (allowed == V3Codecs::kCompat) {
      static const std::set<std::string> kCompat = {"bytes", "gzip", "blosc", "zstd", "crc32c"};
      bool ok = kCompat.count(name) || (name == "vlen-utf8" && type == "string");
      r.Check(ok, where, "\"" + name + "\" is not a codec every Zarr v3 client implements");
    }
    if (name == "vlen-utf8") r.Check(type == "string", where, "vlen-utf8 needs data_type string");
    if (type == "string") r.Check(name == "vlen-utf8", where, "a string array needs vlen-utf8");
    switch (KindOf(name)) {
      case CodecKind::kArrayToArray:
        r.Check(array_to_bytes == 0, where, "array->array codec \"" + name + "\" after bytes");
        break;
      case CodecKind::kArrayToBytes:
        ++array_to_bytes;
        break;
      case CodecKind::kBytesToBytes:
        r.Check(array_to_bytes == 1, where, "bytes->bytes codec \"" + name + "\" before bytes");
        break;
    }
    if (conf.is_object()) CheckCoreCodecConfig(name, conf, type, elem_size, rank, r, where);
  }
  r.Check(array_to_bytes == 1, "codecs",
          "must hold exactly one array->bytes codec, not " + std::to_string(array_to_bytes));
}

}  // namespace

Problems ZarrayProblems(const json& doc) {
  Problems out;
  Report r(out);
  if (!r.Check(doc.is_object(), "", "not an object")) return out;
  OnlyKeys(doc,
           {"zarr_format", "shape", "chunks", "dtype", "compressor", "fill_value", "order",
            "filters", "dimension_separator"},
           r, "");
  r.Check(doc.value("zarr_format", json()) == 2, "zarr_format", "must be 2");
  const json shape = doc.value("shape", json());
  const json chunks = doc.value("chunks", json());
  r.Check(IsIntList(shape, false), "shape", "must be a list of non-negative integers");
  r.Check(IsIntList(chunks, true), "chunks", "must be a list of positive integers");
  r.Check(!shape.is_array() || !chunks.is_array() || shape.size() == chunks.size(), "chunks",
          "rank differs from shape's");
  const json dtype = doc.value("dtype", json());
  r.Check(IsV2Dtype(dtype), "dtype", "not a numpy typestr or structured dtype: " + dtype.dump());
  if (r.Check(doc.contains("compressor"), "compressor", "missing")) {
    const json& c = doc["compressor"];
    r.Check(c.is_null() || IsCodecObject(c), "compressor",
            "must be null or an object with an \"id\": " + c.dump());
  }
  if (r.Check(doc.contains("filters"), "filters", "missing")) {
    const json& f = doc["filters"];
    if (f.is_array()) {
      r.Check(!f.empty(), "filters", "an empty list (null says none)");
      for (size_t i = 0; i < f.size(); ++i) {
        r.Check(IsCodecObject(f[i]), "filters[" + std::to_string(i) + "]",
                "must be an object with an \"id\": " + f[i].dump());
      }
    } else {
      r.Check(f.is_null(), "filters", "must be null or a list: " + f.dump());
    }
  }
  if (r.Check(doc.contains("fill_value"), "fill_value", "missing")) {
    std::string p = FillProblemV2(doc["fill_value"], dtype);
    r.Check(p.empty(), "fill_value", p + ": " + doc["fill_value"].dump());
  }
  r.Check(doc.value("order", json()) == "C" || doc.value("order", json()) == "F", "order",
          "must be \"C\" or \"F\"");
  if (doc.contains("dimension_separator")) {
    r.Check(doc["dimension_separator"] == "/" || doc["dimension_separator"] == ".",
            "dimension_separator", "must be \"/\" or \".\"");
  }
  return out;
}

Problems ZattrsProblems(const json& doc) {
  Problems out;
  Report(out).Check(doc.is_object(), "", "attributes must be an object");
  return out;
}

Problems ZgroupProblems(const json& doc) {
  Problems out;
  Report(out).Check(doc == json({{"zarr_format", 2}}), "", "must be {\"zarr_format\": 2}");
  return out;
}

Problems ZmetadataProblems(const json& doc) {
  Problems out;
  Report r(out);
  if (!r.Check(doc.is_object(), "", "not an object")) return out;
  OnlyKeys(doc, {"zarr_consolidated_format", "metadata"}, r, "");
  r.Check(doc.value("zarr_consolidated_format", json()) == 1, "zarr_consolidated_format",
          "must be 1");
  const json meta = doc.value("metadata", json());
  if (!r.Check(meta.is_object(), "metadata", "must be an object")) return out;
  for (auto it = meta.begin(); it != meta.end(); ++it) {
    const std::string& key = it.key();
    size_t slash = key.rfind('/');
    std::string name = slash == std::string::npos ? key : key.substr(slash + 1);
    r.Check(key.empty() || key[0] != '/', key, "keys are relative to the group");
    if (name == ".zmetadata") {
      r.Add(key, "a consolidated document does not hold another");
      continue;
    }
    for (const std::string& p :
         DocumentProblems(name, it.value(), V3Codecs::kAny, "metadata/" + key)) {
      out.push_back(p);
    }
  }
  return out;
}

Problems ArrayV3Problems(const json& doc, V3Codecs codecs) {
  Problems out;
  Report r(out);
  if (!r.Check(doc.is_object(), "", "not an object")) return out;
  OnlyKeys(doc,
           {"zarr_format", "node_type", "shape", "data_type", "chunk_grid", "chunk_key_encoding",
            "fill_value", "codecs", "attributes", "dimension_names", "storage_transformers"},
           r, "");
  r.Check(doc.value("zarr_format", json()) == 3, "zarr_format", "must be 3");
  r.Check(doc.value("node_type", json()) == "array", "node_type", "must be \"array\"");
  const json shape = doc.value("shape", json());
  r.Check(IsIntList(shape, false), "shape", "must be a list of non-negative integers");
  const size_t rank = shape.is_array() ? shape.size() : 0;
  const json type = doc.value("data_type", json());
  const int size = V3DataTypeSize(type);
  r.Check(size >= 0, "data_type", "not a core data type: " + type.dump());
  const std::string type_name = type.is_string() ? type.get<std::string>() : "";
  const json grid = doc.value("chunk_grid", json());
  if (r.Check(grid.is_object() && grid.value("name", json()) == "regular" &&
                  grid.contains("configuration") && grid["configuration"].is_object(),
              "chunk_grid", "must be {\"name\": \"regular\", \"configuration\": {...}}")) {
    OnlyKeys(grid, {"name", "configuration"}, r, "chunk_grid");
    const json chunk_shape = grid["configuration"].value("chunk_shape", json());
    r.Check(IsIntList(chunk_shape, true) && chunk_shape.size() == rank, "chunk_grid",
            "chunk_shape must be " + std::to_string(rank) + " positive integers");
  }
  const json keys = doc.value("chunk_key_encoding", json());
  if (r.Check(keys.is_object() &&
                  (keys.value("name", json()) == "default" || keys.value("name", json()) == "v2"),
              "chunk_key_encoding", "must name \"default\" or \"v2\"")) {
    OnlyKeys(keys, {"name", "configuration"}, r, "chunk_key_encoding");
    if (keys.contains("configuration")) {
      const json& c = keys["configuration"];
      r.Check(c.is_object() &&
                  (!c.contains("separator") || c["separator"] == "/" || c["separator"] == "."),
              "chunk_key_encoding", "separator must be \"/\" or \".\"");
    }
  }
  if (r.Check(doc.contains("fill_value"), "fill_value", "missing") && size >= 0) {
    std::string p = FillProblemV3(doc["fill_value"], type_name, size);
    r.Check(p.empty(), "fill_value", p + ": " + doc["fill_value"].dump());
  }
  if (r.Check(doc.contains("codecs"), "codecs", "missing")) {
    CheckV3Codecs(doc["codecs"], type_name, size, rank, codecs, r);
  }
  if (doc.contains("attributes"))
    r.Check(doc["attributes"].is_object(), "attributes", "must be an object");
  if (doc.contains("dimension_names")) {
    const json& d = doc["dimension_names"];
    bool ok =
        d.is_array() && d.size() == rank &&
        std::all_of(d.begin(), d.end(), [](const json& n) { return n.is_string() || n.is_null(); });
    r.Check(ok, "dimension_names", "must be " + std::to_string(rank) + " names or nulls");
  }
  if (doc.contains("storage_transformers")) {
    r.Check(doc["storage_transformers"].is_array(), "storage_transformers", "must be a list");
  }
  return out;
}

Problems GroupV3Problems(const json& doc) {
  Problems out;
  Report r(out);
  if (!r.Check(doc.is_object(), "", "not an object")) return out;
  OnlyKeys(doc, {"zarr_format", "node_type", "attributes"}, r, "");
  r.Check(doc.value("zarr_format", json()) == 3, "zarr_format", "must be 3");
  r.Check(doc.value("node_type", json()) == "group", "node_type", "must be \"group\"");
  if (doc.contains("attributes"))
    r.Check(doc["attributes"].is_object(), "attributes", "must be an object");
  return out;
}

Problems ZarrJsonProblems(const json& doc, V3Codecs codecs) {
  if (doc.is_object() && doc.value("node_type", json()) == "group") return GroupV3Problems(doc);
  return ArrayV3Problems(doc, codecs);
}

Problems KerchunkProblems(const json& doc) {
  Problems out;
  Report r(out);
  if (!r.Check(doc.is_object(), "", "not an object")) return out;
  OnlyKeys(doc, {"version", "refs", "templates", "gen"}, r, "");
  r.Check(doc.value("version", json()) == 1, "version", "must be 1");
  const json refs = doc.value("refs", json());
  if (!r.Check(refs.is_object(), "refs", "must be an object")) return out;
  for (auto it = refs.begin(); it != refs.end(); ++it) {
    const std::string& key = it.key();
    const json& v = it.value();
    if (v.is_array()) {
      bool ok = (v.size() == 1 || v.size() == 3) && v[0].is_string() &&
                (v.size() == 1 || (IsUint(v[1]) && IsUint(v[2])));
      r.Check(ok, key, "a reference must be [url] or [url, offset, length]: " + v.dump());
      continue;
    }
    if (!r.Check(v.is_string(), key, "a value must be text or a reference")) continue;
    size_t slash = key.rfind('/');
    std::string name = slash == std::string::npos ? key : key.substr(slash + 1);
    if (name == ".zarray" || name == ".zattrs" || name == ".zgroup" || name == ".zmetadata") {
      json parsed = json::parse(v.get<std::string>(), nullptr, false);
      if (!r.Check(!parsed.is_discarded(), key, "not JSON text")) continue;
      for (const std::string& p : DocumentProblems(name, parsed, V3Codecs::kAny, key)) {
        out.push_back(p);
      }
    }
  }
  return out;
}

Problems DocumentProblems(std::string_view name, const json& doc, V3Codecs codecs,
                          const std::string& where) {
  Problems found;
  if (name == ".zarray") {
    found = ZarrayProblems(doc);
  } else if (name == ".zattrs") {
    found = ZattrsProblems(doc);
  } else if (name == ".zgroup") {
    found = ZgroupProblems(doc);
  } else if (name == ".zmetadata") {
    found = ZmetadataProblems(doc);
  } else if (name == "zarr.json") {
    found = ZarrJsonProblems(doc, codecs);
  } else {
    found = {"not a Zarr metadata name"};
  }
  for (std::string& p : found) p = where + ": " + p;
  return found;
}

}  // namespace refzarr::testing
