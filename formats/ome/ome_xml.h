// OME-XML (the metadata block of an OME-TIFF) parsed into plain structs, and the OME-TIFF TiffData
// rules that say which TIFF IFD holds each (t, c, z) plane of an image.
//
// Pure functions over strings: no file access, no libtiff. The TIFF scanner reads the first IFD's
// ImageDescription, calls ParseOmeXml, then MapPlanes per image, and builds one series per image from
// the resulting plane references (falling back to the plain-TIFF interpretation, with a warning, when
// either returns an error). docs/ome.md describes the rules.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "formats/core/model.h"
#include "formats/core/status.h"

namespace refzarr {

/// A physical quantity with its OME-NGFF unit name ("micrometer", "second"), or an empty unit when
/// the file's unit has no OME-NGFF name (e.g. "pixel").
struct Quantity {
  double value = 0;
  std::string unit;
  friend bool operator==(const Quantity&, const Quantity&) = default;
};

/// One OME Channel element.
struct OmeChannel {
  std::string id;
  std::string name;                ///< Name attribute; empty when absent.
  std::optional<uint32_t> color;   ///< 0xRRGGBB from the signed RGBA Color attribute.
  uint32_t samples_per_pixel = 1;  ///< SamplesPerPixel (3 for an RGB channel).
};

/// The file a TiffData refers to, from its UUID child (both empty: no UUID child).
struct OmeFileRef {
  std::string uuid;       ///< "urn:uuid:..." text of the UUID element, trimmed.
  std::string file_name;  ///< FileName attribute of the UUID element.
  friend bool operator==(const OmeFileRef&, const OmeFileRef&) = default;
};

/// One TiffData element; absent attributes stay nullopt (their defaults depend on which are present).
struct OmeTiffData {
  std::optional<uint64_t> ifd;
  std::optional<uint32_t> first_t, first_c, first_z;
  std::optional<uint64_t> plane_count;
  OmeFileRef file;
};

/// The Pixels element of an Image.
struct OmePixels {
  std::string id;
  std::string dimension_order = "XYZCT";  ///< Always "XY" followed by a permutation of Z, C, T.
  std::string type;                       ///< OME pixel type: "uint16", "float", "bit", ...
  DType dtype;                            ///< `type` as a numpy dtype; byte order from BigEndian.
  std::optional<bool> big_endian;
  uint64_t size_x = 0, size_y = 0;
  uint32_t size_z = 1, size_c = 1, size_t_ = 1;  ///< size_t_ is SizeT (avoids the C type name).
  std::optional<Quantity> physical_size_x, physical_size_y, physical_size_z;  ///< Default unit µm.
  std::optional<Quantity> time_increment;                                     ///< Default unit s.
  std::optional<uint32_t> significant_bits;
  std::optional<bool> interleaved;
  std::vector<OmeChannel> channels;
  std::vector<OmeTiffData> tiff_data;

  /// Samples per pixel of the stored planes (the first channel's SamplesPerPixel when it divides
  /// SizeC, else 1): an RGB image has SizeC 3 and one channel with 3 samples per pixel.
  uint32_t SamplesPerPixel() const;
  /// SizeC / SamplesPerPixel(): the number of channel planes stored as separate IFDs.
  uint32_t EffectiveSizeC() const;
  /// SizeT * EffectiveSizeC * SizeZ.
  uint64_t PlaneCount() const;
};

/// One Image element.
struct OmeImage {
  std::string id;    ///< "Image:0"
  std::string name;  ///< Name attribute, may be empty.
  OmePixels pixels;
  std::vector<std::string> roi_refs;  ///< IDs of the ROIRef children, in document order.
};

/// One WellSample (a field of view) of a Well.
struct OmeWellSample {
  std::string id;
  std::optional<uint32_t> index;  ///< Index attribute (the field's number in the plate's order).
  std::string image_ref;          ///< ID of the Image it shows (ImageRef); empty when absent.
};

/// One Well of a Plate: its 0-based Row and Column and its fields.
struct OmeWell {
  std::string id;
  uint32_t row = 0, column = 0;
  std::vector<OmeWellSample> samples;
};

/// One PlateAcquisition (a run over the plate) and the WellSamples it took.
struct OmePlateAcquisition {
  std::string id;
  std::string name;
  std::string description;
  std::optional<uint32_t> maximum_field_count;
  std::string start_time, end_time;  ///< xsd:dateTime text, empty when absent.
  std::vector<std::string> well_sample_refs;
};

/// One Plate element.
struct OmePlate {
  std::string id;
  std::string name;
  std::optional<uint32_t> rows, columns;       ///< Rows / Columns attributes.
  std::string row_naming, column_naming;       ///< "letter", "number", or empty (absent).
  std::vector<OmeWell> wells;
  std::vector<OmePlateAcquisition> acquisitions;
};

/// One ROI element: its shapes' element names (Rectangle, Ellipse, Polygon, Mask, ...).
struct OmeRoi {
  std::string id;
  std::string name;
  std::vector<std::string> shapes;
};

/// A BinaryOnly element: this file holds pixels only; the metadata lives in `metadata_file`.
struct OmeBinaryOnly {
  std::string metadata_file;
  std::string uuid;
};

/// A parsed OME-XML document.
struct OmeDocument {
  std::string uuid;     ///< UUID attribute of the root OME element; empty when absent.
  std::string creator;  ///< Creator attribute.
  std::vector<OmeImage> images;
  std::vector<OmePlate> plates;
  std::vector<OmeRoi> rois;
  std::optional<OmeBinaryOnly> binary_only;
  /// Values that were ignored (an unparseable PhysicalSizeX, a unit without an OME-NGFF name), as
  /// messages naming the image; the scanner passes them to ScanSink::Warn.
  std::vector<std::string> warnings;
};

/// Parses an OME-XML document of any schema year (elements are matched by local name, so the
/// 2008-02 ... 2016-06 namespaces, prefixed or not, all work). Reads Image (with its ROIRefs), Pixels,
/// Channel, TiffData (with UUID), Plate (Well, WellSample with ImageRef, PlateAcquisition with
/// WellSampleRef), ROI (Union's shapes) and BinaryOnly; everything else is ignored.
/// Errors (kCorrupt, naming the image when there is one): not well-formed XML, no OME root, an Image
/// without Pixels, missing or non-numeric SizeX/SizeY, sizes of 0, a DimensionOrder that is not
/// XY + a permutation of ZCT, an unknown pixel Type, negative or non-numeric TiffData attributes,
/// negative or non-numeric Well Row/Column, Plate Rows/Columns, WellSample Index.
Result<OmeDocument> ParseOmeXml(std::string_view xml);

/// Where one plane lives.
struct PlaneRef {
  uint32_t t = 0, c = 0, z = 0;  ///< Position; c counts effective channels (IFDs), see OmePixels.
  bool this_file = true;         ///< The IFD is in the file whose OME-XML was parsed.
  OmeFileRef file;               ///< For other files: their UUID and FileName.
  uint64_t ifd = 0;              ///< IFD index in that file (0-based, main IFD chain).
  friend bool operator==(const PlaneRef&, const PlaneRef&) = default;
};

/// What MapPlanes needs to know about the file holding the XML.
struct PlaneMapContext {
  /// Number of IFDs in the main chain of this file (bounds every plane that is in this file).
  uint64_t ifds_in_file = 0;
  /// Root UUID of this file's OME-XML (OmeDocument::uuid), empty when it has none.
  std::string own_uuid;
  /// File name (no directory) of this file, used when the XML has no root UUID: a TiffData whose
  /// UUID FileName equals it (ignoring case) is this file, as Micro-Manager writes.
  std::string own_file_name;
};

/// Maps every plane of `image` to its file and IFD, following the OME-TIFF TiffData rules:
///  - no TiffData: planes are IFDs 0, 1, ... of this file in DimensionOrder;
///  - TiffData places the plane at (FirstT, FirstC, FirstZ) (default 0) at IFD (default 0);
///    PlaneCount N gives N consecutive IFDs to the next N planes in DimensionOrder;
///  - without PlaneCount the element is certain about its first plane only and fills the following
///    planes (next IFDs) until a plane another TiffData placed explicitly, as Bio-Formats does;
///    so `<TiffData/>` and `<TiffData IFD="3"/>` cover all remaining planes, while
///    `<TiffData IFD="5" FirstT="0"/>` followed by more TiffData covers one plane each;
///  - a file is this file when the TiffData has no UUID, its UUID equals context.own_uuid, or (no
///    own UUID) its FileName equals context.own_file_name.
/// Returns one PlaneRef per plane, in (t, c, z) C order: index (t * EffectiveSizeC + c) * SizeZ + z.
/// Errors (kCorrupt, "image Image:0 (name): ..."): First* outside the image, PlaneCount running past
/// the last plane, two TiffData placing the same plane, two planes in the same IFD of the same file,
/// an IFD of this file at or beyond ifds_in_file, a plane no TiffData covers.
Result<std::vector<PlaneRef>> MapPlanes(const OmeImage& image, const PlaneMapContext& context);

/// Maps every image of `doc` (MapPlanes each) and also rejects an IFD of one file claimed by two
/// images. Errors as MapPlanes.
Result<std::vector<std::vector<PlaneRef>>> MapAllPlanes(const OmeDocument& doc,
                                                        const PlaneMapContext& context);

/// The numpy dtype of an OME pixel type ("int8" ... "double-complex", "bit"); nullopt if unknown.
std::optional<DType> OmePixelTypeToDType(std::string_view type, bool big_endian);

}  // namespace refzarr
