// Reading the structure of a TIFF file (every IFD and SubIFD, with its chunk table) through libtiff
// over a ByteSource. No pixel data is read.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "formats/core/byte_source.h"
#include "formats/core/status.h"

namespace refzarr {

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
