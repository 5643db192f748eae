#include "formats/ome/imagej.h"

#include <cctype>
#include <charconv>
#include <cstring>
#include <string>

#include "formats/ome/units.h"

namespace refzarr {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

template <typename Int>
Result<Int> PositiveInt(std::string_view key, std::string_view text) {
  Int value{};
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || p != text.data() + text.size() || value == 0) {
    return InvalidArgumentError("ImageJ description: " + std::string(key) + "=" +
                                std::string(text) + " is not a positive integer");
  }
  return value;
}

Result<double> Number(std::string_view key, std::string_view text) {
  if (auto value = ParseNumber(text)) return *value;
  return InvalidArgumentError("ImageJ description: " + std::string(key) + "=" +
                              std::string(text) + " is not a number");
}

}  // namespace

uint32_t ImageJInfo::SizeT() const { return frames.value_or(1); }
uint32_t ImageJInfo::SizeC() const { return channels.value_or(1); }
uint32_t ImageJInfo::SizeZ() const {
  if (!channels && !slices && !frames && images && *images > 1) {
    return static_cast<uint32_t>(*images);
  }
  return slices.value_or(1);
}

uint64_t ImageJInfo::PlaneCount() const { return uint64_t{SizeT()} * SizeC() * SizeZ(); }

Result<ImageJInfo> ParseImageJDescription(std::string_view description) {
  ImageJInfo info;
  bool first = true;
  // ImageJ pads the description with NULs up to a reserved size.
  if (size_t nul = description.find('\0'); nul != std::string_view::npos) {
    description = description.substr(0, nul);
  }
  while (!description.empty()) {
    size_t eol = description.find('\n');
    std::string_view line = Trim(description.substr(0, eol));
    description = eol == std::string_view::npos ? std::string_view() : description.substr(eol + 1);
    if (line.empty()) continue;
    size_t eq = line.find('=');
    if (first) {
      std::string_view key = eq == std::string_view::npos ? line : Trim(line.substr(0, eq));
      if (key != "ImageJ" && key != "SCIFIO") {
        return InvalidArgumentError("not an ImageJ description (first line \"" +
                                    std::string(line.substr(0, 40)) + "\")");
      }
      first = false;
    }
    if (eq == std::string_view::npos) continue;
    std::string_view key = Trim(line.substr(0, eq));
    std::string_view value = Trim(line.substr(eq + 1));
    info.entries.emplace_back(key, value);
    if (key == "ImageJ" || key == "SCIFIO") {
      info.version = value;
    } else if (key == "images") {
      ASSIGN_OR_RETURN(info.images, PositiveInt<uint64_t>(key, value));
    } else if (key == "channels") {
      ASSIGN_OR_RETURN(info.channels, PositiveInt<uint32_t>(key, value));
    } else if (key == "slices") {
      ASSIGN_OR_RETURN(info.slices, PositiveInt<uint32_t>(key, value));
    } else if (key == "frames") {
      ASSIGN_OR_RETURN(info.frames, PositiveInt<uint32_t>(key, value));
    } else if (key == "hyperstack") {
      info.hyperstack = value == "true";
    } else if (key == "loop") {
      info.loop = value == "true";
    } else if (key == "unit") {
      info.unit = value;
    } else if (key == "yunit") {
      info.yunit = value;
    } else if (key == "zunit") {
      info.zunit = value;
    } else if (key == "tunit") {
      info.tunit = value;
    } else if (key == "mode") {
      info.mode = value;
    } else if (key == "spacing") {
      ASSIGN_OR_RETURN(info.spacing, Number(key, value));
    } else if (key == "finterval") {
      ASSIGN_OR_RETURN(info.finterval, Number(key, value));
    } else if (key == "min") {
      ASSIGN_OR_RETURN(info.min, Number(key, value));
    } else if (key == "max") {
      ASSIGN_OR_RETURN(info.max, Number(key, value));
    }
  }
  if (first) return InvalidArgumentError("not an ImageJ description (empty)");
  return info;
}

Result<ImageJLayout> ImageJPlaneLayout(const ImageJInfo& info, uint64_t ifds_in_file) {
  ImageJLayout layout;
  layout.planes = info.PlaneCount();
  if (info.images && *info.images != layout.planes && (info.channels || info.slices || info.frames)) {
    return CorruptError("ImageJ description: images=" + std::to_string(*info.images) +
                        " but channels*slices*frames = " + std::to_string(layout.planes));
  }
  if (ifds_in_file >= layout.planes) return layout;
  if (ifds_in_file == 1) {
    layout.contiguous_after_first_ifd = true;
    return layout;
  }
  return CorruptError("ImageJ description: " + std::to_string(layout.planes) +
                      " planes but the file has " + std::to_string(ifds_in_file) + " IFDs");
}

namespace {

// Reads the fields of the IJMetadata tag in the byte order its magic announced.
class IjReader {
 public:
  IjReader(std::span<const std::byte> data, bool big_endian) : data_(data), big_(big_endian) {}

  uint32_t U32(size_t at) const { return static_cast<uint32_t>(Bits(at, 4)); }

  double F64(size_t at) const {
    const uint64_t bits = Bits(at, 8);
    double v;
    std::memcpy(&v, &bits, sizeof v);
    return v;
  }

 private:
  // The `width`-byte unsigned integer at `at`.
  uint64_t Bits(size_t at, int width) const {
    uint64_t v = 0;
    for (int i = 0; i < width; ++i) {
      v = (v << 8) | static_cast<uint64_t>(data_[at + (big_ ? i : width - 1 - i)]);
    }
    return v;
  }

  std::span<const std::byte> data_;
  bool big_;
};

constexpr uint32_t kIjRanges = 0x72616e67;  // "rang"
constexpr uint32_t kIjLuts = 0x6c757473;    // "luts"

}  // namespace

Result<ImageJDisplay> ParseImageJMetadata(std::span<const std::byte> data,
                                          std::span<const uint32_t> byte_counts) {
  auto bad = [](const std::string& why) {
    return InvalidArgumentError("ImageJ metadata tag: " + why);
  };
  if (byte_counts.empty() || byte_counts[0] < 4 || byte_counts[0] % 8 != 4 ||
      data.size() < byte_counts[0]) {
    return bad("no header");
  }
  const auto magic = std::string_view(reinterpret_cast<const char*>(data.data()), 4);
  if (magic != "IJIJ" && magic != "JIJI") return bad("bad magic");
  IjReader in(data, magic == "IJIJ");
  ImageJDisplay out;
  size_t entry = 1;                 // Index into byte_counts.
  uint64_t offset = byte_counts[0];  // Of the entry's bytes in data.
  for (size_t h = 4; h < byte_counts[0]; h += 8) {
    const uint32_t type = in.U32(h);
    const uint32_t count = in.U32(h + 4);
    for (uint32_t i = 0; i < count; ++i, ++entry) {
      if (entry >= byte_counts.size()) return bad("the header lists more entries than byte counts");
      const uint64_t size = byte_counts[entry];
      if (offset + size > data.size()) return bad("entry " + std::to_string(entry) + " runs past the tag");
      if (type == kIjRanges) {
        if (size % 16 != 0) return bad("a display range entry of " + std::to_string(size) + " bytes");
        for (uint64_t at = offset; at < offset + size; at += 16) {
          out.ranges.emplace_back(in.F64(at), in.F64(at + 8));
        }
      } else if (type == kIjLuts) {
        if (size != 768) return bad("a LUT entry of " + std::to_string(size) + " bytes (not 768)");
        auto level = [&](int plane) { return static_cast<uint32_t>(data[offset + plane * 256 + 255]); };
        out.lut_colors.push_back(level(0) << 16 | level(1) << 8 | level(2));
      }
      offset += size;
    }
  }
  return out;
}

uint64_t ImageJPlaneIndex(const ImageJInfo& info, uint32_t t, uint32_t c, uint32_t z) {
  return (uint64_t{t} * info.SizeZ() + z) * info.SizeC() + c;
}

}  // namespace refzarr
