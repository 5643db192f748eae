// RefStore: the SQLite reference store. Sources, the nodes of the virtual tree with their metadata,
// and chunk references in compact blocks (store/chunk_block.h). Schema: docs/index-format.md.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "formats/core/recording_sink.h"
#include "formats/core/source.h"
#include "formats/core/status.h"
#include "store/chunk_block.h"

namespace refzarr {

/// Schema version written to and required from every index.
inline constexpr int kIndexSchemaVersion = 3;

/// Identity of a source file at indexing time; a source whose identity changed is stale.
struct SourceInfo {
  int64_t id = 0;
  std::string uri;          ///< Where the bytes are: file:///abs/path (FileUri), later https://, s3://.
  uint64_t size = 0;        ///< Bytes.
  Generation generation;    ///< The opener's version of the bytes at index time (SourceStat).
  std::string fingerprint;  ///< xxh3-64 of size + first and last 64 KiB, hex (ContentFingerprint).
  std::string status;       ///< "ok", "failed", or "companion".
  std::string error;        ///< Why indexing failed (status "failed").
  std::string group;        ///< Group path of the file in the tree (scanned files only).
  std::string scanner;      ///< Scanner::Name() that indexed it (scanned files; empty otherwise).
};

/// The source at `uri` now: its size and generation (a stat; nothing opened, nothing read).
/// kNotFound / kIo on failure, kUnsupported for a scheme `openers` lacks.
Result<SourceInfo> StatSource(std::string_view uri,
                              const SourceOpeners& openers = LocalSourceOpeners());

/// StatSource plus the content fingerprint, from one open of the source and the same read (up to
/// 128 KiB). With `head`, also returns the source's first min(size, head_bytes <= 64 KiB) bytes
/// for sniffing. The size and generation are the open source's own. kNotFound / kIo on failure.
Result<SourceInfo> ProbeSource(std::string_view uri, std::vector<std::byte>* head = nullptr,
                               size_t head_bytes = 0,
                               const SourceOpeners& openers = LocalSourceOpeners());

/// Why `now` differs from `indexed` ("size changed from 10 to 12 bytes"), or empty when it does
/// not. An empty `now.fingerprint` (StatSource) compares size and generation only.
std::string DescribeChange(const SourceInfo& indexed, const SourceInfo& now);

/// The tree path "a/b"; either part may be empty (the root), then the other is the result.
std::string JoinTreePath(std::string_view a, std::string_view b);

enum class NodeKind { kGroup = 0, kArray = 1, kFile = 2 };

/// A node of the tree as stored. `meta` for a group: {"attributes", "image" (ImageDesc json or
/// null), "file_root" (bool)}; for an array: {"array" (ArrayDesc json), "sources" (global source id
/// per local source id), "flagged" (some chunk has flags), "stored" (chunk count)}; for a file:
/// {"size"}.
struct NodeRecord {
  int64_t id = 0;
  std::string path;
  NodeKind kind = NodeKind::kGroup;
  nlohmann::json meta;
  /// Source id of the scanned file the node belongs to; unset for folder groups (shared by the
  /// files below them, owned by none).
  std::optional<int64_t> owner;
};

/// An array a scan refused (ScannedFile::Refusal): where it would have been and why it is not.
struct RefusedArray {
  std::string path;    ///< Tree path the array would have had.
  std::string source;  ///< The scanned file, as DisplaySource shows it.
  std::string reason;
};

/// Totals for `refzarr info`.
struct StoreStats {
  uint64_t sources = 0, failed_sources = 0, groups = 0, arrays = 0, images = 0, chunk_refs = 0;
  uint64_t refused_arrays = 0;  ///< Arrays refused at index time (RefusedArrays()).
  uint64_t block_bytes = 0;  ///< Bytes of encoded chunk blocks.
  uint64_t index_bytes = 0;  ///< Size of the database file(s).
};

/// The reference store. Reading methods are safe from several threads (a connection per thread is
/// leased from a pool); writing methods must be called from one thread at a time.
class RefStore {
 public:
  virtual ~RefStore() = default;

  /// Replaces everything indexed for the scanned file `main` (placed at `group`) with `scan`,
  /// atomically: after a failure the store holds the previous state. Companion sources are
  /// `companions` (probed), in the order of scan.companions.
  virtual Status PutFile(const SourceInfo& main, std::string_view group, std::string_view scanner,
                         const ScannedFile& scan, const std::vector<SourceInfo>& companions) = 0;
  /// Records that `main` failed to index (its old nodes, if any, are removed).
  virtual Status PutFailure(const SourceInfo& main, std::string_view group,
                            std::string_view error) = 0;
  /// Removes the scanned file at `path` and everything indexed for it (nodes, references,
  /// companions), and folder groups left empty, in one transaction. Absent: nothing happens.
  virtual Status RemoveSource(std::string_view path) = 0;
  /// Paths of the scanned files under the folder `prefix` (ending in '/') that sort after
  /// `after`, in order, at most `limit` of them: page through with `after` = the last path seen
  /// (start with `prefix`). An indexed range scan per page.
  virtual Result<std::vector<std::string>> SourcesUnder(std::string_view prefix,
                                                        std::string_view after, size_t limit) = 0;
  /// The source row for a scanned file at `path`, if any.
  virtual Result<std::optional<SourceInfo>> FindSource(std::string_view path) = 0;

  virtual Result<std::optional<NodeRecord>> GetNode(std::string_view path) = 0;
  /// Direct children of the node at `path` ("" for the root), sorted by name.
  virtual Result<std::vector<NodeRecord>> Children(std::string_view path) = 0;
  /// Every node strictly below `path`, sorted by path.
  virtual Result<std::vector<NodeRecord>> Subtree(std::string_view path) = 0;
  /// At most `limit` direct children of the node at `path` whose names sort after `after` (every
  /// child when `after` is empty), sorted by name: page through with `after` = the last name seen.
  /// An indexed range scan per page.
  virtual Result<std::vector<NodeRecord>> ChildrenAfter(std::string_view path,
                                                        std::string_view after, size_t limit) = 0;
  /// Decoded block `block` of array `node_id` (empty when it has no block).
  virtual Result<std::vector<BlockEntry>> GetBlock(int64_t node_id, uint64_t block) = 0;
  /// Indices of the blocks an array has, ascending.
  virtual Result<std::vector<uint64_t>> BlockNumbers(int64_t node_id) = 0;
  /// The first block of array `node_id` with an index at or after `block`; nullopt when none. One
  /// indexed lookup, so sparse grids are walked by their stored blocks only.
  virtual Result<std::optional<uint64_t>> NextBlock(int64_t node_id, uint64_t block) = 0;
  /// Bytes of an inline chunk.
  virtual Result<std::optional<std::string>> GetInlineChunk(int64_t node_id, uint64_t chunk) = 0;
  /// Bytes of a file node.
  virtual Result<std::optional<std::string>> GetFileBytes(int64_t node_id) = 0;
  virtual Result<SourceInfo> GetSource(int64_t id) = 0;
  /// Ids of every source of the scanned file `file_id`: the file itself, then its companions.
  virtual Result<std::vector<int64_t>> FileSourceIds(int64_t file_id) = 0;
  virtual Result<std::vector<SourceInfo>> Sources() = 0;
  /// Refused arrays in path order, at most `limit` of them.
  virtual Result<std::vector<RefusedArray>> RefusedArrays(size_t limit) = 0;
  virtual Result<StoreStats> Stats() = 0;
  /// A value of the index's `meta` table ("root": the folder URI tree paths are relative to), or
  /// nullopt when unset.
  virtual Result<std::optional<std::string>> GetMeta(std::string_view key) = 0;
  /// Sets a `meta` value, in its own transaction.
  virtual Status SetMeta(std::string_view key, std::string_view value) = 0;
  /// The index's generation: a counter every write transaction of a RefStore raises, so two
  /// states of an index with the same generation hold the same rows. A kSnapshot store answers
  /// the generation it is pinned to; the others the latest committed one. 0 for an index never
  /// written since generations were kept.
  virtual Result<uint64_t> IndexGeneration() = 0;
  virtual const std::filesystem::path& path() const = 0;

  // ---- rm and relocate (cli/rm_command.cc, cli/relocate_command.cc) ----

  /// Removes every scanned file (indexed or failed) whose group is `tree_path` or lies under it
  /// ("" = all), with everything indexed for them, and the folder groups left empty, in one
  /// transaction. Returns how many scanned files were removed (0: `tree_path` names none).
  /// Pages through the files by group on the `sources_by_group` index.
  virtual Result<uint64_t> RemoveTree(std::string_view tree_path) = 0;
  /// A source row with its owner (0 for a scanned file, else the file it serves).
  struct OwnedSource {
    SourceInfo info;
    int64_t owner = 0;
  };
  /// At most `limit` sources (scanned files and companions) whose URI is `base` or lies under it
  /// as a folder (`base` + "/"...; `base` without a trailing '/'), that sort after
  /// (`after_uri`, `after_owner`), in (uri, owner) order: page through with the last row seen
  /// (start with "", 0). An indexed range scan per page.
  virtual Result<std::vector<OwnedSource>> SourcesAtOrUnder(std::string_view base,
                                                            std::string_view after_uri,
                                                            int64_t after_owner, size_t limit) = 0;
  /// A new URI and generation for the source `id`.
  struct SourceMove {
    int64_t id = 0;
    std::string uri;
    Generation generation;
  };
  /// Rewrites the URI and generation of each source of `moves`, in one transaction. A move whose
  /// new URI the index already holds for the same owner is not made: the positions of those in
  /// `moves` are returned.
  virtual Result<std::vector<size_t>> MoveSources(const std::vector<SourceMove>& moves) = 0;
};

enum class OpenMode {
  kReadOnly,   ///< Each read sees the latest committed state.
  kReadWrite,  ///< Creates the index if missing.
  /// Read-only, and every read sees one state of the index, the one at open, from however many
  /// threads: the store holds a few connections, each in a read transaction pinned to that
  /// state's generation (a thread waits for a free one). What a server answers from while the
  /// index is re-indexed (store/zarr_view.cc). Needs the WAL journal, which every refzarr index
  /// has, so the pinned reads never hold up a writer.
  kSnapshot,
};

/// Opens the index at `path`. kNotFound when reading a missing index; kCorrupt when the file is
/// not a refzarr index or has another schema version.
Result<std::unique_ptr<RefStore>> OpenRefStore(const std::filesystem::path& path, OpenMode mode);

}  // namespace refzarr
