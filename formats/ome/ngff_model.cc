#include "formats/ome/ngff_model.h"

#include <cmath>

#include <utility>

#include "formats/ome/units.h"

namespace refzarr {
namespace {

// ImageJ escapes non-ASCII units as a literal "\u00B5m"; make it the real character.
std::string Unescape(std::string text) {
  for (size_t pos; (pos = text.find("\\u00B5")) != std::string::npos;) {
    text.replace(pos, 6, "\xC2\xB5");
  }
  return text;
}

Quantity Known(double value, std::optional<std::string> unit) {
  if (!(value > 0)) return Quantity{1.0, ""};
  return Quantity{value, unit.value_or("")};
}

}  // namespace

std::vector<Axis> TczyxAxes(const PhysicalScale& scale) {
  return {Axis{"t", "time", scale.t.unit}, Axis{"c", "channel", ""},
          Axis{"z", "space", scale.z.unit}, Axis{"y", "space", scale.y.unit},
          Axis{"x", "space", scale.x.unit}};
}

std::vector<std::vector<double>> LevelScales(const PhysicalScale& scale,
                                             std::span<const LevelSize> levels) {
  std::vector<std::vector<double>> out;
  for (const LevelSize& level : levels) {
    double fx = 1.0, fy = 1.0;
    if (level.width > 0 && level.height > 0 && !levels.empty()) {
      fx = static_cast<double>(levels[0].width) / static_cast<double>(level.width);
      fy = static_cast<double>(levels[0].height) / static_cast<double>(level.height);
    }
    out.push_back({scale.t.value, 1.0, scale.z.value, scale.y.value * fy, scale.x.value * fx});
  }
  return out;
}

ImageDesc MakeTczyxImage(std::string name, const PhysicalScale& scale,
                         std::span<const LevelSize> levels, std::vector<ChannelDesc> channels) {
  ImageDesc image;
  image.name = std::move(name);
  image.axes = TczyxAxes(scale);
  for (size_t k = 0; k < levels.size(); ++k) image.levels.push_back(std::to_string(k));
  image.scales = LevelScales(scale, levels);
  image.channels = std::move(channels);
  return image;
}

PhysicalScale ScaleFromOme(const OmePixels& pixels) {
  PhysicalScale scale;
  auto take = [](const std::optional<Quantity>& q) {
    return q ? Known(q->value, q->unit) : Quantity{1.0, ""};
  };
  scale.x = take(pixels.physical_size_x);
  scale.y = take(pixels.physical_size_y);
  scale.z = take(pixels.physical_size_z);
  scale.t = take(pixels.time_increment);
  return scale;
}

std::vector<ChannelDesc> ChannelsFromOme(const OmePixels& pixels) {
  static constexpr uint32_t kRgb[] = {0xFF0000, 0x00FF00, 0x0000FF};
  static constexpr const char* kRgbNames[] = {"R", "G", "B"};
  std::vector<ChannelDesc> out;
  for (size_t i = 0; i < pixels.channels.size() && out.size() < pixels.size_c; ++i) {
    const OmeChannel& ch = pixels.channels[i];
    std::string label = ch.name.empty() ? "Channel " + std::to_string(out.size()) : ch.name;
    if (ch.samples_per_pixel <= 1) {
      out.push_back(ChannelDesc{label, ch.color, std::nullopt, ""});
      continue;
    }
    for (uint32_t s = 0; s < ch.samples_per_pixel && out.size() < pixels.size_c; ++s) {
      ChannelDesc desc;
      bool rgb = ch.samples_per_pixel == 3;
      desc.label = label + " " + (rgb ? kRgbNames[s] : std::to_string(s));
      if (rgb) desc.color = kRgb[s];
      out.push_back(std::move(desc));
    }
  }
  while (out.size() < pixels.size_c) {
    out.push_back(ChannelDesc{"Channel " + std::to_string(out.size()), std::nullopt, std::nullopt, ""});
  }
  // 12-bit camera data in uint16 shown as 0-65535 is near black: the bits the file says are used
  // are the display range.
  const DType& d = pixels.dtype;
  if (pixels.significant_bits && (d.kind == 'u' || d.kind == 'i') && *pixels.significant_bits > 0 &&
      *pixels.significant_bits < d.size * 8) {
    const int bits = static_cast<int>(*pixels.significant_bits);
    const double hi = std::ldexp(1.0, d.kind == 'u' ? bits : bits - 1) - 1;
    for (ChannelDesc& c : out) {
      c.window = std::make_pair(d.kind == 'u' ? 0.0 : -hi - 1, hi);
      c.window_source = "OME SignificantBits=" + std::to_string(bits);
    }
  }
  return out;
}

PhysicalScale ScaleFromImageJ(const ImageJInfo& info, double x_resolution, double y_resolution) {
  PhysicalScale scale;
  const std::string unit = Unescape(info.unit);
  const std::string yunit = info.yunit.empty() ? unit : Unescape(info.yunit);
  const std::string zunit = info.zunit.empty() ? unit : Unescape(info.zunit);
  if (x_resolution > 0) scale.x = Known(1.0 / x_resolution, NgffSpaceUnit(unit));
  if (y_resolution > 0) scale.y = Known(1.0 / y_resolution, NgffSpaceUnit(yunit));
  if (info.spacing) scale.z = Known(*info.spacing, NgffSpaceUnit(zunit));
  if (info.finterval) {
    scale.t = Known(*info.finterval, NgffTimeUnit(info.tunit.empty() ? "sec" : info.tunit));
  }
  return scale;
}

PhysicalScale ScaleFromSvs(const SvsInfo& info) {
  PhysicalScale scale;
  if (info.mpp) {
    scale.x = Known(*info.mpp, "micrometer");
    scale.y = scale.x;
  }
  return scale;
}

}  // namespace refzarr
