// The ImageJ ImageDescription ("ImageJ=1.53t\nimages=60\nchannels=3\nslices=5\nframes=4\n...").
//
// ImageJ stores a hyperstack as planes in channel-fastest order (c, then z, then t), one IFD per
// plane, except for files over 4 GiB: there ImageJ writes only the first IFD and stores all planes
// back to back after the first plane's data. ImageJLayout() tells the scanner which case it has.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "formats/core/status.h"

namespace refzarr {

/// What an ImageJ description says. Absent keys stay nullopt.
struct ImageJInfo {
  std::string version;               ///< Value of "ImageJ=" (may be empty: "ImageJ=").
  std::optional<uint64_t> images;    ///< Total number of planes.
  std::optional<uint32_t> channels, slices, frames;
  bool hyperstack = false;
  std::string unit;                  ///< Spatial unit as written ("micron", "um", "\u00B5m").
  std::string yunit, zunit;          ///< Per-axis units when they differ from `unit`.
  std::string tunit;                 ///< Time unit of finterval ("sec" when absent).
  std::optional<double> spacing;     ///< Z step in `zunit` (or `unit`).
  std::optional<double> finterval;   ///< Frame interval in `tunit`.
  std::optional<bool> loop;
  std::string mode;                  ///< Display mode: "composite", "color", "grayscale".
  std::optional<double> min, max;    ///< Display range.
  /// Every key=value line in order, including the ones above and unknown ones.
  std::vector<std::pair<std::string, std::string>> entries;

  /// channels * slices * frames, each defaulting to 1; when none is given and images > 1, the
  /// images form a z stack (ImageJ calls them slices), so this is images.
  uint64_t PlaneCount() const;
  /// Sizes (t, c, z) with the same defaults as PlaneCount().
  uint32_t SizeT() const;
  uint32_t SizeC() const;
  uint32_t SizeZ() const;
};

/// Parses an ImageJ description: lines "key=value" separated by '\n' (or "\r\n"); the first
/// must be "ImageJ=..." (SCIFIO's "SCIFIO=..." is accepted too). Lines without '=' are ignored.
/// Errors (kInvalidArgument): not an ImageJ description; a count key (images, channels, slices,
/// frames) that is not a positive integer; spacing/finterval/min/max that are not numbers.
Result<ImageJInfo> ParseImageJDescription(std::string_view description);

/// Display settings ImageJ keeps in the IJMetadata tag (50839), one entry per channel.
struct ImageJDisplay {
  /// Display range (min, max) of each channel ("rang" entries).
  std::vector<std::pair<double, double>> ranges;
  /// Colour of each channel's lookup table at its brightest entry, 0xRRGGBB ("luts" entries).
  std::vector<uint32_t> lut_colors;
};

/// Parses the IJMetadata tag: `data` is its bytes, `byte_counts` the IJMetadataByteCounts tag
/// (50838). The header ("IJIJ" big-endian, "JIJI" little-endian) lists (type, count) pairs; every
/// following entry is byte_counts[i] bytes. Entry types other than ranges and LUTs (info, labels,
/// ROIs, overlays, properties) are skipped. Errors (kInvalidArgument): a bad magic, a header or
/// counts that do not add up to the data, a range entry that is not whole doubles, a LUT entry
/// that is not 768 bytes.
Result<ImageJDisplay> ParseImageJMetadata(std::span<const std::byte> data,
                                          std::span<const uint32_t> byte_counts);

/// How the planes of an ImageJ file are stored.
struct ImageJLayout {
  uint64_t planes = 0;  ///< Planes of the hyperstack (ImageJInfo::PlaneCount()).
  /// True: only the first IFD exists and planes 1..planes-1 follow plane 0's data contiguously
  /// (each the same byte size as plane 0); false: plane i is IFD i.
  bool contiguous_after_first_ifd = false;
};

/// Decides the layout from the description and the number of IFDs in the file's main chain.
/// More IFDs than planes: the extra IFDs are not part of the hyperstack (ImageJ ignores them too).
/// Errors (kCorrupt): images= disagrees with channels*slices*frames, or the file has more than one
/// but fewer IFDs than planes.
Result<ImageJLayout> ImageJPlaneLayout(const ImageJInfo& info, uint64_t ifds_in_file);

/// Index of plane (t, c, z) among an ImageJ file's planes: (t * SizeZ + z) * SizeC + c.
uint64_t ImageJPlaneIndex(const ImageJInfo& info, uint32_t t, uint32_t c, uint32_t z);

}  // namespace refzarr
