// RecordingSink: a ScanSink that keeps everything a scan produced in memory.
//
// The indexer scans files in parallel into recordings and commits each recording to the store in one
// transaction; tests use recordings to inspect exactly what a scanner emitted.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "formats/core/model.h"
#include "formats/core/spilled_refs.h"

namespace refzarr {

/// Everything one scan of one file produced.
struct ScannedFile {
  struct Group {
    std::string path;
    nlohmann::json attributes = nlohmann::json::object();
    std::optional<ImageDesc> image;
  };
  struct Array {
    std::string path;
    ArrayDesc desc;
    std::vector<std::pair<uint64_t, ChunkRef>> chunks;  ///< (linear index, ref), in arrival order.
    std::vector<std::pair<uint64_t, std::vector<std::byte>>> inline_chunks;
    /// References moved out of memory (RecordingSink's bound), or null. Read them merged with
    /// `chunks` through SortedChunkRefs.
    std::shared_ptr<SpilledRefs> spilled;
    /// Verified mode (`index --checksums`): set once `checksums` holds the CRC-32C of every
    /// stored chunk's bytes, in chunk-index order (the stored references as VisitChunksInOrder
    /// visits them); the store then records them, and those of the inline chunks, with the
    /// references. Unset: the array is not checksummed.
    bool checksummed = false;
    std::vector<uint32_t> checksums;
    /// Stored references in all: in memory and spilled.
    uint64_t StoredCount() const { return chunks.size() + (spilled ? spilled->size() : 0); }
  };
  struct File {
    std::string path;
    std::string bytes;
  };
  std::vector<std::string> companions;  ///< URIs; source id i+1 is companions[i].
  std::vector<Group> groups;
  std::vector<Array> arrays;
  std::vector<File> files;
  std::vector<std::string> warnings;
  /// An array the scan refused (ScanSink::RefuseArray): not in `arrays`, reported and recorded.
  struct Refusal {
    std::string path;
    std::string reason;
  };
  std::vector<Refusal> refused;

  /// Number of chunk references (stored and inline) over all arrays.
  uint64_t ChunkCount() const;
  /// The array at `path`, or nullptr.
  const Array* FindArray(std::string_view path) const;
  /// The group at `path`, or nullptr.
  const Group* FindGroup(std::string_view path) const;
};

/// A ScanSink that records into a ScannedFile. Validates what it is given: paths, chunk indices
/// inside the grid, no duplicate chunk, refs to known sources.
class RecordingSink final : public ScanSink {
 public:
  /// `max_refs_in_memory`: once this many stored references are held, every array's references
  /// are sorted and moved to its SpilledRefs, so memory stays bounded whatever the file's size
  /// (the indexer's default is IndexOptions::refs_in_memory). 0 keeps everything in memory.
  explicit RecordingSink(uint64_t max_refs_in_memory = 0) : max_in_memory_(max_refs_in_memory) {}

  /// kInvalidArgument when `uri` has no scheme (a path given where a URI is due).
  Result<uint32_t> AddSource(std::string_view uri) override;
  Status AddGroup(std::string_view path, const nlohmann::json& attributes) override;
  Status AddImage(std::string_view path, const ImageDesc& image) override;
  Result<ArrayHandle> AddArray(std::string_view path, const ArrayDesc& array) override;
  Status AddChunk(ArrayHandle array, uint64_t chunk_index, const ChunkRef& ref) override;
  Status AddInlineChunk(ArrayHandle array, uint64_t chunk_index,
                        std::span<const std::byte> bytes) override;
  Status AddFile(std::string_view path, std::string bytes) override;
  void Warn(std::string message) override;
  Status RefuseArray(std::string_view path, std::string reason) override;

  /// Drops refused arrays and the image levels that name them (an image left without levels
  /// stays a plain group, with a warning), then checks that no chunk index was given twice
  /// (VisitChunksInOrder, O(n log n)). Arrays with spilled references are checked when they are
  /// committed, which visits them anyway (PutFile), rather than read back twice. Call once, after
  /// the scan; handles are invalid afterwards.
  Status Finish();
  const ScannedFile& result() const& { return file_; }
  ScannedFile&& result() && { return std::move(file_); }

 private:
  Result<ScannedFile::Group*> GroupAt(std::string_view path);
  ScannedFile file_;
  std::map<std::string, size_t, std::less<>> group_index_;
  std::map<std::string, size_t, std::less<>> array_index_;
  std::vector<uint64_t> chunk_counts_;  // per array: grid size, for bounds checks
  std::vector<bool> refused_;           // per array: refused, its chunks are ignored
  std::map<std::string, std::string, std::less<>> refused_paths_;  // path -> reason
  Status Spill();
  void DropRefused();
  uint64_t max_in_memory_ = 0;
  uint64_t in_memory_ = 0;  // Stored references held in memory now, over all arrays.
};

/// Receives one chunk of an array: its linear index, and either its stored reference or (null
/// reference) its inline bytes.
using ChunkVisitor = std::function<Status(uint64_t index, const ChunkRef* stored,
                                          const std::vector<std::byte>* inline_bytes)>;

/// Calls `visit` for every chunk of `array` in chunk-index order: the stored references (in memory
/// and spilled, merged by SortedChunkRefs) and the inline chunks. Stops at the first error `visit`
/// returns. kInvalidArgument naming the array when a chunk index occurs twice; kIo when spilled
/// references cannot be read back.
Status VisitChunksInOrder(const ScannedFile::Array& array, const ChunkVisitor& visit);

/// Checks a node path: '/'-separated non-empty names, no '.', '..', leading or trailing '/'.
Status ValidateNodePath(std::string_view path);

}  // namespace refzarr
