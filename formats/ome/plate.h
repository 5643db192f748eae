// OME-XML plates (Plate / Well / WellSample / PlateAcquisition) as an OME-NGFF plate layout: the
// plate group's `plate` attributes, one group per well with `well` attributes, and the image each
// field of view shows. Pure functions over the parsed document (no file access).
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "formats/core/status.h"
#include "formats/ome/ome_xml.h"

namespace refzarr {

/// One field of view: the image group at `path` ("<row>/<column>/<field>") shows OME Image
/// number `image` (its index in OmeDocument::images).
struct PlateField {
  std::string path;
  size_t image = 0;
};

/// One well group at `path` ("<row>/<column>") and its attributes, {"well": {"images": [...]}}.
struct PlateWell {
  std::string path;
  nlohmann::json attributes;
};

/// An OME-NGFF plate, version-neutral: the attributes are those of OME-NGFF 0.4 without
/// "version" (the store adds the version of the view and, for 0.5, moves them under "ome").
struct PlateLayout {
  nlohmann::json attributes;  ///< {"plate": {"name", "rows", "columns", "wells", "field_count",
                              ///<  "acquisitions"}} for the file group.
  std::vector<PlateWell> wells;
  std::vector<PlateField> fields;
};

/// The name of row or column `index` (0-based) under an OME naming convention: "letter" gives A,
/// B, ..., Z, AA, AB, ...; "number" gives 1, 2, ...
std::string PlateAxisName(uint32_t index, const std::string& convention);

/// The layout of the first Plate of `doc` (nullopt when it has none), over the images that were
/// indexed (`indexed[i]` for OmeDocument::images[i]). Rows are named by RowNamingConvention
/// (default "letter"), columns by ColumnNamingConvention (default "number"), as bioformats2raw
/// does; a well's fields are its WellSamples with an indexed image, in Index order, at paths
/// "0", "1", ...; a well without one is left out. Each PlateAcquisition becomes an acquisition
/// with id = its position in the document, its Name (or ID), MaximumFieldCount (or the most
/// fields it took in one well), StartTime/EndTime as epoch seconds; a field carries the
/// acquisition that lists its WellSample. What cannot be used (a second plate, a WellSample
/// naming no image or an image not indexed or shown twice) costs a warning in `warnings`.
/// `reserved` are names the file group holds already (the series "0", "1", ... and "OME"): when
/// numbered rows would take one, rows are lettered instead, with a warning.
/// Errors (kCorrupt, naming the plate and well): a Row or Column outside Rows/Columns, or above
/// 1,000,000; two wells at one position; a row name that is reserved even lettered.
Result<std::optional<PlateLayout>> PlanPlate(const OmeDocument& doc, const std::vector<bool>& indexed,
                                             std::span<const std::string> reserved,
                                             std::vector<std::string>& warnings);

/// Seconds since the epoch of an xsd:dateTime ("2024-05-01T10:20:30", optional fraction and
/// zone "Z" or "+hh:mm"); nullopt when malformed or before 1970.
std::optional<int64_t> EpochSeconds(const std::string& date_time);

}  // namespace refzarr
