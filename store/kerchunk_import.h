// Import of a kerchunk reference file (spec versions 0 and 1) as an index: what kerchunk,
// VirtualiZarr and tifffile (`ZarrTiffStore.write_fsspec`) write becomes servable by refzarr.
// References are checked against an allow-list first: an imported file cannot make refzarr read
// a file or URL it was not meant to. docs/kerchunk.md.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "formats/core/recording_sink.h"
#include "formats/core/source.h"
#include "formats/core/status.h"

namespace refzarr {

/// Where the references of an imported file may point.
struct ImportPolicy {
  /// Local folders: a local reference (a path, or file://path) must resolve, symlinks included
  /// (weakly_canonical), to a file under one of them, itself resolved.
  std::vector<std::filesystem::path> roots;
  /// Remote prefixes (http://, https://, s3://): a remote reference must start with one of
  /// them, at a '/' boundary, after normalising (scheme and host lower-cased) and refusing
  /// user info, dot segments (also percent-encoded), backslashes and control characters.
  std::vector<std::string> url_prefixes;
  /// The folder relative local references resolve against (the reference file's own).
  std::filesystem::path base;
};

/// The size in bytes of the source at `uri` (a reference without offset and length covers it
/// whole). Errors name the URI.
using SourceSizer = std::function<Result<uint64_t>(const std::string& uri)>;

/// Parses the kerchunk document `json_text` into `out` (called on a fresh RecordingSink, then
/// Finish()ed by the caller): `.zgroup`/`.zattrs` become groups, `.zarray` arrays (Zarr v2, C
/// order; `_ARRAY_DIMENSIONS` become dimension names; stored chunks are served as referenced,
/// with the `.zarray`'s own compressor and filters), `[url]` and `[url, offset, length]` chunk
/// references (the URL after `templates` substitution, `{{name}}`), string values inline chunks
/// or plain files ("base64:" prefixed values decoded). A document whose root is an array
/// imports it as array "0" of the root group (an index's root is a group), with a warning.
/// `.zmetadata` is dropped (refzarr renders its own metadata). Each source (its URI: a
/// file:// URI of the resolved path, or the normalised URL) is added once, in order of first
/// use. In memory: `size_of` is asked only for whole-file references. Errors, kInvalidArgument
/// unless said, naming the key: not JSON or not a kerchunk document, version other than 0 or 1,
/// `gen` entries (kUnsupported: not implemented), a reference outside `policy`, another scheme
/// (kUnsupported), a malformed reference, `.zarray` or chunk key, a chunk outside the grid.
Status ParseKerchunk(std::string_view json_text, const ImportPolicy& policy,
                     const SourceSizer& size_of, RecordingSink& out);

/// What an import wrote.
struct ImportReport {
  uint64_t groups = 0, arrays = 0, files = 0;
  uint64_t chunk_refs = 0;     ///< Stored references.
  uint64_t inline_chunks = 0;  ///< Chunks held in the index.
  uint64_t sources = 0;        ///< Distinct files and URLs referenced.
  std::vector<std::string> warnings;
};

/// Imports the kerchunk file `refs` into the index at `index` (created if missing) as its root:
/// ParseKerchunk, then every referenced source is probed (size, generation and content
/// fingerprint, as indexing does: a source that changes later is stale) and every reference
/// checked against its size, then the whole lot is written in one transaction as the scanned
/// file `refs` (scanner "kerchunk"), the referenced sources its companions. Importing the same
/// file again replaces it. With no roots and no prefixes in `policy`, references may point
/// under `refs`'s own folder only; an empty `policy.base` is that folder. Errors name `refs`
/// and the key or source; on error the index is unchanged.
Result<ImportReport> ImportKerchunk(const std::filesystem::path& refs,
                                    const std::filesystem::path& index, ImportPolicy policy,
                                    const SourceOpeners& openers = LocalSourceOpeners());

}  // namespace refzarr
