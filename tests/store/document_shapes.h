// The shape checker of every document refzarr writes: Zarr v2 `.zarray` / `.zattrs` / `.zgroup` /
// `.zmetadata`, Zarr v3 `zarr.json`, kerchunk version 1 references. Each function returns the
// problems found ("where: what"), none when the document has the shape its specification gives.
// Shapes only: whether the values are right is for the tests that compare pixels.
//
// Used by refzarr_document_shapes_test (every array of the samples, both formats, both codec
// policies, the export) and, through the `refzarr_shape_check` program, by end-to-end tests that
// fetch documents from a server.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace refzarr::testing {

using Problems = std::vector<std::string>;

/// `.zarray`: zarr_format 2, shape/chunks of equal rank, a numpy dtype (string or structured
/// list), "compressor" null or an object with a string "id", "filters" null or a non-empty list
/// of such objects, order "C"/"F", dimension_separator "."/"/", a fill value that fits the dtype.
Problems ZarrayProblems(const nlohmann::json& doc);

/// `.zattrs`: an object. `.zgroup`: exactly {"zarr_format": 2}.
Problems ZattrsProblems(const nlohmann::json& doc);
Problems ZgroupProblems(const nlohmann::json& doc);

/// `.zmetadata`: {"zarr_consolidated_format": 1, "metadata": {...}} whose keys end in `.zarray`,
/// `.zattrs` or `.zgroup`, each value checked as such.
Problems ZmetadataProblems(const nlohmann::json& doc);

/// Which codecs a Zarr v3 array may name.
enum class V3Codecs {
  kAny,     ///< Any name (a passthrough view).
  kCompat,  ///< Only bytes, gzip, blosc, zstd, crc32c (and vlen-utf8 for "string" arrays).
};

/// `zarr.json` of an array: zarr_format 3, node_type "array", shape, a core data_type (or
/// "string"), a regular chunk_grid of the same rank, a default or v2 chunk_key_encoding, a
/// fill_value of the data type's form, codecs a list of {"name", "configuration"?} objects with
/// exactly one array->bytes codec after the array->array ones, core codec configurations as the
/// spec gives them, dimension_names of the array's rank.
Problems ArrayV3Problems(const nlohmann::json& doc, V3Codecs codecs);

/// `zarr.json` of a group: zarr_format 3, node_type "group", attributes an object.
Problems GroupV3Problems(const nlohmann::json& doc);

/// `zarr.json` of either kind, by its node_type.
Problems ZarrJsonProblems(const nlohmann::json& doc, V3Codecs codecs);

/// Kerchunk references version 1: {"version": 1, "refs": {key: value}} where a value is a string
/// (text or "base64:...") or [url] / [url, offset, length]; values of Zarr v2 metadata keys are
/// JSON text checked as such.
Problems KerchunkProblems(const nlohmann::json& doc);

/// The problems of the document named `name` (".zarray", ".zattrs", ".zgroup", ".zmetadata",
/// "zarr.json"), prefixed with `where`. Unknown names are a problem.
Problems DocumentProblems(std::string_view name, const nlohmann::json& doc, V3Codecs codecs,
                          const std::string& where);

}  // namespace refzarr::testing
