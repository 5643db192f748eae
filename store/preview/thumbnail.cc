#include "store/preview/thumbnail.h"

#include <algorithm>
#include <cmath>
#include <cctype>
#include <cstdlib>
#include <tuple>

#include "store/codecs/codecs.h"
#include "store/ref_store.h"
#include "store/transcode/transcode.h"

namespace refzarr {
namespace {

using nlohmann::json;

Result<json> GetJson(ZarrView& view, const std::string& key) {
  ASSIGN_OR_RETURN(std::optional<Value> value, view.Get(key));
  if (!value) return NotFoundError("no key '" + key + "' in the view");
  ASSIGN_OR_RETURN(std::string bytes, view.Materialize(*value));
  json j = json::parse(bytes, nullptr, false);
  if (j.is_discarded()) return CorruptError(key + ": not JSON");
  return j;
}

// An "omero" channel as drawn; `color` from its hex text, white when it has none.
struct OmeroChannel {
  std::string label;
  uint32_t color = 0xFFFFFF;
  bool active = true, inverted = false;
  std::optional<std::pair<double, double>> window, range;  // start/end, min/max
};

std::vector<OmeroChannel> OmeroChannels(const json& attrs) {
  std::vector<OmeroChannel> out;
  if (!attrs.contains("omero") || !attrs["omero"].value("channels", json()).is_array()) return out;
  for (const json& c : attrs["omero"]["channels"]) {
    OmeroChannel ch;
    ch.label = c.value("label", "");
    std::string hex = c.value("color", "FFFFFF");
    char* end = nullptr;
    unsigned long rgb = std::strtoul(hex.c_str(), &end, 16);
    if (end && *end == '\0' && hex.size() == 6) ch.color = static_cast<uint32_t>(rgb);
    ch.active = c.value("active", true);
    ch.inverted = c.value("inverted", false);
    if (c.contains("window") && c["window"].is_object()) {
      const json& w = c["window"];
      if (w.contains("start") && w.contains("end") && w["start"].is_number() && w["end"].is_number()) {
        ch.window = std::make_pair(w["start"].get<double>(), w["end"].get<double>());
      }
      if (w.contains("min") && w.contains("max") && w["min"].is_number() && w["max"].is_number()) {
        ch.range = std::make_pair(w["min"].get<double>(), w["max"].get<double>());
      }
    }
    out.push_back(std::move(ch));
  }
  return out;
}

int AxisIndex(const json& axes, std::string_view name) {
  for (size_t i = 0; i < axes.size(); ++i) {
    if (axes[i].value("name", "") == name) return static_cast<int>(i);
  }
  return -1;
}

bool IsAlpha(std::string label) {
  std::transform(label.begin(), label.end(), label.begin(), [](unsigned char c) { return std::tolower(c); });
  return label == "alpha";
}

}  // namespace

Result<ArrayDesc> ServedArrayV2(ZarrView& view, std::string_view array_key) {
  const std::string key = JoinTreePath(array_key, ".zarray");
  ASSIGN_OR_RETURN(json z, GetJson(view, key));
  try {
    ArrayDesc a;
    a.shape = z.at("shape").get<std::vector<uint64_t>>();
    a.chunks = z.at("chunks").get<std::vector<uint64_t>>();
    if (!z.at("dtype").is_string()) return UnsupportedError(key + ": a structured dtype is not an image");
    ASSIGN_OR_RETURN(a.dtype, DType::FromTypestr(z["dtype"].get<std::string>()));
    a.fill_value = z.value("fill_value", json(nullptr));
    a.encoding.compressor = z.value("compressor", json(nullptr));
    a.encoding.filters = z.value("filters", json(nullptr));
    a.encoding.native = true;
    return a;
  } catch (const json::exception& e) {
    return CorruptError(key + ": " + e.what());
  }
}

DecodedChunkFetcher ViewChunkFetcher(ZarrView& view, std::string array_key, ArrayDesc served) {
  return [&view, key = std::move(array_key),
          served = std::move(served)](std::span<const uint64_t> coords) -> Result<std::optional<std::string>> {
    std::string chunk_key = key;
    for (uint64_t c : coords) chunk_key += "/" + std::to_string(c);
    ASSIGN_OR_RETURN(std::optional<Value> value, view.Get(chunk_key));
    if (!value) return std::optional<std::string>();
    ASSIGN_OR_RETURN(std::string stored, view.Materialize(*value));
    std::string out(served.ChunkBytes(), '\0');
    auto out_bytes = std::as_writable_bytes(std::span(out));
    RETURN_IF_ERROR(FillChunk(served, out_bytes));
    Status st = DecodeNative(served, coords, ChunkRef{}, std::as_bytes(std::span(stored)), out_bytes);
    if (!st.ok()) return Status(st.code(), chunk_key + ": " + st.message());
    return std::optional<std::string>(std::move(out));
  };
}

Result<Thumbnail> RenderThumbnail(ZarrView& view, std::string_view image_path,
                                  const ThumbnailOptions& options) {
  if (view.options().zarr_format != 2 || view.options().codecs != CodecPolicy::kCompat) {
    return InvalidArgumentError("thumbnails are drawn from a Zarr v2 compat view");
  }
  if (options.size == 0) return InvalidArgumentError("thumbnail size must be at least 1 pixel");
  std::string image(image_path);
  while (!image.empty() && image.back() == '/') image.pop_back();
  auto attrs = GetJson(view, JoinTreePath(image, ".zattrs"));
  if (!attrs.ok() && attrs.status().code() == StatusCode::kNotFound) {
    return NotFoundError("'" + image + "' is not an image of the view (no .zattrs)");
  }
  RETURN_IF_ERROR(attrs.status());
  const json multiscales = attrs->value("multiscales", json());
  if (!multiscales.is_array() || multiscales.empty() || !multiscales[0].contains("datasets")) {
    return NotFoundError("'" + image + "' is not an OME-NGFF image (no multiscales)");
  }
  const json& ms = multiscales[0];
  const json axes = ms.value("axes", json::array());
  const json& datasets = ms["datasets"];
  if (datasets.empty()) return CorruptError(image + ": multiscales has no datasets");

  // The smallest level whose longer side reaches the size, else the largest.
  std::string level;
  ArrayDesc array;
  for (size_t i = datasets.size(); i-- > 0;) {
    const std::string path = datasets[i].value("path", "");
    ASSIGN_OR_RETURN(ArrayDesc a, ServedArrayV2(view, JoinTreePath(image, path)));
    if (a.shape.size() < 2) return UnsupportedError(JoinTreePath(image, path) + ": fewer than 2 dimensions");
    level = path;
    array = std::move(a);
    const size_t n = array.shape.size();
    if (std::max(array.shape[n - 1], array.shape[n - 2]) >= options.size) break;
  }
  const int rank = static_cast<int>(array.shape.size());
  int y_dim = AxisIndex(axes, "y"), x_dim = AxisIndex(axes, "x");
  if (y_dim < 0 || x_dim < 0 || y_dim >= rank || x_dim >= rank) y_dim = rank - 2, x_dim = rank - 1;
  const int c_dim = AxisIndex(axes, "c"), z_dim = AxisIndex(axes, "z"), t_dim = AxisIndex(axes, "t");

  Thumbnail out;
  out.level = level;
  out.level_height = array.shape[y_dim];
  out.level_width = array.shape[x_dim];
  std::vector<uint64_t> origin(rank, 0);
  if (z_dim >= 0 && z_dim < rank) origin[z_dim] = out.z = array.shape[z_dim] / 2;
  if (t_dim >= 0 && t_dim < rank) origin[t_dim] = out.t = 0;
  const uint64_t channels = c_dim >= 0 && c_dim < rank ? array.shape[c_dim] : 1;
  const std::vector<OmeroChannel> omero = OmeroChannels(*attrs);
  const bool wide = !(array.dtype.kind == 'b' || (array.dtype.size == 1 && array.dtype.kind != 'f'));

  const std::string array_key = JoinTreePath(image, level);
  DecodedChunkFetcher fetch = ViewChunkFetcher(view, array_key, array);
  const uint64_t h = out.level_height, w = out.level_width;
  std::vector<float> acc(h * w * 3, 0.0f);
  for (uint64_t c = 0; c < channels; ++c) {
    OmeroChannel ch = c < omero.size() ? omero[c] : OmeroChannel{};
    if (ch.label.empty()) ch.label = "Channel " + std::to_string(c);
    if (!ch.active || IsAlpha(ch.label)) continue;
    if (c_dim >= 0 && c_dim < rank) origin[c_dim] = c;
    ASSIGN_OR_RETURN(Plane plane, ReadPlane(array, fetch, origin, y_dim, x_dim));
    ThumbnailChannel drawn{ch.label, ch.color, 0, 0, false};
    // A window that is only the dtype's whole range says nothing about the data (beyond 8 bits).
    const bool meaningful = ch.window && !(wide && ch.range && *ch.window == *ch.range);
    if (meaningful) {
      std::tie(drawn.start, drawn.end) = *ch.window;
    } else {
      auto q = Quantiles(plane.values, kWindowLowQuantile, kWindowHighQuantile);
      std::tie(drawn.start, drawn.end) = q ? *q : std::make_pair(0.0, 1.0);
      drawn.auto_contrast = true;
    }
    const float rgb[3] = {((ch.color >> 16) & 0xFF) / 255.0f, ((ch.color >> 8) & 0xFF) / 255.0f,
                          (ch.color & 0xFF) / 255.0f};
    const double span = drawn.end - drawn.start;
    for (uint64_t i = 0; i < h * w; ++i) {
      const double v = plane.values[i];
      double level_value = 0;
      if (std::isnan(v)) {
        level_value = 0;
      } else if (span > 0) {
        level_value = std::clamp((v - drawn.start) / span, 0.0, 1.0);
      } else {
        level_value = v >= drawn.end ? 1.0 : 0.0;
      }
      if (ch.inverted) level_value = 1.0 - level_value;
      for (int k = 0; k < 3; ++k) acc[i * 3 + k] += static_cast<float>(level_value) * rgb[k];
    }
    out.channels.push_back(std::move(drawn));
  }
  for (float& v : acc) v = std::min(v, 1.0f);

  // Shrink by box averaging: output pixel (oy, ox) averages rows [oy*h/oh, (oy+1)*h/oh) and the
  // columns alike.
  uint64_t oh = h, ow = w;
  const uint64_t longer = std::max(h, w);
  if (longer > options.size) {
    const double scale = static_cast<double>(options.size) / static_cast<double>(longer);
    oh = std::max<uint64_t>(1, std::llround(static_cast<double>(h) * scale));
    ow = std::max<uint64_t>(1, std::llround(static_cast<double>(w) * scale));
  }
  out.image.height = static_cast<uint32_t>(oh);
  out.image.width = static_cast<uint32_t>(ow);
  out.image.rgb.assign(oh * ow * 3, 0);
  for (uint64_t oy = 0; oy < oh; ++oy) {
    const uint64_t y0 = oy * h / oh, y1 = (oy + 1) * h / oh;
    for (uint64_t ox = 0; ox < ow; ++ox) {
      const uint64_t x0 = ox * w / ow, x1 = (ox + 1) * w / ow;
      double sum[3] = {0, 0, 0};
      for (uint64_t y = y0; y < y1; ++y) {
        for (uint64_t x = x0; x < x1; ++x) {
          for (int k = 0; k < 3; ++k) sum[k] += acc[(y * w + x) * 3 + k];
        }
      }
      const double n = static_cast<double>((y1 - y0) * (x1 - x0));
      for (int k = 0; k < 3; ++k) {
        out.image.rgb[(oy * ow + ox) * 3 + k] = static_cast<uint8_t>(std::lround(sum[k] / n * 255.0));
      }
    }
  }
  return out;
}

Result<std::string> EncodePng(const RgbImage& image) {
  ASSIGN_OR_RETURN(const CodecLibs* codecs, Codecs());
  return codecs->encode_png(image.width, image.height, image.rgb);
}

}  // namespace refzarr
