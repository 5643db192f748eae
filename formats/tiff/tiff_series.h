// Series planning: which TIFF pages form which image, at which (t, c, z) and pyramid level.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "formats/core/model.h"
#include "formats/tiff/tiff_pages.h"

namespace refzarr {

/// One image of a TIFF file. Pages hold `samples_per_pixel` channels each, so the image has
/// size_c = page_channels * samples_per_pixel channels.
struct SeriesPlan {
  std::string name;
  uint64_t size_t = 1, page_channels = 1, size_z = 1;
  /// levels[k][(t * page_channels + c) * size_z + z] = index into TiffStructure::pages.
  std::vector<std::vector<int>> levels;
  /// Physical metadata; empty units mean unknown.
  std::vector<Axis> axes;                 ///< t, c, z, y, x.
  std::vector<double> base_scale;         ///< Per axis, level 0.
  std::vector<ChannelDesc> channels;
  std::vector<std::pair<std::string, std::string>> files;  ///< Multi-file sets (issue 4).
};

/// The default interpretation: consecutive uniform pages are one z-stack; pages that differ start a
/// new series; reduced-resolution pages (NewSubfileType bit 0) and SubIFDs are pyramid levels of
/// the page they follow.
std::vector<SeriesPlan> PlanDefaultSeries(const TiffStructure& tiff, std::vector<std::string>& warnings);

/// True when two pages can share one Zarr array (same geometry, sample type, chunking, encoding).
bool UniformPages(const TiffPage& a, const TiffPage& b);

}  // namespace refzarr
