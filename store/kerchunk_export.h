// Export of an index as a kerchunk reference file (spec version 1), for fsspec/zarr-python/GDAL.
#pragma once

#include <filesystem>
#include <ostream>
#include <string>
#include <vector>

#include "formats/core/source.h"
#include "formats/core/status.h"

namespace refzarr {

/// A codec id an exported `.zarray` names that numcodecs (zarr-python 2's codec library, as
/// Debian 12 ships it) does not implement.
struct ForeignCodec {
  std::string array;    ///< The array's key prefix in the export.
  std::string codec;    ///< The codec id, as the `.zarray` names it.
  std::string library;  ///< The library that implements it ("imagecodecs", ...), or "none".
};

/// What an export wrote.
struct ExportReport {
  uint64_t metadata_keys = 0;
  uint64_t chunk_refs = 0;
  uint64_t inline_chunks = 0;
  /// Every such codec of every exported array, once per array and codec, in export order.
  std::vector<ForeignCodec> foreign_codecs;
  /// Arrays that numcodecs cannot read as their `.zarray` says for another reason, as
  /// "<array>: <why>": chunks not all encoded alike (short strips, HDF5 filter masks), or stored
  /// chunks that need refzarr's format decoder beyond the codecs named.
  std::vector<std::string> notes;
};

/// Who implements the numcodecs-style codec `id` when numcodecs (Debian 12's 0.11) does not:
/// "imagecodecs" for its "imagecodecs_*" ids, a numcodecs release for codecs added after 0.11,
/// "none" for ids only refzarr uses (refzarr_transpose, hdf5_*, imagecodecs_tiff_compression_*,
/// ...). Empty when numcodecs 0.11 implements it.
std::string ForeignCodecLibrary(const std::string& id);

/// Writes `{"version": 1, "refs": {...}}` for the whole index to `out`: Zarr v2 metadata of the
/// passthrough view, and [path, offset, length] for every stored chunk (inline chunks as
/// "base64:..."). Chunk bytes are what the files store, so arrays in ExportReport::foreign_codecs
/// and ExportReport::notes are only readable by clients that have those codecs. Every source is
/// checked first (through `openers`): a source that changed since indexing is kStale and nothing
/// is written. A local source is written as its path, a remote one as its URI (https://, s3://),
/// so fsspec reads straight from the origin.
Result<ExportReport> ExportKerchunk(const std::filesystem::path& index, std::ostream& out,
                                    const SourceOpeners& openers = LocalSourceOpeners());

}  // namespace refzarr
