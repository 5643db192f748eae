#include "formats/hdf5/hdf5_bioimage.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <sstream>
#include <tuple>

#include <pugixml.hpp>

#include "formats/hdf5/hdf5_types.h"
#include "formats/hdf5/hdf5_util.h"

namespace refzarr::internal {
namespace {

using nlohmann::json;

bool Exists(hid_t file, const std::string& path) {
  // H5Lexists needs every parent to exist: check each prefix.
  size_t pos = 0;
  while ((pos = path.find('/', pos + 1)) != std::string::npos) {
    if (H5Lexists(file, path.substr(0, pos).c_str(), H5P_DEFAULT) <= 0) {
      H5Eclear2(H5E_DEFAULT);
      return false;
    }
  }
  const bool ok = H5Lexists(file, path.c_str(), H5P_DEFAULT) > 0;
  H5Eclear2(H5E_DEFAULT);
  return ok;
}

std::optional<std::string> StringAttr(hid_t file, const std::string& object, const char* name) {
  H5Id obj(H5Oopen(file, object.c_str(), H5P_DEFAULT));
  if (!obj.valid()) {
    H5Eclear2(H5E_DEFAULT);
    return std::nullopt;
  }
  auto s = ReadStringAttribute(obj.get(), name);
  H5Eclear2(H5E_DEFAULT);
  if (!s.ok()) return std::nullopt;
  return *s;
}

std::optional<double> NumberAttr(hid_t file, const std::string& object, const char* name) {
  auto s = StringAttr(file, object, name);
  if (!s) return std::nullopt;
  char* end = nullptr;
  double v = std::strtod(s->c_str(), &end);
  if (end == s->c_str()) return std::nullopt;
  return v;
}

std::vector<double> Numbers(const std::string& text) {
  std::vector<double> out;
  std::istringstream in(text);
  double v;
  while (in >> v) out.push_back(v);
  return out;
}

std::string UnitName(std::string unit) {
  if (unit == "um" || unit == "µm" || unit == "\xB5m" || unit == "micron" || unit == "microns" || unit == "micrometer") {
    return "micrometer";
  }
  if (unit == "nm" || unit == "nanometer") return "nanometer";
  if (unit == "mm" || unit == "millimeter") return "millimeter";
  if (unit == "cm" || unit == "centimeter") return "centimeter";
  if (unit == "m" || unit == "meter") return "meter";
  return "";
}

std::vector<Axis> Axes5(const std::string& unit) {
  return {{"t", "time", ""}, {"c", "channel", ""}, {"z", "space", unit}, {"y", "space", unit}, {"x", "space", unit}};
}

// Builds one 5-D (t, c, z, y, x) level array whose chunk (t, c, k, j, i) is the chunk (k, j, i) of
// the 3-D dataset plans[t][c], cropped to `size` (z, y, x). All plans must share chunk shape, dtype
// and encoding; otherwise the reason is returned. The level's stored chunks are found when it is
// emitted (DatasetPlan::Storage::kStacked).
Result<DatasetPlan> StackLevel(std::vector<std::vector<DatasetPlan>>& plans, const std::vector<uint64_t>& size) {
  const DatasetPlan& first = plans.at(0).at(0);
  const ArrayDesc& a0 = first.array;
  if (a0.shape.size() != 3) return UnsupportedError("datasets are not 3-D");
  for (auto& row : plans) {
    for (auto& p : row) {
      const ArrayDesc& a = p.array;
      if (a.chunks != a0.chunks || !(a.dtype == a0.dtype) || a.encoding.filters != a0.encoding.filters ||
          a.encoding.compressor != a0.encoding.compressor || a.encoding.params != a0.encoding.params ||
          !p.sources.empty() || a.shape.size() != 3) {
        return UnsupportedError("datasets differ in chunk shape, dtype or filters (or use external files)");
      }
      for (int i = 0; i < 3; ++i) {
        if (a.shape[i] < size[i]) return CorruptError("dataset smaller than the declared image size");
      }
    }
  }
  DatasetPlan out;
  out.storage = DatasetPlan::Storage::kStacked;
  ArrayDesc& l = out.array;
  const uint64_t T = plans.size(), C = plans[0].size();
  l.shape = {T, C, size[0], size[1], size[2]};
  l.chunks = {1, 1, a0.chunks[0], a0.chunks[1], a0.chunks[2]};
  l.dtype = a0.dtype;
  l.fill_value = a0.fill_value;
  l.encoding = a0.encoding;
  l.dimension_names = {"t", "c", "z", "y", "x"};
  l.attributes = {{"_ARRAY_DIMENSIONS", l.dimension_names}};
  RETURN_IF_ERROR(CheckExtent(l));
  const std::vector<uint64_t> grid = l.GridShape();
  for (uint64_t t = 0; t < T; ++t) {
    for (uint64_t c = 0; c < C; ++c) {
      auto p = std::make_shared<DatasetPlan>(std::move(plans[t][c]));
      const std::vector<uint64_t> src_grid = p->array.GridShape();
      for (auto& [index, bytes] : p->inline_chunks) {
        std::vector<uint64_t> cc = ChunkCoords(src_grid, index);
        if (cc[0] >= grid[2] || cc[1] >= grid[3] || cc[2] >= grid[4]) continue;  // padding beyond the image
        out.inline_chunks.push_back({LinearChunkIndex(grid, std::vector<uint64_t>{t, c, cc[0], cc[1], cc[2]}), bytes});
      }
      out.stacked_parts.push_back({std::move(p), t, c});
    }
  }
  return out;
}

Status EmitImage(const Hdf5FileContext& ctx, ScanSink& sink, const std::string& path, const ImageDesc& image,
                 std::vector<DatasetPlan>& levels) {
  RETURN_IF_ERROR(sink.AddImage(path, image));
  for (size_t r = 0; r < levels.size(); ++r) {
    RETURN_IF_ERROR(EmitPlan(ctx, sink, path + "/" + std::to_string(r), levels[r]));
  }
  return OkStatus();
}

// ---- Imaris ---------------------------------------------------------------------------------------

Result<bool> DescribeImaris(const Hdf5FileContext& ctx, ScanSink& sink) {
  const hid_t f = ctx.file;
  if (!Exists(f, "/DataSet/ResolutionLevel 0/TimePoint 0/Channel 0/Data") || !Exists(f, "/DataSetInfo/Image")) {
    return false;
  }
  const std::string where = "Imaris image";  // The indexer names the file.
  auto warn = [&](const std::string& m) {
    sink.Warn(where + ": " + m + "; only the raw HDF5 datasets are indexed");
    return false;
  };
  int R = 0, T = 0, C = 0;
  while (Exists(f, "/DataSet/ResolutionLevel " + std::to_string(R))) ++R;
  while (Exists(f, "/DataSet/ResolutionLevel 0/TimePoint " + std::to_string(T))) ++T;
  while (Exists(f, "/DataSet/ResolutionLevel 0/TimePoint 0/Channel " + std::to_string(C))) ++C;
  const std::string info = "/DataSetInfo/Image";
  auto X = NumberAttr(f, info, "X"), Y = NumberAttr(f, info, "Y"), Z = NumberAttr(f, info, "Z");
  if (!X || !Y || !Z) return warn("DataSetInfo/Image lacks the X, Y, Z size attributes");
  std::vector<uint64_t> size = {static_cast<uint64_t>(*Z), static_cast<uint64_t>(*Y), static_cast<uint64_t>(*X)};
  std::vector<DatasetPlan> levels;
  std::vector<std::vector<uint64_t>> sizes;
  for (int r = 0; r < R; ++r) {
    const std::string level = "/DataSet/ResolutionLevel " + std::to_string(r);
    std::vector<std::vector<DatasetPlan>> plans(T);
    for (int t = 0; t < T; ++t) {
      for (int c = 0; c < C; ++c) {
        const std::string path = level + "/TimePoint " + std::to_string(t) + "/Channel " + std::to_string(c) + "/Data";
        if (!Exists(f, path)) return warn(path + " is missing");
        auto plan = PlanDataset(ctx, path);
        H5Eclear2(H5E_DEFAULT);
        if (!plan.ok()) return warn(path + ": " + plan.status().message());
        plans[t].push_back(std::move(*plan));
      }
    }
    // Real size of this level: the channel's ImageSize attributes, else half the previous level.
    const std::string ch0 = level + "/TimePoint 0/Channel 0";
    std::vector<uint64_t> lsize = size;
    if (r > 0) {
      for (auto& v : lsize) v = std::max<uint64_t>(1, (v + 1) / 2);
    }
    if (auto v = NumberAttr(f, ch0, "ImageSizeZ")) lsize[0] = static_cast<uint64_t>(*v);
    if (auto v = NumberAttr(f, ch0, "ImageSizeY")) lsize[1] = static_cast<uint64_t>(*v);
    if (auto v = NumberAttr(f, ch0, "ImageSizeX")) lsize[2] = static_cast<uint64_t>(*v);
    for (int i = 0; i < 3; ++i) lsize[i] = std::min(lsize[i], plans[0][0].array.shape.size() == 3 ? plans[0][0].array.shape[i] : lsize[i]);
    auto stacked = StackLevel(plans, lsize);
    if (!stacked.ok()) return warn("resolution level " + std::to_string(r) + ": " + stacked.status().message());
    levels.push_back(std::move(*stacked));
    sizes.push_back(lsize);
    size = lsize;
  }
  ImageDesc image;
  image.name = StringAttr(f, info, "Name").value_or(ctx.file_name);
  const std::string unit = UnitName(StringAttr(f, info, "Unit").value_or(""));
  image.axes = Axes5(unit);
  double ext_min[3] = {0, 0, 0}, extent[3] = {0, 0, 0};
  bool have_extent = true;
  for (int i = 0; i < 3; ++i) {
    auto lo = NumberAttr(f, info, ("ExtMin" + std::to_string(i)).c_str());
    auto hi = NumberAttr(f, info, ("ExtMax" + std::to_string(i)).c_str());
    if (!lo || !hi || *hi <= *lo) {
      have_extent = false;
      break;
    }
    ext_min[i] = *lo;
    extent[i] = *hi - *lo;
  }
  for (int r = 0; r < R; ++r) {
    image.levels.push_back(std::to_string(r));
    std::vector<double> scale = {1, 1, 1, 1, 1};
    if (have_extent) {
      // ExtMin/ExtMax are in x, y, z order; axes here are z, y, x.
      for (int i = 0; i < 3; ++i) scale[4 - i] = extent[i] / static_cast<double>(sizes[r][2 - i]);
    }
    image.scales.push_back(scale);
    if (have_extent) image.translations.push_back({0, 0, ext_min[2], ext_min[1], ext_min[0]});
  }
  for (int c = 0; c < C; ++c) {
    const std::string ch = "/DataSetInfo/Channel " + std::to_string(c);
    ChannelDesc desc;
    desc.label = StringAttr(f, ch, "Name").value_or("Channel " + std::to_string(c));
    if (auto color = StringAttr(f, ch, "Color")) {
      auto rgb = Numbers(*color);
      if (rgb.size() >= 3) {
        uint32_t v = 0;
        for (int i = 0; i < 3; ++i) v = (v << 8) | static_cast<uint32_t>(std::clamp(rgb[i], 0.0, 1.0) * 255.0 + 0.5);
        desc.color = v;
      }
    }
    if (auto range = StringAttr(f, ch, "ColorRange")) {
      auto w = Numbers(*range);
      if (w.size() >= 2) {
        desc.window = std::make_pair(w[0], w[1]);
        desc.window_source = "Imaris ColorRange";
      }
    }
    image.channels.push_back(desc);
  }
  RETURN_IF_ERROR(EmitImage(ctx, sink, "0", image, levels));
  return true;
}

// ---- BigDataViewer --------------------------------------------------------------------------------

struct BdvSetup {
  int id = 0;
  std::vector<std::vector<double>> resolutions;  // per level, x y z
  std::string name;
  std::vector<double> voxel = {1, 1, 1};  // x y z
  std::string unit;
};

Result<std::vector<std::vector<double>>> ReadMatrix(hid_t file, const std::string& path) {
  H5Id d(H5Dopen2(file, path.c_str(), H5P_DEFAULT));
  if (!d.valid()) return FromHdf5(StatusCode::kCorrupt, path);
  H5Id space(H5Dget_space(d.get()));
  hsize_t dims[2] = {0, 0};
  if (H5Sget_simple_extent_ndims(space.get()) != 2) return CorruptError(path + " is not 2-D");
  H5Sget_simple_extent_dims(space.get(), dims, nullptr);
  if (dims[1] != 3 || dims[0] > 64) return CorruptError(path + " is not N x 3");
  std::vector<double> v(dims[0] * 3);
  RETURN_IF_ERROR(CheckErr(H5Dread(d.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()), path));
  std::vector<std::vector<double>> out;
  for (hsize_t i = 0; i < dims[0]; ++i) out.push_back({v[3 * i], v[3 * i + 1], v[3 * i + 2]});
  return out;
}

// The BigDataViewer XML is small; anything bigger is not one.
constexpr uint64_t kMaxBdvXmlBytes = 16ull << 20;

// Reads setup names and voxel sizes from the BigDataViewer XML next to the file, when present.
// The XML usually shares the file's stem, and is opened beside the file through its openers,
// local or remote; otherwise, for a local file (a folder that can be listed), it is an XML in the
// same folder whose ImageLoader names this file. A failed read fails the scan (the latch).
void ReadBdvXml(const Hdf5FileContext& ctx, std::map<int, BdvSetup>& setups, ScanSink& sink) {
  if (ctx.context.uri().empty() || ctx.file_name.empty()) return;
  const std::string stem_xml = std::filesystem::path(ctx.file_name).replace_extension(".xml").string();
  pugi::xml_document doc;
  auto names_this_file = [&](const pugi::xml_document& d) {
    std::filesystem::path named = d.select_node("//ImageLoader/hdf5").node().text().as_string();
    return named.filename() == ctx.file_name;
  };
  auto fail = [&](const Status& s) {
    if (ctx.latch) ctx.latch->Record(s);
  };
  auto xml = ctx.context.OpenSibling(stem_xml);
  if (xml.ok()) {
    const std::string shown = DisplaySource(ctx.context.SiblingUri(stem_xml));
    auto size = (*xml)->Size();
    if (!size.ok()) return fail(size.status());
    if (*size > kMaxBdvXmlBytes) {
      sink.Warn("BigDataViewer XML " + shown + " holds " + std::to_string(*size) + " bytes, more than an XML of its kind; ignored");
      return;
    }
    auto bytes = ReadRange(**xml, {0, *size});
    if (!bytes.ok()) return fail(bytes.status());
    if (!doc.load_buffer(bytes->data(), bytes->size())) {
      sink.Warn("BigDataViewer XML " + shown + " is not well-formed; ignored");
      return;
    }
  } else if (xml.status().code() != StatusCode::kNotFound) {
    if (ctx.latch) ctx.latch->RecordOpenFailure(xml.status());
    return;
  } else {
    if (UriScheme(ctx.context.uri()) != "file") return;
    auto local = LocalPathOfUri(ctx.context.uri());
    if (!local.ok()) return;
    std::error_code ec;
    bool found = false;
    int looked = 0;
    for (const auto& e : std::filesystem::directory_iterator(local->parent_path(), ec)) {
      if (e.path().extension() != ".xml" || ++looked > 64) continue;
      if (doc.load_file(e.path().c_str()) && names_this_file(doc)) {
        found = true;
        break;
      }
    }
    if (!found) return;
  }
  for (auto n : doc.select_nodes("//ViewSetups/ViewSetup")) {
    pugi::xml_node vs = n.node();
    const int id = vs.child("id").text().as_int(-1);
    auto it = setups.find(id);
    if (it == setups.end()) continue;
    if (auto name = vs.child("name")) it->second.name = name.text().as_string();
    if (auto v = vs.child("voxelSize")) {
      auto size = Numbers(v.child("size").text().as_string());
      if (size.size() == 3) it->second.voxel = size;
      it->second.unit = UnitName(v.child("unit").text().as_string());
    }
  }
}

Result<bool> DescribeBdv(const Hdf5FileContext& ctx, ScanSink& sink) {
  const hid_t f = ctx.file;
  std::vector<std::string> names;
  H5Literate(
      f, H5_INDEX_NAME, H5_ITER_INC, nullptr,
      [](hid_t, const char* name, const H5L_info_t*, void* data) -> herr_t {
        static_cast<std::vector<std::string>*>(data)->push_back(name);
        return 0;
      },
      &names);
  H5Eclear2(H5E_DEFAULT);
  static const std::regex kSetup("s(\\d\\d+)"), kTime("t(\\d{5,})");
  std::map<int, BdvSetup> setups;
  std::vector<std::string> times;
  for (const std::string& n : names) {
    std::smatch m;
    if (std::regex_match(n, m, kSetup) && Exists(f, "/" + n + "/resolutions")) {
      BdvSetup s;
      s.id = std::stoi(m[1]);
      s.name = n;
      auto res = ReadMatrix(f, "/" + n + "/resolutions");
      H5Eclear2(H5E_DEFAULT);
      if (!res.ok()) continue;
      s.resolutions = *res;
      setups[s.id] = s;
    } else if (std::regex_match(n, m, kTime)) {
      times.push_back(n);
    }
  }
  if (setups.empty() || times.empty()) return false;
  const std::string where = "BigDataViewer";  // The indexer names the file.
  ReadBdvXml(ctx, setups, sink);
  auto cells = [](const std::string& t, int s, size_t l) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "/s%02d/%zu/cells", s, l);
    return "/" + t + buf;
  };
  // Group setups whose level shapes, dtypes and chunking agree: they become the channels of one image.
  struct Signature {
    std::vector<std::vector<uint64_t>> shapes, chunks;
    std::string dtype;
    bool operator<(const Signature& o) const {
      return std::tie(shapes, chunks, dtype) < std::tie(o.shapes, o.chunks, o.dtype);
    }
  };
  std::map<Signature, std::vector<int>> groups;
  for (auto& [id, s] : setups) {
    Signature sig;
    bool ok = true;
    for (size_t l = 0; l < s.resolutions.size() && ok; ++l) {
      const std::string p = cells(times[0], id, l);
      H5Id d(Exists(f, p) ? H5Dopen2(f, p.c_str(), H5P_DEFAULT) : -1);
      if (!d.valid()) {
        ok = false;
        break;
      }
      H5Id space(H5Dget_space(d.get()));
      H5Id dcpl(H5Dget_create_plist(d.get()));
      H5Id type(H5Dget_type(d.get()));
      hsize_t dims[3] = {0, 0, 0}, cdims[3] = {0, 0, 0};
      if (H5Sget_simple_extent_ndims(space.get()) != 3) ok = false;
      H5Sget_simple_extent_dims(space.get(), dims, nullptr);
      if (H5Pget_layout(dcpl.get()) == H5D_CHUNKED) H5Pget_chunk(dcpl.get(), 3, cdims);
      sig.shapes.push_back({dims[0], dims[1], dims[2]});
      sig.chunks.push_back({cdims[0], cdims[1], cdims[2]});
      auto dt = DTypeFromHdf5(type.get());
      sig.dtype = dt.ok() ? dt->ToV2().dump() : "?";
    }
    H5Eclear2(H5E_DEFAULT);
    if (!ok) {
      sink.Warn(where + ": setup " + std::to_string(id) + " lacks its cells datasets; not part of an image");
      continue;
    }
    groups[sig].push_back(id);
  }
  int image_index = 0;
  for (auto& [sig, ids] : groups) {
    const BdvSetup& s0 = setups[ids[0]];
    std::vector<DatasetPlan> levels;
    bool ok = true;
    for (size_t l = 0; l < sig.shapes.size() && ok; ++l) {
      std::vector<std::vector<DatasetPlan>> plans(times.size());
      for (size_t t = 0; t < times.size() && ok; ++t) {
        for (int id : ids) {
          const std::string p = cells(times[t], id, l);
          auto plan = Exists(f, p) ? PlanDataset(ctx, p) : Result<DatasetPlan>(NotFoundError("missing"));
          H5Eclear2(H5E_DEFAULT);
          if (!plan.ok()) {
            sink.Warn(where + ": " + p + ": " + plan.status().message() + "; image not declared");
            ok = false;
            break;
          }
          plans[t].push_back(std::move(*plan));
        }
      }
      if (!ok) break;
      auto stacked = StackLevel(plans, sig.shapes[l]);
      if (!stacked.ok()) {
        sink.Warn(where + ": level " + std::to_string(l) + ": " + stacked.status().message() + "; image not declared");
        ok = false;
        break;
      }
      // BigDataViewer stores unsigned 16-bit voxels in signed 16-bit datasets and always reads them
      // as unsigned: the image says so (the raw datasets keep their HDF5 type).
      if (stacked->array.dtype.kind == 'i' && stacked->array.dtype.size == 2) stacked->array.dtype.kind = 'u';
      levels.push_back(std::move(*stacked));
    }
    if (!ok) continue;
    ImageDesc image;
    image.name = std::filesystem::path(ctx.file_name).stem().string() +
                 (groups.size() > 1 ? " " + std::to_string(image_index) : "");
    image.axes = Axes5(s0.unit);
    for (size_t l = 0; l < levels.size(); ++l) {
      image.levels.push_back(std::to_string(l));
      const auto& res = l < s0.resolutions.size() ? s0.resolutions[l] : std::vector<double>{1, 1, 1};
      image.scales.push_back({1, 1, s0.voxel[2] * res[2], s0.voxel[1] * res[1], s0.voxel[0] * res[0]});
    }
    for (int id : ids) image.channels.push_back({setups[id].name, std::nullopt, std::nullopt, ""});
    RETURN_IF_ERROR(EmitImage(ctx, sink, std::to_string(image_index), image, levels));
    ++image_index;
  }
  return image_index > 0;
}

}  // namespace

Result<bool> DescribeBioimage(const Hdf5FileContext& ctx, ScanSink& sink) {
  ASSIGN_OR_RETURN(bool imaris, DescribeImaris(ctx, sink));
  if (imaris) return true;
  return DescribeBdv(ctx, sink);
}

}  // namespace refzarr::internal
