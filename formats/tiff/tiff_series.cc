#include "formats/tiff/tiff_series.h"

namespace refzarr {

bool UniformPages(const TiffPage& a, const TiffPage& b) {
  return a.width == b.width && a.length == b.length && a.depth == b.depth &&
         a.samples_per_pixel == b.samples_per_pixel && a.bits_per_sample == b.bits_per_sample &&
         a.sample_format == b.sample_format && a.planar == b.planar &&
         a.compression == b.compression && a.predictor == b.predictor &&
         a.photometric == b.photometric && a.fill_order == b.fill_order && a.tiled == b.tiled &&
         a.tile_width == b.tile_width && a.tile_length == b.tile_length &&
         a.jpeg_tables == b.jpeg_tables && (a.subfile_type & ~1u) == (b.subfile_type & ~1u) &&
         a.ycbcr_subsampling[0] == b.ycbcr_subsampling[0] &&
         a.ycbcr_subsampling[1] == b.ycbcr_subsampling[1];
}

namespace {

// Pixel size in micrometres from the resolution tags, when they state a unit.
std::optional<double> Micrometres(uint16_t unit, float resolution) {
  if (resolution <= 0 || (unit != 2 && unit != 3)) return std::nullopt;
  return (unit == 2 ? 25400.0 : 10000.0) / resolution;
}

struct Group {
  std::vector<int> planes;                   // full-resolution pages
  std::vector<std::vector<int>> reduced;     // per plane: its reduced pages in order
};

}  // namespace

std::vector<SeriesPlan> PlanDefaultSeries(const TiffStructure& tiff,
                                          std::vector<std::string>& warnings) {
  std::vector<Group> groups;
  const auto& pages = tiff.pages;
  for (int i = 0; i < static_cast<int>(pages.size()); ++i) {
    const TiffPage& p = pages[i];
    bool is_level = p.sub_index >= 0 || p.IsReduced();
    if (is_level && !groups.empty()) {
      groups.back().reduced.back().push_back(i);
      continue;
    }
    if (groups.empty() || !UniformPages(pages[groups.back().planes.front()], p)) {
      groups.push_back({});
    }
    groups.back().planes.push_back(i);
    groups.back().reduced.emplace_back();
  }

  std::vector<SeriesPlan> plans;
  for (const Group& g : groups) {
    SeriesPlan plan;
    plan.size_z = g.planes.size();
    plan.levels.push_back(g.planes);
    // Level k exists when every plane has a k-th reduced page and those pages are uniform.
    size_t max_levels = SIZE_MAX;
    for (const auto& r : g.reduced) max_levels = std::min(max_levels, r.size());
    for (size_t k = 0; k < max_levels; ++k) {
      std::vector<int> level;
      for (const auto& r : g.reduced) level.push_back(r[k]);
      bool uniform = true;
      for (int idx : level) uniform = uniform && UniformPages(pages[level.front()], pages[idx]);
      if (!uniform) {
        warnings.push_back("series " + std::to_string(plans.size()) + ": reduced level " +
                           std::to_string(k + 1) + " differs between planes; levels from it on "
                           "are not exposed");
        break;
      }
      plan.levels.push_back(std::move(level));
    }
    const TiffPage& first = pages[g.planes.front()];
    auto xs = Micrometres(first.resolution_unit, first.x_resolution);
    auto ys = Micrometres(first.resolution_unit, first.y_resolution);
    std::string unit = xs && ys ? "micrometer" : "";
    plan.axes = {{"t", "time", ""}, {"c", "channel", ""}, {"z", "space", ""},
                 {"y", "space", unit}, {"x", "space", unit}};
    plan.base_scale = {1.0, 1.0, 1.0, xs && ys ? *ys : 1.0, xs && ys ? *xs : 1.0};
    if (first.samples_per_pixel >= 3 &&
        (first.photometric == 2 || first.photometric == 6)) {
      plan.channels = {{"Red", 0xFF0000, std::nullopt},
                       {"Green", 0x00FF00, std::nullopt},
                       {"Blue", 0x0000FF, std::nullopt}};
      for (int s = 3; s < first.samples_per_pixel; ++s) {
        plan.channels.push_back({s == 3 ? "Alpha" : "Sample " + std::to_string(s), 0xFFFFFF,
                                 std::nullopt});
      }
    }
    plans.push_back(std::move(plan));
  }
  return plans;
}

}  // namespace refzarr
