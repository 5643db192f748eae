#include "formats/core/model.h"

#include <charconv>

namespace refzarr {

using nlohmann::json;

DType DType::Make(char kind, uint32_t size, char byte_order) {
  DType d;
  d.kind = kind;
  d.size = size;
  d.byte_order = (size == 1 || kind == 'S' || kind == 'V' || kind == 'O') ? '|' : byte_order;
  return d;
}

json DType::ToV2() const {
  if (!fields.is_null()) return fields;
  if (kind == 'O') return "|O";
  return std::string(1, byte_order) + kind + std::to_string(size);
}

std::optional<std::string> DType::V3Name() const {
  if (!fields.is_null()) return std::nullopt;
  switch (kind) {
    case 'b': return size == 1 ? std::optional<std::string>("bool") : std::nullopt;
    case 'i': return "int" + std::to_string(size * 8);
    case 'u': return "uint" + std::to_string(size * 8);
    case 'f':
      if (size == 2 || size == 4 || size == 8) return "float" + std::to_string(size * 8);
      return std::nullopt;
    case 'c':
      if (size == 8 || size == 16) return "complex" + std::to_string(size * 8);
      return std::nullopt;
    case 'O': return "string";
    default: return std::nullopt;
  }
}

Result<DType> DType::FromTypestr(std::string_view s) {
  if (s == "|O") return Make('O', 8, '|');
  if (s.size() < 3 || (s[0] != '<' && s[0] != '>' && s[0] != '|')) {
    return InvalidArgumentError("bad dtype '" + std::string(s) + "'");
  }
  uint32_t size = 0;
  auto [p, ec] = std::from_chars(s.data() + 2, s.data() + s.size(), size);
  if (ec != std::errc() || p != s.data() + s.size() || size == 0) {
    return InvalidArgumentError("bad dtype '" + std::string(s) + "'");
  }
  DType d;
  d.kind = s[1];
  d.size = size;
  d.byte_order = s[0];
  return d;
}

std::vector<uint64_t> ArrayDesc::GridShape() const {
  std::vector<uint64_t> g(shape.size());
  for (size_t i = 0; i < shape.size(); ++i) {
    g[i] = chunks[i] == 0 ? 0 : (shape[i] + chunks[i] - 1) / chunks[i];
  }
  return g;
}

uint64_t ArrayDesc::ChunkCount() const {
  uint64_t n = 1;
  for (uint64_t g : GridShape()) n *= g;
  return n;
}

uint64_t ArrayDesc::ChunkBytes() const {
  uint64_t n = dtype.size;
  for (uint64_t c : chunks) n *= c;
  return n;
}

uint64_t LinearChunkIndex(std::span<const uint64_t> grid, std::span<const uint64_t> coords) {
  uint64_t index = 0;
  for (size_t i = 0; i < grid.size(); ++i) index = index * grid[i] + coords[i];
  return index;
}

std::vector<uint64_t> ChunkCoords(std::span<const uint64_t> grid, uint64_t linear) {
  std::vector<uint64_t> coords(grid.size());
  for (size_t i = grid.size(); i-- > 0;) {
    coords[i] = grid[i] == 0 ? 0 : linear % grid[i];
    linear = grid[i] == 0 ? 0 : linear / grid[i];
  }
  return coords;
}

json ArrayDesc::ToJson() const {
  json j;
  j["shape"] = shape;
  j["chunks"] = chunks;
  j["dtype"] = {{"kind", std::string(1, dtype.kind)},
                {"size", dtype.size},
                {"order", std::string(1, dtype.byte_order)}};
  if (!dtype.fields.is_null()) j["dtype"]["fields"] = dtype.fields;
  j["fill_value"] = fill_value;
  j["encoding"] = {{"filters", encoding.filters},
                   {"compressor", encoding.compressor},
                   {"native", encoding.native},
                   {"decoder", encoding.decoder},
                   {"params", encoding.params},
                   {"stored_order", encoding.stored_order}};
  j["dimension_names"] = dimension_names;
  j["attributes"] = attributes;
  return j;
}

Result<ArrayDesc> ArrayDesc::FromJson(const json& j) {
  try {
    ArrayDesc a;
    a.shape = j.at("shape").get<std::vector<uint64_t>>();
    a.chunks = j.at("chunks").get<std::vector<uint64_t>>();
    const json& d = j.at("dtype");
    a.dtype.kind = d.at("kind").get<std::string>().at(0);
    a.dtype.size = d.at("size").get<uint32_t>();
    a.dtype.byte_order = d.at("order").get<std::string>().at(0);
    if (d.contains("fields")) a.dtype.fields = d["fields"];
    a.fill_value = j.at("fill_value");
    const json& e = j.at("encoding");
    a.encoding.filters = e.at("filters");
    a.encoding.compressor = e.at("compressor");
    a.encoding.native = e.at("native").get<bool>();
    a.encoding.decoder = e.at("decoder").get<std::string>();
    a.encoding.params = e.at("params");
    a.encoding.stored_order = e.at("stored_order").get<std::vector<int>>();
    a.dimension_names = j.at("dimension_names").get<std::vector<std::string>>();
    a.attributes = j.at("attributes");
    if (a.shape.size() != a.chunks.size()) return CorruptError("array: shape and chunks differ in rank");
    return a;
  } catch (const json::exception& e) {
    return CorruptError(std::string("array description: ") + e.what());
  }
}

json ImageDesc::ToJson() const {
  json j;
  j["name"] = name;
  j["axes"] = json::array();
  for (const Axis& a : axes) j["axes"].push_back({{"name", a.name}, {"type", a.type}, {"unit", a.unit}});
  j["levels"] = levels;
  j["scales"] = scales;
  j["translations"] = translations;
  j["channels"] = json::array();
  for (const ChannelDesc& c : channels) {
    json cj = {{"label", c.label}};
    if (c.color) cj["color"] = *c.color;
    if (c.window) cj["window"] = {c.window->first, c.window->second};
    if (!c.window_source.empty()) cj["window_source"] = c.window_source;
    j["channels"].push_back(cj);
  }
  return j;
}

Result<ImageDesc> ImageDesc::FromJson(const json& j) {
  try {
    ImageDesc im;
    im.name = j.at("name").get<std::string>();
    for (const json& a : j.at("axes")) {
      im.axes.push_back({a.at("name").get<std::string>(), a.at("type").get<std::string>(),
                         a.at("unit").get<std::string>()});
    }
    im.levels = j.at("levels").get<std::vector<std::string>>();
    im.scales = j.at("scales").get<std::vector<std::vector<double>>>();
    im.translations = j.at("translations").get<std::vector<std::vector<double>>>();
    for (const json& c : j.at("channels")) {
      ChannelDesc cd;
      cd.label = c.at("label").get<std::string>();
      if (c.contains("color")) cd.color = c["color"].get<uint32_t>();
      if (c.contains("window")) cd.window = {c["window"][0].get<double>(), c["window"][1].get<double>()};
      cd.window_source = c.value("window_source", "");
      im.channels.push_back(cd);
    }
    return im;
  } catch (const json::exception& e) {
    return CorruptError(std::string("image description: ") + e.what());
  }
}

}  // namespace refzarr
