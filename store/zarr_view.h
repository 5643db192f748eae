// ZarrView: an index seen as a read-only Zarr store (keys -> bytes). The public C++ store API; the
// HTTP server, the FUSE mount, `refzarr cat/ls` and `export` all read through it.
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "formats/core/model.h"
#include "formats/core/source.h"
#include "formats/core/scanner.h"
#include "formats/core/status.h"

namespace refzarr {

/// What the chunks of a view look like.
enum class CodecPolicy {
  kCompat,       ///< Standard codecs pass through; anything else is transcoded to blosc (default).
  kPassthrough,  ///< Stored bytes exactly; metadata names the codec other tools use.
};

/// Parses "compat" / "passthrough".
Result<CodecPolicy> ParseCodecPolicy(std::string_view name);

/// How a Zarr v3 view groups each array's chunks into shard objects (the `sharding_indexed`
/// codec): every shard is computed from the chunk references, its inner chunks the stored (or
/// transcoded) chunks in order, then the shard index. See docs/sharding.md.
struct ShardingSpec {
  enum class Mode {
    kNone,   ///< One object per chunk (no sharding).
    kAuto,   ///< About 64-1,024 chunks a shard, shaped to the grid (whole planes when they fit).
    kShape,  ///< `chunks_per_shard` chunks along each of the last dimensions.
  };
  Mode mode = Mode::kNone;
  /// kShape: chunks per shard along the last chunks_per_shard.size() dimensions (right-aligned;
  /// earlier dimensions get 1), each clipped to the array's chunk grid.
  std::vector<uint64_t> chunks_per_shard;
  bool operator==(const ShardingSpec&) const = default;
};

/// Parses "none", "auto" or a shape of chunks per shard ("16,16", "1,4,8,8"; each >= 1).
/// kInvalidArgument otherwise.
Result<ShardingSpec> ParseShardingSpec(std::string_view text);

struct ViewOptions {
  int zarr_format = 2;  ///< 2: OME-NGFF 0.4 on Zarr v2; 3: OME-NGFF 0.5 on Zarr v3.
  CodecPolicy codecs = CodecPolicy::kCompat;
  /// Shards of the arrays (Zarr v3 only: a v2 view with shards is kInvalidArgument at open).
  ShardingSpec shards;
  uint64_t cache_bytes = 256ull << 20;  ///< Bound of the transcoded-chunk cache.
  /// Decoders for non-native chunks, by family; not owned, must outlive the view.
  std::vector<const ChunkDecoder*> decoders;
  /// Openers of the sources' URIs; not owned, must outlive the view. Null: local files only.
  const SourceOpeners* openers = nullptr;
  /// A source checked this many seconds ago or less is served without checking it again (no
  /// stat); 0 checks its generation on every read (SourcePoolOptions).
  double revalidate_seconds = 0;
  /// Most sources held open at once (SourcePoolOptions::max_open).
  size_t max_open_sources = 256;
  /// How often, at most, the view looks whether the index changed (a re-index, rm, relocate, or
  /// another index file moved into its place) and moves to its new state; negative: never.
  double index_check_seconds = 1;
};

/// Which state of the index a view answers from (ZarrView::version).
struct IndexVersion {
  uint64_t serial = 0;  ///< Grows by one each time the view moves to a newer state of the index.
  int64_t loaded_ns = 0;  ///< When the view moved to it (CLOCK_REALTIME, ns): a time for mtimes.
  bool operator==(const IndexVersion&) const = default;
};

/// A part of a source that is served as is (a pass-through chunk). `source` is the view's open,
/// validated handle (SourcePool): front ends read it, or send it with sendfile/splice from its
/// LocalDescriptor(), and never open the source themselves.
struct FileSlice {
  std::shared_ptr<ByteSource> source;
  uint64_t offset = 0;
  uint64_t length = 0;
};

/// One part of a value made of several (a shard): a window of shared bytes in memory, or a
/// slice of a source.
struct ValuePiece {
  /// The bytes the window [offset, offset + length) lies in, unless `slice` is set. Shared and
  /// immutable: a transcoded shard held by the view's cache is sent without a copy.
  std::shared_ptr<const std::string> bytes;
  uint64_t offset = 0;
  uint64_t length = 0;
  std::optional<FileSlice> slice;  ///< A pass-through part of a source; `bytes` is null.
  uint64_t size() const { return slice ? slice->length : length; }
  /// The window's bytes (`bytes` set).
  std::string_view view() const { return std::string_view(*bytes).substr(offset, length); }
};

/// The value of one key.
struct Value {
  std::string bytes;               ///< The value, unless `slice` or `pieces` is set.
  std::optional<FileSlice> slice;  ///< Set for pass-through chunks of local files; `bytes` is empty.
  /// Set for a value computed from several parts (a shard: its inner chunks, then its index):
  /// the value is their concatenation; `bytes` and `slice` are empty. Front ends send it piece
  /// by piece (ValueRange), without gathering it in memory.
  std::vector<ValuePiece> pieces;
  bool is_metadata = false;        ///< JSON metadata (.zarray, zarr.json, ...) rather than a chunk.
  /// Bytes of the value.
  uint64_t size() const {
    if (slice) return slice->length;
    if (pieces.empty()) return bytes.size();
    uint64_t total = 0;
    for (const ValuePiece& p : pieces) total += p.size();
    return total;
  }
};

/// The parts of `value` that hold its bytes [offset, offset + length), in order, each clipped
/// (a slice narrowed, bytes cut); the range must lie inside the value. A plain value gives one
/// piece (a plain value's bytes are copied once into a shared string; windows are not copied).
/// (Inline: the front ends depend on this header alone, not on the store library.)
inline std::vector<ValuePiece> ValueRange(const Value& value, uint64_t offset, uint64_t length) {
  std::vector<ValuePiece> out;
  auto take = [&](const ValuePiece& p, uint64_t skip, uint64_t n) {
    ValuePiece q = p;
    if (q.slice) {
      q.slice->offset += skip;
      q.slice->length = n;
    } else {
      q.offset += skip;
      q.length = n;
    }
    out.push_back(std::move(q));
  };
  if (value.pieces.empty()) {
    ValuePiece whole;
    if (value.slice) {
      whole.slice = value.slice;
    } else {
      whole.bytes = std::make_shared<const std::string>(value.bytes);
      whole.length = value.bytes.size();
    }
    if (length > 0) take(whole, offset, length);
    return out;
  }
  uint64_t at = 0;  // where the current piece starts in the value
  for (const ValuePiece& p : value.pieces) {
    const uint64_t size = p.size();
    if (length == 0) break;
    if (offset < at + size) {
      const uint64_t skip = offset - at;
      const uint64_t n = std::min(length, size - skip);
      take(p, skip, n);
      offset += n;
      length -= n;
    }
    at += size;
  }
  return out;
}

enum class EntryKind { kMissing, kFile, kDirectory };

/// The chunks of one array of a view, decoded to plain elements: what the typed read API
/// (store/array_reader.h) reads through. It answers from the state of the index it was opened in
/// (ZarrView: one state at a time), however the index changes later: open it again to see a
/// re-index. Sources are still checked on every read, as by Get. Safe to call from several
/// threads; it keeps that state alive, so it may outlive the view (the view's decoders may not).
class DecodedChunks {
 public:
  virtual ~DecodedChunks() = default;
  /// The array as indexed: shape, chunk grid, dtype, fill value, dimension names, and its stored
  /// encoding (not the one a compat view serves).
  virtual const ArrayDesc& array() const = 0;
  /// Decodes the chunk at `coords` (one per dimension, inside the grid) into `out`, which holds
  /// array().ChunkBytes() bytes: C order, elements in the dtype's byte order, the same for every
  /// codec policy and Zarr format of the view. The standard codecs decode in process, the rest
  /// with the view's decoders (ViewOptions::decoders), as the transcoder does. false when no
  /// chunk is stored at `coords` (`out` untouched: the caller fills it). Errors name the array
  /// and the chunk: kStale, kIo, kCorrupt as Get; kUnsupported when the view has no decoder of
  /// the array's encoding; kInvalidArgument when `coords` or the size of `out` do not fit.
  virtual Result<bool> Decode(std::span<const uint64_t> coords, std::span<std::byte> out) = 0;
};

/// One child of a directory of the view.
struct DirEntry {
  std::string name;
  bool is_directory = false;
  /// A file's size in bytes when the index knows it without reading or rendering anything
  /// (pass-through chunks and shards of them, plain files); unset otherwise (metadata,
  /// transcoded chunks and their shards: ask Stat).
  std::optional<uint64_t> size;
};

/// A read-only Zarr store over an index. All methods are safe to call from several threads.
/// Keys have no leading '/'; "" is the root directory.
///
/// Staleness: a key of a file's group (its metadata, chunks, plain files, directories and listings)
/// fails with kStale, naming the source, once any source of that file is known to have changed
/// since indexing. Metadata, listings and Stat check (one stat() each) the sources the node depends
/// on: an array's, every source its chunks use; a group's or plain file's, every source of its
/// file. A chunk checks its own source (size and mtime on every read, the content fingerprint once
/// per view). Folder groups above the files, other files and Stat("") never fail for a stale file
/// (the root of a one-file index is that file's group: its listing does).
///
/// Index changes: the view answers from one state of the index at a time (RefStore kSnapshot):
/// every call sees the metadata and the chunk references of the same state, never a mix. At most
/// every ViewOptions::index_check_seconds it looks whether the index changed, and the calls after
/// that answer from the new state; a call under way finishes in the state it began in.
class ZarrView {
 public:
  virtual ~ZarrView() = default;
  /// The value of `key`, or nullopt when the view has no such key (a missing chunk: fill value).
  /// kStale when the source changed since indexing; kIo/kCorrupt when it cannot be read.
  virtual Result<std::optional<Value>> Get(std::string_view key) = 0;
  /// Reads the bytes of `value` into memory (for slices and the slices among its pieces: from
  /// the source file, re-checked).
  virtual Result<std::string> Materialize(const Value& value) = 0;
  /// Whether `key` is a file, a directory or nothing, and a file's size in bytes.
  virtual Result<std::pair<EntryKind, uint64_t>> Stat(std::string_view key) = 0;
  /// One page of the directory `prefix`: at most `limit` children that come after the child named
  /// `after` in listing order (from the first child when `after` is empty); fewer than `limit`
  /// means the listing has ended. Page through with `after` = the last name returned. Listing
  /// order: names ascending as bytes, except the chunk coordinates of a chunk-key level, which
  /// ascend as numbers ("9" before "10"). A chunk-key level lists only the coordinates below which
  /// a chunk is stored, found from the index's stored blocks, so a page of a huge sparse grid costs
  /// what its entries cost, never the size of the grid. nullopt when `prefix` is not a directory.
  virtual Result<std::optional<std::vector<DirEntry>>> ListPage(std::string_view prefix,
                                                                std::string_view after,
                                                                size_t limit) = 0;
  /// Every child of the directory `prefix` in listing order (ListPage until the end); nullopt
  /// when it is not a directory. Memory grows with the directory: front ends and tools that may
  /// meet large ones page with ListPage instead.
  Result<std::optional<std::vector<DirEntry>>> List(std::string_view prefix);
  /// The decoded chunks of the array at `path` (its key prefix: "a.tif/0/0"). kNotFound, naming
  /// the path, when no array is there; kStale when its sources changed (as its metadata).
  virtual Result<std::unique_ptr<DecodedChunks>> OpenDecodedChunks(std::string_view path) = 0;
  /// The options this view was opened with.
  virtual const ViewOptions& options() const = 0;
  /// The state of the index the view answers from now (after looking for a change, at most every
  /// index_check_seconds). Front ends that keep values compare it to drop what they kept.
  virtual IndexVersion version() = 0;
};

/// Opens the index at `index_path` read-only as a view. kNotFound when there is no index there;
/// kCorrupt when it is not a refzarr index or of an unknown schema version.
Result<std::unique_ptr<ZarrView>> OpenZarrView(const std::filesystem::path& index_path,
                                               ViewOptions options);

}  // namespace refzarr
