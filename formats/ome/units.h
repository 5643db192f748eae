// Units and colours as microscopy files write them, translated to OME-NGFF terms.
//
// OME-XML writes unit symbols ("µm", "nm", "ms"), ImageJ writes free text ("micron", "um", "sec"),
// OME-NGFF wants UDUNITS-2 names from a fixed list ("micrometer", "millisecond"). The 0.4/0.5 JSON
// schemas only require a string; the list comes from the OME-NGFF specification ("axes" section).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace refzarr {

/// `text` as a whole decimal number ("0.4990", "1e-3"); nullopt when anything else is in it.
std::optional<double> ParseNumber(std::string_view text);

/// True when `name` is one of the OME-NGFF space units ("angstrom" ... "zettameter").
bool IsNgffSpaceUnit(std::string_view name);
/// True when `name` is one of the OME-NGFF time units ("attosecond" ... "zettasecond").
bool IsNgffTimeUnit(std::string_view name);

/// Translates a length unit as OME-XML (UnitsLength symbols: "µm", "nm", "Å", "mm", "cm", "m",
/// "in", "ft", ...), ImageJ ("micron", "um", "\u00B5m", "microns", "nm", "pixel") or OME-NGFF itself
/// writes it into the OME-NGFF space unit name. Matching ignores surrounding blanks. nullopt for
/// units OME-NGFF cannot express ("pixel", "reference frame", unknown text); callers then omit the
/// unit rather than invent one.
std::optional<std::string> NgffSpaceUnit(std::string_view unit);

/// As NgffSpaceUnit for time ("s", "ms", "µs", "ns", "min", "h", "d", "sec", "msec", names).
std::optional<std::string> NgffTimeUnit(std::string_view unit);

/// Converts an OME-XML Channel Color (a signed 32-bit integer holding RGBA, red in the most
/// significant byte; -1 is opaque white, -16776961 opaque red) into 0xRRGGBB (alpha dropped).
uint32_t OmeColorToRgb(int32_t rgba);

/// "RRGGBB" in upper-case hex, as OME-NGFF "omero" channels write colours.
std::string RgbHex(uint32_t rgb);

}  // namespace refzarr
