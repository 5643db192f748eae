#include "formats/ome/ome_xml.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <map>
#include <set>
#include <utility>

#include <pugixml.hpp>

#include "formats/ome/units.h"

namespace refzarr {
namespace {

std::string_view LocalName(const char* name) {
  std::string_view n(name);
  size_t colon = n.rfind(':');
  return colon == std::string_view::npos ? n : n.substr(colon + 1);
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// Attribute lookup by local name, so "ome:IFD" and "IFD" both match.
pugi::xml_attribute FindAttribute(const pugi::xml_node& node, std::string_view name) {
  for (pugi::xml_attribute a : node.attributes()) {
    if (LocalName(a.name()) == name) return a;
  }
  return {};
}

std::string AttributeText(const pugi::xml_node& node, std::string_view name) {
  pugi::xml_attribute a = FindAttribute(node, name);
  return a ? std::string(Trim(a.value())) : std::string();
}

template <typename Int>
Result<std::optional<Int>> IntAttribute(const pugi::xml_node& node, std::string_view name,
                                        std::string_view where) {
  pugi::xml_attribute a = FindAttribute(node, name);
  if (!a) return std::optional<Int>();
  std::string_view text = Trim(a.value());
  Int value{};
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || p != text.data() + text.size()) {
    return CorruptError(std::string(where) + ": " + std::string(name) + "=\"" +
                        std::string(text) + "\" is not a non-negative integer");
  }
  return std::optional<Int>(value);
}

std::optional<double> DoubleAttribute(const pugi::xml_node& node, std::string_view name) {
  pugi::xml_attribute a = FindAttribute(node, name);
  if (!a) return std::nullopt;
  std::string_view text = Trim(a.value());
  double value = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || p != text.data() + text.size()) return std::nullopt;
  return value;
}

template <typename Fn>
void ForEachChild(const pugi::xml_node& node, std::string_view local_name, Fn fn) {
  for (pugi::xml_node child : node.children()) {
    if (child.type() == pugi::node_element && LocalName(child.name()) == local_name) fn(child);
  }
}

pugi::xml_node FirstChild(const pugi::xml_node& node, std::string_view local_name) {
  for (pugi::xml_node child : node.children()) {
    if (child.type() == pugi::node_element && LocalName(child.name()) == local_name) return child;
  }
  return {};
}

std::string ImageLabel(const OmeImage& image) {
  std::string label = "image " + (image.id.empty() ? std::string("?") : image.id);
  if (!image.name.empty()) label += " (" + image.name + ")";
  return label;
}

// A physical quantity with its unit attribute; an unparseable value is ignored with a warning,
// because a wrong pixel size must not make the pixels unreachable.
std::optional<Quantity> ReadQuantity(const pugi::xml_node& pixels, std::string_view name,
                                     std::string_view default_unit, bool is_time,
                                     const std::string& where, std::vector<std::string>& warnings) {
  pugi::xml_attribute a = FindAttribute(pixels, name);
  if (!a) return std::nullopt;
  std::optional<double> value = DoubleAttribute(pixels, name);
  if (!value) {
    warnings.push_back(where + ": ignoring " + std::string(name) + "=\"" + a.value() +
                       "\" (not a number)");
    return std::nullopt;
  }
  std::string unit_text = AttributeText(pixels, std::string(name) + "Unit");
  if (unit_text.empty()) unit_text = default_unit;
  std::optional<std::string> unit = is_time ? NgffTimeUnit(unit_text) : NgffSpaceUnit(unit_text);
  if (!unit) {
    warnings.push_back(where + ": " + std::string(name) + " unit \"" + unit_text +
                       "\" has no OME-NGFF name; the axis gets no unit");
  }
  return Quantity{*value, unit.value_or("")};
}

Result<OmePixels> ParsePixels(const pugi::xml_node& node, const std::string& where,
                              std::vector<std::string>& warnings) {
  OmePixels p;
  p.id = AttributeText(node, "ID");
  std::string order = AttributeText(node, "DimensionOrder");
  if (!order.empty()) p.dimension_order = order;
  {
    std::string rest = p.dimension_order.size() == 5 ? p.dimension_order.substr(2) : "";
    std::sort(rest.begin(), rest.end());
    if (!p.dimension_order.starts_with("XY") || rest != "CTZ") {
      return CorruptError(where + ": DimensionOrder \"" + p.dimension_order +
                          "\" is not XY followed by Z, C and T");
    }
  }
  ASSIGN_OR_RETURN(auto sx, IntAttribute<uint64_t>(node, "SizeX", where));
  ASSIGN_OR_RETURN(auto sy, IntAttribute<uint64_t>(node, "SizeY", where));
  ASSIGN_OR_RETURN(auto sz, IntAttribute<uint32_t>(node, "SizeZ", where));
  ASSIGN_OR_RETURN(auto sc, IntAttribute<uint32_t>(node, "SizeC", where));
  ASSIGN_OR_RETURN(auto st, IntAttribute<uint32_t>(node, "SizeT", where));
  if (!sx || !sy) return CorruptError(where + ": Pixels has no SizeX/SizeY");
  p.size_x = *sx;
  p.size_y = *sy;
  p.size_z = sz.value_or(1);
  p.size_c = sc.value_or(1);
  p.size_t_ = st.value_or(1);
  if (p.size_x == 0 || p.size_y == 0 || p.size_z == 0 || p.size_c == 0 || p.size_t_ == 0) {
    return CorruptError(where + ": Pixels has a size of 0");
  }
  std::string big_endian = AttributeText(node, "BigEndian");
  if (!big_endian.empty()) p.big_endian = (big_endian == "true" || big_endian == "1");
  p.type = AttributeText(node, "Type");
  if (p.type.empty()) p.type = AttributeText(node, "PixelType");  // 2003-FC schema spelling
  std::optional<DType> dtype = OmePixelTypeToDType(p.type, p.big_endian.value_or(false));
  if (!dtype) return CorruptError(where + ": unknown pixel Type \"" + p.type + "\"");
  p.dtype = *dtype;

  p.physical_size_x = ReadQuantity(node, "PhysicalSizeX", "\xC2\xB5m", false, where, warnings);
  p.physical_size_y = ReadQuantity(node, "PhysicalSizeY", "\xC2\xB5m", false, where, warnings);
  p.physical_size_z = ReadQuantity(node, "PhysicalSizeZ", "\xC2\xB5m", false, where, warnings);
  p.time_increment = ReadQuantity(node, "TimeIncrement", "s", true, where, warnings);
  ASSIGN_OR_RETURN(p.significant_bits, IntAttribute<uint32_t>(node, "SignificantBits", where));
  std::string interleaved = AttributeText(node, "Interleaved");
  if (!interleaved.empty()) p.interleaved = (interleaved == "true" || interleaved == "1");

  Status status;
  ForEachChild(node, "Channel", [&](const pugi::xml_node& ch) {
    if (!status.ok()) return;
    OmeChannel c;
    c.id = AttributeText(ch, "ID");
    c.name = AttributeText(ch, "Name");
    auto color = IntAttribute<int64_t>(ch, "Color", where);
    if (color.ok() && *color && **color >= INT32_MIN && **color <= UINT32_MAX) {
      c.color = OmeColorToRgb(static_cast<int32_t>(static_cast<uint32_t>(**color)));
    } else if (!color.ok() || *color) {
      warnings.push_back(where + ": ignoring Channel Color \"" + AttributeText(ch, "Color") + "\"");
    }
    auto spp = IntAttribute<uint32_t>(ch, "SamplesPerPixel", where);
    if (!spp.ok()) {
      status = spp.status();
      return;
    }
    c.samples_per_pixel = spp->value_or(1);
    if (c.samples_per_pixel == 0) c.samples_per_pixel = 1;
    p.channels.push_back(std::move(c));
  });
  RETURN_IF_ERROR(status);

  size_t td_index = 0;
  ForEachChild(node, "TiffData", [&](const pugi::xml_node& td_node) {
    if (!status.ok()) return;
    std::string td_where = where + ": TiffData " + std::to_string(td_index++);
    OmeTiffData td;
    auto ifd = IntAttribute<uint64_t>(td_node, "IFD", td_where);
    auto ft = IntAttribute<uint32_t>(td_node, "FirstT", td_where);
    auto fc = IntAttribute<uint32_t>(td_node, "FirstC", td_where);
    auto fz = IntAttribute<uint32_t>(td_node, "FirstZ", td_where);
    auto count = IntAttribute<uint64_t>(td_node, "PlaneCount", td_where);
    if (count.ok() && !*count) count = IntAttribute<uint64_t>(td_node, "NumPlanes", td_where);
    for (const Status& s : {ifd.status(), ft.status(), fc.status(), fz.status(), count.status()}) {
      if (!s.ok()) {
        status = s;
        return;
      }
    }
    td.ifd = *ifd;
    td.first_t = *ft;
    td.first_c = *fc;
    td.first_z = *fz;
    td.plane_count = *count;
    if (pugi::xml_node uuid = FirstChild(td_node, "UUID")) {
      td.file.uuid = std::string(Trim(uuid.child_value()));
      td.file.file_name = AttributeText(uuid, "FileName");
    }
    p.tiff_data.push_back(std::move(td));
  });
  RETURN_IF_ERROR(status);
  return p;
}

// Plane index in the DimensionOrder rasterisation (the first of the three letters varies fastest).
uint64_t RasterIndex(const OmePixels& p, uint32_t t, uint32_t c, uint32_t z) {
  uint64_t index = 0;
  for (int i = 4; i >= 2; --i) {
    switch (p.dimension_order[i]) {
      case 'Z': index = index * p.size_z + z; break;
      case 'C': index = index * p.EffectiveSizeC() + c; break;
      default: index = index * p.size_t_ + t; break;
    }
  }
  return index;
}

struct Position {
  uint32_t t, c, z;
};

Position RasterPosition(const OmePixels& p, uint64_t index) {
  Position pos{0, 0, 0};
  for (int i = 2; i <= 4; ++i) {
    switch (p.dimension_order[i]) {
      case 'Z': pos.z = static_cast<uint32_t>(index % p.size_z); index /= p.size_z; break;
      case 'C':
        pos.c = static_cast<uint32_t>(index % p.EffectiveSizeC());
        index /= p.EffectiveSizeC();
        break;
      default: pos.t = static_cast<uint32_t>(index % p.size_t_); index /= p.size_t_; break;
    }
  }
  return pos;
}

std::string PositionText(Position pos) {
  return "(t=" + std::to_string(pos.t) + ", c=" + std::to_string(pos.c) +
         ", z=" + std::to_string(pos.z) + ")";
}

bool IsThisFile(const OmeFileRef& file, const PlaneMapContext& context) {
  if (file.uuid.empty() && file.file_name.empty()) return true;
  if (!file.uuid.empty() && !context.own_uuid.empty()) return file.uuid == context.own_uuid;
  return !context.own_file_name.empty() && EqualsIgnoreCase(file.file_name, context.own_file_name);
}

// Identifies a file across TiffData elements: "" for this file, else its UUID (or FileName).
std::string FileKey(const PlaneRef& ref) {
  if (ref.this_file) return std::string();
  return ref.file.uuid.empty() ? "file:" + ref.file.file_name : ref.file.uuid;
}

std::string FileText(const PlaneRef& ref) {
  if (ref.this_file) return "this file";
  return ref.file.file_name.empty() ? ref.file.uuid : ref.file.file_name;
}

Result<OmePlate> ParsePlate(const pugi::xml_node& node) {
  OmePlate plate;
  plate.id = AttributeText(node, "ID");
  plate.name = AttributeText(node, "Name");
  const std::string where = "Plate " + plate.id;
  ASSIGN_OR_RETURN(plate.rows, IntAttribute<uint32_t>(node, "Rows", where));
  ASSIGN_OR_RETURN(plate.columns, IntAttribute<uint32_t>(node, "Columns", where));
  plate.row_naming = AttributeText(node, "RowNamingConvention");
  plate.column_naming = AttributeText(node, "ColumnNamingConvention");
  Status status;
  ForEachChild(node, "Well", [&](const pugi::xml_node& w) {
    if (!status.ok()) return;
    status = [&]() -> Status {
      OmeWell well;
      well.id = AttributeText(w, "ID");
      const std::string well_where = where + ": Well " + well.id;
      ASSIGN_OR_RETURN(auto row, IntAttribute<uint32_t>(w, "Row", well_where));
      ASSIGN_OR_RETURN(auto column, IntAttribute<uint32_t>(w, "Column", well_where));
      if (!row || !column) return CorruptError(well_where + ": Row or Column missing");
      well.row = *row;
      well.column = *column;
      Status sample_status;
      ForEachChild(w, "WellSample", [&](const pugi::xml_node& ws) {
        if (!sample_status.ok()) return;
        OmeWellSample sample;
        sample.id = AttributeText(ws, "ID");
        auto index = IntAttribute<uint32_t>(ws, "Index", well_where + ": WellSample " + sample.id);
        if (!index.ok()) {
          sample_status = index.status();
          return;
        }
        sample.index = *index;
        if (pugi::xml_node ref = FirstChild(ws, "ImageRef")) sample.image_ref = AttributeText(ref, "ID");
        well.samples.push_back(std::move(sample));
      });
      RETURN_IF_ERROR(sample_status);
      plate.wells.push_back(std::move(well));
      return OkStatus();
    }();
  });
  RETURN_IF_ERROR(status);
  ForEachChild(node, "PlateAcquisition", [&](const pugi::xml_node& a) {
    if (!status.ok()) return;
    OmePlateAcquisition acq;
    acq.id = AttributeText(a, "ID");
    acq.name = AttributeText(a, "Name");
    acq.start_time = AttributeText(a, "StartTime");
    acq.end_time = AttributeText(a, "EndTime");
    if (pugi::xml_node d = FirstChild(a, "Description")) acq.description = Trim(d.text().get());
    auto max = IntAttribute<uint32_t>(a, "MaximumFieldCount", where + ": PlateAcquisition " + acq.id);
    if (!max.ok()) {
      status = max.status();
      return;
    }
    acq.maximum_field_count = *max;
    ForEachChild(a, "WellSampleRef", [&](const pugi::xml_node& r) {
      acq.well_sample_refs.push_back(AttributeText(r, "ID"));
    });
    plate.acquisitions.push_back(std::move(acq));
  });
  RETURN_IF_ERROR(status);
  return plate;
}

}  // namespace

uint32_t OmePixels::SamplesPerPixel() const {
  if (channels.empty()) return 1;
  uint32_t spp = channels.front().samples_per_pixel;
  return (spp > 1 && size_c % spp == 0) ? spp : 1;
}

uint32_t OmePixels::EffectiveSizeC() const { return size_c / SamplesPerPixel(); }

uint64_t OmePixels::PlaneCount() const {
  return uint64_t{size_t_} * EffectiveSizeC() * size_z;
}

std::optional<DType> OmePixelTypeToDType(std::string_view type, bool big_endian) {
  const char order = big_endian ? '>' : '<';
  struct Entry {
    std::string_view name;
    char kind;
    uint32_t size;
  };
  static constexpr Entry kTypes[] = {
      {"int8", 'i', 1},    {"int16", 'i', 2},  {"int32", 'i', 4},   {"int64", 'i', 8},
      {"uint8", 'u', 1},   {"uint16", 'u', 2}, {"uint32", 'u', 4},  {"uint64", 'u', 8},
      {"float", 'f', 4},   {"double", 'f', 8}, {"complex", 'c', 8}, {"double-complex", 'c', 16},
      {"bit", 'b', 1}};
  for (const Entry& e : kTypes) {
    if (e.name == type) return DType::Make(e.kind, e.size, order);
  }
  return std::nullopt;
}

Result<OmeDocument> ParseOmeXml(std::string_view xml) {
  pugi::xml_document doc;
  pugi::xml_parse_result parsed =
      doc.load_buffer(xml.data(), xml.size(), pugi::parse_default, pugi::encoding_utf8);
  if (!parsed) {
    return CorruptError(std::string("OME-XML is not well-formed XML: ") + parsed.description() +
                        " at byte " + std::to_string(parsed.offset));
  }
  pugi::xml_node root = doc.document_element();
  if (!root || LocalName(root.name()) != "OME") {
    return CorruptError("OME-XML root element is <" + std::string(root ? root.name() : "") +
                        ">, not <OME>");
  }
  OmeDocument out;
  out.uuid = AttributeText(root, "UUID");
  out.creator = AttributeText(root, "Creator");
  if (pugi::xml_node bo = FirstChild(root, "BinaryOnly")) {
    out.binary_only = OmeBinaryOnly{AttributeText(bo, "MetadataFile"), AttributeText(bo, "UUID")};
  }
  Status status;
  size_t index = 0;
  ForEachChild(root, "Image", [&](const pugi::xml_node& node) {
    if (!status.ok()) return;
    OmeImage image;
    image.id = AttributeText(node, "ID");
    if (image.id.empty()) image.id = "#" + std::to_string(index);
    ++index;
    image.name = AttributeText(node, "Name");
    std::string where = ImageLabel(image);
    pugi::xml_node pixels = FirstChild(node, "Pixels");
    if (!pixels) {
      status = CorruptError(where + ": Image has no Pixels element");
      return;
    }
    Result<OmePixels> p = ParsePixels(pixels, where, out.warnings);
    if (!p.ok()) {
      status = p.status();
      return;
    }
    image.pixels = *std::move(p);
    ForEachChild(node, "ROIRef", [&](const pugi::xml_node& ref) {
      image.roi_refs.push_back(AttributeText(ref, "ID"));
    });
    out.images.push_back(std::move(image));
  });
  RETURN_IF_ERROR(status);
  ForEachChild(root, "Plate", [&](const pugi::xml_node& node) {
    if (!status.ok()) return;
    auto plate = ParsePlate(node);
    if (!plate.ok()) {
      status = plate.status();
      return;
    }
    out.plates.push_back(*std::move(plate));
  });
  RETURN_IF_ERROR(status);
  ForEachChild(root, "ROI", [&](const pugi::xml_node& node) {
    OmeRoi roi{AttributeText(node, "ID"), AttributeText(node, "Name"), {}};
    ForEachChild(node, "Union", [&](const pugi::xml_node& u) {
      for (pugi::xml_node shape : u.children()) {
        if (shape.type() == pugi::node_element) roi.shapes.emplace_back(LocalName(shape.name()));
      }
    });
    out.rois.push_back(std::move(roi));
  });
  return out;
}

Result<std::vector<PlaneRef>> MapPlanes(const OmeImage& image, const PlaneMapContext& context) {
  const OmePixels& p = image.pixels;
  const std::string where = ImageLabel(image);
  const uint64_t num = p.PlaneCount();

  struct Slot {
    bool set = false;
    bool certain = false;
    size_t source = 0;  // TiffData index that placed it
    PlaneRef ref;
  };
  std::vector<Slot> slots(num);

  if (p.tiff_data.empty()) {
    if (context.ifds_in_file < num) {
      return CorruptError(where + ": has " + std::to_string(num) + " planes and no TiffData, but " +
                          "the file has only " + std::to_string(context.ifds_in_file) + " IFDs");
    }
    for (uint64_t i = 0; i < num; ++i) {
      slots[i].set = true;
      slots[i].ref.ifd = i;
    }
  }

  // First pass: every plane a TiffData names explicitly (its first plane, or all PlaneCount).
  struct Fill {
    uint64_t index;
    PlaneRef base;
  };
  std::vector<Fill> fills;
  for (size_t k = 0; k < p.tiff_data.size(); ++k) {
    const OmeTiffData& td = p.tiff_data[k];
    const std::string td_where = where + ": TiffData " + std::to_string(k);
    Position first{td.first_t.value_or(0), td.first_c.value_or(0), td.first_z.value_or(0)};
    if (first.t >= p.size_t_ || first.c >= p.EffectiveSizeC() || first.z >= p.size_z) {
      return CorruptError(td_where + ": first plane " + PositionText(first) +
                          " is outside the image (SizeT " + std::to_string(p.size_t_) +
                          ", effective SizeC " + std::to_string(p.EffectiveSizeC()) + ", SizeZ " +
                          std::to_string(p.size_z) + ")");
    }
    PlaneRef base;
    base.this_file = IsThisFile(td.file, context);
    if (!base.this_file) base.file = td.file;
    base.ifd = td.ifd.value_or(0);
    const uint64_t index = RasterIndex(p, first.t, first.c, first.z);
    const uint64_t count = td.plane_count.value_or(1);
    if (index + count > num) {
      return CorruptError(td_where + ": PlaneCount " + std::to_string(count) + " from plane " +
                          PositionText(first) + " runs past the last of the image's " +
                          std::to_string(num) + " planes");
    }
    for (uint64_t q = 0; q < count; ++q) {
      Slot& slot = slots[index + q];
      if (slot.certain) {
        return CorruptError(td_where + ": plane " + PositionText(RasterPosition(p, index + q)) +
                            " is already placed by TiffData " + std::to_string(slot.source));
      }
      slot.set = slot.certain = true;
      slot.source = k;
      slot.ref = base;
      slot.ref.ifd = base.ifd + q;
    }
    if (!td.plane_count) fills.push_back({index, base});
  }
  // Second pass: a TiffData without PlaneCount also takes the following planes, IFD after IFD, up
  // to the next plane placed explicitly (and, in this file, up to its last IFD).
  for (const Fill& fill : fills) {
    for (uint64_t j = fill.index + 1; j < num && !slots[j].certain; ++j) {
      const uint64_t ifd = fill.base.ifd + (j - fill.index);
      if (fill.base.this_file && ifd >= context.ifds_in_file) break;
      slots[j].set = true;
      slots[j].ref = fill.base;
      slots[j].ref.ifd = ifd;
    }
  }

  std::vector<PlaneRef> out(num);
  std::set<std::pair<std::string, uint64_t>> used;
  uint64_t missing = 0;
  std::string first_missing;
  for (uint64_t i = 0; i < num; ++i) {
    const Position pos = RasterPosition(p, i);
    if (!slots[i].set) {
      if (missing++ == 0) first_missing = PositionText(pos);
      continue;
    }
    PlaneRef ref = slots[i].ref;
    ref.t = pos.t;
    ref.c = pos.c;
    ref.z = pos.z;
    if (ref.this_file && ref.ifd >= context.ifds_in_file) {
      return CorruptError(where + ": plane " + PositionText(pos) + " is in IFD " +
                          std::to_string(ref.ifd) + ", but the file has only " +
                          std::to_string(context.ifds_in_file) + " IFDs");
    }
    if (!used.insert({FileKey(ref), ref.ifd}).second) {
      return CorruptError(where + ": IFD " + std::to_string(ref.ifd) + " of " + FileText(ref) +
                          " holds two planes (one is " + PositionText(pos) + ")");
    }
    out[(uint64_t{ref.t} * p.EffectiveSizeC() + ref.c) * p.size_z + ref.z] = std::move(ref);
  }
  if (missing > 0) {
    return CorruptError(where + ": " + std::to_string(missing) + " of " + std::to_string(num) +
                        " planes have no TiffData, the first is " + first_missing);
  }
  return out;
}

Result<std::vector<std::vector<PlaneRef>>> MapAllPlanes(const OmeDocument& doc,
                                                        const PlaneMapContext& context) {
  std::vector<std::vector<PlaneRef>> out;
  std::map<std::pair<std::string, uint64_t>, size_t> owner;
  for (size_t i = 0; i < doc.images.size(); ++i) {
    ASSIGN_OR_RETURN(std::vector<PlaneRef> planes, MapPlanes(doc.images[i], context));
    for (const PlaneRef& ref : planes) {
      auto [it, inserted] = owner.emplace(std::make_pair(FileKey(ref), ref.ifd), i);
      if (!inserted) {
        return CorruptError(ImageLabel(doc.images[i]) + ": IFD " + std::to_string(ref.ifd) +
                            " of " + FileText(ref) + " is also a plane of " +
                            ImageLabel(doc.images[it->second]));
      }
    }
    out.push_back(std::move(planes));
  }
  return out;
}

}  // namespace refzarr
