// Merging indexes: the union of several indexes of different paths, copied row by row by SQLite
// (chunk blocks byte for byte), without rescanning a source. What sharded indexing combines with.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "formats/core/status.h"

namespace refzarr {

/// What a merge wrote.
struct MergeReport {
  uint64_t inputs = 0;
  uint64_t files = 0;           ///< Scanned files (ok and failed) copied.
  uint64_t failed_files = 0;    ///< Of them, failed records.
  uint64_t nodes = 0;           ///< Tree nodes copied (shared folder groups once).
  uint64_t chunk_refs = 0;      ///< Chunk references copied.
  uint64_t refusals = 0;        ///< Refused arrays copied.
};

/// Writes to `out` (which must not exist) one index holding every source, failed record, refusal,
/// node and chunk reference of `inputs`, equal to one index of the union of their sources. Folder
/// groups present in several inputs are shared. Two inputs with the same scanned file, or with a
/// node at the same tree path that a scanned file owns, are a conflict: kInvalidArgument naming
/// both inputs and both sources. Every input must record the same root (tree paths count from
/// it), which `out` records too; inputs with other roots are a conflict naming both roots.
/// Shard indexes (`index --shard K/N`) must come whole: an input whose run did not finish, a
/// shard of a run given twice, or one missing is kInvalidArgument naming it. The merged index
/// records no shard (it is an ordinary index of everything). Inputs are opened read-only and
/// never modified; on any failure
/// `out` is not created. Streams: memory does not grow with the inputs' sizes.
Result<MergeReport> MergeIndexes(const std::vector<std::filesystem::path>& inputs,
                                 const std::filesystem::path& out);

namespace internal {
/// An array node's meta (compact JSON, as the index writes it) with `offset` added to each id of
/// its top-level "sources" list, rewritten in the text without parsing it; nullopt when the text
/// is not of that shape (the merge then parses it). Exposed for tests.
std::optional<std::string> ShiftSourcesInText(std::string_view text, int64_t offset);
}  // namespace internal

}  // namespace refzarr
