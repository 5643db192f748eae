#include "store/zarr_view.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <chrono>
#include <cstring>
#include <list>
#include <mutex>
#include <unordered_map>

#include <sys/stat.h>

#include "formats/core/byte_source.h"
#include "formats/core/chunk_cache.h"
#include "formats/core/crc32c.h"
#include "store/metadata.h"
#include "store/ref_store.h"
#include "store/shard_layout.h"
#include "store/source_pool.h"
#include "store/transcode/transcode.h"
#include "store/view_internal.h"

namespace refzarr {

Result<CodecPolicy> ParseCodecPolicy(std::string_view name) {
  if (name == "compat") return CodecPolicy::kCompat;
  if (name == "passthrough") return CodecPolicy::kPassthrough;
  return InvalidArgumentError("unknown codec policy '" + std::string(name) +
                              "' (expected compat or passthrough)");
}

Result<ShardingSpec> ParseShardingSpec(std::string_view text) {
  ShardingSpec spec;
  if (text == "none") return spec;
  if (text == "auto") {
    spec.mode = ShardingSpec::Mode::kAuto;
    return spec;
  }
  spec.mode = ShardingSpec::Mode::kShape;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(',', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view part = text.substr(start, end - start);
    uint64_t v = 0;
    auto [p, ec] = std::from_chars(part.data(), part.data() + part.size(), v);
    if (part.empty() || ec != std::errc() || p != part.data() + part.size() || v == 0 ||
        v > (uint64_t{1} << 20)) {
      return InvalidArgumentError("shards '" + std::string(text) +
                                  "': expected none, auto, or chunks per shard such as 16,16 "
                                  "(each 1 to 1048576)");
    }
    spec.chunks_per_shard.push_back(v);
    start = end + 1;
  }
  return spec;
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
  // Sharded arrays (Zarr v3 with ViewOptions::shards): chunks per shard along each dimension,
  // and the grid of shards; both empty when every chunk is its own key.
  std::vector<uint64_t> per_shard;
  std::vector<uint64_t> shard_grid;
  std::optional<ImageDesc> image;
  // Sources whose change makes the node's metadata (and listing) wrong: an array's chunk sources
  // (multi-file OME members, HDF5 external files), else every source of the node's file. Empty for
  // folder groups, which belong to no file.
  std::vector<int64_t> depends;
};

// Entries per ListPage of the List convenience.
constexpr size_t kListPageEntries = 4096;

}  // namespace

Result<std::optional<std::vector<DirEntry>>> ZarrView::List(std::string_view prefix) {
  std::vector<DirEntry> all;
  std::string after;
  while (true) {
    ASSIGN_OR_RETURN(auto page, ListPage(prefix, after, kListPageEntries));
    if (!page) {
      if (all.empty()) return std::optional<std::vector<DirEntry>>();
      break;  // Gone between pages: what was listed stands.
    }
    const bool last = page->size() < kListPageEntries;
    if (!page->empty()) after = page->back().name;
    for (DirEntry& e : *page) all.push_back(std::move(e));
    if (last) break;
  }
  return std::optional<std::vector<DirEntry>>(std::move(all));
}

namespace {

// The view of one state of the index: `store_` is a kSnapshot store, so the caches below (nodes,
// blocks, sources, transcoded chunks) and every query agree on one generation. LiveZarrView moves
// to a new one when the index changes.
class SnapshotView final : public ZarrView {
 public:
  SnapshotView(std::unique_ptr<RefStore> store, ViewOptions options)
      : store_(std::move(store)), options_(std::move(options)),
        transcoder_(internal::MakeViewTranscoder(options_)),
        shard_cache_(MakeChunkCache(options_.cache_bytes, 4)),
        sources_(*store_, PoolOptions(options_)) {}

  const ViewOptions& options() const override { return options_; }
  IndexVersion version() override { return {}; }  // LiveZarrView's to tell

  static SourcePoolOptions PoolOptions(const ViewOptions& o) {
    SourcePoolOptions p;
    p.openers = o.openers;
    p.revalidate_seconds = o.revalidate_seconds;
    p.max_open = o.max_open_sources;
    return p;
  }

  Result<std::optional<Value>> Get(std::string_view key) override {
    if (!ValidKey(key)) return std::optional<Value>();
    auto parts = SplitKey(key);
    if (parts.empty()) return std::optional<Value>();
    std::string_view last = parts.back();
    std::string parent = JoinParts(std::span(parts).first(parts.size() - 1));

    if (IsMetadataName(last)) {
      ASSIGN_OR_RETURN(auto node, Node(parent));
      if (node && node->record.kind != NodeKind::kFile) {
        RETURN_IF_ERROR(CheckNode(*node));
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
      RETURN_IF_ERROR(CheckNode(*w.node));
      ASSIGN_OR_RETURN(auto bytes, store_->GetFileBytes(w.node->record.id));
      if (!bytes) return std::optional<Value>();
      Value v;
      v.bytes = std::move(*bytes);
      return std::optional<Value>(std::move(v));
    }
    ASSIGN_OR_RETURN(auto chunk, FindChunk(parts));
    if (!chunk) return std::optional<Value>();
    if (!chunk->first->per_shard.empty()) return GetShard(*chunk->first, chunk->second);
    return GetChunk(*chunk->first, chunk->second);
  }

  Result<std::string> Materialize(const Value& value) override {
    if (!value.pieces.empty()) {
      std::string out(value.size(), '\0');
      uint64_t at = 0;
      for (const ValuePiece& p : value.pieces) {
        if (p.slice) {
          RETURN_IF_ERROR(p.slice->source->ReadInto(
              {p.slice->offset, p.slice->length},
              std::as_writable_bytes(std::span(out).subspan(at, p.slice->length))));
        } else {
          std::memcpy(out.data() + at, p.view().data(), p.length);
        }
        at += p.size();
      }
      return out;
    }
    if (!value.slice) return value.bytes;
    std::string out(value.slice->length, '\0');
    RETURN_IF_ERROR(value.slice->source->ReadInto({value.slice->offset, value.slice->length},
                                     std::as_writable_bytes(std::span(out))));
    return out;
  }

  Result<std::pair<EntryKind, uint64_t>> Stat(std::string_view key) override {
    if (key.empty()) return std::pair{EntryKind::kDirectory, uint64_t{0}};
    if (!ValidKey(key)) return std::pair{EntryKind::kMissing, uint64_t{0}};
    auto parts = SplitKey(key);
    ASSIGN_OR_RETURN(Walked w, Walk(parts));
    if (w.depth == parts.size()) {
      RETURN_IF_ERROR(CheckNode(*w.node));
      if (w.node->record.kind == NodeKind::kFile) {
        return std::pair{EntryKind::kFile, w.node->record.meta.value("size", uint64_t{0})};
      }
      return std::pair{EntryKind::kDirectory, uint64_t{0}};
    }
    ASSIGN_OR_RETURN(auto dir, FindChunkDirectory(parts));
    if (dir) {
      RETURN_IF_ERROR(CheckNode(*dir->first));
      return std::pair{EntryKind::kDirectory, uint64_t{0}};
    }
    ASSIGN_OR_RETURN(auto value, Get(key));
    if (!value) return std::pair{EntryKind::kMissing, uint64_t{0}};
    return std::pair{EntryKind::kFile, value->size()};
  }

  Result<std::optional<std::vector<DirEntry>>> ListPage(std::string_view prefix,
                                                        std::string_view after,
                                                        size_t limit) override {
    using Listing = std::optional<std::vector<DirEntry>>;
    while (!prefix.empty() && prefix.back() == '/') prefix.remove_suffix(1);
    if (!prefix.empty() && !ValidKey(prefix)) return Listing();
    std::string path(prefix);
    auto parts = SplitKey(prefix);
    ASSIGN_OR_RETURN(Walked w, Walk(parts));
    std::vector<DirEntry> out;
    if (w.node && w.depth == parts.size()) {
      const NodeInfo& node = *w.node;
      if (node.record.kind == NodeKind::kFile) return Listing();
      RETURN_IF_ERROR(CheckNode(node));
      if (node.array) {
        RETURN_IF_ERROR(ListArrayDirectory(node, after, limit, out));
      } else {
        RETURN_IF_ERROR(ListGroup(node, after, limit, out));
      }
      return Listing(std::move(out));
    }
    ASSIGN_OR_RETURN(auto dir, FindChunkDirectory(parts));
    if (!dir) return Listing();
    RETURN_IF_ERROR(CheckNode(*dir->first));
    RETURN_IF_ERROR(ListChunkLevel(*dir->first, dir->second, after, limit, out));
    return Listing(std::move(out));
  }

  Result<std::unique_ptr<DecodedChunks>> OpenDecodedChunks(std::string_view path) override {
    while (!path.empty() && path.back() == '/') path.remove_suffix(1);
    auto parts = SplitKey(path);
    std::shared_ptr<const NodeInfo> node;
    if (path.empty() || ValidKey(path)) {
      ASSIGN_OR_RETURN(Walked w, Walk(parts));
      if (w.node && w.depth == parts.size() && w.node->array) node = std::move(w.node);
    }
    if (!node) {
      return NotFoundError(store_->path().string() + ": no array at '" + std::string(path) + "'");
    }
    RETURN_IF_ERROR(CheckNode(*node));
    return std::unique_ptr<DecodedChunks>(std::make_unique<Chunks>(*this, std::move(node)));
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
        n->depends = n->sources;
        n->transcoded = NeedsTranscode(*n->array, options_.codecs,
                                       n->record.meta.value("flagged", false),
                                       options_.zarr_format);
        if (options_.zarr_format == 3) {
          // Transcoded shards are built whole in memory: fewer chunks each, so the shards a
          // client reads at once stay within the cache (docs/sharding.md, cost).
          const uint64_t chunk_bytes = std::max<uint64_t>(n->array->ChunkBytes(), 1);
          const uint64_t max_chunks = n->transcoded ? internal::kAutoShardBytes / chunk_bytes
                                                    : internal::kAutoShardChunks;
          n->per_shard = internal::ChunksPerShard(options_.shards, n->array->GridShape(),
                                                  max_chunks);
          if (!n->per_shard.empty()) {
            n->shard_grid = internal::ShardGrid(n->array->GridShape(), n->per_shard);
          }
        }
      } else if (n->record.kind == NodeKind::kGroup) {
        const json& im = n->record.meta["image"];
        if (!im.is_null()) {
          auto image = ImageDesc::FromJson(im);
          if (!image.ok()) return image.status().WithContext(store_->path().string() + ": " + path);
          n->image = std::move(*image);
        }
      }
      if (!n->array && n->record.owner) {
        ASSIGN_OR_RETURN(n->depends, FileSources(*n->record.owner));
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
      if (v == 3) {
        return std::optional<json>(RenderArrayV3(*n.array, n.transcoded, n.per_shard));
      }
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
    // The keys of a sharded array name shards.
    auto grid = node->per_shard.empty() ? node->array->GridShape() : node->shard_grid;
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

  // A directory inside an array's chunk keys: some coordinates named (v3: "c" alone too), with
  // a stored chunk below it. Where nothing is stored there is no directory, as in a real store.
  Result<std::optional<ChunkAt>> FindChunkDirectory(std::span<const std::string_view> parts) {
    ASSIGN_OR_RETURN(auto at, SplitArrayKey(parts));
    if (!at) return at;
    size_t rank = at->first->array->shape.size();
    bool partial = at->second.size() < rank &&
                   (options_.zarr_format == 3 || !at->second.empty());
    if (!partial) return std::optional<ChunkAt>();
    ASSIGN_OR_RETURN(auto below, NextKeyBelow(*at->first, at->second, 0));
    if (!below) return std::optional<ChunkAt>();
    return at;
  }

  // ---- listings ----

  // Children of a group: its metadata names merged, in name order, with its child nodes, one
  // indexed page of them.
  Status ListGroup(const NodeInfo& n, std::string_view after, size_t limit,
                   std::vector<DirEntry>& out) {
    std::vector<std::string> meta = MetadataNames(n);  // sorted
    ASSIGN_OR_RETURN(auto children, store_->ChildrenAfter(n.record.path, after, limit));
    const size_t strip = n.record.path.empty() ? 0 : n.record.path.size() + 1;
    auto m = std::upper_bound(meta.begin(), meta.end(), after,
                              [](std::string_view a, const std::string& b) { return a < b; });
    auto c = children.begin();
    while (out.size() < limit && (m != meta.end() || c != children.end())) {
      std::string_view child = c != children.end() ? std::string_view(c->path).substr(strip) : "";
      if (m != meta.end() && (c == children.end() || *m < child)) {
        out.push_back({*m++, false, std::nullopt});
        continue;
      }
      DirEntry entry{std::string(child), c->kind != NodeKind::kFile, std::nullopt};
      if (c->kind == NodeKind::kFile) entry.size = c->meta.value("size", uint64_t{0});
      out.push_back(std::move(entry));
      ++c;
    }
    return OkStatus();
  }

  // An array's own directory: metadata, then (v2) the first coordinate level or (v3) "c".
  Status ListArrayDirectory(const NodeInfo& n, std::string_view after, size_t limit,
                            std::vector<DirEntry>& out) {
    const size_t rank = n.array->shape.size();
    if (options_.zarr_format == 3) {
      if (after < std::string_view("c") && out.size() < limit) {
        BlockEntry e;
        ASSIGN_OR_RETURN(auto any, NextStoredBelow(n, {}, 0, &e));
        // A 0-d array's one chunk is the key "c" itself.
        if (any) out.push_back({"c", rank != 0, rank == 0 ? KnownSize(n, e) : std::nullopt});
      }
      if (after < std::string_view("zarr.json") && out.size() < limit) {
        out.push_back({"zarr.json", false, std::nullopt});
      }
      return OkStatus();
    }
    uint64_t last = 0;
    const bool resume_chunks = ParseIndex(after, last);
    if (!resume_chunks) {
      for (const std::string& m : MetadataNames(n)) {
        if (m > after && out.size() < limit) out.push_back({m, false, std::nullopt});
      }
    }
    if (rank == 0) {
      if (resume_chunks || out.size() >= limit) return OkStatus();
      ASSIGN_OR_RETURN(auto e, Entry(n, 0));
      if (e.present) out.push_back({"0", false, KnownSize(n, e)});
      return OkStatus();
    }
    return ListChunkLevel(n, {}, resume_chunks ? after : "", limit, out);
  }

  // One level of chunk keys below the coordinates named so far: the next coordinate's values
  // under which a chunk is stored, ascending, after the value `after`. Each entry costs one step
  // through the stored blocks (NextStoredBelow), whatever the size of the grid.
  Status ListChunkLevel(const NodeInfo& n, const std::vector<uint64_t>& coords,
                        std::string_view after, size_t limit, std::vector<DirEntry>& out) {
    const bool sharded = !n.per_shard.empty();
    const auto grid = sharded ? n.shard_grid : n.array->GridShape();
    const size_t level = coords.size();
    const bool leaf = level + 1 == grid.size();
    uint64_t value = 0;
    if (!after.empty()) {
      uint64_t last = 0;
      if (ParseIndex(after, last)) value = last + 1;
    }
    while (out.size() < limit && value < grid[level]) {
      BlockEntry e;
      ASSIGN_OR_RETURN(auto found, NextKeyBelow(n, coords, value, &e));
      if (!found) break;
      std::optional<uint64_t> size;
      if (leaf && sharded) {
        std::vector<uint64_t> shard = coords;
        shard.push_back(*found);
        ASSIGN_OR_RETURN(size, KnownShardSize(n, shard));
      } else if (leaf) {
        size = KnownSize(n, e);
      }
      out.push_back({std::to_string(*found), !leaf, size});
      value = *found + 1;
    }
    return OkStatus();
  }

  // The smallest value v >= `from` of the coordinate after `coords` such that a chunk is stored
  // below coords + (v): linear chunk indices are row-major, so the chunks below coords + (v) are
  // one run of indices, and the runs of increasing v follow one another. With `coords` naming
  // every coordinate but none is left, the answer is 0 when that chunk is stored. `entry` gets
  // the first stored chunk found.
  Result<std::optional<uint64_t>> NextStoredBelow(const NodeInfo& n,
                                                  const std::vector<uint64_t>& coords,
                                                  uint64_t from, BlockEntry* entry = nullptr) {
    const auto grid = n.array->GridShape();
    const size_t level = coords.size();
    // step: chunks per value of the next coordinate; values: how many values it has.
    uint64_t step = 1;
    for (size_t i = level + 1; i < grid.size(); ++i) {
      if (__builtin_mul_overflow(step, grid[i], &step)) return GridTooLarge(n);
    }
    const uint64_t values = level < grid.size() ? grid[level] : 1;
    if (step == 0 || from >= values) return std::optional<uint64_t>();
    uint64_t begin = 0;  // linear index of coords + (0, 0, ...)
    for (size_t i = 0; i < level; ++i) {
      if (__builtin_mul_overflow(begin, grid[i], &begin)) return GridTooLarge(n);
      begin += coords[i];
    }
    uint64_t span = 0, first = 0, end = 0;
    if (__builtin_mul_overflow(begin, values, &begin) ||
        __builtin_mul_overflow(begin, step, &begin) ||
        __builtin_mul_overflow(values, step, &span) || __builtin_mul_overflow(from, step, &first) ||
        __builtin_add_overflow(begin, span, &end)) {
      return GridTooLarge(n);
    }
    ASSIGN_OR_RETURN(auto linear, NextStored(n, begin + first, end, entry));
    if (!linear) return std::optional<uint64_t>();
    return std::optional<uint64_t>((*linear - begin) / step);
  }

  // NextStoredBelow in the key grid of `n`: chunk coordinates, or shard coordinates for a
  // sharded array, where the answer is the first v >= `from` such that a chunk is stored in a
  // shard below coords + (v). When the shards are one chunk deep along the dimensions already
  // named (as auto shards of stacks are), the chunks below coords + (v >= from) are one run of
  // linear indices and the first stored one gives v at once; otherwise each v is looked at in
  // turn (one FirstStoredInBox each), so a listing of a sparse grid of wide shards costs up to
  // the shard grid's extent along that dimension.
  Result<std::optional<uint64_t>> NextKeyBelow(const NodeInfo& n,
                                               const std::vector<uint64_t>& coords,
                                               uint64_t from, BlockEntry* entry = nullptr) {
    if (n.per_shard.empty()) return NextStoredBelow(n, coords, from, entry);
    const auto grid = n.array->GridShape();
    const auto& per = n.per_shard;
    const size_t rank = grid.size(), level = coords.size();
    std::vector<uint64_t> lo(rank, 0), hi(grid.begin(), grid.end());
    bool run = true;
    for (size_t i = 0; i < level; ++i) {
      lo[i] = coords[i] * per[i];
      hi[i] = std::min(grid[i], lo[i] + per[i]);
      run = run && per[i] == 1;
    }
    if (level == rank) {
      ASSIGN_OR_RETURN(auto any, FirstStoredInBox(n, lo, hi, entry));
      return any ? std::optional<uint64_t>(0) : std::optional<uint64_t>();
    }
    for (uint64_t v = from; v < n.shard_grid[level]; ++v) {
      lo[level] = v * per[level];
      hi[level] = run ? grid[level] : std::min(grid[level], lo[level] + per[level]);
      ASSIGN_OR_RETURN(auto found, FirstStoredInBox(n, lo, hi, entry));
      if (run) {
        if (!found) break;
        return std::optional<uint64_t>((*found)[level] / per[level]);
      }
      if (found) return std::optional<uint64_t>(v);
    }
    return std::optional<uint64_t>();
  }

  // The first stored chunk (row-major order) whose coordinates lie in the box [lo, hi) of the
  // chunk grid, nullopt when none does: NextStored over the box's span of linear indices, and
  // after a stored chunk outside the box, on from the box's next point after it. Each step
  // finds a stored chunk or moves to a later row of the box, so it costs at most one stored
  // block lookup per row of the box (fewer where rows run into each other).
  Result<std::optional<std::vector<uint64_t>>> FirstStoredInBox(const NodeInfo& n,
                                                                std::span<const uint64_t> lo,
                                                                std::span<const uint64_t> hi,
                                                                BlockEntry* entry) {
    using Found = std::optional<std::vector<uint64_t>>;
    const auto grid = n.array->GridShape();
    for (size_t i = 0; i < grid.size(); ++i) {
      if (lo[i] >= hi[i]) return Found();
    }
    std::vector<uint64_t> last(hi.begin(), hi.end());
    for (uint64_t& v : last) --v;
    uint64_t from = LinearChunkIndex(grid, lo);
    const uint64_t end = LinearChunkIndex(grid, last) + 1;
    while (from < end) {
      ASSIGN_OR_RETURN(auto linear, NextStored(n, from, end, entry));
      if (!linear) return Found();
      std::vector<uint64_t> c = ChunkCoords(grid, *linear);
      // The smallest point of the box after c in row-major order (c itself when inside).
      bool inside = true;
      for (size_t i = 0; i < c.size(); ++i) inside = inside && c[i] >= lo[i] && c[i] < hi[i];
      if (inside) return Found(std::move(c));
      std::optional<std::vector<uint64_t>> next;
      for (size_t d = c.size(); d-- > 0 && !next;) {
        bool prefix = true;
        for (size_t i = 0; i < d; ++i) prefix = prefix && c[i] >= lo[i] && c[i] < hi[i];
        if (!prefix) continue;
        const uint64_t v = std::max(c[d] + 1, lo[d]);
        if (v >= hi[d]) continue;
        std::vector<uint64_t> p(c.begin(), c.begin() + d);
        p.push_back(v);
        for (size_t i = d + 1; i < c.size(); ++i) p.push_back(lo[i]);
        next = std::move(p);
      }
      if (!next) return Found();
      from = LinearChunkIndex(grid, *next);
    }
    return Found();
  }

  // The inner chunks of the shard at `shard` (shard grid coordinates) in the order of its index
  // (C order of the shard's own chunk grid): their coordinates in the array's chunk grid, or
  // nullopt for a place past the edge of the grid.
  static std::vector<std::optional<std::vector<uint64_t>>> ShardMembers(
      const NodeInfo& n, std::span<const uint64_t> shard) {
    const auto grid = n.array->GridShape();
    const auto& per = n.per_shard;
    uint64_t count = 1;
    for (uint64_t k : per) count *= k;
    std::vector<std::optional<std::vector<uint64_t>>> out(count);
    for (uint64_t j = 0; j < count; ++j) {
      std::vector<uint64_t> c = ChunkCoords(per, j);
      bool inside = true;
      for (size_t i = 0; i < c.size(); ++i) {
        c[i] += shard[i] * per[i];
        inside = inside && c[i] < grid[i];
      }
      if (inside) out[j] = std::move(c);
    }
    return out;
  }

  // Entries of one array looked up in index order: each block taken from the cache once (one lock)
  // rather than once per chunk, as a shard's chunks mostly share one block.
  class BlockCursor {
   public:
    BlockCursor(SnapshotView& view, const NodeInfo& n) : view_(view), n_(n) {}
    Result<BlockEntry> At(uint64_t linear) {
      const uint64_t b = linear / kBlockSize;
      if (!block_ || b != block_no_) {
        ASSIGN_OR_RETURN(block_, view_.Block(n_, b));
        block_no_ = b;
      }
      const uint64_t pos = linear % kBlockSize;
      return pos < block_->size() ? (*block_)[pos] : BlockEntry{};
    }

   private:
    SnapshotView& view_;
    const NodeInfo& n_;
    std::shared_ptr<const std::vector<BlockEntry>> block_;
    uint64_t block_no_ = 0;
  };

  // A shard's size when the index alone tells it (its chunks served as stored, none inline):
  // the stored lengths plus the index, without a look at the sources.
  Result<std::optional<uint64_t>> KnownShardSize(const NodeInfo& n,
                                                 std::span<const uint64_t> shard) {
    if (n.transcoded) return std::optional<uint64_t>();
    const auto grid = n.array->GridShape();
    const auto members = ShardMembers(n, shard);
    uint64_t total = internal::ShardIndexBytes(members.size());
    BlockCursor cursor(*this, n);
    for (const auto& c : members) {
      if (!c) continue;
      ASSIGN_OR_RETURN(BlockEntry e, cursor.At(LinearChunkIndex(grid, *c)));
      if (!e.present) continue;
      if (e.ref.flags & kChunkInline) return std::optional<uint64_t>();
      total += e.ref.length;
    }
    return std::optional<uint64_t>(total);
  }

  Status GridTooLarge(const NodeInfo& n) {
    return CorruptError(store_->path().string() + ": " + n.record.path +
                        ": chunk grid has more than 2^64 chunks");
  }

  // The first stored chunk with a linear index in [from, end): the rest of the block holding
  // `from`, then the next stored block (one indexed lookup), so unstored stretches of the grid
  // cost nothing.
  Result<std::optional<uint64_t>> NextStored(const NodeInfo& n, uint64_t from, uint64_t end,
                                             BlockEntry* entry) {
    while (from < end) {
      const uint64_t b = from / kBlockSize;
      ASSIGN_OR_RETURN(auto block, Block(n, b));
      for (uint64_t pos = from % kBlockSize; pos < block->size() && b * kBlockSize + pos < end;
           ++pos) {
        if (!(*block)[pos].present) continue;
        if (entry != nullptr) *entry = (*block)[pos];
        return std::optional<uint64_t>(b * kBlockSize + pos);
      }
      ASSIGN_OR_RETURN(auto next, store_->NextBlock(n.record.id, b + 1));
      if (!next || *next > (end - 1) / kBlockSize) break;
      from = *next * kBlockSize;
    }
    return std::optional<uint64_t>();
  }

  // A chunk's size when it is served as stored: the reference's length.
  static std::optional<uint64_t> KnownSize(const NodeInfo& n, const BlockEntry& e) {
    if (n.transcoded || (e.ref.flags & kChunkInline)) return std::nullopt;
    return e.ref.length;
  }

  Result<BlockEntry> Entry(const NodeInfo& n, uint64_t linear) {
    ASSIGN_OR_RETURN(auto block, Block(n, linear / kBlockSize));
    uint64_t pos = linear % kBlockSize;
    if (pos >= block->size()) return BlockEntry{};
    return (*block)[pos];
  }

  // Decoded block `block_no` of the array (empty when none is stored), through the LRU cache.
  Result<std::shared_ptr<const std::vector<BlockEntry>>> Block(const NodeInfo& n,
                                                               uint64_t block_no) {
    auto key = std::make_pair(n.record.id, block_no);
    {
      std::lock_guard lock(mu_);
      auto it = block_index_.find(key);
      if (it != block_index_.end()) {
        blocks_lru_.splice(blocks_lru_.begin(), blocks_lru_, it->second);
        return it->second->second;
      }
    }
    ASSIGN_OR_RETURN(auto decoded, store_->GetBlock(n.record.id, block_no));
    auto block = std::make_shared<const std::vector<BlockEntry>>(std::move(decoded));
    std::lock_guard lock(mu_);
    if (!block_index_.count(key)) {
      blocks_lru_.emplace_front(key, block);
      block_index_[key] = blocks_lru_.begin();
      if (blocks_lru_.size() > kBlockCacheEntries) {
        block_index_.erase(blocks_lru_.back().first);
        blocks_lru_.pop_back();
      }
    }
    return block;
  }

  // ---- staleness ----

  // Every source of the scanned file `file` (itself and its companions), cached.
  Result<std::vector<int64_t>> FileSources(int64_t file) {
    {
      std::lock_guard lock(mu_);
      auto it = file_sources_.find(file);
      if (it != file_sources_.end()) return it->second;
    }
    ASSIGN_OR_RETURN(auto ids, store_->FileSourceIds(file));
    std::lock_guard lock(mu_);
    if (file_sources_.size() > 100000) file_sources_.clear();  // bound memory; reloaded on demand
    file_sources_[file] = ids;
    return ids;
  }

  // kStale, with the message that found it, once a source of the scanned file `file` is known to
  // have changed: from then on every key of the file's group fails alike.
  Status KnownStale(const std::optional<int64_t>& file) {
    if (!file) return OkStatus();
    std::lock_guard lock(mu_);
    auto it = stale_files_.find(*file);
    if (it == stale_files_.end()) return OkStatus();
    return StaleError(it->second);
  }

  // Whether the node still describes its sources: its file is not known stale and each source it
  // depends on has the generation it was indexed with (a stat each; the fingerprint is left to
  // chunk reads, which check it once per view).
  Status CheckNode(const NodeInfo& n) {
    RETURN_IF_ERROR(KnownStale(n.record.owner));
    for (int64_t id : n.depends) {
      RETURN_IF_ERROR(Checked(id, n.record.owner, /*open=*/false).status());
    }
    return OkStatus();
  }

  // The source `id` from the pool, checked (SourcePool::Get); with `open`, its open handle and
  // the content fingerprint checked once per view. A changed source makes its file (`file`, the
  // owner of the node being served) known stale.
  Result<CheckedSource> Checked(int64_t id, const std::optional<int64_t>& file, bool open) {
    Result<CheckedSource> got = sources_.Get(id, open, /*verify_content=*/open);
    if (got.ok() || got.status().code() != StatusCode::kStale) return got;
    if (!file) return got.status();
    std::lock_guard lock(mu_);
    // The first message found stays the file's: every key then fails with the same one.
    return StaleError(stale_files_.emplace(*file, got.status().message()).first->second);
  }

  // Where the stored bytes of the chunk at `coords` are: inline bytes, or a slice of its checked
  // source; nullopt when no chunk is stored there.
  struct StoredChunk {
    ChunkRef ref;
    Value value;
  };
  Result<std::optional<StoredChunk>> FindStored(const NodeInfo& n,
                                                std::span<const uint64_t> coords,
                                                const std::string& where) {
    uint64_t linear = LinearChunkIndex(n.array->GridShape(), coords);
    RETURN_IF_ERROR(KnownStale(n.record.owner));
    ASSIGN_OR_RETURN(BlockEntry e, Entry(n, linear));
    if (!e.present) return std::optional<StoredChunk>();
    StoredChunk stored{e.ref, {}};
    Value& v = stored.value;
    if (e.ref.flags & kChunkInline) {
      ASSIGN_OR_RETURN(auto bytes, store_->GetInlineChunk(n.record.id, linear));
      if (!bytes) return CorruptError(store_->path().string() + ": inline " + where + " missing");
      v.bytes = std::move(*bytes);
    } else {
      if (e.ref.source >= n.sources.size()) {
        return CorruptError(store_->path().string() + ": " + where + ": bad source id");
      }
      ASSIGN_OR_RETURN(CheckedSource src, Checked(n.sources[e.ref.source], n.record.owner, true));
      if (e.ref.offset + e.ref.length > src.indexed.size) {
        return CorruptError(DisplaySource(src.indexed.uri) + ": " + where +
                            " lies past the end of the file");
      }
      v.slice = FileSlice{std::move(src.open), e.ref.offset, e.ref.length};
    }
    if (e.crc32c) RETURN_IF_ERROR(Verify(n, e, where, v));
    return std::optional<StoredChunk>(std::move(stored));
  }

  // Verified mode (`index --checksums`): the chunk's bytes are read now, and only bytes whose
  // CRC-32C is the indexed one leave (a pass-through slice becomes its bytes: no sendfile). A
  // mismatch fails like a stale source, and makes the chunk's file known stale.
  Status Verify(const NodeInfo& n, const BlockEntry& e, const std::string& where, Value& v) {
    if (v.slice) {
      ASSIGN_OR_RETURN(v.bytes, Materialize(v));
      v.slice.reset();
    }
    const uint32_t got = Crc32c(std::as_bytes(std::span(v.bytes)));
    if (got == *e.crc32c) return OkStatus();
    std::string what = (e.ref.flags & kChunkInline) ? store_->path().string() + ": inline " + where
                                                    : where;
    if (!(e.ref.flags & kChunkInline) && e.ref.source < n.sources.size()) {
      auto info = store_->GetSource(n.sources[e.ref.source]);
      if (info.ok()) what = DisplaySource(info->uri) + ": " + where;
    }
    char hex[64];
    std::snprintf(hex, sizeof hex, " (CRC-32C %08x indexed, %08x read)", *e.crc32c, got);
    std::string message = what + ": the chunk's bytes changed since indexing" + hex;
    if (!n.record.owner) return StaleError(message);
    std::lock_guard lock(mu_);
    return StaleError(stale_files_.emplace(*n.record.owner, message).first->second);
  }

  static std::string ChunkWhere(const NodeInfo& n, const std::vector<uint64_t>& coords) {
    return n.record.path + " chunk " +
           std::to_string(LinearChunkIndex(n.array->GridShape(), coords));
  }

  Result<std::optional<Value>> GetChunk(const NodeInfo& n, const std::vector<uint64_t>& coords) {
    const std::string where = ChunkWhere(n, coords);
    ASSIGN_OR_RETURN(auto stored, FindStored(n, coords, where));
    if (!stored) return std::optional<Value>();
    if (!n.transcoded) return std::optional<Value>(std::move(stored->value));
    auto out = transcoder_(n.record.id, *n.array, coords, stored->ref,
                           [&] { return Materialize(stored->value); });
    if (!out.ok()) return out.status().WithContext(where);
    Value t;
    t.bytes = std::move(*out);
    return std::optional<Value>(std::move(t));
  }

  static std::string ShardWhere(const NodeInfo& n, std::span<const uint64_t> shard) {
    std::string s = n.record.path + " shard c";
    for (uint64_t c : shard) s += "/" + std::to_string(c);
    return s;
  }

  // The shard at `shard`, computed: its inner chunks as GetChunk serves them (slices of their
  // sources, adjacent ones merged, or transcoded bytes), then its index; nullopt when none of
  // its chunks is stored. Each source is checked once per shard. A transcoded shard is built
  // whole, once, and kept in shard_cache_ (its size is known only then).
  Result<std::optional<Value>> GetShard(const NodeInfo& n, const std::vector<uint64_t>& shard) {
    RETURN_IF_ERROR(KnownStale(n.record.owner));
    if (!n.transcoded) return BuildShard(n, shard);
    const ChunkCacheKey key{static_cast<uint64_t>(n.record.id),
                            LinearChunkIndex(n.shard_grid, shard), 0};
    bool empty = false;
    auto got = shard_cache_->GetOrLoad(key, [&]() -> Result<std::string> {
      ASSIGN_OR_RETURN(auto built, BuildShard(n, shard));
      if (!built) {
        empty = true;
        return std::string();
      }
      return Materialize(*built);
    });
    if (!got.ok()) return got.status();
    if (empty || (*got)->empty()) return std::optional<Value>();
    Value v;
    v.pieces.push_back(ValuePiece{*got, 0, (*got)->size(), std::nullopt});
    return std::optional<Value>(std::move(v));
  }

  Result<std::optional<Value>> BuildShard(const NodeInfo& n, const std::vector<uint64_t>& shard) {
    const auto grid = n.array->GridShape();
    const auto members = ShardMembers(n, shard);
    const std::string where = ShardWhere(n, shard);
    std::vector<internal::InnerChunk> index(members.size());
    std::unordered_map<uint32_t, CheckedSource> checked;  // by the array's local source id
    Value v;
    uint64_t at = 0;
    bool any = false;
    BlockCursor cursor(*this, n);
    for (size_t j = 0; j < members.size(); ++j) {
      if (!members[j]) continue;
      const std::vector<uint64_t>& c = *members[j];
      const uint64_t linear = LinearChunkIndex(grid, c);
      ASSIGN_OR_RETURN(BlockEntry e, cursor.At(linear));
      if (!e.present) continue;
      any = true;
      ValuePiece piece;
      // Transcoded, inline and checksummed chunks come through GetChunk (FindStored): only
      // bytes that verified mode checked go into a shard.
      if (n.transcoded || (e.ref.flags & kChunkInline) || e.crc32c) {
        ASSIGN_OR_RETURN(auto chunk, GetChunk(n, c));
        if (!chunk) continue;
        if (chunk->slice) {
          piece.slice = std::move(chunk->slice);
        } else {
          piece.length = chunk->bytes.size();
          piece.bytes = std::make_shared<const std::string>(std::move(chunk->bytes));
        }
      } else {
        if (e.ref.source >= n.sources.size()) {
          return CorruptError(store_->path().string() + ": " + where + ": bad source id");
        }
        auto it = checked.find(e.ref.source);
        if (it == checked.end()) {
          ASSIGN_OR_RETURN(CheckedSource src,
                           Checked(n.sources[e.ref.source], n.record.owner, true));
          it = checked.emplace(e.ref.source, std::move(src)).first;
        }
        const CheckedSource& src = it->second;
        if (e.ref.offset + e.ref.length > src.indexed.size) {
          return CorruptError(DisplaySource(src.indexed.uri) + ": " + where + ": chunk " +
                              std::to_string(linear) + " lies past the end of the file");
        }
        piece.slice = FileSlice{src.open, e.ref.offset, e.ref.length};
      }
      const uint64_t size = piece.size();
      index[j] = {at, size};
      at += size;
      if (size == 0) continue;
      // Chunks stored one after another in one source go out as one slice.
      ValuePiece* prev = v.pieces.empty() ? nullptr : &v.pieces.back();
      if (prev && prev->slice && piece.slice && prev->slice->source == piece.slice->source &&
          prev->slice->offset + prev->slice->length == piece.slice->offset) {
        prev->slice->length += piece.slice->length;
        continue;
      }
      v.pieces.push_back(std::move(piece));
    }
    if (!any) return std::optional<Value>();
    auto tail = std::make_shared<const std::string>(internal::EncodeShardIndex(index));
    v.pieces.push_back(ValuePiece{tail, 0, tail->size(), std::nullopt});
    return std::optional<Value>(std::move(v));
  }

  // DecodedChunks of one array node: the stored bytes through FindStored, decoded by DecodeChunk
  // (store/transcode) with the view's decoders, the path every transcoded chunk takes.
  class Chunks final : public DecodedChunks {
   public:
    Chunks(SnapshotView& view, std::shared_ptr<const NodeInfo> node)
        : view_(view), node_(std::move(node)), grid_(node_->array->GridShape()) {}

    const ArrayDesc& array() const override { return *node_->array; }

    Result<bool> Decode(std::span<const uint64_t> coords, std::span<std::byte> out) override {
      const ArrayDesc& a = *node_->array;
      bool inside = coords.size() == grid_.size();
      for (size_t i = 0; inside && i < coords.size(); ++i) inside = coords[i] < grid_[i];
      if (!inside) {
        return InvalidArgumentError(node_->record.path + ": chunk coordinates outside the grid");
      }
      const std::vector<uint64_t> at(coords.begin(), coords.end());
      const std::string where = ChunkWhere(*node_, at);
      if (out.size() != a.ChunkBytes()) {
        return InvalidArgumentError(where + ": a buffer of " + std::to_string(out.size()) +
                                    " bytes for a chunk of " + std::to_string(a.ChunkBytes()));
      }
      ASSIGN_OR_RETURN(auto stored, view_.FindStored(*node_, coords, where));
      if (!stored) return false;
      ASSIGN_OR_RETURN(std::string bytes, view_.Materialize(stored->value));
      Status decoded = DecodeChunk(a, coords, stored->ref, std::as_bytes(std::span(bytes)),
                                   view_.options_.decoders, out);
      if (!decoded.ok()) return decoded.WithContext(where);
      return true;
    }

   private:
    SnapshotView& view_;
    const std::shared_ptr<const NodeInfo> node_;
    const std::vector<uint64_t> grid_;
  };

  static constexpr size_t kBlockCacheEntries = 256;

  std::unique_ptr<RefStore> store_;
  ViewOptions options_;
  internal::ViewTranscoder transcoder_;
  // Transcoded shards, whole (GetShard): their index needs every inner chunk's size.
  std::unique_ptr<ChunkCache> shard_cache_;

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
  SourcePool sources_;
  std::unordered_map<int64_t, std::vector<int64_t>> file_sources_;
  // Scanned files with a source known to have changed -> the message that found it. Never
  // cleared: a changed source stays changed until re-indexed into a new index.
  std::unordered_map<int64_t, std::string> stale_files_;
};

// The identity of the index file (a merge or a copy moved into its place is another index).
struct IndexFile {
  dev_t dev = 0;
  ino_t ino = 0;
  bool operator==(const IndexFile&) const = default;
};

std::optional<IndexFile> IdentifyIndex(const std::filesystem::path& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return IndexFile{st.st_dev, st.st_ino};
}

int64_t RealtimeNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The view the API hands out: the current SnapshotView, replaced by one of the new state when a
// look (at most every index_check_seconds) finds the index changed. A call takes the current
// snapshot once and answers from it alone; the old one goes when its last call has ended.
class LiveZarrView final : public ZarrView {
 public:
  LiveZarrView(std::filesystem::path path, ViewOptions options)
      : path_(std::move(path)), options_(std::move(options)) {}

  // Opens the first state.
  Status Init() {
    ASSIGN_OR_RETURN(auto first, OpenState(/*serial=*/1));
    state_ = std::move(first);
    Schedule(std::chrono::steady_clock::now());
    return OkStatus();
  }

  const ViewOptions& options() const override { return options_; }
  IndexVersion version() override { return Current()->version; }

  Result<std::optional<Value>> Get(std::string_view key) override {
    return Call([&](ZarrView& v) { return v.Get(key); });
  }
  Result<std::string> Materialize(const Value& value) override {
    return Current()->view->Materialize(value);  // reads the slice's own source only
  }
  Result<std::pair<EntryKind, uint64_t>> Stat(std::string_view key) override {
    return Call([&](ZarrView& v) { return v.Stat(key); });
  }
  Result<std::optional<std::vector<DirEntry>>> ListPage(std::string_view prefix,
                                                        std::string_view after,
                                                        size_t limit) override {
    return Call([&](ZarrView& v) { return v.ListPage(prefix, after, limit); });
  }
  Result<std::unique_ptr<DecodedChunks>> OpenDecodedChunks(std::string_view path) override {
    std::shared_ptr<const State> state = Current();
    ASSIGN_OR_RETURN(auto chunks, state->view->OpenDecodedChunks(path));
    return std::unique_ptr<DecodedChunks>(
        std::make_unique<PinnedChunks>(std::move(state), std::move(chunks)));
  }

 private:
  struct State {
    std::unique_ptr<ZarrView> view;
    IndexVersion version;
    uint64_t generation = 0;
    std::optional<IndexFile> file;
  };

  // Decoded chunks that keep the state they were opened in (and its store and sources) alive.
  class PinnedChunks final : public DecodedChunks {
   public:
    PinnedChunks(std::shared_ptr<const State> state, std::unique_ptr<DecodedChunks> chunks)
        : state_(std::move(state)), chunks_(std::move(chunks)) {}
    const ArrayDesc& array() const override { return chunks_->array(); }
    Result<bool> Decode(std::span<const uint64_t> coords, std::span<std::byte> out) override {
      return chunks_->Decode(coords, out);
    }

   private:
    std::shared_ptr<const State> state_;
    std::unique_ptr<DecodedChunks> chunks_;
  };

  template <typename F>
  auto Call(F&& f) -> decltype(f(std::declval<ZarrView&>())) {
    std::shared_ptr<const State> state = Current();  // held to the end: one state per call
    return f(*state->view);
  }

  Result<std::shared_ptr<const State>> OpenState(uint64_t serial) {
    auto state = std::make_shared<State>();
    state->file = IdentifyIndex(path_);  // before the open: a later replacement is seen next time
    ASSIGN_OR_RETURN(auto store, OpenRefStore(path_, OpenMode::kSnapshot));
    ASSIGN_OR_RETURN(state->generation, store->IndexGeneration());
    state->version = {serial, RealtimeNs()};
    state->view = std::make_unique<SnapshotView>(std::move(store), options_);
    return std::shared_ptr<const State>(std::move(state));
  }

  void Schedule(std::chrono::steady_clock::time_point now) {  // under mu_
    next_look_ = now + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                           std::chrono::duration<double>(std::max(0.0, options_.index_check_seconds)));
  }

  // The state to answer from: looks for a change when one is due, one thread at a time; the
  // others go on with the state they have meanwhile.
  std::shared_ptr<const State> Current() {
    std::shared_ptr<const State> state;
    {
      std::lock_guard lock(mu_);
      state = state_;
      const auto now = std::chrono::steady_clock::now();
      if (options_.index_check_seconds < 0 || now < next_look_ || looking_) {
        return state;
      }
      looking_ = true;
      Schedule(now);
    }
    std::shared_ptr<const State> fresh = Look(*state);
    std::lock_guard lock(mu_);
    looking_ = false;
    if (fresh && fresh->version.serial > state_->version.serial) state_ = fresh;
    return state_;
  }

  // A new state when the index changed since `state` (another file in its place, or a higher
  // generation), else null. An index that cannot be read now (gone, half-copied) leaves the view
  // answering from the state it has: that state stays consistent, and its open connections keep
  // their file.
  std::shared_ptr<const State> Look(const State& state) {
    std::optional<IndexFile> file = IdentifyIndex(path_);
    if (!file) return nullptr;
    if (file == state.file) {
      if (!watcher_ || watcher_file_ != file) {
        auto opened = OpenRefStore(path_, OpenMode::kSnapshot);
        if (!opened.ok()) return nullptr;
        watcher_ = std::move(*opened);
        watcher_file_ = file;
      }
      Result<uint64_t> generation = watcher_->IndexGeneration();
      if (!generation.ok() || *generation == state.generation) return nullptr;
    }
    auto fresh = OpenState(state.version.serial + 1);
    return fresh.ok() ? std::move(*fresh) : nullptr;
  }

  const std::filesystem::path path_;
  const ViewOptions options_;
  std::mutex mu_;
  std::shared_ptr<const State> state_;
  std::chrono::steady_clock::time_point next_look_;
  bool looking_ = false;
  // Read by the one thread looking (looking_): the latest committed generation.
  std::unique_ptr<RefStore> watcher_;
  std::optional<IndexFile> watcher_file_;
};

}  // namespace

Result<std::unique_ptr<ZarrView>> OpenZarrView(const std::filesystem::path& index_path,
                                               ViewOptions options) {
  if (options.zarr_format != 2 && options.zarr_format != 3) {
    return InvalidArgumentError("zarr format must be 2 or 3, not " +
                                std::to_string(options.zarr_format));
  }
  if (options.zarr_format == 2 && options.shards.mode != ShardingSpec::Mode::kNone) {
    return InvalidArgumentError("shards need Zarr v3 (--zarr-format 3): Zarr v2 has no sharding");
  }
  auto view = std::make_unique<LiveZarrView>(index_path, std::move(options));
  RETURN_IF_ERROR(view->Init());
  return std::unique_ptr<ZarrView>(std::move(view));
}

}  // namespace refzarr
