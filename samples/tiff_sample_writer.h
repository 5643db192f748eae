// Writes a sample TIFF described as data (a list of IFDs with their pixels) through libtiff's
// normal write API (TIFFSetField, TIFFWriteEncodedTile/Strip), so libtiff decides the byte layout.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "formats/core/status.h"
#include "samples/pixel_pattern.h"

namespace refzarr::samples {

/// One IFD to write: its pixels and how they are stored.
struct IfdSpec {
  Plane plane;
  bool tiled = false;
  uint32_t tile_width = 0;      ///< Pixels; multiple of 16 (libtiff requirement).
  uint32_t tile_length = 0;     ///< Pixels; multiple of 16.
  uint32_t rows_per_strip = 0;  ///< Stripped only; 0 = whole image in one strip.
  uint16_t compression = 1;     ///< TIFF Compression tag (1, 5, 7, 8, 32773, 50000).
  uint16_t predictor = 1;       ///< 1 none, 2 horizontal, 3 floating point.
  int jpeg_quality = 75;        ///< JPEG only.
  bool jpeg_ycbcr = false;      ///< JPEG RGB: Photometric YCbCr 2x2 with JPEGCOLORMODE RGB.
  int zip_level = -1;           ///< Deflate/zstd level; -1 = libtiff's default.
  /// Predictor 3 + deflate done here (TIFF Technical Note 3) and written with
  /// TIFFWriteRawTile/Strip. libtiff 4.5's own floating-point predictor encoder corrupts big-endian
  /// files (its reader and a by-the-spec decoder both disagree with the input), so big-endian
  /// predictor-3 samples use this.
  bool own_float_predictor = false;
  uint32_t subfile_type = 0;  ///< NewSubfileType (1 reduced, 9 SVS macro); 0 = tag omitted.
  std::string description;    ///< ImageDescription; empty = tag omitted.
  std::string software = "refzarr-samples";
  /// XResolution/YResolution (pixels per unit) and ResolutionUnit (1 none, 2 inch, 3 cm).
  std::optional<double> x_resolution, y_resolution;
  uint16_t resolution_unit = 1;
  /// Chunk (tile or strip) indices, counted per sample plane as libtiff numbers them, that are
  /// deliberately not written: their offsets and byte counts stay 0 (sparse file). The pixels of
  /// those chunks must already be zero in `plane`.
  std::set<uint32_t> skipped_chunks;
  /// IFDs linked from this one's SubIFDs tag (written right after it, as libtiff requires).
  std::vector<IfdSpec> subifds;
};

/// A whole file: classic or BigTIFF, byte order, and its top-level IFD chain in order.
struct TiffFileSpec {
  bool bigtiff = false;
  bool big_endian = false;
  std::vector<IfdSpec> ifds;
};

/// Writes `spec` to `path` (replacing it). Errors name the file and the IFD; libtiff's own messages
/// are captured per handle and included.
Status WriteTiffFile(const std::filesystem::path& path, const TiffFileSpec& spec);

}  // namespace refzarr::samples
