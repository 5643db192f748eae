#include "store/kerchunk_import.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <map>
#include <optional>
#include <set>

#include <nlohmann/json.hpp>

#include "formats/core/base64.h"
#include "formats/core/byte_source.h"
#include "store/ref_store.h"

namespace refzarr {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

Status BadKey(std::string_view key, const std::string& why) {
  return InvalidArgumentError("key '" + std::string(key) + "': " + why);
}

// A URL as messages may show it: without user info and query (which may hold a password, a
// token or a signature).
std::string ShownUrl(std::string_view url) {
  std::string s(url.substr(0, url.find_first_of("?#")));
  const size_t auth = s.find("://");
  if (auth != std::string::npos) {
    const size_t at = s.find('@', auth + 3), slash = s.find('/', auth + 3);
    if (at != std::string::npos && (slash == std::string::npos || at < slash)) {
      s.erase(auth + 3, at + 1 - (auth + 3));
    }
  }
  return s;
}

bool HasControl(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) {
    return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
  });
}

// "scheme://authority/path?query" with scheme and authority lower-cased; nullopt (and why) for
// what could reach another place than it says: user info, dot segments (plain or escaped),
// backslashes, control characters, an empty host.
Result<std::string> NormaliseUrl(std::string_view url) {
  const size_t sep = url.find("://");
  if (sep == std::string_view::npos) return InvalidArgumentError("not a URL");
  if (HasControl(url) || url.find('\\') != std::string_view::npos) {
    return InvalidArgumentError("control characters or backslashes");
  }
  std::string scheme(url.substr(0, sep));
  std::transform(scheme.begin(), scheme.end(), scheme.begin(), ::tolower);
  std::string_view rest = url.substr(sep + 3);
  const size_t end_auth = std::min(rest.find_first_of("/?#"), rest.size());
  std::string authority(rest.substr(0, end_auth));
  if (authority.find('@') != std::string::npos) {
    return InvalidArgumentError("user info in the URL (credentials do not belong in references)");
  }
  if (authority.empty()) return InvalidArgumentError("no host");
  std::transform(authority.begin(), authority.end(), authority.begin(), ::tolower);
  std::string_view tail = rest.substr(end_auth);
  std::string_view path = tail.substr(0, std::min(tail.find_first_of("?#"), tail.size()));
  for (size_t pos = 0; pos <= path.size();) {
    size_t next = std::min(path.find('/', pos), path.size());
    const std::string segment = PercentDecode(path.substr(pos, next - pos));
    if (segment == "." || segment == ".." || segment.find('/') != std::string::npos ||
        segment.find('\\') != std::string::npos) {
      return InvalidArgumentError("dot segments or escaped separators in the path");
    }
    pos = next + 1;
  }
  return scheme + "://" + authority + std::string(tail);
}

bool UnderRoot(const std::string& path, std::string root) {
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  if (root == "/") return true;
  return path == root || (path.size() > root.size() && path.compare(0, root.size(), root) == 0 &&
                          path[root.size()] == '/');
}

bool UnderPrefix(const std::string& url, const std::string& prefix) {
  if (url.compare(0, prefix.size(), prefix) != 0) return false;
  return url.size() == prefix.size() || prefix.back() == '/' || url[prefix.size()] == '/';
}

// The allow-list, resolved once.
class Policy {
 public:
  static Result<Policy> Make(const ImportPolicy& p) {
    Policy out;
    out.base_ = p.base;
    for (const fs::path& r : p.roots) {
      std::error_code ec;
      fs::path c = fs::weakly_canonical(fs::absolute(r, ec), ec);
      if (ec) return InvalidArgumentError("root " + r.string() + ": " + ec.message());
      out.roots_.push_back(c.string());
    }
    for (const std::string& u : p.url_prefixes) {
      auto n = NormaliseUrl(u);
      if (!n.ok()) return InvalidArgumentError("URL prefix " + ShownUrl(u) + ": " + n.status().message());
      const std::string scheme(UriScheme(*n));
      if (scheme != "http" && scheme != "https" && scheme != "s3") {
        return InvalidArgumentError("URL prefix " + ShownUrl(u) + ": not http://, https:// or s3://");
      }
      out.prefixes_.push_back(*n);
    }
    return out;
  }

  // The source URI a reference's URL names, if the policy allows it.
  Result<std::string> Resolve(std::string_view key, const std::string& url) const {
    if (url.empty()) return BadKey(key, "empty URL");
    std::string scheme(UriScheme(url));
    std::transform(scheme.begin(), scheme.end(), scheme.begin(), ::tolower);
    if (scheme.empty() || scheme == "file") {
      // fsspec reads file:// URLs and plain paths literally (no percent-decoding).
      std::string p = scheme.empty() ? url : url.substr(url.find("://") + 3);
      if (HasControl(p)) return BadKey(key, "control characters in the path");
      fs::path path(p);
      if (path.is_relative()) path = base_ / path;
      std::error_code ec;
      fs::path resolved = fs::weakly_canonical(path, ec);
      if (ec) return BadKey(key, "reference " + p + ": " + ec.message());
      for (const std::string& root : roots_) {
        if (UnderRoot(resolved.string(), root)) return FileUri(resolved);
      }
      std::string allowed;
      for (const std::string& r : roots_) allowed += (allowed.empty() ? "" : ", ") + r;
      return BadKey(key, "reference " + p + " resolves to " + resolved.string() +
                             ", outside the allowed roots (" +
                             (allowed.empty() ? "none: give --root" : allowed) + ")");
    }
    if (scheme == "http" || scheme == "https" || scheme == "s3") {
      auto n = NormaliseUrl(url);
      if (!n.ok()) return BadKey(key, "reference " + ShownUrl(url) + ": " + n.status().message());
      for (const std::string& prefix : prefixes_) {
        if (UnderPrefix(*n, prefix)) return *n;
      }
      return BadKey(key, "reference " + ShownUrl(url) +
                             " is not under an allowed URL prefix (--allow-prefix)");
    }
    return Status(StatusCode::kUnsupported,
                  "key '" + std::string(key) + "': reference scheme '" + scheme +
                      "' is not supported (local paths, file://, http(s)://, s3://)");
  }

 private:
  fs::path base_;
  std::vector<std::string> roots_;
  std::vector<std::string> prefixes_;
};

// "{{name}}" (spaces allowed inside the braces) replaced by the template's value.
Result<std::string> Substitute(std::string_view key, const std::string& url,
                               const std::map<std::string, std::string, std::less<>>& templates) {
  std::string out;
  size_t pos = 0;
  while (true) {
    const size_t open = url.find("{{", pos);
    if (open == std::string::npos) break;
    const size_t close = url.find("}}", open + 2);
    if (close == std::string::npos) return BadKey(key, "unterminated '{{' in the URL");
    std::string name = url.substr(open + 2, close - open - 2);
    name.erase(0, name.find_first_not_of(' '));
    name.erase(name.find_last_not_of(' ') + 1);
    auto it = templates.find(name);
    if (it == templates.end()) return BadKey(key, "unknown template '" + name + "'");
    out.append(url, pos, open - pos);
    out += it->second;
    pos = close + 2;
  }
  out.append(url, pos);
  return out;
}

// One value of the "refs" object.
struct RefValue {
  bool is_inline = false;
  std::string bytes;  // inline
  std::string url;    // reference
  bool whole = false;
  uint64_t offset = 0, length = 0;
};

Result<uint64_t> NonNegative(std::string_view key, const json& v, const char* what) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer() && v.get<int64_t>() >= 0) return static_cast<uint64_t>(v.get<int64_t>());
  return BadKey(key, std::string(what) + " is not a non-negative integer");
}

Result<RefValue> ReadValue(std::string_view key, const json& v,
                           const std::map<std::string, std::string, std::less<>>& templates) {
  RefValue r;
  if (v.is_string()) {
    r.is_inline = true;
    const std::string& s = v.get_ref<const std::string&>();
    if (s.starts_with("base64:")) {
      auto decoded = DecodeBase64(std::string_view(s).substr(7));
      if (!decoded.ok()) return BadKey(key, "inline value: " + decoded.status().message());
      r.bytes = std::move(*decoded);
    } else {
      r.bytes = s;
    }
    return r;
  }
  if (v.is_object()) {  // some writers store metadata documents as objects
    r.is_inline = true;
    r.bytes = v.dump();
    return r;
  }
  if (!v.is_array() || (v.size() != 1 && v.size() != 3) || !v[0].is_string()) {
    return BadKey(key, "expected a string, [url] or [url, offset, length]");
  }
  ASSIGN_OR_RETURN(r.url, Substitute(key, v[0].get<std::string>(), templates));
  if (v.size() == 1) {
    r.whole = true;
    return r;
  }
  ASSIGN_OR_RETURN(r.offset, NonNegative(key, v[1], "offset"));
  ASSIGN_OR_RETURN(r.length, NonNegative(key, v[2], "length"));
  if (r.offset > UINT64_MAX - r.length) return BadKey(key, "offset + length overflows");
  return r;
}

// The document's node path of a metadata key ("a/b/.zarray" -> "a/b", ".zarray" -> ""), and
// its name.
std::pair<std::string, std::string> SplitKey(const std::string& key) {
  const size_t slash = key.rfind('/');
  if (slash == std::string::npos) return {"", key};
  return {key.substr(0, slash), key.substr(slash + 1)};
}

struct ImportedArray {
  std::string path;  // in the index
  ArrayDesc desc;
  char separator = '.';
  ArrayHandle handle = 0;
  std::vector<uint64_t> grid;
};

Result<json> ParseDocument(std::string_view key, const std::string& bytes) {
  json j = json::parse(bytes, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return BadKey(key, "not a JSON object");
  return j;
}

Result<std::vector<uint64_t>> Dimensions(std::string_view key, const json& j, const char* what,
                                         bool positive) {
  if (!j.is_array()) return BadKey(key, std::string(what) + " is not a list");
  std::vector<uint64_t> out;
  for (const json& v : j) {
    ASSIGN_OR_RETURN(uint64_t n, NonNegative(key, v, what));
    if (positive && n == 0) return BadKey(key, std::string(what) + " has a 0");
    out.push_back(n);
  }
  return out;
}

Result<ImportedArray> ReadZarray(std::string_view key, const std::string& bytes) {
  ASSIGN_OR_RETURN(json z, ParseDocument(key, bytes));
  if (z.value("zarr_format", json(nullptr)) != json(2)) return BadKey(key, "zarr_format is not 2");
  ImportedArray a;
  ArrayDesc& d = a.desc;
  ASSIGN_OR_RETURN(d.shape, Dimensions(key, z.value("shape", json(nullptr)), "shape", false));
  ASSIGN_OR_RETURN(d.chunks, Dimensions(key, z.value("chunks", json(nullptr)), "chunks", true));
  if (d.shape.size() != d.chunks.size()) return BadKey(key, "shape and chunks differ in length");
  uint64_t count = 1;
  for (size_t i = 0; i < d.shape.size(); ++i) {
    const uint64_t n = (d.shape[i] + d.chunks[i] - 1) / d.chunks[i];
    if (n != 0 && count > (uint64_t{1} << 62) / n) return BadKey(key, "too many chunks");
    count *= std::max<uint64_t>(n, 1);
    a.grid.push_back(n);
  }
  const json& dtype = z.value("dtype", json(nullptr));
  if (!dtype.is_string()) return BadKey(key, "dtype is not a type string (structured dtypes are not imported)");
  auto dt = DType::FromTypestr(dtype.get<std::string>());
  if (!dt.ok()) return BadKey(key, dt.status().message());
  d.dtype = *dt;
  if (z.value("order", json("C")) != json("C")) return BadKey(key, "order is not \"C\"");
  const json sep = z.value("dimension_separator", json("."));
  if (sep != json(".") && sep != json("/")) return BadKey(key, "dimension_separator is not '.' or '/'");
  a.separator = sep.get<std::string>()[0];
  const json compressor = z.value("compressor", json(nullptr));
  if (!compressor.is_null() && !(compressor.is_object() && compressor.value("id", json()).is_string())) {
    return BadKey(key, "compressor is not null or a codec with an id");
  }
  const json filters = z.value("filters", json(nullptr));
  if (!filters.is_null()) {
    if (!filters.is_array()) return BadKey(key, "filters is not null or a list");
    for (const json& f : filters) {
      if (!f.is_object() || !f.value("id", json()).is_string()) {
        return BadKey(key, "a filter is not a codec with an id");
      }
    }
  }
  d.fill_value = z.value("fill_value", json(nullptr));
  d.encoding.compressor = compressor;
  d.encoding.filters = filters.is_array() && filters.empty() ? json(nullptr) : filters;
  d.encoding.native = true;
  return a;
}

// The chunk coordinates `name` spells with `separator`, if it spells any of `grid`.
std::optional<std::vector<uint64_t>> ChunkCoords(std::string_view name, char separator,
                                                 const std::vector<uint64_t>& grid) {
  std::vector<uint64_t> coords;
  const size_t dims = std::max<size_t>(grid.size(), 1);  // a 0-d array has chunk "0"
  size_t pos = 0;
  for (size_t i = 0; i < dims; ++i) {
    const size_t end = i + 1 == dims ? name.size() : name.find(separator, pos);
    if (end == std::string_view::npos || end == pos) return std::nullopt;
    uint64_t v = 0;
    auto [p, ec] = std::from_chars(name.data() + pos, name.data() + end, v);
    if (ec != std::errc() || p != name.data() + end) return std::nullopt;
    coords.push_back(v);
    pos = end + 1;
  }
  if (grid.empty()) {
    if (coords[0] != 0) return std::nullopt;
    coords.clear();
  }
  return coords;
}

}  // namespace

Status ParseKerchunk(std::string_view json_text, const ImportPolicy& policy,
                     const SourceSizer& size_of, RecordingSink& out) {
  json doc = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return InvalidArgumentError("not JSON");
  if (!doc.is_object()) return InvalidArgumentError("not a kerchunk document (not a JSON object)");
  ASSIGN_OR_RETURN(Policy allowed, Policy::Make(policy));
  const json* refs = &doc;
  std::map<std::string, std::string, std::less<>> templates;
  json v0;
  if (doc.contains("version")) {
    const json& version = doc["version"];
    if (version == json(1)) {
      if (!doc.contains("refs") || !doc["refs"].is_object()) {
        return InvalidArgumentError("version 1 document without a \"refs\" object");
      }
      refs = &doc["refs"];
      if (doc.contains("templates")) {
        if (!doc["templates"].is_object()) return InvalidArgumentError("\"templates\" is not an object");
        for (const auto& [name, value] : doc["templates"].items()) {
          if (!value.is_string()) return InvalidArgumentError("template '" + name + "' is not a string");
          templates[name] = value.get<std::string>();
        }
      }
      if (doc.contains("gen") && !(doc["gen"].is_array() && doc["gen"].empty())) {
        return Status(StatusCode::kUnsupported,
                      "\"gen\" (generated references) is not supported; expand them first "
                      "(kerchunk's fsspec ReferenceFileSystem can write the plain references)");
      }
    } else if (version == json(0)) {
      v0 = doc;
      v0.erase("version");
      refs = &v0;
    } else {
      return InvalidArgumentError("kerchunk version " + version.dump() + " (0 and 1 are read)");
    }
  }

  // Metadata first: arrays and groups, so chunk keys can be told from other keys.
  std::map<std::string, ImportedArray> arrays;  // by document path
  std::set<std::string> groups;
  std::map<std::string, json> attrs;
  for (const auto& [key, value] : refs->items()) {
    auto [node, name] = SplitKey(key);
    if (name != ".zarray" && name != ".zgroup" && name != ".zattrs") continue;
    ASSIGN_OR_RETURN(RefValue v, ReadValue(key, value, templates));
    if (!v.is_inline) return BadKey(key, "metadata must be inline");
    if (name == ".zarray") {
      ASSIGN_OR_RETURN(ImportedArray a, ReadZarray(key, v.bytes));
      arrays.emplace(node, std::move(a));
    } else if (name == ".zgroup") {
      ASSIGN_OR_RETURN(json g, ParseDocument(key, v.bytes));
      if (g.value("zarr_format", json(nullptr)) != json(2)) return BadKey(key, "zarr_format is not 2");
      groups.insert(node);
    } else {
      ASSIGN_OR_RETURN(attrs[node], ParseDocument(key, v.bytes));
    }
  }
  for (const std::string& g : groups) {
    if (arrays.count(g)) return BadKey(g.empty() ? ".zgroup" : g + "/.zgroup", "an array is there too");
  }
  const bool root_array = arrays.count("") != 0;
  if (root_array) {
    out.Warn("the document's root is an array: imported as array \"0\" of the root group");
  }
  for (const std::string& g : groups) {
    auto it = attrs.find(g);
    RETURN_IF_ERROR(out.AddGroup(g, it == attrs.end() ? json::object() : it->second)
                        .WithContext("key '" + (g.empty() ? std::string(".zgroup") : g + "/.zgroup") + "'"));
  }
  for (auto& [node, a] : arrays) {
    a.path = node.empty() ? "0" : node;
    auto it = attrs.find(node);
    if (it != attrs.end()) {
      json at = it->second;
      if (at.contains("_ARRAY_DIMENSIONS")) {
        const json& dims = at["_ARRAY_DIMENSIONS"];
        if (!dims.is_array() || dims.size() != a.desc.shape.size() ||
            !std::all_of(dims.begin(), dims.end(), [](const json& d) { return d.is_string(); })) {
          return BadKey(node.empty() ? ".zattrs" : node + "/.zattrs",
                        "_ARRAY_DIMENSIONS is not one name per dimension");
        }
        a.desc.dimension_names = dims.get<std::vector<std::string>>();
        at.erase("_ARRAY_DIMENSIONS");
      }
      a.desc.attributes = std::move(at);
    }
    auto handle = out.AddArray(a.path, a.desc);
    if (!handle.ok()) return BadKey(node.empty() ? ".zarray" : node + "/.zarray", handle.status().message());
    a.handle = *handle;
  }
  for (const auto& [node, at] : attrs) {
    if (!arrays.count(node) && !groups.count(node)) {
      RETURN_IF_ERROR(out.AddGroup(node, at).WithContext("key '" + node + "/.zattrs'"));
    }
  }

  // Then every other key: a chunk of the array whose path prefixes it, or a plain file.
  std::map<std::string, uint32_t, std::less<>> source_ids;
  for (const auto& [key, value] : refs->items()) {
    auto [node, name] = SplitKey(key);
    if (name == ".zarray" || name == ".zgroup" || name == ".zattrs") continue;
    if (name == ".zmetadata" && node.empty()) {
      out.Warn("key '.zmetadata' (consolidated metadata) dropped: refzarr renders its own");
      continue;
    }
    ImportedArray* array = nullptr;
    std::optional<std::vector<uint64_t>> coords;
    // The array is the longest prefix of the key, at a '/', that names one; else the root array.
    for (size_t cut = key.rfind('/'); cut != std::string::npos;
         cut = cut == 0 ? std::string::npos : key.rfind('/', cut - 1)) {
      auto it = arrays.find(key.substr(0, cut));
      if (it != arrays.end()) {
        array = &it->second;
        coords = ChunkCoords(std::string_view(key).substr(cut + 1), array->separator, array->grid);
        break;
      }
    }
    if (array == nullptr && root_array) {
      array = &arrays.at("");
      coords = ChunkCoords(key, array->separator, array->grid);
    }
    ASSIGN_OR_RETURN(RefValue v, ReadValue(key, value, templates));
    if (array == nullptr) {
      if (!v.is_inline) return BadKey(key, "a reference outside any array (only chunks are referenced)");
      Status st = out.AddFile(key, std::move(v.bytes));
      if (!st.ok()) return BadKey(key, st.message());
      continue;
    }
    if (!coords) return BadKey(key, "not a chunk key of array '" + array->path + "'");
    for (size_t i = 0; i < coords->size(); ++i) {
      if ((*coords)[i] >= array->grid[i]) return BadKey(key, "chunk outside the array's grid");
    }
    const uint64_t linear = LinearChunkIndex(array->grid, *coords);
    if (v.is_inline) {
      Status st = out.AddInlineChunk(array->handle, linear, std::as_bytes(std::span(v.bytes)));
      if (!st.ok()) return BadKey(key, st.message());
      continue;
    }
    ASSIGN_OR_RETURN(std::string uri, allowed.Resolve(key, v.url));
    auto id = source_ids.find(uri);
    if (id == source_ids.end()) {
      ASSIGN_OR_RETURN(uint32_t added, out.AddSource(uri));
      id = source_ids.emplace(uri, added).first;
    }
    if (v.whole) {
      auto size = size_of(uri);
      if (!size.ok()) return BadKey(key, size.status().message());
      v.length = *size;
    }
    Status st = out.AddChunk(array->handle, linear, ChunkRef{id->second, v.offset, v.length, 0});
    if (!st.ok()) return BadKey(key, st.message());
  }
  return OkStatus();
}

Result<ImportReport> ImportKerchunk(const fs::path& refs, const fs::path& index,
                                    ImportPolicy policy, const SourceOpeners& openers) {
  std::error_code ec;
  const fs::path abs = fs::absolute(refs, ec).lexically_normal();
  const std::string where = "import " + abs.string();
  auto text = ReadFileToString(abs);
  if (!text.ok()) return text.status().WithContext(where);
  if (policy.base.empty()) policy.base = abs.parent_path();
  if (policy.roots.empty() && policy.url_prefixes.empty()) policy.roots.push_back(abs.parent_path());

  std::map<std::string, SourceInfo> probed;
  auto probe = [&](const std::string& uri) -> Result<SourceInfo> {
    auto it = probed.find(uri);
    if (it != probed.end()) return it->second;
    ASSIGN_OR_RETURN(SourceInfo info, ProbeSource(uri, nullptr, 0, openers));
    return probed.emplace(uri, info).first->second;
  };
  RecordingSink sink;
  Status parsed = ParseKerchunk(
      *text, policy,
      [&](const std::string& uri) -> Result<uint64_t> {
        ASSIGN_OR_RETURN(SourceInfo info, probe(uri));
        return info.size;
      },
      sink);
  if (parsed.ok()) parsed = sink.Finish();
  if (!parsed.ok()) return parsed.WithContext(where);
  ScannedFile scan = std::move(sink).result();

  ImportReport report;
  std::vector<SourceInfo> companions;
  for (const std::string& uri : scan.companions) {
    auto info = probe(uri);
    if (!info.ok()) return info.status().WithContext(where);
    info->status = "companion";
    companions.push_back(*info);
  }
  for (const ScannedFile::Array& a : scan.arrays) {
    for (const auto& [linear, ref] : a.chunks) {
      const SourceInfo& s = companions[ref.source - 1];
      if (ref.offset + ref.length > s.size) {
        return CorruptError(where + ": array '" + a.path + "' chunk " + std::to_string(linear) +
                            ": bytes " + std::to_string(ref.offset) + "+" +
                            std::to_string(ref.length) + " lie past the end of " +
                            DisplaySource(s.uri) + " (" + std::to_string(s.size) + " bytes)");
      }
    }
    report.chunk_refs += a.chunks.size();
    report.inline_chunks += a.inline_chunks.size();
  }
  report.groups = scan.groups.size();
  report.arrays = scan.arrays.size();
  report.files = scan.files.size();
  report.sources = companions.size();
  report.warnings = scan.warnings;

  auto main = ProbeSource(FileUri(abs), nullptr, 0, openers);
  if (!main.ok()) return main.status().WithContext(where);
  auto store = OpenRefStore(index, OpenMode::kReadWrite);
  if (!store.ok()) return store.status().WithContext(where);
  Status put = (*store)->PutFile(*main, "", "kerchunk", scan, companions);
  if (!put.ok()) return put.WithContext(where);
  return report;
}

}  // namespace refzarr
