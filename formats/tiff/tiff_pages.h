// Reading the structure of a TIFF file (every IFD and SubIFD, with its chunk table) through libtiff
// over a ByteSource. No pixel data is read.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "formats/core/byte_source.h"
#include "formats/core/status.h"

namespace refzarr {

/// What libtiff's old-style JPEG (Compression 6) codec reads from the file besides a strip's own
/// bytes, read at index time so that one strip or tile can later be decoded alone (docs/tiff.md).
struct OldJpeg {
  /// The marker segments libtiff parses before the entropy-coded data: the JPEGInterchangeFormat
  /// bytes, then, when those hold no SOS, the leading segments of the first strip up to its SOS.
  std::string header;
  /// Bytes of the first strip (or tile) that belong to `header`: its chunk starts after them.
  uint32_t first_strip_header_bytes = 0;
  /// Set when the entropy-coded data is the rest of the JPEGInterchangeFormat stream (a complete
  /// JPEG there, as some writers do): the one chunk of the page is that range instead of the strip.
  std::optional<std::pair<uint64_t, uint64_t>> data_in_interchange;  ///< (offset, length)
  /// JPEGQTables / JPEGDCTables / JPEGACTables contents, one per component; an empty entry shares
  /// the previous component's table (offset 0 or equal to the previous one, as libtiff reads it).
  /// Empty when the header holds the frame (SOF), as libtiff then ignores these tags.
  std::vector<std::string> qtables, dctables, actables;
  uint16_t proc = 1;              ///< JPEGProc.
  uint16_t restart_interval = 0;  ///< JPEGRestartInterval.
  /// Why libtiff's codec cannot decode one chunk of the page alone; empty when it can.
  std::string refusal;
  /// Whether chunks of pages with these two descriptions decode alike (header, tables, proc and
  /// restart interval equal; where the first chunk starts may differ).
  bool DecodesLike(const OldJpeg& other) const;
};

/// One image file directory, as libtiff reads it.
struct TiffPage {
  uint64_t ifd_offset = 0;
  int index = 0;       ///< Position in the main IFD chain (SubIFDs: the parent's position).
  int sub_index = -1;  ///< -1 for a main-chain IFD, else the position among the parent's SubIFDs.
  /// The file holding the page: 0 for the scanned file; planners that combine several files
  /// (multi-file OME-TIFF) number the others 1, 2, ... (see SeriesPlanning in tiff_series.h).
  uint32_t source = 0;
  bool big_endian = false;  ///< Byte order of the file holding the page.
  /// False for pages a planner synthesised (ImageJ planes without an IFD of their own).
  bool has_ifd = true;
  uint32_t width = 0, length = 0, depth = 1;
  uint16_t samples_per_pixel = 1, bits_per_sample = 8, sample_format = 1;
  uint16_t planar = 1, compression = 1, predictor = 1, photometric = 1, fill_order = 1;
  uint32_t subfile_type = 0;  ///< NewSubfileType.
  bool tiled = false;
  uint32_t tile_width = 0, tile_length = 0;  ///< Tiles; for strips: width and rows per strip.
  uint16_t ycbcr_subsampling[2] = {2, 2};
  uint16_t resolution_unit = 2;  ///< 1 none, 2 inch, 3 centimetre.
  float x_resolution = 0, y_resolution = 0;
  std::string description;  ///< ImageDescription.
  std::string software;
  std::string jpeg_tables;  ///< JPEGTables bytes.
  /// SMinSampleValue and SMaxSampleValue (the least and greatest over the samples), when both
  /// are given: the range the writer says the data use.
  std::optional<std::pair<double, double>> sample_value_range;
  /// YCbCrCoefficients and ReferenceBlackWhite (defaulted), read for YCbCr pages.
  float ycbcr_coefficients[3] = {0.299f, 0.587f, 0.114f};
  float reference_black_white[6] = {0, 255, 128, 255, 128, 255};
  /// Old-style JPEG (Compression 6): what libtiff's codec reads besides the strip itself.
  std::optional<OldJpeg> old_jpeg;
  /// Why the page's chunk table cannot be trusted (its byte counts are missing, so libtiff
  /// estimates them); empty when it can. Its arrays are refused with this reason.
  std::string damage;
  std::string ij_metadata;                ///< ImageJ's IJMetadata tag (50839) bytes, if any.
  std::vector<uint32_t> ij_byte_counts;   ///< Its IJMetadataByteCounts tag (50838).
  std::vector<uint64_t> offsets, byte_counts;  ///< One per tile or strip (x separate planes).

  /// Tiles (or strips) across, down, and per sample plane.
  uint32_t ChunksAcross() const;
  uint32_t ChunksDown() const;
  /// Rows covered by strip/tile row `row` (the last one may be short for strips).
  uint32_t RowsIn(uint32_t row) const;
  /// Rows of a full chunk: tile length, or rows per strip clamped to the image length.
  uint32_t ChunkRows() const { return tiled ? tile_length : std::min(tile_length, length); }
  uint32_t ChunkCols() const { return tiled ? tile_width : width; }
  bool IsReduced() const { return subfile_type & 1u; }
  /// "IFD 3", "IFD 3 SubIFD 1", with " of member file k" for pages of other files.
  std::string Where() const;
};

/// A TIFF file's directories.
struct TiffStructure {
  bool big_endian = false;
  bool bigtiff = false;
  std::vector<TiffPage> pages;  ///< Main chain in order; each page's SubIFDs follow it.
  std::vector<std::string> warnings;
};

/// Reads every IFD of the main chain and every SubIFD. Errors name the source and the IFD.
Result<TiffStructure> ReadTiffStructure(ByteSource& source);

/// True when `head` starts with a TIFF or BigTIFF header (II*\0, MM\0*, II+\0, MM\0+).
bool LooksLikeTiff(std::span<const std::byte> head);

}  // namespace refzarr
