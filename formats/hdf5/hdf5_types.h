// Internal: HDF5 datatypes, attributes and filter pipelines in refzarr's terms. Used by the scanner,
// the Imaris/BigDataViewer layouts and the chunk decoder; not part of the public interface.
#pragma once

#include <hdf5.h>

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "formats/core/model.h"
#include "formats/core/status.h"

namespace refzarr::internal {

/// The numpy dtype of an HDF5 datatype: integers, IEEE floats (2, 4, 8 bytes), fixed strings ('S'),
/// bitfields (as unsigned), enums and h5py bools (as their base integer), h5py complex compounds
/// ('c'), other compounds (structured 'V' with numpy's field list; padding as "_padN" void fields).
/// kUnsupported with the reason for anything else (128-bit or VAX floats, references, opaque, vlen,
/// non-standard float layouts, time).
Result<DType> DTypeFromHdf5(hid_t type);

/// The Zarr v2 fill value JSON for one element `bytes` of `dtype` (stored byte order): a number,
/// "NaN"/"Infinity"/"-Infinity", [re, im] for complex, or base64 for 'S' and 'V'.
nlohmann::json FillValueJson(const DType& dtype, std::span<const std::byte> bytes);

/// `s` with every byte sequence that is not UTF-8 replaced by U+FFFD (JSON and numcodecs' VLenUTF8
/// need UTF-8).
std::string ToValidUtf8(std::string_view s);

/// Base64 (standard alphabet, padded).
std::string Base64(std::span<const std::byte> bytes);
/// Inverse of Base64; kInvalidArgument on bad input.
Result<std::vector<std::byte>> FromBase64(std::string_view text);

/// Reads every attribute of `obj` into a JSON object (numbers, strings, nested arrays). Arrays of
/// one-character strings (Imaris) become one string. Attributes JSON cannot hold are listed in
/// `skipped` as name -> reason. DIMENSION_LIST and REFERENCE_LIST are left to the caller.
nlohmann::json ReadAttributes(hid_t obj, nlohmann::json& skipped);

/// Reads one attribute as a string (fixed, variable, or an array of characters); nullopt-like empty
/// Result error when absent or not textual.
Result<std::string> ReadStringAttribute(hid_t obj, const char* name);

/// One filter of a dataset's pipeline, in encode order.
struct Hdf5Filter {
  int id = 0;
  unsigned flags = 0;
  std::vector<unsigned> cd_values;
  std::string name;
};

/// Reads the filter pipeline of a dataset creation property list.
Result<std::vector<Hdf5Filter>> ReadFilters(hid_t dcpl);

/// OK when the HDF5 library can apply every filter of `filters` (built in, a plugin it loads, or
/// refzarr's own LZF); kUnsupported "HDF5 filter <id> ("<name>") is not available to the HDF5
/// library (no plugin loaded)" for the first it cannot. Call with Hdf5Mutex() held.
Status CheckFiltersAvailable(const std::vector<Hdf5Filter>& filters);

/// Maps a pipeline to a ChunkEncoding. Native Zarr v2 codecs: deflate -> zlib, shuffle, blosc,
/// zstd (filters in pipeline order, the last codec as the compressor). Anything else makes the
/// encoding non-native (fletcher32, szip, nbit, scaleoffset, lzf, lz4, bitshuffle, unknown ids),
/// named with the ids other tools use, and `note` says so. Always sets decoder "hdf5" with `params`
/// {"filters": [...], "type": base64 H5Tencode of `type`, "dtype": typestr} so that chunks with a
/// filter mask or a short extent can be decoded through the HDF5 library. A valid `read_type`
/// (the container of a reduced-precision integer) is the type elements are served in: it goes to
/// params "read_type" and makes the encoding non-native (the stored bits are not the values).
Result<ChunkEncoding> EncodingFromFilters(const std::vector<Hdf5Filter>& filters, hid_t type,
                                          const DType& dtype, std::string* note,
                                          hid_t read_type = H5I_INVALID_HID);

/// H5Tencode of `type` (kInternal when the library cannot encode it).
Result<std::vector<std::byte>> EncodeType(hid_t type);

}  // namespace refzarr::internal
