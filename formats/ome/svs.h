// Aperio SVS ImageDescription and the roles of an SVS file's IFDs.
//
// Aperio writes, per IFD, a description like
//   "Aperio Image Library v10.0.51\r\n46920x33014 [0,100 46000x32914] (256x256) JPEG/RGB Q=30|AppMag = 20|MPP = 0.4990|..."
// (baseline), "...\r\n46000x32914 -> 1024x732 - |AppMag = 20|..." (thumbnail),
// "...\r\n46000x32914 [0,0 46000x32914] (256x256) -> 11500x8228 JPEG/RGB Q=30|..." (reduced level),
// "...\r\nlabel 415x422" and "...\r\nmacro 1280x431". The format is not published; these rules follow
// what Aperio ImageScope writes and what OpenSlide and tifffile accept.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "formats/core/status.h"

namespace refzarr {

/// What an Aperio description says. Absent items stay nullopt / empty.
struct SvsInfo {
  std::string header;                        ///< First line: "Aperio Image Library v10.0.51".
  std::optional<uint64_t> image_width, image_height;    ///< Full scanned size ("46920x33014").
  std::optional<uint64_t> region_x, region_y, region_width, region_height;  ///< "[0,100 46000x32914]"
  std::optional<uint32_t> tile_width, tile_height;      ///< "(256x256)"
  std::optional<uint64_t> level_width, level_height;    ///< After "->" ("-> 11500x8228").
  std::string compression;                   ///< "JPEG/RGB", "J2K/YUV16"; empty when absent.
  std::optional<uint32_t> quality;           ///< "Q=30"
  std::string image_type;                    ///< "label" or "macro" for those images, else empty.
  std::optional<double> mpp;                 ///< MPP: microns per pixel of the baseline.
  std::optional<double> app_mag;             ///< AppMag: objective magnification.
  /// Every "key = value" item after the first '|', in order, trimmed.
  std::vector<std::pair<std::string, std::string>> properties;
};

/// Parses an Aperio description. The header must start with "Aperio"; the line after it is parsed
/// loosely (unknown words are ignored); items after '|' are "key = value" pairs.
/// Errors (kInvalidArgument): not an Aperio description; MPP or AppMag that are not numbers.
Result<SvsInfo> ParseSvsDescription(std::string_view description);

/// Role of one IFD of an SVS file.
enum class SvsImageKind { kBaseline, kReducedLevel, kThumbnail, kLabel, kMacro, kOther };

/// "baseline", "level", "thumbnail", "label", "macro", "other".
std::string_view SvsImageKindName(SvsImageKind kind);

/// Classifies IFD `ifd_index` of the main chain from its description, NewSubfileType and whether it
/// is tiled, as Aperio writes them: IFD 0 (tiled) is the baseline; tiled IFDs after it are reduced
/// levels; the stripped IFD 1 is the thumbnail; "label"/"macro" descriptions (or, lacking a
/// description, stripped IFDs with NewSubfileType 1 / 9) are the label and macro images.
SvsImageKind ClassifySvsIfd(uint64_t ifd_index, std::string_view description,
                            uint32_t new_subfile_type, bool tiled);

}  // namespace refzarr
