#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <map>
#include <sstream>

#include "cli/commands.h"
#include "formats/ome/ome_xml.h"
#include "formats/registry/registry.h"
#include "store/metadata.h"
#include "store/ref_store.h"
#include "store/transcode/transcode.h"

namespace refzarr {

namespace {

using nlohmann::json;

// Children asked of the index per page while looking for images.
constexpr size_t kInfoPage = 1000;

// A codec pipeline as text: "zlib", "shuffle, zlib", "imagecodecs_lzw", "none".
std::string CodecText(const json& zarray) {
  std::string out;
  auto add = [&out](const json& codec) {
    if (!codec.is_object()) return;
    std::string id = codec.value("id", "?");
    if (id == "blosc") id += "(" + codec.value("cname", "lz4") + ")";
    if (id == "refzarr_transpose") id = "interleaved samples";
    out += (out.empty() ? "" : ", ") + id;
  };
  if (zarray.contains("filters") && zarray["filters"].is_array()) {
    for (const json& f : zarray["filters"]) add(f);
  }
  add(zarray.value("compressor", json()));
  return out.empty() ? "none" : out;
}

std::string ShapeText(const json& shape) {
  std::string out;
  for (const json& v : shape) out += (out.empty() ? "" : " x ") + std::to_string(v.get<uint64_t>());
  return out;
}

std::string Number(double v) {
  std::ostringstream s;
  s.precision(10);
  s << v;
  return s.str();
}

// One image as `info` shows it: everything from the metadata the view renders for it
// (store/metadata.h) and the index's own description, so `info` says what clients are served.
// A source's state now ("ok", "failed", "stale", ...) and why.
using SourceState = std::function<std::pair<std::string, std::string>(const SourceInfo&)>;

Result<json> DescribeImage(RefStore& store, const NodeRecord& group, const SourceState& state_of) {
  ASSIGN_OR_RETURN(ImageDesc image, ImageDesc::FromJson(group.meta["image"]));
  std::vector<ArrayDesc> levels;
  std::vector<bool> flagged;
  for (const std::string& level : image.levels) {
    const std::string path = JoinTreePath(group.path, level);
    ASSIGN_OR_RETURN(std::optional<NodeRecord> node, store.GetNode(path));
    if (!node || node->kind != NodeKind::kArray) return CorruptError(path + ": level is not an array");
    ASSIGN_OR_RETURN(ArrayDesc a, ArrayDesc::FromJson(node->meta["array"]));
    levels.push_back(std::move(a));
    flagged.push_back(node->meta.value("flagged", false));
  }
  const ArrayDesc* level0 = levels.empty() ? nullptr : &levels[0];
  const json attrs = RenderGroupAttributes(group.meta.value("attributes", json::object()), &image,
                                           level0, 2);
  const json& ms = attrs["multiscales"][0];
  json out = {{"path", group.path}, {"name", image.name}};
  if (group.owner) {
    ASSIGN_OR_RETURN(SourceInfo s, store.GetSource(*group.owner));
    out["source"] = DisplaySource(s.uri);
    out["scanner"] = s.scanner;
    auto [state, detail] = state_of(s);
    out["status"] = state;
    out["stale"] = state == "stale";
    if (!detail.empty()) out["status_detail"] = detail;
  }
  json axes = json::array();
  for (size_t i = 0; i < ms["axes"].size(); ++i) {
    json a = ms["axes"][i];
    if (level0 && i < level0->shape.size()) a["size"] = level0->shape[i];
    const json& transforms = ms["datasets"][0]["coordinateTransformations"];
    if (!transforms.empty() && i < transforms[0]["scale"].size()) a["scale"] = transforms[0]["scale"][i];
    axes.push_back(a);
  }
  out["axes"] = axes;
  if (level0) {
    const json stored = RenderZarrayV2(*level0, false);
    const bool transcoded = NeedsTranscode(*level0, CodecPolicy::kCompat, flagged[0], 2);
    const json served = RenderZarrayV2(*level0, transcoded);
    out["dtype"] = stored["dtype"];
    out["dtype_name"] = level0->dtype.V3Name().value_or(stored["dtype"].dump());
    out["chunks"] = level0->chunks;
    out["stored_codec"] = CodecText(stored);
    out["served_codec"] = CodecText(served);
    out["transcoded"] = transcoded;
  }
  json channels = json::array();
  const json& omero = attrs["omero"]["channels"];
  for (size_t c = 0; c < omero.size(); ++c) {
    const json& oc = omero[c];
    const ChannelDesc* desc = c < image.channels.size() ? &image.channels[c] : nullptr;
    std::string source = desc && desc->window ? desc->window_source : "";
    if (source.empty()) source = desc && desc->window ? "the file" : "the dtype's range";
    channels.push_back({{"label", oc["label"]},
                        {"color", oc["color"]},
                        {"window", {oc["window"]["start"], oc["window"]["end"]}},
                        {"window_source", source}});
  }
  out["channels"] = channels;
  json lv = json::array();
  for (size_t i = 0; i < levels.size(); ++i) {
    lv.push_back({{"path", image.levels[i]}, {"shape", levels[i].shape}, {"chunks", levels[i].chunks}});
  }
  out["levels"] = lv;
  return out;
}

void PrintImage(const json& im, std::ostream& out) {
  out << "\nimage " << im["path"].get<std::string>();
  if (!im["name"].get<std::string>().empty()) out << " \"" << im["name"].get<std::string>() << "\"";
  out << "\n";
  if (im.contains("source")) {
    out << "  source:   " << im["source"].get<std::string>() << " (" << im.value("scanner", "")
        << " scanner), " << im["status"].get<std::string>();
    if (im.contains("status_detail")) out << ": " << im["status_detail"].get<std::string>();
    out << "\n";
  }
  out << "  axes:     ";
  bool first = true;
  for (const json& a : im["axes"]) {
    out << (first ? "" : ", ") << a["name"].get<std::string>() << " " << a.value("size", 0ull);
    first = false;
    const double scale = a.value("scale", 1.0);
    const std::string unit = a.value("unit", "");
    if (a.value("type", "") != "channel" && (scale != 1.0 || !unit.empty())) {
      out << " (" << Number(scale) << (unit.empty() ? "" : " " + unit) << ")";
    }
  }
  out << "\n";
  if (im.contains("dtype")) {
    out << "  dtype:    " << im["dtype_name"].get<std::string>() << " (" << im["dtype"].dump() << ")\n"
        << "  chunks:   " << ShapeText(im["chunks"]) << "\n"
        << "  codec:    stored " << im["stored_codec"].get<std::string>() << "; served (compat) "
        << im["served_codec"].get<std::string>() << (im["transcoded"].get<bool>() ? ", transcoded" : "")
        << "\n";
  }
  for (size_t c = 0; c < im["channels"].size(); ++c) {
    const json& ch = im["channels"][c];
    out << "  channel " << c << ": \"" << ch["label"].get<std::string>() << "\" #"
        << ch["color"].get<std::string>() << ", window " << Number(ch["window"][0].get<double>())
        << " - " << Number(ch["window"][1].get<double>()) << " ("
        << ch["window_source"].get<std::string>() << ")\n";
  }
  for (const json& l : im["levels"]) {
    out << "  level " << l["path"].get<std::string>() << ":  " << ShapeText(l["shape"])
        << "  (chunks " << ShapeText(l["chunks"]) << ")\n";
  }
}

// What `info` says about an OME file group: its plate (from the plate attributes the view
// serves) and the ROIs its OME-XML keeps (OME/METADATA.ome.xml), which the view serves as is.
Result<json> DescribeCollection(RefStore& store, const NodeRecord& group) {
  json out = {{"path", group.path}};
  const json attrs = group.meta.value("attributes", json::object());
  if (attrs.contains("plate") && attrs["plate"].is_object()) {
    const json& p = attrs["plate"];
    size_t fields = 0;
    for (const json& w : p.value("wells", json::array())) {
      ASSIGN_OR_RETURN(auto well, store.GetNode(JoinTreePath(group.path, w.value("path", ""))));
      if (!well) continue;
      const json wa = well->meta.value("attributes", json::object());
      if (wa.contains("well")) fields += wa["well"].value("images", json::array()).size();
    }
    out["plate"] = {{"name", p.value("name", "")},
                    {"rows", p.value("rows", json::array()).size()},
                    {"columns", p.value("columns", json::array()).size()},
                    {"wells", p.value("wells", json::array()).size()},
                    {"fields", fields},
                    {"acquisitions", p.value("acquisitions", json::array()).size()}};
  }
  ASSIGN_OR_RETURN(auto xml_node, store.GetNode(JoinTreePath(group.path, "OME/METADATA.ome.xml")));
  if (xml_node && xml_node->kind == NodeKind::kFile) {
    ASSIGN_OR_RETURN(auto bytes, store.GetFileBytes(xml_node->id));
    auto doc = bytes ? ParseOmeXml(*bytes) : Result<OmeDocument>(NotFoundError("no bytes"));
    if (doc.ok()) {
      json rois = json::array();
      for (const OmeRoi& roi : doc->rois) {
        json images = json::array();
        for (size_t i = 0; i < doc->images.size(); ++i) {
          const auto& refs = doc->images[i].roi_refs;
          if (std::find(refs.begin(), refs.end(), roi.id) != refs.end()) images.push_back(i);
        }
        rois.push_back({{"id", roi.id}, {"name", roi.name}, {"shapes", roi.shapes},
                        {"images", images}});
      }
      out["rois"] = rois;
    }
  }
  return out;
}

void PrintCollection(const json& c, std::ostream& out) {
  if (!c.contains("plate") && c.value("rois", json::array()).empty()) return;
  out << "\n" << (c["path"].get<std::string>().empty() ? "(root)" : c["path"].get<std::string>())
      << ":\n";
  if (c.contains("plate")) {
    const json& p = c["plate"];
    out << "  plate \"" << p["name"].get<std::string>() << "\": " << p["rows"] << " x "
        << p["columns"] << " wells, " << p["wells"] << " with fields, " << p["fields"]
        << " fields, " << p["acquisitions"] << " acquisitions\n";
  }
  const json rois = c.value("rois", json::array());
  if (!rois.empty()) {
    out << "  " << rois.size() << " ROIs (OME/METADATA.ome.xml):\n";
    for (const json& r : rois) {
      out << "    " << r["id"].get<std::string>();
      if (!r["name"].get<std::string>().empty()) out << " (" << r["name"].get<std::string>() << ")";
      out << ":";
      bool first = true;
      for (const json& s : r["shapes"]) {
        out << (first ? " " : ", ") << s.get<std::string>();
        first = false;
      }
      out << "; images";
      if (r["images"].empty()) out << " none";
      first = true;
      for (const json& i : r["images"]) {
        out << (first ? " " : ", ") << i.get<size_t>();
        first = false;
      }
      out << "\n";
    }
  }
}

// Depth-first, names in order, below `path` (or `path` itself when it is an image): the image
// groups, at most `limit` of them (0: all); `more` says whether there were others. OME file
// groups (bioformats2raw layouts: plates, ROIs) met on the way go to `collections`.
Status FindImages(RefStore& store, const std::string& path, size_t limit,
                  std::vector<NodeRecord>& images, bool& more,
                  std::vector<NodeRecord>* collections = nullptr) {
  std::string after;
  while (true) {
    ASSIGN_OR_RETURN(auto page, store.ChildrenAfter(path, after, kInfoPage));
    for (NodeRecord& n : page) {
      if (n.kind != NodeKind::kGroup) continue;
      if (collections && n.meta.contains("attributes") &&
          n.meta["attributes"].contains("bioformats2raw.layout")) {
        collections->push_back(n);
      }
      if (n.meta.contains("image") && !n.meta["image"].is_null()) {
        if (limit && images.size() == limit) {
          more = true;
          return OkStatus();
        }
        images.push_back(n);
      }
      RETURN_IF_ERROR(FindImages(store, n.path, limit, images, more, collections));
      if (more) return OkStatus();
    }
    if (page.size() < kInfoPage) return OkStatus();
    after = page.back().path.substr(page.back().path.rfind('/') + 1);
  }
}

}  // namespace

Status PrintInfo(const std::filesystem::path& index, const InfoOptions& options, std::ostream& out) {
  const bool as_json = options.json;
  ASSIGN_OR_RETURN(auto store, OpenRefStore(index, OpenMode::kReadOnly));
  ASSIGN_OR_RETURN(StoreStats st, store->Stats());
  std::string path = options.path;
  while (!path.empty() && path.back() == '/') path.pop_back();
  std::map<int64_t, std::pair<std::string, std::string>> states;  // source id -> state, detail
  SourceState state_of = [&options, &states](const SourceInfo& s) {
    if (auto known = states.find(s.id); known != states.end()) return known->second;
    std::string state = s.status;
    std::string detail = s.error;
    if (s.status != "failed") {
      // A stat per source by default: an archive of millions of files is checked in seconds.
      // --verify also reads the fingerprint span (up to 128 KiB a file), as serving does once.
      const SourceOpeners& openers = DefaultSourceOpeners();
      auto now = options.verify ? ProbeSource(s.uri, nullptr, 0, openers) : StatSource(s.uri, openers);
      std::string change = now.ok() ? DescribeChange(s, *now) : now.status().message();
      if (!change.empty()) {
        state = "stale";
        detail = change;
      }
    }
    return states[s.id] = {state, detail};
  };
  // The summary checks every source; a PATH only the sources of its images.
  nlohmann::json files = nlohmann::json::array();
  uint64_t stale = 0;
  if (path.empty()) {
    ASSIGN_OR_RETURN(auto sources, store->Sources());
    for (const SourceInfo& s : sources) {
      auto [state, detail] = state_of(s);
      stale += state == "stale";
      files.push_back({{"path", DisplaySource(s.uri)}, {"uri", s.uri}, {"group", s.group},
                       {"status", state}, {"size", s.size}, {"detail", detail},
                       {"scanner", s.scanner}});
    }
  }
  // The images: below PATH, or (no PATH) the archive's first `image_limit`, with a note when
  // there are more, so a million-image archive prints a page, not a million.
  std::vector<NodeRecord> image_nodes, collection_nodes;
  bool more = false;
  ASSIGN_OR_RETURN(std::optional<NodeRecord> node, store->GetNode(path));
  if (!path.empty() && !node) {
    return NotFoundError("no group or array '" + path + "' in " + index.string());
  }
  if (node && node->kind == NodeKind::kGroup && node->meta.contains("attributes") &&
      node->meta["attributes"].contains("bioformats2raw.layout")) {
    collection_nodes.push_back(*node);  // a single file indexed alone is the root
  }
  if (node && !path.empty() && node->kind == NodeKind::kGroup && node->meta.contains("image") &&
      !node->meta["image"].is_null()) {
    image_nodes.push_back(*node);
  } else {
    RETURN_IF_ERROR(
        FindImages(*store, path, options.image_limit, image_nodes, more, &collection_nodes));
  }
  json collections = json::array();
  for (const NodeRecord& n : collection_nodes) {
    auto described = DescribeCollection(*store, n);
    if (!described.ok()) {
      return Status(described.status().code(), n.path + ": " + described.status().message());
    }
    if (described->contains("plate") || !described->value("rois", json::array()).empty()) {
      collections.push_back(std::move(*described));
    }
  }
  nlohmann::json images = nlohmann::json::array();
  for (const NodeRecord& n : image_nodes) {
    auto described = DescribeImage(*store, n, state_of);
    if (!described.ok()) return Status(described.status().code(), n.path + ": " + described.status().message());
    images.push_back(std::move(*described));
  }
  // Every refusal is listed in JSON; the human summary names the first few.
  constexpr size_t kListed = 20;
  ASSIGN_OR_RETURN(auto refusals, store->RefusedArrays(as_json ? st.refused_arrays : kListed));
  nlohmann::json refused = nlohmann::json::array();
  for (const RefusedArray& r : refusals) {
    refused.push_back({{"path", r.path}, {"source", r.source}, {"reason", r.reason}});
  }
  if (as_json) {
    nlohmann::json j = {{"index", index.string()}, {"images_listed", images.size()},
                        {"images_truncated", more}, {"image_list", images},
                        {"collections", collections}};
    if (path.empty()) {
      j.update({{"sources", st.sources}, {"refused_arrays", st.refused_arrays}, {"refused", refused},
                {"failed_sources", st.failed_sources}, {"stale_sources", stale},
                {"groups", st.groups}, {"arrays", st.arrays}, {"images", st.images},
                {"chunk_references", st.chunk_refs}, {"reference_bytes", st.block_bytes},
                {"index_bytes", st.index_bytes}, {"files", files}});
    } else {
      j["path"] = path;
    }
    out << j.dump(2) << "\n";
    return OkStatus();
  }
  if (path.empty()) {
    out << "index:            " << index.string() << "\n"
        << "sources:          " << st.sources << " indexed, " << st.failed_sources << " failed, "
        << stale << " stale\n"
        << "images (series):  " << st.images << "\n"
        << "groups / arrays:  " << st.groups << " / " << st.arrays << " (" << st.refused_arrays
        << " arrays refused)\n"
        << "chunk references: " << st.chunk_refs << " (" << st.block_bytes << " bytes, "
        << (st.chunk_refs ? static_cast<double>(st.block_bytes) / st.chunk_refs : 0.0)
        << " bytes each)\n"
        << "index size:       " << st.index_bytes << " bytes\n";
    for (const RefusedArray& r : refusals) {
      out << "refused: " << r.path << ": " << r.reason << "\n";
    }
    if (st.refused_arrays > refusals.size()) {
      out << "refused: ... and " << st.refused_arrays - refusals.size() << " more (--json lists all)\n";
    }
    for (const auto& f : files) {
      std::string status = f["status"];
      if (status == "ok" || status == "companion") continue;
      out << status << ": " << f["path"].get<std::string>() << ": "
          << f["detail"].get<std::string>() << "\n";
    }
  }
  for (const json& c : collections) PrintCollection(c, out);
  for (const json& im : images) PrintImage(im, out);
  if (more) {
    out << "\n... more images: the first " << images.size()
        << " are shown (refzarr info INDEX PATH for those under a folder, --limit N, 0 for all)\n";
  }
  return OkStatus();
}

void AddInfoCommand(CLI::App& app, CommandContext& ctx) {
  struct Args {
    std::string index;
    InfoOptions options;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "info", "Summarise an index (sources, series, references) and describe its images");
  AddRemoteFlags(cmd);
  cmd->add_option("index", args->index, "The index file")->required();
  cmd->add_option("path", args->options.path,
                  "Describe only the images at or under this tree path (as `ls` shows it)");
  cmd->add_flag("--json", args->options.json, "Machine-readable output");
  cmd->add_option("--limit", args->options.image_limit,
                  "Most images described (0: all; default 20)");
  cmd->add_flag("--verify", args->options.verify,
                "Also compare each source's content fingerprint (reads up to 128 KiB a file); "
                "without it, size and modification time are compared");
  cmd->callback([&ctx, args] {
    Status st = PrintInfo(args->index, args->options, ctx.out);
    if (!st.ok()) {
      ctx.err << "refzarr: info: " << st.message() << "\n";
      ctx.exit_code = 1;
    }
  });
}

}  // namespace refzarr
