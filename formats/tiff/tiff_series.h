// Series planning: which TIFF pages form which image, at which (t, c, z) and pyramid level, with
// which physical scales and channels. One planner per flavour of TIFF:
//
//   PlanDefaultSeries  plain TIFF: uniform pages stacked along z, reduced pages/SubIFDs as levels
//   PlanOmeImage       one OME-XML Image (planes from MapPlanes, SubIFD pyramids, units, channels)
//   PlanImageJSeries   ImageJ hyperstacks (czt order, spacing/unit, the > 4 GiB one-IFD layout)
//   PlanSvsSeries      Aperio SVS (baseline + reduced levels; thumbnail, label, macro)
//
// Planners are pure functions over a TiffStructure (the scanner resolves files). They return errors
// (kCorrupt) that name the contradiction; the scanner warns and falls back to PlanDefaultSeries.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "formats/core/model.h"
#include "formats/ome/imagej.h"
#include "formats/ome/ome_xml.h"
#include "formats/tiff/tiff_pages.h"

namespace refzarr {

/// One image of a TIFF file (or of a multi-file set). Pages hold `samples_per_pixel` channels each,
/// so the image has size_c = page_channels * samples_per_pixel channels.
struct SeriesPlan {
  std::string name;
  uint64_t size_t = 1, page_channels = 1, size_z = 1;
  /// levels[k][(t * page_channels + c) * size_z + z] = index into the TiffStructure's pages the plan
  /// was made from (which may hold pages of several files, see TiffPage::source). Level 0 is the
  /// full resolution; every level lists one page per plane.
  std::vector<std::vector<int>> levels;
  std::vector<Axis> axes;          ///< t, c, z, y, x; empty units mean unknown.
  std::vector<double> base_scale;  ///< Per axis, level 0 (levels scale y/x by their size ratio).
  std::vector<ChannelDesc> channels;
};

/// The default interpretation: consecutive uniform pages are one z-stack; pages that differ start a
/// new series; reduced-resolution pages (NewSubfileType bit 0) and SubIFDs are pyramid levels of
/// the latest series of the same kind (a reduced transparency mask belongs to the mask series, as
/// in COGs). Pixel sizes come from the resolution tags when they state inch or centimetre.
/// Only pages of source 0 are used.
std::vector<SeriesPlan> PlanDefaultSeries(const TiffStructure& tiff,
                                          std::vector<std::string>& warnings);

/// The plan of one OME Image whose planes are pages `plane_pages` (one per plane, in MapPlanes'
/// (t, c, z) order, pool indices of main-chain pages). Checks every plane against Pixels (SizeX/Y,
/// samples per pixel, sample type) and that the planes share one encoding; the SubIFDs of each
/// plane's page become pyramid levels (as many as every plane has, uniform across planes).
/// Errors (kCorrupt): the XML contradicts the pages; the message names the image and the IFD.
Result<SeriesPlan> PlanOmeImage(const TiffStructure& pool, const OmeImage& image,
                                const std::vector<int>& plane_pages,
                                std::vector<std::string>& warnings);

/// The plan of an ImageJ hyperstack (one series). Planes are IFDs in ImageJ's order (channel
/// fastest, then slice, then frame). When the description has more planes than the file has IFDs
/// and the file has exactly one (ImageJ's layout beyond 4 GiB), the other planes are synthesised
/// as pages appended to `tiff` (has_ifd = false) whose strips follow the first plane's data:
/// only for uncompressed whole-byte samples in contiguous strips, and only if the file holds all
/// `planes` x plane bytes. `file_size` is the file's size in bytes.
/// Errors (kCorrupt/kUnsupported): counts that disagree with the IFDs, planes that differ, a
/// one-IFD file that is compressed, not contiguous or too short.
Result<std::vector<SeriesPlan>> PlanImageJSeries(TiffStructure& tiff, uint64_t file_size,
                                                 const ImageJInfo& info,
                                                 std::vector<std::string>& warnings);

/// Aperio SVS: series 0 is the baseline with the reduced tiled levels (largest first; x/y scale
/// MPP micrometer), then the thumbnail, label and macro images as single-level series named
/// "thumbnail", "label", "macro" (in file order). The thumbnail gets the baseline's pixel size
/// times its size ratio. Other IFDs become unnamed series of their own.
/// Errors (kCorrupt): IFD 0 is not a tiled baseline, or a reduced level has other samples.
Result<std::vector<SeriesPlan>> PlanSvsSeries(const TiffStructure& tiff,
                                              std::vector<std::string>& warnings);

/// True when two pages can share one Zarr array (same geometry, sample type, chunking, encoding,
/// byte order).
bool UniformPages(const TiffPage& a, const TiffPage& b);

/// Indices of the SubIFDs of the main-chain page `page` (in order), within the same source.
std::vector<int> SubIfdsOf(const TiffStructure& tiff, int page);

}  // namespace refzarr
