#include "store/zarr_view.h"

#include <sys/stat.h>

#include <algorithm>
#include <charconv>
#include <list>
#include <mutex>
#include <unordered_map>

#include "formats/core/byte_source.h"
#include "store/metadata.h"
#include "store/ref_store.h"
#include "store/transcode/transcode.h"
#include "store/view_internal.h"

namespace refzarr {

Result<CodecPolicy> ParseCodecPolicy(std::string_view name) {
  if (name == "compat") return CodecPolicy::kCompat;
  if (name == "passthrough") return CodecPolicy::kPassthrough;
  return InvalidArgumentError("unknown codec policy '" + std::string(name) +
                              "' (expected compat or passthrough)");
}

namespace {

using nlohmann::json;

std::vector<std::string_view> SplitKey(std::string_view key) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (start < key.size()) {
    size_t end = key.find('/', start);
    if (end == std::string_view::npos) end = key.size();
    parts.push_back(key.substr(start, end - start));
    start = end + 1;
  }
  return parts;
}

std::string JoinParts(std::span<const std::string_view> parts) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i) out += '/';
    out += parts[i];
  }
  return out;
}

bool ParseIndex(std::string_view s, uint64_t& v) {
  if (s.empty() || (s.size() > 1 && s[0] == '0')) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && p == s.data() + s.size();
}

// What the view knows about one node, parsed once.
struct NodeInfo {
  NodeRecord record;
  std::optional<ArrayDesc> array;
  std::vector<int64_t> sources;  // global source id per local source id
  bool transcoded = false;       // chunks are served re-encoded (compat policy, non-native array)
  std::optional<ImageDesc> image;
};

class RefZarrView final : public ZarrView {
 public:
  RefZarrView(std::unique_ptr<RefStore> store, ViewOptions options)
      : store_(std::move(store)), options_(std::move(options)),
        transcoder_(internal::MakeViewTranscoder(options_)) {}

  const ViewOptions& options() const override { return options_; }

  Result<std::optional<Value>> Get(std::string_view key) override {
    if (!ValidKey(key)) return std::optional<Value>();
    auto parts = SplitKey(key);
    if (parts.empty()) return std::optional<Value>();
    std::string_view last = parts.back();
    std::string parent = JoinParts(std::span(parts).first(parts.size() - 1));

    if (IsMetadataName(last)) {
      ASSIGN_OR_RETURN(auto node, Node(parent));
      if (node && node->record.kind != NodeKind::kFile) {
        ASSIGN_OR_RETURN(auto doc, RenderMetadata(*node, last));
        if (!doc) return std::optional<Value>();
        Value v;
        v.bytes = doc->dump();
        v.is_metadata = true;
        return std::optional<Value>(std::move(v));
      }
    }
    ASSIGN_OR_RETURN(Walked w, Walk(parts));
    if (w.depth == parts.size()) {
      // The key names a node: only plain files have a value.
      if (w.node->record.kind != NodeKind::kFile) return std::optional<Value>();
      ASSIGN_OR_RETURN(auto bytes, store_->GetFileBytes(w.node->record.id));
      if (!bytes) return std::optional<Value>();
      Value v;
      v.bytes = std::move(*bytes);
      return std::optional<Value>(std::move(v));
    }
    ASSIGN_OR_RETURN(auto chunk, FindChunk(parts));
    if (!chunk) return std::optional<Value>();
    return GetChunk(*chunk->first, chunk->second);
  }

  Result<std::string> Materialize(const Value& value) override {
    if (!value.slice) return value.bytes;
    ASSIGN_OR_RETURN(auto source, OpenLocalFile(value.slice->path));
    std::string out(value.slice->length, '\0');
    RETURN_IF_ERROR(source->ReadInto({value.slice->offset, value.slice->length},
                                     std::as_writable_bytes(std::span(out))));
    return out;
  }

  Result<std::pair<EntryKind, uint64_t>> Stat(std::string_view key) override {
    if (key.empty()) return std::pair{EntryKind::kDirectory, uint64_t{0}};
    if (!ValidKey(key)) return std::pair{EntryKind::kMissing, uint64_t{0}};
    auto parts = SplitKey(key);
    ASSIGN_OR_RETURN(Walked w, Walk(parts));
    if (w.depth == parts.size()) {
      if (w.node->record.kind == NodeKind::kFile) {
        return std::pair{EntryKind::kFile, w.node->record.meta.value("size", uint64_t{0})};
      }
      return std::pair{EntryKind::kDirectory, uint64_t{0}};
    }
    ASSIGN_OR_RETURN(auto dir, FindChunkDirectory(parts));
    if (dir) return std::pair{EntryKind::kDirectory, uint64_t{0}};
    ASSIGN_OR_RETURN(auto value, Get(key));
    if (!value) return std::pair{EntryKind::kMissing, uint64_t{0}};
    return std::pair{EntryKind::kFile, value->size()};
  }

  Result<std::optional<std::vector<DirEntry>>> List(std::string_view prefix) override {
    while (!prefix.empty() && prefix.back() == '/') prefix.remove_suffix(1);
    if (!prefix.empty() && !ValidKey(prefix)) return std::optional<std::vector<DirEntry>>();
    std::string path(prefix);
    auto parts = SplitKey(prefix);
    ASSIGN_OR_RETURN(Walked w, Walk(parts));
    std::shared_ptr<const NodeInfo> node = w.depth == parts.size() ? w.node : nullptr;
    std::vector<DirEntry> out;
    if (node) {
      if (node->record.kind == NodeKind::kFile) return std::optional<std::vector<DirEntry>>();
      for (const std::string& name : MetadataNames(*node)) out.push_back({name, false});
      if (node->record.kind == NodeKind::kGroup) {
        ASSIGN_OR_RETURN(auto children, store_->Children(path));
        for (const NodeRecord& c : children) {
          std::string name = c.path.substr(path.empty() ? 0 : path.size() + 1);
          DirEntry entry{name, c.kind != NodeKind::kFile};
          if (c.kind == NodeKind::kFile) entry.size = c.meta.value("size", uint64_t{0});
          out.push_back(std::move(entry));
        }
      } else {
        RETURN_IF_ERROR(ListChunkLevel(*node, {}, true, out));
      }
    } else {
      ASSIGN_OR_RETURN(auto dir, FindChunkDirectory(parts));
      if (!dir) return std::optional<std::vector<DirEntry>>();
      RETURN_IF_ERROR(ListChunkLevel(*dir->first, dir->second, false, out));
    }
    std::sort(out.begin(), out.end(),
              [](const DirEntry& a, const DirEntry& b) { return a.name < b.name; });
    return std::optional<std::vector<DirEntry>>(std::move(out));
  }

 private:
  static bool ValidKey(std::string_view key) {
    if (key.empty() || key.front() == '/' || key.back() == '/') return false;
    if (key.find('\0') != std::string_view::npos) return false;
    for (std::string_view p : SplitKey(key)) {
      if (p.empty() || p == "." || p == "..") return false;
    }
    return true;
  }

  bool IsMetadataName(std::string_view name) const {
    if (options_.zarr_format == 3) return name == "zarr.json";
    return name == ".zgroup" || name == ".zattrs" || name == ".zarray" || name == ".zmetadata";
  }

  std::vector<std::string> MetadataNames(const NodeInfo& n) const {
    if (options_.zarr_format == 3) return {"zarr.json"};
    if (n.array) return {".zarray", ".zattrs"};
    if (n.record.meta.value("file_root", false)) return {".zattrs", ".zgroup", ".zmetadata"};
    return {".zattrs", ".zgroup"};
  }

  // ---- nodes ----

  Result<std::shared_ptr<const NodeInfo>> Node(const std::string& path) {
    {
      std::lock_guard lock(mu_);
      auto it = nodes_.find(path);
      if (it != nodes_.end()) return it->second;
    }
    ASSIGN_OR_RETURN(auto rec, store_->GetNode(path));
    std::shared_ptr<const NodeInfo> info;
    if (rec) {
      auto n = std::make_shared<NodeInfo>();
      n->record = std::move(*rec);
      if (n->record.kind == NodeKind::kArray) {
        auto a = ArrayDesc::FromJson(n->record.meta.at("array"));
        if (!a.ok()) return a.status().WithContext(store_->path().string() + ": " + path);
        n->array = std::move(*a);
        n->sources = n->record.meta.at("sources").get<std::vector<int64_t>>();
        n->transcoded = NeedsTranscode(*n->array, options_.codecs,
                                       n->record.meta.value("flagged", false),
                                       options_.zarr_format);
      } else if (n->record.kind == NodeKind::kGroup) {
        const json& im = n->record.meta["image"];
        if (!im.is_null()) {
          auto image = ImageDesc::FromJson(im);
          if (!image.ok()) return image.status().WithContext(store_->path().string() + ": " + path);
          n->image = std::move(*image);
        }
      }
      info = std::move(n);
    }
    std::lock_guard lock(mu_);
    if (nodes_.size() > 100000) nodes_.clear();  // bound memory; nodes are cheap to reload
    nodes_[path] = info;
    return info;
  }

  // The deepest node on the key's path, walking from the root and stopping at an array (whose
  // chunk keys are not nodes). Every ancestor of a node is a node, so the walk stops at the first
  // missing name. Prefixes shared by many keys (groups, arrays) are cache hits: resolving a chunk
  // key costs no database query once its array is known.
  struct Walked {
    std::shared_ptr<const NodeInfo> node;  // null when even the root is missing
    size_t depth = 0;                      // parts[0, depth) name `node`
  };
  Result<Walked> Walk(std::span<const std::string_view> parts) {
    Walked w;
    ASSIGN_OR_RETURN(w.node, Node(""));
    if (!w.node) return w;
    std::string path;
    for (size_t i = 0; i < parts.size(); ++i) {
      if (w.node->array || w.node->record.kind == NodeKind::kFile) return w;
      if (i) path += '/';
      path += parts[i];
      ASSIGN_OR_RETURN(auto child, Node(path));
      if (!child) return w;
      w.node = std::move(child);
      w.depth = i + 1;
    }
    return w;
  }

  // ---- metadata ----

  Result<std::optional<json>> RenderMetadata(const NodeInfo& n, std::string_view name) {
    const int v = options_.zarr_format;
    if (n.array) {
      if (v == 3) return std::optional<json>(RenderArrayV3(*n.array, n.transcoded));
      if (name == ".zarray") return std::optional<json>(RenderZarrayV2(*n.array, n.transcoded));
      if (name == ".zattrs") return std::optional<json>(RenderArrayAttrsV2(*n.array));
      return std::optional<json>();
    }
    if (v == 2 && name == ".zarray") return std::optional<json>();
    if (v == 2 && name == ".zgroup") return std::optional<json>(json{{"zarr_format", 2}});
    if (v == 2 && name == ".zmetadata") {
      if (!n.record.meta.value("file_root", false)) return std::optional<json>();
      return Consolidated(n);
    }
    ASSIGN_OR_RETURN(json attrs, GroupAttributes(n));
    if (v == 3) return std::optional<json>(RenderGroupV3(attrs));
    return std::optional<json>(std::move(attrs));
  }

  Result<json> GroupAttributes(const NodeInfo& n) {
    const ArrayDesc* level0 = nullptr;
    std::shared_ptr<const NodeInfo> level_node;
    if (n.image && !n.image->levels.empty()) {
      std::string p = n.record.path.empty() ? n.image->levels[0]
                                            : n.record.path + "/" + n.image->levels[0];
      ASSIGN_OR_RETURN(level_node, Node(p));
      if (level_node && level_node->array) level0 = &*level_node->array;
    }
    std::optional<ImageDesc> image = n.image;
    if (image && image->name.empty()) {
      // Viewers show the name; the strict schemas require one. The path is unique and meaningful.
      image->name = n.record.path.empty() ? "image" : n.record.path;
    }
    return RenderGroupAttributes(n.record.meta.value("attributes", json::object()),
                                 image ? &*image : nullptr, level0, options_.zarr_format);
  }

  Result<std::optional<json>> Consolidated(const NodeInfo& root) {
    json meta = json::object();
    ASSIGN_OR_RETURN(json attrs, GroupAttributes(root));
    meta[".zgroup"] = {{"zarr_format", 2}};
    meta[".zattrs"] = attrs;
    ASSIGN_OR_RETURN(auto nodes, store_->Subtree(root.record.path));
    size_t strip = root.record.path.empty() ? 0 : root.record.path.size() + 1;
    for (const NodeRecord& rec : nodes) {
      if (rec.kind == NodeKind::kFile) continue;
      ASSIGN_OR_RETURN(auto n, Node(rec.path));
      if (!n) continue;
      std::string rel = rec.path.substr(strip) + "/";
      if (n->array) {
        meta[rel + ".zarray"] = RenderZarrayV2(*n->array, n->transcoded);
        meta[rel + ".zattrs"] = RenderArrayAttrsV2(*n->array);
      } else {
        meta[rel + ".zgroup"] = {{"zarr_format", 2}};
        ASSIGN_OR_RETURN(meta[rel + ".zattrs"], GroupAttributes(*n));
      }
    }
    return std::optional<json>(json{{"zarr_consolidated_format", 1}, {"metadata", meta}});
  }

  // ---- chunks ----

  using ChunkAt = std::pair<std::shared_ptr<const NodeInfo>, std::vector<uint64_t>>;

  // Splits a key below an array into the array and the chunk coordinates it names ("arr/0/1" in
  // v2, "arr/c/0/1" in v3; "arr/c" names no coordinate yet). Nullopt when no array owns the key or
  // a coordinate is malformed or outside the grid.
  Result<std::optional<ChunkAt>> SplitArrayKey(std::span<const std::string_view> parts) {
    ASSIGN_OR_RETURN(Walked w, Walk(parts));
    if (!w.node || !w.node->array || w.depth == parts.size()) return std::optional<ChunkAt>();
    const auto& node = w.node;
    auto rest = parts.subspan(w.depth);
    if (options_.zarr_format == 3) {
      if (rest[0] != "c") return std::optional<ChunkAt>();
      rest = rest.subspan(1);
    }
    auto grid = node->array->GridShape();
    if (grid.empty()) {
      // A 0-d array has one chunk: "0" in v2, "c" in v3.
      bool one = options_.zarr_format == 3 ? rest.empty() : rest.size() == 1 && rest[0] == "0";
      if (!one) return std::optional<ChunkAt>();
      return std::optional<ChunkAt>(ChunkAt{node, {}});
    }
    if (rest.size() > grid.size()) return std::optional<ChunkAt>();
    std::vector<uint64_t> coords(rest.size());
    for (size_t i = 0; i < rest.size(); ++i) {
      if (!ParseIndex(rest[i], coords[i]) || coords[i] >= grid[i]) return std::optional<ChunkAt>();
    }
    return std::optional<ChunkAt>(ChunkAt{node, std::move(coords)});
  }

  // A chunk key: every coordinate named.
  Result<std::optional<ChunkAt>> FindChunk(std::span<const std::string_view> parts) {
    ASSIGN_OR_RETURN(auto at, SplitArrayKey(parts));
    if (at && at->second.size() != at->first->array->shape.size()) return std::optional<ChunkAt>();
    return at;
  }

  // A directory inside an array's chunk keys: some coordinates named (v3: "c" alone too).
  Result<std::optional<ChunkAt>> FindChunkDirectory(std::span<const std::string_view> parts) {
    ASSIGN_OR_RETURN(auto at, SplitArrayKey(parts));
    if (!at) return at;
    size_t rank = at->first->array->shape.size();
    bool partial = at->second.size() < rank &&
                   (options_.zarr_format == 3 || !at->second.empty());
    if (!partial) return std::optional<ChunkAt>();
    return at;
  }

  // Lists one level of chunk keys: the array's own directory when `array_dir`, else the level
  // below the coordinates named so far.
  Status ListChunkLevel(const NodeInfo& n, const std::vector<uint64_t>& coords, bool array_dir,
                        std::vector<DirEntry>& out) {
    const ArrayDesc& a = *n.array;
    size_t rank = a.shape.size();
    if (array_dir && options_.zarr_format == 3) {
      ASSIGN_OR_RETURN(bool any, HasAnyChunk(n));
      if (any) out.push_back({"c", rank != 0});
      return OkStatus();
    }
    if (rank == 0) {
      ASSIGN_OR_RETURN(auto e, Entry(n, 0));
      if (e.present) out.push_back({"0", false, KnownSize(n, e)});
      return OkStatus();
    }
    auto grid = a.GridShape();
    size_t level = coords.size();
    if (level + 1 < rank) {
      for (uint64_t i = 0; i < grid[level]; ++i) out.push_back({std::to_string(i), true});
      return OkStatus();
    }
    // Last level: list only the chunks that exist.
    std::vector<uint64_t> c = coords;
    c.push_back(0);
    for (uint64_t i = 0; i < grid[level]; ++i) {
      c[level] = i;
      ASSIGN_OR_RETURN(auto e, Entry(n, LinearChunkIndex(grid, c)));
      if (e.present) out.push_back({std::to_string(i), false, KnownSize(n, e)});
    }
    return OkStatus();
  }

  // A chunk's size when it is served as stored: the reference's length.
  static std::optional<uint64_t> KnownSize(const NodeInfo& n, const BlockEntry& e) {
    if (n.transcoded || (e.ref.flags & kChunkInline)) return std::nullopt;
    return e.ref.length;
  }

  Result<bool> HasAnyChunk(const NodeInfo& n) {
    ASSIGN_OR_RETURN(auto blocks, store_->BlockNumbers(n.record.id));
    return !blocks.empty();
  }

  Result<BlockEntry> Entry(const NodeInfo& n, uint64_t linear) {
    uint64_t block_no = linear / kBlockSize;
    auto key = std::make_pair(n.record.id, block_no);
    std::shared_ptr<const std::vector<BlockEntry>> block;
    {
      std::lock_guard lock(mu_);
      auto it = block_index_.find(key);
      if (it != block_index_.end()) {
        blocks_lru_.splice(blocks_lru_.begin(), blocks_lru_, it->second);
        block = it->second->second;
      }
    }
    if (!block) {
      ASSIGN_OR_RETURN(auto decoded, store_->GetBlock(n.record.id, block_no));
      block = std::make_shared<const std::vector<BlockEntry>>(std::move(decoded));
      std::lock_guard lock(mu_);
      if (!block_index_.count(key)) {
        blocks_lru_.emplace_front(key, block);
        block_index_[key] = blocks_lru_.begin();
        if (blocks_lru_.size() > kBlockCacheEntries) {
          block_index_.erase(blocks_lru_.back().first);
          blocks_lru_.pop_back();
        }
      }
    }
    uint64_t pos = linear % kBlockSize;
    if (pos >= block->size()) return BlockEntry{};
    return (*block)[pos];
  }

  Result<SourceInfo> CheckedSource(int64_t id) {
    SourceInfo indexed;
    bool verified = false;
    {
      std::lock_guard lock(mu_);
      auto it = sources_.find(id);
      if (it != sources_.end()) {
        indexed = it->second.first;
        verified = it->second.second;
      }
    }
    if (indexed.id == 0) {
      ASSIGN_OR_RETURN(indexed, store_->GetSource(id));
    }
    // Every read re-checks size and mtime; the content fingerprint is checked once per process.
    struct stat st;
    if (::stat(indexed.path.c_str(), &st) != 0) {
      return StaleError("source " + indexed.path + " is missing (indexed " +
                        std::to_string(indexed.size) + " bytes); re-index it");
    }
    SourceInfo now = indexed;
    now.size = static_cast<uint64_t>(st.st_size);
    now.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
    now.fingerprint.clear();
    std::string change = DescribeChange(indexed, now);
    if (change.empty() && !verified) {
      ASSIGN_OR_RETURN(SourceInfo probed, ProbeSource(indexed.path));
      change = DescribeChange(indexed, probed);
      verified = change.empty();
    }
    if (!change.empty()) {
      return StaleError("source " + indexed.path + " changed since it was indexed (" + change +
                        "); re-index it");
    }
    std::lock_guard lock(mu_);
    if (sources_.size() > 100000) sources_.clear();  // bound memory; reloaded on demand
    sources_[id] = {indexed, verified};
    return indexed;
  }

  Result<std::optional<Value>> GetChunk(const NodeInfo& n, const std::vector<uint64_t>& coords) {
    auto grid = n.array->GridShape();
    uint64_t linear = LinearChunkIndex(grid, coords);
    ASSIGN_OR_RETURN(BlockEntry e, Entry(n, linear));
    if (!e.present) return std::optional<Value>();
    std::string where = n.record.path + " chunk " + std::to_string(linear);
    Value v;
    if (e.ref.flags & kChunkInline) {
      ASSIGN_OR_RETURN(auto bytes, store_->GetInlineChunk(n.record.id, linear));
      if (!bytes) return CorruptError(store_->path().string() + ": inline " + where + " missing");
      v.bytes = std::move(*bytes);
    } else {
      if (e.ref.source >= n.sources.size()) {
        return CorruptError(store_->path().string() + ": " + where + ": bad source id");
      }
      ASSIGN_OR_RETURN(SourceInfo src, CheckedSource(n.sources[e.ref.source]));
      if (e.ref.offset + e.ref.length > src.size) {
        return CorruptError(src.path + ": " + where + " lies past the end of the file");
      }
      v.slice = FileSlice{src.path, e.ref.offset, e.ref.length};
    }
    if (!n.transcoded) return std::optional<Value>(std::move(v));
    auto out = transcoder_(n.record.id, *n.array, coords, e.ref, [&] { return Materialize(v); });
    if (!out.ok()) return out.status().WithContext(where);
    Value t;
    t.bytes = std::move(*out);
    return std::optional<Value>(std::move(t));
  }

  static constexpr size_t kBlockCacheEntries = 256;

  std::unique_ptr<RefStore> store_;
  ViewOptions options_;
  internal::ViewTranscoder transcoder_;

  std::mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<const NodeInfo>> nodes_;
  struct PairHash {
    size_t operator()(const std::pair<int64_t, uint64_t>& p) const {
      return std::hash<int64_t>()(p.first) * 1000003u ^ std::hash<uint64_t>()(p.second);
    }
  };
  using BlockList =
      std::list<std::pair<std::pair<int64_t, uint64_t>, std::shared_ptr<const std::vector<BlockEntry>>>>;
  BlockList blocks_lru_;
  std::unordered_map<std::pair<int64_t, uint64_t>, BlockList::iterator, PairHash> block_index_;
  std::unordered_map<int64_t, std::pair<SourceInfo, bool>> sources_;
};

}  // namespace

Result<std::unique_ptr<ZarrView>> OpenZarrView(const std::filesystem::path& index_path,
                                               ViewOptions options) {
  if (options.zarr_format != 2 && options.zarr_format != 3) {
    return InvalidArgumentError("zarr format must be 2 or 3, not " +
                                std::to_string(options.zarr_format));
  }
  ASSIGN_OR_RETURN(auto store, OpenRefStore(index_path, OpenMode::kReadOnly));
  return std::unique_ptr<ZarrView>(new RefZarrView(std::move(store), std::move(options)));
}

}  // namespace refzarr
