#include "formats/ome/svs.h"

#include <cctype>
#include <charconv>

#include "formats/ome/units.h"

namespace refzarr {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

template <typename Int>
bool ParseInt(std::string_view text, Int& out) {
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && p == text.data() + text.size();
}

// "46920x33014" -> (46920, 33014).
template <typename Int>
bool ParseSize(std::string_view text, std::optional<Int>& w, std::optional<Int>& h) {
  size_t x = text.find('x');
  Int a{}, b{};
  if (x == std::string_view::npos || !ParseInt(text.substr(0, x), a) ||
      !ParseInt(text.substr(x + 1), b)) {
    return false;
  }
  w = a;
  h = b;
  return true;
}

std::vector<std::string_view> Words(std::string_view s) {
  std::vector<std::string_view> words;
  while (true) {
    s = Trim(s);
    if (s.empty()) break;
    size_t end = 0;
    while (end < s.size() && !std::isspace(static_cast<unsigned char>(s[end]))) ++end;
    words.push_back(s.substr(0, end));
    s.remove_prefix(end);
  }
  return words;
}

// The line after the header: "W x H [X,Y WxH] (TWxTH) [-> LWxLH] COMPRESSION Q=N", or
// "label WxH" / "macro WxH". Unknown words are skipped: Aperio varies it between versions.
void ParseGeometry(std::string_view line, SvsInfo& info) {
  std::vector<std::string_view> words = Words(line);
  bool arrow = false;
  for (size_t i = 0; i < words.size(); ++i) {
    std::string_view w = words[i];
    if (i == 0 && (w == "label" || w == "macro")) {
      info.image_type = w;
      continue;
    }
    if (w == "->") {
      arrow = true;
      continue;
    }
    if (w.starts_with("[") && i + 1 < words.size() && words[i + 1].ends_with("]")) {
      std::string_view origin = w.substr(1);
      size_t comma = origin.find(',');
      uint64_t x = 0, y = 0;
      if (comma != std::string_view::npos && ParseInt(origin.substr(0, comma), x) &&
          ParseInt(origin.substr(comma + 1), y)) {
        info.region_x = x;
        info.region_y = y;
      }
      std::string_view size = words[i + 1];
      ParseSize(size.substr(0, size.size() - 1), info.region_width, info.region_height);
      ++i;
      continue;
    }
    if (w.starts_with("(") && w.ends_with(")")) {
      ParseSize(w.substr(1, w.size() - 2), info.tile_width, info.tile_height);
      continue;
    }
    if (w.starts_with("Q=")) {
      uint32_t q = 0;
      if (ParseInt(w.substr(2), q)) info.quality = q;
      continue;
    }
    std::optional<uint64_t> width, height;
    if (ParseSize(w, width, height)) {
      if (arrow) {
        info.level_width = width;
        info.level_height = height;
      } else if (!info.image_width) {
        info.image_width = width;
        info.image_height = height;
      }
      continue;
    }
    if (w.find('/') != std::string_view::npos && info.compression.empty()) {
      info.compression = w;  // "JPEG/RGB", "J2K/YUV16", "LZW/RGB"
    }
  }
}

Result<double> Number(std::string_view key, std::string_view text) {
  if (auto value = ParseNumber(text)) return *value;
  return InvalidArgumentError("Aperio description: " + std::string(key) + " = \"" +
                              std::string(text) + "\" is not a number");
}

}  // namespace

Result<SvsInfo> ParseSvsDescription(std::string_view description) {
  if (!description.starts_with("Aperio")) {
    return InvalidArgumentError("not an Aperio description (\"" +
                                std::string(description.substr(0, 40)) + "\")");
  }
  SvsInfo info;
  size_t bar = description.find('|');
  std::string_view head = description.substr(0, bar);
  size_t eol = head.find_first_of("\r\n");
  info.header = Trim(head.substr(0, eol));
  if (eol != std::string_view::npos) ParseGeometry(head.substr(eol + 1), info);
  std::string_view rest = bar == std::string_view::npos ? std::string_view()
                                                        : description.substr(bar + 1);
  while (!rest.empty()) {
    size_t next = rest.find('|');
    std::string_view item = rest.substr(0, next);
    rest = next == std::string_view::npos ? std::string_view() : rest.substr(next + 1);
    size_t eq = item.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view key = Trim(item.substr(0, eq));
    std::string_view value = Trim(item.substr(eq + 1));
    info.properties.emplace_back(key, value);
    if (key == "MPP") {
      ASSIGN_OR_RETURN(info.mpp, Number(key, value));
    } else if (key == "AppMag") {
      ASSIGN_OR_RETURN(info.app_mag, Number(key, value));
    }
  }
  return info;
}

std::string_view SvsImageKindName(SvsImageKind kind) {
  switch (kind) {
    case SvsImageKind::kBaseline: return "baseline";
    case SvsImageKind::kReducedLevel: return "level";
    case SvsImageKind::kThumbnail: return "thumbnail";
    case SvsImageKind::kLabel: return "label";
    case SvsImageKind::kMacro: return "macro";
    case SvsImageKind::kOther: return "other";
  }
  return "other";
}

SvsImageKind ClassifySvsIfd(uint64_t ifd_index, std::string_view description,
                            uint32_t new_subfile_type, bool tiled) {
  Result<SvsInfo> info = ParseSvsDescription(description);
  if (info.ok() && info->image_type == "label") return SvsImageKind::kLabel;
  if (info.ok() && info->image_type == "macro") return SvsImageKind::kMacro;
  if (ifd_index == 0) return tiled ? SvsImageKind::kBaseline : SvsImageKind::kOther;
  if (tiled) return SvsImageKind::kReducedLevel;
  if (ifd_index == 1) return SvsImageKind::kThumbnail;
  // Older files: no "label"/"macro" word, but the reduced-resolution bit and Aperio's macro value.
  if (new_subfile_type == 9) return SvsImageKind::kMacro;
  if (new_subfile_type == 1) return SvsImageKind::kLabel;
  return SvsImageKind::kOther;
}

}  // namespace refzarr
