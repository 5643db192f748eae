#include "store/kerchunk_export.h"

#include <nlohmann/json.hpp>
#include <set>

#include "formats/core/base64.h"
#include "store/ref_store.h"
#include "store/zarr_view.h"

namespace refzarr {
namespace {

using nlohmann::json;

std::string ChunkKey(const std::string& array, const std::vector<uint64_t>& coords) {
  std::string key = array;
  if (coords.empty()) return key + "/0";
  for (uint64_t c : coords) key += "/" + std::to_string(c);
  return key;
}

std::string Prefixed(const std::string& path, const char* name) {
  return path.empty() ? std::string(name) : path + "/" + name;
}

// A kerchunk value for raw bytes: the text itself when it is UTF-8 (JSON holds no other), else
// "base64:...".
json KerchunkValue(const std::string& bytes) {
  json text = bytes;
  try {
    (void)text.dump();
    return text;
  } catch (const json::type_error&) {
    return "base64:" + EncodeBase64(bytes);
  }
}

// The codec ids of a rendered `.zarray`: filters first, then the compressor.
std::vector<std::string> CodecIds(const json& zarray) {
  std::vector<std::string> ids;
  auto add = [&ids](const json& codec) {
    if (codec.is_object() && codec.contains("id") && codec["id"].is_string()) {
      ids.push_back(codec["id"].get<std::string>());
    }
  };
  if (zarray.contains("filters") && zarray["filters"].is_array()) {
    for (const json& f : zarray["filters"]) add(f);
  }
  if (zarray.contains("compressor")) add(zarray["compressor"]);
  return ids;
}

}  // namespace

std::string ForeignCodecLibrary(const std::string& id) {
  // numcodecs 0.11 (Debian 12), numcodecs.registry.codec_registry.
  static const char* const kNumcodecs[] = {
      "adler32",    "astype",     "base64",   "bitround", "blosc",
      "bz2",        "categorize", "crc32",    "delta",    "fixedscaleoffset",
      "gzip",       "json2",      "lz4",      "lzma",     "msgpack2",
      "packbits",   "pickle",     "quantize", "shuffle",  "vlen-array",
      "vlen-bytes", "vlen-utf8",  "zfpy",     "zlib",     "zstd"};
  for (const char* n : kNumcodecs) {
    if (id == n) return "";
  }
  if (id == "fletcher32") return "numcodecs after 0.11";
  // refzarr names every TIFF compression imagecodecs has no codec id for this way.
  if (id.starts_with("imagecodecs_tiff_compression_")) return "none";
  if (id.starts_with("imagecodecs_")) return "imagecodecs";
  return "none";  // refzarr_transpose, hdf5_*, szip, bitshuffle (HDF5 framing), ...
}

Result<ExportReport> ExportKerchunk(const std::filesystem::path& index, std::ostream& out,
                                    const SourceOpeners& openers) {
  ASSIGN_OR_RETURN(auto store, OpenRefStore(index, OpenMode::kReadOnly));
  ViewOptions options;
  options.codecs = CodecPolicy::kPassthrough;
  options.openers = &openers;
  ASSIGN_OR_RETURN(auto view, OpenZarrView(index, options));

  ASSIGN_OR_RETURN(auto sources, store->Sources());
  std::unordered_map<int64_t, std::string> paths;
  for (const SourceInfo& s : sources) {
    if (s.status == "failed") continue;
    ASSIGN_OR_RETURN(SourceInfo now, ProbeSource(s.uri, nullptr, 0, openers));
    std::string change = DescribeChange(s, now);
    if (!change.empty()) {
      return StaleError("source " + DisplaySource(s.uri) + " changed since it was indexed (" +
                        change + "); re-index it before exporting");
    }
    // fsspec reads local paths and URLs alike; a local source is written as its path, a remote
    // one as its URI.
    paths[s.id] = DisplaySource(s.uri);
  }

  ExportReport report;
  out << "{\"version\":1,\"refs\":{";
  bool first = true;
  auto emit = [&](const std::string& key, const json& value) {
    out << (first ? "" : ",") << json(key).dump() << ":" << value.dump();
    first = false;
  };
  // Emits a metadata document of the view; returns it (null when the view has none).
  auto emit_metadata = [&](const std::string& key) -> Result<json> {
    ASSIGN_OR_RETURN(auto v, view->Get(key));
    if (!v) return json(nullptr);
    emit(key, v->bytes);
    ++report.metadata_keys;
    return json::parse(v->bytes, nullptr, /*allow_exceptions=*/false);
  };

  ASSIGN_OR_RETURN(auto root, store->GetNode(""));
  std::vector<NodeRecord> nodes;
  if (root) nodes.push_back(*root);
  ASSIGN_OR_RETURN(auto below, store->Subtree(""));
  for (auto& n : below) nodes.push_back(std::move(n));

  for (const NodeRecord& n : nodes) {
    if (n.kind == NodeKind::kFile) {
      ASSIGN_OR_RETURN(auto bytes, store->GetFileBytes(n.id));
      if (bytes) emit(n.path, KerchunkValue(*bytes));
      continue;
    }
    if (n.kind == NodeKind::kGroup) {
      RETURN_IF_ERROR(emit_metadata(Prefixed(n.path, ".zgroup")).status());
      RETURN_IF_ERROR(emit_metadata(Prefixed(n.path, ".zattrs")).status());
      continue;
    }
    ASSIGN_OR_RETURN(json zarray, emit_metadata(Prefixed(n.path, ".zarray")));
    RETURN_IF_ERROR(emit_metadata(Prefixed(n.path, ".zattrs")).status());
    ASSIGN_OR_RETURN(ArrayDesc desc, ArrayDesc::FromJson(n.meta.at("array")));
    auto sources_of = n.meta.at("sources").get<std::vector<int64_t>>();
    // What the written .zarray names, not what the index says: every id a client will look up.
    std::set<std::string> foreign;
    for (const std::string& id : CodecIds(zarray)) {
      std::string library = ForeignCodecLibrary(id);
      if (library.empty() || !foreign.insert(id).second) continue;
      report.foreign_codecs.push_back({n.path, id, library});
    }
    if (!desc.encoding.native && foreign.empty()) {
      // Every id is a numcodecs one, yet the bytes need more (TIFF zstd frames, bit orders...).
      const json& c = desc.encoding.compressor;
      bool zstd = c.is_object() && c.value("id", "") == "zstd";
      report.notes.push_back(
          n.path + ": " +
          (zstd ? std::string("zstd frames without a content size, which numcodecs before "
                              "mid-2025 (Debian 12's 0.11) cannot decode")
                : "the stored chunks need refzarr's " + desc.encoding.decoder +
                      " decoder beyond the codecs named (compressor " + c.dump() + ")"));
    }
    if (n.meta.value("flagged", false)) {
      report.notes.push_back(n.path +
                             ": some chunks are not encoded like the rest "
                             "(short strips or HDF5 filter masks)");
    }
    auto grid = desc.GridShape();
    ASSIGN_OR_RETURN(auto blocks, store->BlockNumbers(n.id));
    for (uint64_t b : blocks) {
      ASSIGN_OR_RETURN(auto entries, store->GetBlock(n.id, b));
      for (size_t i = 0; i < entries.size(); ++i) {
        if (!entries[i].present) continue;
        uint64_t linear = b * kBlockSize + i;
        std::string key = ChunkKey(n.path, ChunkCoords(grid, linear));
        const ChunkRef& r = entries[i].ref;
        if (r.flags & kChunkInline) {
          ASSIGN_OR_RETURN(auto bytes, store->GetInlineChunk(n.id, linear));
          if (!bytes) return CorruptError(index.string() + ": inline chunk missing in " + n.path);
          emit(key, "base64:" + EncodeBase64(*bytes));
          ++report.inline_chunks;
          continue;
        }
        if (r.source >= sources_of.size() || !paths.count(sources_of[r.source])) {
          return CorruptError(index.string() + ": " + n.path + ": chunk refers to unknown source");
        }
        emit(key, json::array({paths[sources_of[r.source]], r.offset, r.length}));
        ++report.chunk_refs;
      }
    }
  }
  out << "}}\n";
  if (!out) return IoError("export: write failed");
  return report;
}

}  // namespace refzarr
