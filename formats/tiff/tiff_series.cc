#include "formats/tiff/tiff_series.h"

#include <tiff.h>

#include <algorithm>
#include <climits>
#include <span>

#include "formats/ome/ngff_model.h"
#include "formats/ome/svs.h"

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
         a.ycbcr_subsampling[1] == b.ycbcr_subsampling[1] && a.big_endian == b.big_endian &&
         std::equal(a.ycbcr_coefficients, a.ycbcr_coefficients + 3, b.ycbcr_coefficients) &&
         std::equal(a.reference_black_white, a.reference_black_white + 6,
                    b.reference_black_white) &&
         a.old_jpeg.has_value() == b.old_jpeg.has_value() &&
         (!a.old_jpeg || a.old_jpeg->DecodesLike(*b.old_jpeg));
}

std::vector<int> SubIfdsOf(const TiffStructure& tiff, int page) {
  std::vector<int> out;
  const TiffPage& parent = tiff.pages[page];
  for (int i = page + 1; i < static_cast<int>(tiff.pages.size()); ++i) {
    const TiffPage& p = tiff.pages[i];
    if (p.source != parent.source || p.index != parent.index || p.sub_index < 0) break;
    out.push_back(i);
  }
  return out;
}

namespace {

// Pixel size in micrometres from the resolution tags, when they state a unit.
std::optional<double> Micrometres(uint16_t unit, float resolution) {
  if (resolution <= 0 || (unit != 2 && unit != 3)) return std::nullopt;
  return (unit == 2 ? 25400.0 : 10000.0) / resolution;
}

// Same samples (so a reduced page can be a level of a full-resolution one): the geometry and the
// encoding may differ, the element type and meaning may not.
bool SameSamples(const TiffPage& a, const TiffPage& b) {
  return a.samples_per_pixel == b.samples_per_pixel && a.bits_per_sample == b.bits_per_sample &&
         a.sample_format == b.sample_format && a.photometric == b.photometric &&
         a.planar == b.planar && (a.subfile_type & ~1u) == (b.subfile_type & ~1u) &&
         a.big_endian == b.big_endian && a.depth == b.depth;
}

std::vector<double> BaseScale(const PhysicalScale& s) {
  return {s.t.value, 1.0, s.z.value, s.y.value, s.x.value};
}

// The default RGB channel labels of a page with photometric RGB / YCbCr.
std::vector<ChannelDesc> RgbChannels(const TiffPage& first) {
  std::vector<ChannelDesc> channels;
  if (first.samples_per_pixel >= 3 &&
      (first.photometric == PHOTOMETRIC_RGB || first.photometric == PHOTOMETRIC_YCBCR)) {
    channels = {{"Red", 0xFF0000, std::nullopt, ""},
                {"Green", 0x00FF00, std::nullopt, ""},
                {"Blue", 0x0000FF, std::nullopt, ""}};
    for (int s = 3; s < first.samples_per_pixel; ++s) {
      channels.push_back(
          {s == 3 ? "Alpha" : "Sample " + std::to_string(s), 0xFFFFFF, std::nullopt, ""});
    }
  }
  return channels;
}

// The display window of every channel from SMinSampleValue/SMaxSampleValue, when the page has
// both and they make a range.
void SampleValueWindows(const TiffPage& first, std::vector<ChannelDesc>& channels) {
  if (!first.sample_value_range || first.sample_value_range->second <= first.sample_value_range->first) {
    return;
  }
  while (channels.size() < first.samples_per_pixel) {
    channels.push_back({"Channel " + std::to_string(channels.size()), std::nullopt, std::nullopt, ""});
  }
  for (ChannelDesc& c : channels) {
    c.window = first.sample_value_range;
    c.window_source = "TIFF SMinSampleValue/SMaxSampleValue";
  }
}

// Scale and axes from the resolution tags of `first` (micrometres when the unit is known).
void ResolutionScale(const TiffPage& first, SeriesPlan& plan) {
  auto xs = Micrometres(first.resolution_unit, first.x_resolution);
  auto ys = Micrometres(first.resolution_unit, first.y_resolution);
  std::string unit = xs && ys ? "micrometer" : "";
  plan.axes = {{"t", "time", ""}, {"c", "channel", ""}, {"z", "space", ""},
               {"y", "space", unit}, {"x", "space", unit}};
  plan.base_scale = {1.0, 1.0, 1.0, xs && ys ? *ys : 1.0, xs && ys ? *xs : 1.0};
}

// Appends to `plan` the pyramid levels given by each plane's reduced pages: level k exists when
// every plane has a k-th reduced page and those pages are uniform.
void AddReducedLevels(const TiffStructure& tiff, std::vector<std::vector<int>> reduced,
                      const std::string& label, SeriesPlan& plan,
                      std::vector<std::string>& warnings) {
  // Levels go from the highest resolution down, whatever order the file lists them in.
  for (auto& r : reduced) {
    std::stable_sort(r.begin(), r.end(), [&](int a, int b) {
      return uint64_t{tiff.pages[a].width} * tiff.pages[a].length >
             uint64_t{tiff.pages[b].width} * tiff.pages[b].length;
    });
  }
  size_t max_levels = SIZE_MAX;
  for (const auto& r : reduced) max_levels = std::min(max_levels, r.size());
  size_t most = 0;
  for (const auto& r : reduced) most = std::max(most, r.size());
  if (reduced.empty()) return;
  if (most > max_levels) {
    warnings.push_back(label + ": planes have different numbers of reduced levels; only the " +
                       std::to_string(max_levels) + " all planes have are exposed");
  }
  for (size_t k = 0; k < max_levels; ++k) {
    std::vector<int> level;
    for (const auto& r : reduced) level.push_back(r[k]);
    bool uniform = SameSamples(tiff.pages[plan.levels[0].front()], tiff.pages[level.front()]);
    for (int idx : level) uniform = uniform && UniformPages(tiff.pages[level.front()], tiff.pages[idx]);
    if (!uniform) {
      warnings.push_back(label + ": reduced level " + std::to_string(k + 1) +
                         " differs between planes or from the full resolution; levels from it on "
                         "are not exposed");
      break;
    }
    plan.levels.push_back(std::move(level));
  }
}

struct Group {
  std::vector<int> planes;               // full-resolution pages
  std::vector<std::vector<int>> reduced;  // per plane: its reduced pages in order
};

std::string Describe(const OmeImage& image) {
  std::string label = "image " + (image.id.empty() ? std::string("?") : image.id);
  if (!image.name.empty()) label += " (" + image.name + ")";
  return label;
}

// The element type the scanner gives a page, compared with an OME Pixels type.
bool SampleTypeMatches(const TiffPage& p, const DType& ome) {
  uint32_t bytes = p.bits_per_sample <= 8 ? 1 : p.bits_per_sample <= 16 ? 2
                   : p.bits_per_sample <= 32 ? 4 : 8;
  char kind = p.sample_format == SAMPLEFORMAT_INT ? 'i'
              : p.sample_format == SAMPLEFORMAT_IEEEFP ? 'f' : 'u';
  if (ome.kind == 'b') return p.bits_per_sample == 1 || (bytes == 1 && kind == 'u');
  return ome.kind == kind && ome.size == bytes;
}

}  // namespace

std::vector<SeriesPlan> PlanDefaultSeries(const TiffStructure& tiff,
                                          std::vector<std::string>& warnings) {
  std::vector<Group> groups;
  const auto& pages = tiff.pages;
  for (int i = 0; i < static_cast<int>(pages.size()); ++i) {
    const TiffPage& p = pages[i];
    if (p.source != 0) continue;
    if (p.sub_index >= 0) {
      // A SubIFD is a level of its parent, which is the last plane of the last group.
      if (!groups.empty()) groups.back().reduced.back().push_back(i);
      continue;
    }
    if (p.IsReduced()) {
      // A reduced page belongs to the latest group of the same kind (image or mask).
      auto it = std::find_if(groups.rbegin(), groups.rend(), [&](const Group& g) {
        return SameSamples(pages[g.planes.front()], p);
      });
      if (it != groups.rend()) {
        it->reduced.back().push_back(i);
        continue;
      }
    }
    if (groups.empty() || !UniformPages(pages[groups.back().planes.front()], p) ||
        pages[groups.back().planes.back()].IsReduced() != p.IsReduced()) {
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
    AddReducedLevels(tiff, g.reduced, "series " + std::to_string(plans.size()), plan, warnings);
    const TiffPage& first = pages[g.planes.front()];
    ResolutionScale(first, plan);
    plan.channels = RgbChannels(first);
    SampleValueWindows(first, plan.channels);
    plans.push_back(std::move(plan));
  }
  return plans;
}

Result<SeriesPlan> PlanOmeImage(const TiffStructure& pool, const OmeImage& image,
                                const std::vector<int>& plane_pages,
                                std::vector<std::string>& warnings) {
  const OmePixels& px = image.pixels;
  const std::string label = Describe(image);
  if (plane_pages.size() != px.PlaneCount() || plane_pages.empty()) {
    return CorruptError(label + ": " + std::to_string(plane_pages.size()) + " planes mapped, " +
                        std::to_string(px.PlaneCount()) + " expected");
  }
  const TiffPage& first = pool.pages[plane_pages.front()];
  for (int idx : plane_pages) {
    const TiffPage& p = pool.pages[idx];
    if (p.width != px.size_x || p.length != px.size_y) {
      return CorruptError(label + ": " + p.Where() + " is " + std::to_string(p.width) + "x" +
                          std::to_string(p.length) + " but Pixels says SizeX=" +
                          std::to_string(px.size_x) + " SizeY=" + std::to_string(px.size_y));
    }
    if (p.samples_per_pixel != px.SamplesPerPixel()) {
      return CorruptError(label + ": " + p.Where() + " has " +
                          std::to_string(p.samples_per_pixel) + " samples per pixel but the "
                          "channels say " + std::to_string(px.SamplesPerPixel()));
    }
    if (!SampleTypeMatches(p, px.dtype)) {
      return CorruptError(label + ": " + p.Where() + " holds " +
                          std::to_string(p.bits_per_sample) + "-bit samples (SampleFormat " +
                          std::to_string(p.sample_format) + ") but Pixels Type is \"" + px.type +
                          "\"");
    }
    if (!UniformPages(first, p)) {
      return CorruptError(label + ": " + p.Where() + " is encoded differently from " +
                          first.Where() + " (one array needs one encoding)");
    }
  }
  SeriesPlan plan;
  plan.name = image.name;
  plan.size_t = px.size_t_;
  plan.page_channels = px.EffectiveSizeC();
  plan.size_z = px.size_z;
  plan.levels.push_back(plane_pages);
  std::vector<std::vector<int>> reduced;
  for (int idx : plane_pages) reduced.push_back(SubIfdsOf(pool, idx));
  AddReducedLevels(pool, reduced, label, plan, warnings);
  PhysicalScale scale = ScaleFromOme(px);
  plan.axes = TczyxAxes(scale);
  plan.base_scale = BaseScale(scale);
  plan.channels = ChannelsFromOme(px);
  return plan;
}

namespace {

// Channel colours and display ranges: per channel from the IJMetadata tag (LUTs, ranges) where
// it has them, else the description's min/max for every channel. The tag is display metadata: when
// it cannot be read the file is still indexed, with a warning.
std::vector<ChannelDesc> ImageJChannels(const ImageJInfo& info, const TiffPage& first,
                                        uint32_t channels, std::vector<std::string>& warnings) {
  ImageJDisplay display;
  if (!first.ij_metadata.empty()) {
    Result<ImageJDisplay> parsed =
        ParseImageJMetadata(std::as_bytes(std::span(first.ij_metadata)), first.ij_byte_counts);
    if (parsed.ok()) {
      display = std::move(*parsed);
    } else {
      warnings.push_back(parsed.status().message() + "; channel colours and ranges ignored");
    }
  }
  const bool description_range = info.min && info.max && *info.max > *info.min;
  if (display.ranges.empty() && display.lut_colors.empty() && !description_range) return {};
  std::vector<ChannelDesc> out;
  for (uint32_t c = 0; c < channels * first.samples_per_pixel; ++c) {
    ChannelDesc channel{"Channel " + std::to_string(c), std::nullopt, std::nullopt, ""};
    if (c < display.lut_colors.size()) channel.color = display.lut_colors[c];
    if (c < display.ranges.size() && display.ranges[c].second > display.ranges[c].first) {
      channel.window = display.ranges[c];
      channel.window_source = "ImageJ display range (IJMetadata)";
    } else if (description_range) {
      channel.window = std::make_pair(*info.min, *info.max);
      channel.window_source = "ImageJ min/max (ImageDescription)";
    }
    out.push_back(std::move(channel));
  }
  return out;
}

}  // namespace

Result<std::vector<SeriesPlan>> PlanImageJSeries(TiffStructure& tiff, uint64_t file_size,
                                                 const ImageJInfo& info,
                                                 std::vector<std::string>& warnings) {
  std::vector<int> main;
  for (int i = 0; i < static_cast<int>(tiff.pages.size()); ++i) {
    if (tiff.pages[i].source == 0 && tiff.pages[i].sub_index < 0) main.push_back(i);
  }
  if (main.empty()) return CorruptError("ImageJ: no IFD");
  ASSIGN_OR_RETURN(ImageJLayout layout, ImageJPlaneLayout(info, main.size()));
  std::vector<int> planes;
  if (layout.contiguous_after_first_ifd) {
    const TiffPage p0 = tiff.pages[main.front()];
    if (p0.compression != COMPRESSION_NONE || p0.bits_per_sample % 8 != 0 || p0.offsets.empty()) {
      return UnsupportedError("ImageJ: " + std::to_string(layout.planes) +
                              " planes in one IFD, but the first plane is compressed or not "
                              "byte-aligned, so the others cannot be located");
    }
    uint64_t plane_bytes = 0;
    for (size_t i = 0; i < p0.offsets.size(); ++i) {
      if (i > 0 && p0.offsets[i] != p0.offsets[i - 1] + p0.byte_counts[i - 1]) {
        return UnsupportedError("ImageJ: the first plane's strips are not contiguous (strip " +
                                std::to_string(i) + "), so the other planes cannot be located");
      }
      plane_bytes += p0.byte_counts[i];
    }
    const uint64_t expected = uint64_t{p0.width} * p0.length * p0.samples_per_pixel *
                              (p0.bits_per_sample / 8);
    if (plane_bytes != expected) {
      return CorruptError("ImageJ: the first plane holds " + std::to_string(plane_bytes) +
                          " bytes, expected " + std::to_string(expected));
    }
    const uint64_t start = p0.offsets.front();
    if (plane_bytes == 0 || start > file_size ||
        (file_size - start) / plane_bytes < layout.planes) {
      return CorruptError("ImageJ: " + std::to_string(layout.planes) + " planes of " +
                          std::to_string(plane_bytes) + " bytes from offset " +
                          std::to_string(start) + " need " +
                          std::to_string(start + layout.planes * plane_bytes) +
                          " bytes, the file has " + std::to_string(file_size));
    }
    planes.push_back(main.front());
    for (uint64_t k = 1; k < layout.planes; ++k) {
      TiffPage p = p0;
      p.index = static_cast<int>(k);
      p.has_ifd = false;
      for (uint64_t& off : p.offsets) off += k * plane_bytes;
      planes.push_back(static_cast<int>(tiff.pages.size()));
      tiff.pages.push_back(std::move(p));
    }
  } else {
    planes.assign(main.begin(), main.begin() + layout.planes);
    if (main.size() > layout.planes) {
      warnings.push_back("ImageJ: " + std::to_string(main.size() - layout.planes) +
                         " IFDs after the " + std::to_string(layout.planes) +
                         " hyperstack planes are not part of the image and are not indexed");
    }
  }
  const TiffPage& first = tiff.pages[planes.front()];
  for (int idx : planes) {
    if (!UniformPages(first, tiff.pages[idx])) {
      return CorruptError("ImageJ: " + tiff.pages[idx].Where() + " differs from IFD 0");
    }
  }
  SeriesPlan plan;
  plan.size_t = info.SizeT();
  plan.page_channels = info.SizeC();
  plan.size_z = info.SizeZ();
  std::vector<int> level(planes.size());
  for (uint32_t t = 0; t < plan.size_t; ++t) {
    for (uint32_t c = 0; c < plan.page_channels; ++c) {
      for (uint32_t z = 0; z < plan.size_z; ++z) {
        level[(t * plan.page_channels + c) * plan.size_z + z] =
            planes[ImageJPlaneIndex(info, t, c, z)];
      }
    }
  }
  plan.levels.push_back(std::move(level));
  PhysicalScale scale = ScaleFromImageJ(info, first.x_resolution, first.y_resolution);
  plan.axes = TczyxAxes(scale);
  plan.base_scale = BaseScale(scale);
  plan.channels = RgbChannels(first);
  if (plan.channels.empty()) plan.channels = ImageJChannels(info, first, plan.page_channels, warnings);
  return std::vector<SeriesPlan>{std::move(plan)};
}

Result<std::vector<SeriesPlan>> PlanSvsSeries(const TiffStructure& tiff,
                                              std::vector<std::string>& warnings) {
  std::vector<int> levels;
  std::vector<std::pair<int, std::string>> others;  // page, series name
  for (int i = 0; i < static_cast<int>(tiff.pages.size()); ++i) {
    const TiffPage& p = tiff.pages[i];
    if (p.source != 0 || p.sub_index >= 0) continue;
    switch (ClassifySvsIfd(p.index, p.description, p.subfile_type, p.tiled)) {
      case SvsImageKind::kBaseline:
      case SvsImageKind::kReducedLevel:
        levels.push_back(i);
        break;
      case SvsImageKind::kThumbnail:
        others.emplace_back(i, "thumbnail");
        break;
      case SvsImageKind::kLabel:
        others.emplace_back(i, "label");
        break;
      case SvsImageKind::kMacro:
        others.emplace_back(i, "macro");
        break;
      case SvsImageKind::kOther:
        others.emplace_back(i, "");
        break;
    }
  }
  if (levels.empty() || levels.front() != 0 || !tiff.pages[0].tiled) {
    return CorruptError("SVS: IFD 0 is not a tiled baseline image");
  }
  const TiffPage& base = tiff.pages[levels.front()];
  std::stable_sort(levels.begin() + 1, levels.end(), [&](int a, int b) {
    return tiff.pages[a].width > tiff.pages[b].width;
  });
  for (int idx : levels) {
    if (!SameSamples(base, tiff.pages[idx])) {
      return CorruptError("SVS: reduced level " + tiff.pages[idx].Where() +
                          " has other samples than the baseline");
    }
  }
  auto svs = ParseSvsDescription(base.description);
  PhysicalScale scale;
  if (svs.ok()) {
    scale = ScaleFromSvs(*svs);
  } else {
    warnings.push_back("SVS: baseline description: " + svs.status().message() +
                       "; no pixel size");
  }
  std::vector<SeriesPlan> plans;
  SeriesPlan pyramid;
  pyramid.name = "Baseline";
  for (int idx : levels) pyramid.levels.push_back({idx});
  pyramid.axes = TczyxAxes(scale);
  pyramid.base_scale = BaseScale(scale);
  pyramid.channels = RgbChannels(base);
  plans.push_back(std::move(pyramid));
  for (const auto& [idx, name] : others) {
    const TiffPage& p = tiff.pages[idx];
    SeriesPlan plan;
    plan.name = name;
    plan.levels.push_back({idx});
    PhysicalScale s;
    if (name == "thumbnail" && scale.x.unit == "micrometer" && p.width > 0 && p.length > 0) {
      // The thumbnail shows the whole baseline: its pixels are larger by the size ratio.
      s.x = {scale.x.value * base.width / p.width, scale.x.unit};
      s.y = {scale.y.value * base.length / p.length, scale.y.unit};
    }
    plan.axes = TczyxAxes(s);
    plan.base_scale = BaseScale(s);
    plan.channels = RgbChannels(p);
    plans.push_back(std::move(plan));
  }
  return plans;
}

}  // namespace refzarr
