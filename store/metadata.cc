#include "store/metadata.h"

#include <cmath>
#include <limits>

#include "formats/core/base64.h"
#include "store/transcode/transcode.h"

namespace refzarr {

using nlohmann::json;

namespace {

// The numeric range of a dtype, for the default display window.
std::pair<double, double> DTypeRange(const DType& d) {
  if (d.kind == 'u') return {0.0, std::ldexp(1.0, static_cast<int>(d.size * 8)) - 1};
  if (d.kind == 'i') {
    double half = std::ldexp(1.0, static_cast<int>(d.size * 8 - 1));
    return {-half, half - 1};
  }
  if (d.kind == 'b') return {0, 1};
  if (d.kind == 'f' && d.size == 2) return {-65504.0, 65504.0};
  if (d.kind == 'f' && d.size == 4) {
    return {-std::numeric_limits<float>::max(), std::numeric_limits<float>::max()};
  }
  return {0.0, 1.0};
}

std::string HexColor(uint32_t rgb) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%06X", rgb & 0xFFFFFFu);
  return buf;
}

// A v3 codec for a v2 numcodecs config: the core codec of the same name where there is one, else
// zarr-python 3's "numcodecs.<id>" wrapper name (passthrough views only: compat views transcode
// such arrays, NeedsTranscode).
json CodecV3(const json& v2, const DType& dtype) {
  std::string id = v2.value("id", "");
  json conf = v2;
  conf.erase("id");
  if (id == "gzip") {
    return {{"name", "gzip"}, {"configuration", {{"level", v2.value("level", 1)}}}};
  }
  if (id == "zstd") {
    return {{"name", "zstd"},
            {"configuration", {{"level", v2.value("level", 0)}, {"checksum", false}}}};
  }
  if (id == "blosc") {
    int shuffle = v2.value("shuffle", 1);
    std::string s = shuffle == 0 ? "noshuffle" : shuffle == 2 ? "bitshuffle" : "shuffle";
    return {{"name", "blosc"},
            {"configuration",
             {{"cname", v2.value("cname", "lz4")},
              {"clevel", v2.value("clevel", 5)},
              {"shuffle", s},
              {"typesize", dtype.size <= 255 ? dtype.size : 1},
              {"blocksize", v2.value("blocksize", 0)}}}};
  }
  return {{"name", "numcodecs." + id}, {"configuration", conf}};
}

// The fill value of an "r<bits>" raw data type: one integer per byte. Zarr v2 writes these as
// base64 text (or 0 / null for zeros).
json RawFillV3(const ArrayDesc& a) {
  std::vector<int> bytes(a.dtype.size, 0);
  const json& f = a.fill_value;
  if (f.is_string()) {
    auto raw = DecodeBase64(f.get<std::string>());
    if (raw.ok() && raw->size() == bytes.size()) {
      for (size_t i = 0; i < raw->size(); ++i) bytes[i] = static_cast<unsigned char>((*raw)[i]);
    }
  }
  return bytes;
}

json FillValueV3(const ArrayDesc& a) {
  const json& f = a.fill_value;
  const char kind = a.dtype.kind;
  if (!a.dtype.V3Name()) return RawFillV3(a);
  if (kind == 'O') return f.is_string() ? f : json("");
  if (f.is_null()) {
    if (kind == 'f') return "NaN";
    if (kind == 'b') return false;
    if (kind == 'c') return json::array({"NaN", "NaN"});
    return 0;
  }
  if (kind == 'b') return f.is_boolean() ? f : json(f.is_number() && f.get<double>() != 0);
  if ((kind == 'i' || kind == 'u') && f.is_number_float()) {
    double d = f.get<double>();
    if (std::trunc(d) == d) {
      return kind == 'u' ? json(static_cast<uint64_t>(d)) : json(static_cast<int64_t>(d));
    }
  }
  if (kind == 'c' && !f.is_array()) return json::array({f, 0.0});
  return f;
}

json Omero(const ImageDesc& image, const ArrayDesc* level0) {
  size_t channel_count = image.channels.size();
  int c_axis = -1;
  for (size_t i = 0; i < image.axes.size(); ++i) {
    if (image.axes[i].type == "channel") c_axis = static_cast<int>(i);
  }
  if (c_axis >= 0 && level0 && static_cast<size_t>(c_axis) < level0->shape.size()) {
    channel_count = level0->shape[c_axis];
  }
  if (channel_count == 0) channel_count = 1;
  auto range = level0 ? DTypeRange(level0->dtype) : std::pair<double, double>{0, 255};
  static const uint32_t kDefaultColors[] = {0xFF0000, 0x00FF00, 0x0000FF,
                                            0xFF00FF, 0x00FFFF, 0xFFFF00};
  json channels = json::array();
  for (size_t i = 0; i < channel_count; ++i) {
    const ChannelDesc* c = i < image.channels.size() ? &image.channels[i] : nullptr;
    uint32_t color = channel_count == 1 ? 0xFFFFFF : kDefaultColors[i % 6];
    if (c && c->color) color = *c->color;
    auto window = (c && c->window) ? *c->window : range;
    std::string label = (c && !c->label.empty()) ? c->label : "Channel " + std::to_string(i);
    channels.push_back({{"active", true},
                        {"coefficient", 1},
                        {"color", HexColor(color)},
                        {"family", "linear"},
                        {"inverted", false},
                        {"label", label},
                        {"window",
                         {{"start", window.first},
                          {"end", window.second},
                          {"min", range.first},
                          {"max", range.second}}}});
  }
  return {{"channels", channels}, {"rdefs", {{"defaultT", 0}, {"defaultZ", 0}, {"model", "color"}}}};
}

json Multiscale(const ImageDesc& image, bool with_version) {
  json axes = json::array();
  for (const Axis& a : image.axes) {
    json j = {{"name", a.name}};
    if (!a.type.empty()) j["type"] = a.type;
    if (!a.unit.empty()) j["unit"] = a.unit;
    axes.push_back(j);
  }
  json datasets = json::array();
  for (size_t i = 0; i < image.levels.size(); ++i) {
    json transforms = json::array({{{"type", "scale"}, {"scale", image.scales[i]}}});
    if (i < image.translations.size() && !image.translations[i].empty()) {
      transforms.push_back({{"type", "translation"}, {"translation", image.translations[i]}});
    }
    datasets.push_back({{"path", image.levels[i]}, {"coordinateTransformations", transforms}});
  }
  // "type" and "metadata" describe how levels were made: refzarr serves the levels the source
  // file stores, without resampling, so it says exactly that (the strict schemas require both).
  json m = {{"axes", axes},
            {"datasets", datasets},
            {"type", "stored"},
            {"metadata",
             {{"description", "resolution levels as stored in the source file, served without "
                              "resampling by refzarr"},
              {"method", "stored"}}}};
  if (!image.name.empty()) m["name"] = image.name;
  if (with_version) m["version"] = "0.4";
  return m;
}

}  // namespace

json CompatCompressorV2() { return TranscodeCodecV2(); }

json RenderZarrayV2(const ArrayDesc& a, bool transcoded) {
  json j = {{"zarr_format", 2},
            {"shape", a.shape},
            {"chunks", a.chunks},
            {"dtype", a.dtype.ToV2()},
            {"fill_value", a.fill_value},
            {"order", "C"},
            {"dimension_separator", "/"}};
  if (transcoded) {
    j["compressor"] = CompatCompressorV2();
    j["filters"] = nullptr;
    return j;
  }
  j["compressor"] = a.encoding.compressor.is_object() ? a.encoding.compressor : json(nullptr);
  json filters = a.encoding.filters.is_array() ? a.encoding.filters : json::array();
  if (!a.encoding.stored_order.empty()) {
    // Zarr v2 cannot say that chunks are stored transposed (interleaved samples). Name a filter
    // no client has, so readers fail loudly instead of reading samples in the wrong places.
    // (An explicit object: insert() given a braced list inserts each of its elements.)
    filters.insert(filters.begin(),
                   json::object({{"id", "refzarr_transpose"}, {"order", a.encoding.stored_order}}));
  }
  j["filters"] = filters.empty() ? json(nullptr) : filters;
  return j;
}

json RenderArrayAttrsV2(const ArrayDesc& a) {
  json j = a.attributes.is_object() ? a.attributes : json::object();
  if (!a.dimension_names.empty() && !j.contains("_ARRAY_DIMENSIONS")) {
    j["_ARRAY_DIMENSIONS"] = a.dimension_names;
  }
  return j;
}

json RenderArrayV3(const ArrayDesc& a, bool transcoded, std::span<const uint64_t> chunks_per_shard) {
  json codecs = json::array();
  if (a.dtype.kind == 'O') {
    // Strings: zarr-python 3's "string" data type with its "vlen-utf8" array-to-bytes codec (an
    // extension: the v3 core spec has no variable-length type); the stored bytes are the same.
    codecs.push_back({{"name", "vlen-utf8"}, {"configuration", json::object()}});
  } else if (transcoded) {
    codecs = TranscodeCodecsV3(a);
  } else {
    // As stored. In a compat view only core codecs get here (NeedsTranscode); a passthrough view
    // also names "transpose" and zarr-python 3's "numcodecs.<id>" codecs.
    if (!a.encoding.stored_order.empty()) {
      codecs.push_back(
          {{"name", "transpose"}, {"configuration", {{"order", a.encoding.stored_order}}}});
    }
    codecs.push_back(BytesCodecV3(a.dtype));
    if (a.encoding.filters.is_array()) {
      for (const json& f : a.encoding.filters) codecs.push_back(CodecV3(f, a.dtype));
    }
    if (a.encoding.compressor.is_object()) codecs.push_back(CodecV3(a.encoding.compressor, a.dtype));
  }
  auto name = a.dtype.V3Name();
  json j = {{"zarr_format", 3},
            {"node_type", "array"},
            {"shape", a.shape},
            {"data_type", name ? *name : "r" + std::to_string(a.dtype.size * 8)},
            {"chunk_grid", {{"name", "regular"}, {"configuration", {{"chunk_shape", a.chunks}}}}},
            {"chunk_key_encoding", {{"name", "default"}, {"configuration", {{"separator", "/"}}}}},
            {"fill_value", FillValueV3(a)},
            {"codecs", codecs},
            {"attributes", a.attributes.is_object() ? a.attributes : json::object()}};
  if (!a.dimension_names.empty()) j["dimension_names"] = a.dimension_names;
  if (!chunks_per_shard.empty()) {
    std::vector<uint64_t> shard_shape(a.chunks.size());
    for (size_t i = 0; i < shard_shape.size(); ++i) shard_shape[i] = a.chunks[i] * chunks_per_shard[i];
    j["chunk_grid"]["configuration"]["chunk_shape"] = shard_shape;
    j["codecs"] = json::array(
        {{{"name", "sharding_indexed"},
          {"configuration",
           {{"chunk_shape", a.chunks},
            {"codecs", codecs},
            {"index_codecs", json::array({{{"name", "bytes"}, {"configuration", {{"endian", "little"}}}},
                                          {{"name", "crc32c"}}})},
            {"index_location", "end"}}}}});
  }
  return j;
}

json RenderGroupAttributes(const json& attributes, const ImageDesc* image, const ArrayDesc* level0,
                           int zarr_format) {
  json j = attributes.is_object() ? attributes : json::object();
  // The OME-NGFF collection documents (plate, well, labels, image-label) are stored without a
  // version: 0.4 versions each document, 0.5 moves them under "ome", which carries the version.
  static constexpr const char* kCollectionKeys[] = {"plate", "well", "labels", "image-label"};
  if (zarr_format == 2) {
    for (const char* key : {"plate", "well", "image-label"}) {
      if (j.contains(key) && j[key].is_object() && !j[key].contains("version")) {
        j[key]["version"] = "0.4";
      }
    }
    if (image) {
      j["multiscales"] = json::array({Multiscale(*image, true)});
      j["omero"] = Omero(*image, level0);
    }
    return j;
  }
  json ome = j.contains("ome") && j["ome"].is_object() ? j["ome"] : json::object();
  if (j.contains("bioformats2raw.layout")) {
    ome["bioformats2raw.layout"] = j["bioformats2raw.layout"];
    j.erase("bioformats2raw.layout");
  }
  if (j.size() == 1 && j.contains("series") && j["series"].is_array()) {
    // The bioformats2raw "OME" group: its series list is OME metadata in 0.5 too.
    ome["series"] = j["series"];
    j.erase("series");
  }
  for (const char* key : kCollectionKeys) {
    if (j.contains(key)) {
      ome[key] = j[key];
      j.erase(key);
    }
  }
  if (image) {
    ome["multiscales"] = json::array({Multiscale(*image, false)});
    ome["omero"] = Omero(*image, level0);
  }
  if (!ome.empty()) {
    ome["version"] = "0.5";
    j["ome"] = ome;
  }
  return j;
}

json RenderGroupV3(const json& rendered_attributes) {
  return {{"zarr_format", 3}, {"node_type", "group"}, {"attributes", rendered_attributes}};
}

}  // namespace refzarr
