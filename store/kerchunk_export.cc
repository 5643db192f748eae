#include "store/kerchunk_export.h"

#include <nlohmann/json.hpp>

#include "store/ref_store.h"
#include "store/zarr_view.h"
#include "formats/core/base64.h"

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

}  // namespace

Result<ExportReport> ExportKerchunk(const std::filesystem::path& index, std::ostream& out) {
  ASSIGN_OR_RETURN(auto store, OpenRefStore(index, OpenMode::kReadOnly));
  ViewOptions options;
  options.codecs = CodecPolicy::kPassthrough;
  ASSIGN_OR_RETURN(auto view, OpenZarrView(index, options));

  ASSIGN_OR_RETURN(auto sources, store->Sources());
  std::unordered_map<int64_t, std::string> paths;
  for (const SourceInfo& s : sources) {
    if (s.status == "failed") continue;
    ASSIGN_OR_RETURN(SourceInfo now, ProbeSource(s.path));
    std::string change = DescribeChange(s, now);
    if (!change.empty()) {
      return StaleError("source " + s.path + " changed since it was indexed (" + change +
                        "); re-index it before exporting");
    }
    paths[s.id] = s.path;
  }

  ExportReport report;
  out << "{\"version\":1,\"refs\":{";
  bool first = true;
  auto emit = [&](const std::string& key, const json& value) {
    out << (first ? "" : ",") << json(key).dump() << ":" << value.dump();
    first = false;
  };
  auto emit_metadata = [&](const std::string& key) -> Status {
    ASSIGN_OR_RETURN(auto v, view->Get(key));
    if (!v) return OkStatus();
    emit(key, v->bytes);
    ++report.metadata_keys;
    return OkStatus();
  };

  ASSIGN_OR_RETURN(auto root, store->GetNode(""));
  std::vector<NodeRecord> nodes;
  if (root) nodes.push_back(*root);
  ASSIGN_OR_RETURN(auto below, store->Subtree(""));
  for (auto& n : below) nodes.push_back(std::move(n));

  for (const NodeRecord& n : nodes) {
    if (n.kind == NodeKind::kFile) {
      ASSIGN_OR_RETURN(auto bytes, store->GetFileBytes(n.id));
      if (bytes) emit(n.path, *bytes);
      continue;
    }
    if (n.kind == NodeKind::kGroup) {
      RETURN_IF_ERROR(emit_metadata(Prefixed(n.path, ".zgroup")));
      RETURN_IF_ERROR(emit_metadata(Prefixed(n.path, ".zattrs")));
      continue;
    }
    RETURN_IF_ERROR(emit_metadata(Prefixed(n.path, ".zarray")));
    RETURN_IF_ERROR(emit_metadata(Prefixed(n.path, ".zattrs")));
    ASSIGN_OR_RETURN(ArrayDesc desc, ArrayDesc::FromJson(n.meta.at("array")));
    auto sources_of = n.meta.at("sources").get<std::vector<int64_t>>();
    if (!desc.encoding.native) {
      report.needs_imagecodecs.push_back(n.path + ": stored codec " +
                                         desc.encoding.compressor.dump());
    } else if (!desc.encoding.stored_order.empty()) {
      report.needs_imagecodecs.push_back(n.path + ": interleaved samples (use the Zarr v3 view)");
    } else if (n.meta.value("flagged", false)) {
      report.needs_imagecodecs.push_back(n.path + ": some chunks are not encoded like the rest "
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
