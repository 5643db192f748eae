// From microscopy metadata (OME-XML, ImageJ, Aperio) to the neutral model's ImageDesc pieces:
// (t, c, z, y, x) axes with types and OME-NGFF units, one scale per pyramid level, and channels.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "formats/core/model.h"
#include "formats/ome/imagej.h"
#include "formats/ome/ome_xml.h"
#include "formats/ome/svs.h"

namespace refzarr {

/// Physical size of one pixel of the full-resolution level along each axis. A value of 1 with an
/// empty unit means "unknown" (OME-NGFF then gets scale 1 and no unit).
struct PhysicalScale {
  Quantity t{1.0, ""}, z{1.0, ""}, y{1.0, ""}, x{1.0, ""};
  friend bool operator==(const PhysicalScale&, const PhysicalScale&) = default;
};

/// Width and height (pixels) of one pyramid level.
struct LevelSize {
  uint64_t width = 0, height = 0;
};

/// The five axes t ("time"), c ("channel"), z, y, x ("space") with the units of `scale` (an axis
/// whose unit is empty gets none).
std::vector<Axis> TczyxAxes(const PhysicalScale& scale);

/// One scale vector (t, c, z, y, x) per level: level k has x = scale.x * (levels[0].width /
/// levels[k].width) and likewise y with heights; t, z unchanged, c is 1. levels[0] is the full
/// resolution. A level of width or height 0 keeps the base scale.
std::vector<std::vector<double>> LevelScales(const PhysicalScale& scale,
                                             std::span<const LevelSize> levels);

/// An ImageDesc for a (t, c, z, y, x) image with levels "0", "1", ... of the given sizes.
ImageDesc MakeTczyxImage(std::string name, const PhysicalScale& scale,
                         std::span<const LevelSize> levels, std::vector<ChannelDesc> channels);

/// Pixel sizes and time increment of an OME Pixels element (units converted; absent or
/// non-positive values stay unknown).
PhysicalScale ScaleFromOme(const OmePixels& pixels);

/// One ChannelDesc per entry of the c axis (SizeC): the OME channels' names and colours. A channel
/// with SamplesPerPixel S > 1 contributes S entries labelled "<name> R/G/B" (or "<name> <i>") with
/// red, green, blue colours; a channel without a name gets "Channel <i>".
std::vector<ChannelDesc> ChannelsFromOme(const OmePixels& pixels);

/// Pixel sizes from ImageJ: x and y from the TIFF XResolution/YResolution tags (pixels per unit;
/// pass 0 when absent), z from spacing, t from finterval; units from unit/yunit/zunit/tunit
/// (finterval defaults to seconds).
PhysicalScale ScaleFromImageJ(const ImageJInfo& info, double x_resolution, double y_resolution);

/// Pixel size from an Aperio baseline description: MPP micrometers in x and y.
PhysicalScale ScaleFromSvs(const SvsInfo& info);

}  // namespace refzarr
