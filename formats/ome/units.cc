#include "formats/ome/units.h"

#include <charconv>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>

namespace refzarr {
namespace {

// The OME-NGFF 0.4/0.5 specification lists these UDUNITS-2 names for space and time axes.
constexpr std::array<std::string_view, 26> kSpaceUnits = {
    "angstrom",   "attometer",  "centimeter", "decimeter",  "exameter",   "femtometer",
    "foot",       "gigameter",  "hectometer", "inch",       "kilometer",  "megameter",
    "meter",      "micrometer", "mile",       "millimeter", "nanometer",  "parsec",
    "petameter",  "picometer",  "terameter",  "yard",       "yoctometer", "yottameter",
    "zeptometer", "zettameter"};
constexpr std::array<std::string_view, 23> kTimeUnits = {
    "attosecond", "centisecond", "day",         "decisecond", "exasecond",  "femtosecond",
    "gigasecond", "hectosecond", "hour",        "kilosecond", "megasecond", "microsecond",
    "millisecond", "minute",     "nanosecond",  "petasecond", "picosecond", "second",
    "terasecond", "yoctosecond", "yottasecond", "zeptosecond", "zettasecond"};

struct Alias {
  std::string_view text;
  std::string_view name;
};

// OME UnitsLength symbols (ome.xsd) plus the spellings ImageJ and Micro-Manager write. "µ" appears
// both as MICRO SIGN (U+00B5, "\xC2\xB5") and GREEK SMALL LETTER MU (U+03BC, "\xCE\xBC").
constexpr Alias kSpaceAliases[] = {
    {"Ym", "yottameter"},  {"Zm", "zettameter"},  {"Em", "exameter"},     {"Pm", "petameter"},
    {"Tm", "terameter"},   {"Gm", "gigameter"},   {"Mm", "megameter"},    {"km", "kilometer"},
    {"hm", "hectometer"},  {"dam", "decameter"},  {"m", "meter"},         {"dm", "decimeter"},
    {"cm", "centimeter"},  {"mm", "millimeter"},  {"\xC2\xB5m", "micrometer"},
    {"\xCE\xBCm", "micrometer"}, {"um", "micrometer"}, {"micron", "micrometer"},
    {"microns", "micrometer"}, {"nm", "nanometer"}, {"pm", "picometer"}, {"fm", "femtometer"},
    {"am", "attometer"},   {"zm", "zeptometer"},  {"ym", "yoctometer"},   {"\xC3\x85", "angstrom"},
    {"\xE2\x84\xAB", "angstrom"}, {"A", "angstrom"}, {"in", "inch"}, {"ft", "foot"},
    {"yd", "yard"},        {"mi", "mile"},        {"pc", "parsec"},       {"inches", "inch"},
    {"feet", "foot"}};

constexpr Alias kTimeAliases[] = {
    {"Ys", "yottasecond"}, {"Zs", "zettasecond"}, {"Es", "exasecond"},   {"Ps", "petasecond"},
    {"Ts", "terasecond"},  {"Gs", "gigasecond"},  {"Ms", "megasecond"},  {"ks", "kilosecond"},
    {"hs", "hectosecond"}, {"s", "second"},       {"sec", "second"},     {"seconds", "second"},
    {"ds", "decisecond"},  {"cs", "centisecond"}, {"ms", "millisecond"}, {"msec", "millisecond"},
    {"milliseconds", "millisecond"}, {"\xC2\xB5s", "microsecond"}, {"\xCE\xBCs", "microsecond"},
    {"us", "microsecond"}, {"ns", "nanosecond"},  {"ps", "picosecond"},  {"fs", "femtosecond"},
    {"as", "attosecond"},  {"zs", "zeptosecond"}, {"ys", "yoctosecond"}, {"min", "minute"},
    {"minutes", "minute"}, {"h", "hour"},         {"hr", "hour"},        {"hours", "hour"},
    {"d", "day"},          {"days", "day"}};

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

template <size_t N, size_t M>
std::optional<std::string> Lookup(std::string_view unit, const std::array<std::string_view, N>& names,
                                  const Alias (&aliases)[M]) {
  unit = Trim(unit);
  if (unit.empty()) return std::nullopt;
  // Symbols are case-sensitive ("Mm" megameter vs "mm" millimeter); names are not.
  for (const Alias& a : aliases) {
    if (a.text == unit) return std::string(a.name);
  }
  std::string lower(unit);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (std::string_view n : names) {
    if (n == lower) return std::string(n);
  }
  // Plural and British spellings of the names ("micrometers", "micrometre").
  if (lower.size() > 1 && lower.back() == 's') lower.pop_back();
  for (std::string_view n : names) {
    if (n == lower) return std::string(n);
  }
  if (lower.size() > 3 && lower.ends_with("tre")) {
    lower.replace(lower.size() - 3, 3, "ter");
    for (std::string_view n : names) {
      if (n == lower) return std::string(n);
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<double> ParseNumber(std::string_view text) {
  double value = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || p != text.data() + text.size()) return std::nullopt;
  return value;
}

bool IsNgffSpaceUnit(std::string_view name) {
  return std::find(kSpaceUnits.begin(), kSpaceUnits.end(), name) != kSpaceUnits.end();
}

bool IsNgffTimeUnit(std::string_view name) {
  return std::find(kTimeUnits.begin(), kTimeUnits.end(), name) != kTimeUnits.end();
}

std::optional<std::string> NgffSpaceUnit(std::string_view unit) {
  auto name = Lookup(unit, kSpaceUnits, kSpaceAliases);
  // "decameter" is an OME unit without an OME-NGFF name.
  if (name && !IsNgffSpaceUnit(*name)) return std::nullopt;
  return name;
}

std::optional<std::string> NgffTimeUnit(std::string_view unit) {
  return Lookup(unit, kTimeUnits, kTimeAliases);
}

uint32_t OmeColorToRgb(int32_t rgba) { return static_cast<uint32_t>(rgba) >> 8; }

std::string RgbHex(uint32_t rgb) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%06X", rgb & 0xFFFFFFu);
  return buf;
}

}  // namespace refzarr
