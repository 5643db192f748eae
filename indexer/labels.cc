#include "indexer/labels.h"

#include <algorithm>
#include <array>
#include <optional>
#include <cctype>
#include <cmath>
#include <map>
#include <set>

namespace refzarr {

using nlohmann::json;

namespace {

constexpr std::string_view kName = "{name}";

std::string Join(std::string_view a, std::string_view b) {
  if (a.empty()) return std::string(b);
  if (b.empty()) return std::string(a);
  return std::string(a) + "/" + std::string(b);
}

std::string ShapeText(const std::vector<uint64_t>& shape) {
  std::string out;
  for (uint64_t v : shape) out += (out.empty() ? "" : " x ") + std::to_string(v);
  return out;
}

// The label image's name a pattern gives: what is left without {name}, the extension and
// separators, other characters than letters, digits, '-' and '_' made '_'.
std::string LabelNameOf(std::string pattern) {
  pattern.erase(pattern.find(kName), kName.size());
  const size_t slash = pattern.rfind('/');
  const size_t dot = pattern.find('.', slash == std::string::npos ? 0 : slash + 1);
  if (dot != std::string::npos) pattern.erase(dot);
  std::string out;
  for (char c : pattern) {
    const bool keep = std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
    out += keep ? c : '_';
  }
  const size_t first = out.find_first_not_of("_-");
  if (first == std::string::npos) return "";
  out.erase(0, first);
  out.erase(out.find_last_not_of("_-") + 1);
  return out;
}

// The first image group of a scan: series "0" when there is one, else the first by path.
const ScannedFile::Group* FirstImage(const ScannedFile& scan) {
  const ScannedFile::Group* best = nullptr;
  for (const auto& g : scan.groups) {
    if (!g.image) continue;
    if (g.path == "0") return &g;
    if (!best || g.path < best->path) best = &g;
  }
  return best;
}

// Deterministic label colours: the golden-ratio walk round the hue circle (distinct neighbours,
// the same colour for a value in every label image and every run), opaque; 0 is background.
std::array<int, 4> LabelColor(uint64_t value) {
  const double hue = std::fmod(static_cast<double>(value) * 0.6180339887498949, 1.0) * 6.0;
  const double s = 0.7, v = 0.95;
  const int sector = static_cast<int>(hue);
  const double f = hue - sector;
  const double p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
  double r = v, g = t, b = p;
  switch (sector) {
    case 1: r = q, g = v, b = p; break;
    case 2: r = p, g = v, b = t; break;
    case 3: r = p, g = q, b = v; break;
    case 4: r = t, g = p, b = v; break;
    case 5: r = v, g = p, b = q; break;
    default: break;
  }
  auto byte = [](double x) { return static_cast<int>(std::lround(x * 255)); };
  return {byte(r), byte(g), byte(b), 255};
}

// Label values given a colour: 0 (transparent) and 1 ... 255 (or the dtype's maximum).
constexpr uint64_t kColoredLabels = 255;

class LabelPairingRunner final : public ScanRunner {
 public:
  LabelPairingRunner(ScanRunner& inner, std::vector<LabelRule> rules, const SourceOpeners& openers)
      : inner_(inner), rules_(std::move(rules)), openers_(openers) {}

  std::vector<Status> ScanAll(std::span<const ScanRequest> requests) override {
    // Files without a label file go to the inner runner together, as they would without rules.
    std::vector<Status> out(requests.size());
    std::vector<ScanRequest> plain;
    std::vector<size_t> plain_at;
    std::vector<std::vector<std::pair<const LabelRule*, std::string>>> found(requests.size());
    for (size_t i = 0; i < requests.size(); ++i) {
      auto labels = LabelFiles(requests[i].uri);
      if (!labels.ok()) {
        out[i] = labels.status();
        continue;
      }
      found[i] = std::move(*labels);
      if (found[i].empty()) {
        plain.push_back(requests[i]);
        plain_at.push_back(i);
      }
    }
    std::vector<Status> scanned = plain.empty() ? std::vector<Status>() : inner_.ScanAll(plain);
    for (size_t k = 0; k < plain_at.size(); ++k) out[plain_at[k]] = scanned[k];
    for (size_t i = 0; i < requests.size(); ++i) {
      if (!out[i].ok() || found[i].empty()) continue;
      out[i] = ScanWithLabels(requests[i], found[i]);
    }
    return out;
  }

  Status Scan(std::string_view scanner, std::string_view uri, ScanSink& sink) override {
    ScanRequest r{scanner, std::string(uri), &sink};
    return ScanAll(std::span<const ScanRequest>(&r, 1)).front();
  }

 private:
  // The label files of the rules that exist next to `uri`.
  Result<std::vector<std::pair<const LabelRule*, std::string>>> LabelFiles(const std::string& uri) {
    std::vector<std::pair<const LabelRule*, std::string>> out;
    const std::string stem = LabelStem(UriFileName(uri));
    for (const LabelRule& rule : rules_) {
      std::string relative = rule.pattern;
      relative.replace(relative.find(kName), kName.size(), stem);
      const std::string label_uri = SiblingUri(uri, PercentEncodePath(relative));
      if (label_uri == uri) continue;
      auto stat = openers_.Stat(label_uri);
      if (stat.ok()) {
        out.emplace_back(&rule, label_uri);
      } else if (stat.status().code() != StatusCode::kNotFound) {
        return stat.status().WithContext("label file " + DisplaySource(label_uri));
      }
    }
    return out;
  }

  Status ScanWithLabels(const ScanRequest& r,
                        const std::vector<std::pair<const LabelRule*, std::string>>& labels) {
    RecordingSink image_sink;
    RETURN_IF_ERROR(inner_.Scan(r.scanner, r.uri, image_sink));
    RETURN_IF_ERROR(image_sink.Finish());
    ScannedFile image = std::move(image_sink).result();
    for (const auto& [rule, label_uri] : labels) {
      RecordingSink label_sink;
      Status st = inner_.Scan("tiff", label_uri, label_sink);
      if (st.ok()) st = label_sink.Finish();
      if (!st.ok()) return st.WithContext("label image " + DisplaySource(label_uri));
      RETURN_IF_ERROR(GraftLabels(image, r.uri, label_sink.result(), label_uri, rule->label));
    }
    return ReplayScan(image, *r.sink);
  }

  ScanRunner& inner_;
  std::vector<LabelRule> rules_;
  const SourceOpeners& openers_;
};

}  // namespace

std::vector<std::string> DefaultLabelPatterns() {
  return {"{name}_mask.tif", "{name}_labels.tif", "masks/{name}.tif"};
}

Result<std::vector<LabelRule>> ParseLabelRules(const std::vector<std::string>& values) {
  std::vector<std::string> patterns;
  for (const std::string& v : values) {
    if (v == "default") {
      for (std::string& d : DefaultLabelPatterns()) patterns.push_back(std::move(d));
    } else {
      patterns.push_back(v);
    }
  }
  std::vector<LabelRule> out;
  std::set<std::string> names;
  for (const std::string& p : patterns) {
    if (p.starts_with("h5:")) {
      return UnsupportedError("--labels '" + p + "': HDF5 dataset label rules are not "
                              "implemented yet (only file name patterns with {name})");
    }
    const size_t at = p.find(kName);
    if (at == std::string::npos || p.find(kName, at + 1) != std::string::npos) {
      return InvalidArgumentError("--labels '" + p + "': a pattern needs exactly one {name} "
                                  "(e.g. '{name}_mask.tif', 'masks/{name}.tif')");
    }
    if (p.starts_with("/")) {
      return InvalidArgumentError("--labels '" + p + "': the pattern is relative to the "
                                  "image's folder");
    }
    std::string name = LabelNameOf(p);
    if (name.empty()) {
      return InvalidArgumentError("--labels '" + p + "': gives the label image no name (add "
                                  "a word beside {name}, e.g. '{name}_mask.tif')");
    }
    if (!names.insert(name).second) {
      return InvalidArgumentError("--labels '" + p + "': another pattern also names its label "
                                  "image \"" + name + "\"");
    }
    out.push_back({p, name});
  }
  return out;
}

std::string LabelStem(std::string_view file_name) {
  std::string stem(file_name);
  const size_t dot = stem.rfind('.');
  if (dot != std::string::npos && dot > 0) stem.erase(dot);
  if (stem.size() > 4) {
    std::string tail = stem.substr(stem.size() - 4);
    for (char& c : tail) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (tail == ".ome") stem.erase(stem.size() - 4);
  }
  return stem;
}

Status GraftLabels(ScannedFile& image, std::string_view image_uri, const ScannedFile& label,
                   std::string_view label_uri, const std::string& name) {
  const std::string both =
      "label image " + DisplaySource(label_uri) + " of " + DisplaySource(image_uri);
  const ScannedFile::Group* target = FirstImage(image);
  const ScannedFile::Group* source = FirstImage(label);
  if (!target) return InvalidArgumentError(both + ": the image file has no image to label");
  if (!source) return InvalidArgumentError(both + ": the label file has no image");
  const std::string target_path = target->path;
  const ImageDesc target_image = *target->image;
  const ImageDesc& label_image = *source->image;
  std::vector<const ScannedFile::Array*> label_levels;
  for (const std::string& level : label_image.levels) {
    const ScannedFile::Array* a = label.FindArray(Join(source->path, level));
    if (!a) return InternalError(both + ": level " + level + " has no array");
    label_levels.push_back(a);
  }
  const ArrayDesc& l0 = label_levels.front()->desc;
  if (l0.dtype.kind != 'i' && l0.dtype.kind != 'u') {
    return InvalidArgumentError(both + ": its pixels are " + l0.dtype.ToV2().dump() +
                                "; label images hold integers (a float mask is not a label "
                                "image: convert it to an integer type)");
  }
  // The (t, c, z, y, x) level of the image the label's full resolution matches.
  std::vector<std::string> image_shapes;
  std::optional<size_t> match;
  for (size_t k = 0; k < target_image.levels.size(); ++k) {
    const ScannedFile::Array* a = image.FindArray(Join(target_path, target_image.levels[k]));
    if (!a) continue;
    const auto& s = a->desc.shape;
    image_shapes.push_back(ShapeText(s));
    if (s.size() != 5 || l0.shape.size() != 5) continue;
    const bool same = s[0] == l0.shape[0] && s[2] == l0.shape[2] && s[3] == l0.shape[3] &&
                      s[4] == l0.shape[4] && (l0.shape[1] == 1 || l0.shape[1] == s[1]);
    if (same && !match) match = k;
  }
  if (!match) {
    std::string levels;
    for (const std::string& s : image_shapes) levels += (levels.empty() ? "" : "; ") + s;
    return InvalidArgumentError(both + ": its shape " + ShapeText(l0.shape) +
                                " (t, c, z, y, x) matches no level of the image (" + levels +
                                "): a label image has the (t, z, y, x) shape of the image or "
                                "of one of its levels, and 1 channel or the image's");
  }
  const std::string labels_path = Join(target_path, "labels");
  const std::string label_path = Join(labels_path, name);
  if (image.FindGroup(label_path)) {
    return InvalidArgumentError(both + ": the image has a label image \"" + name + "\" already");
  }

  // Sources: the label file and its companions become companions of the image file.
  auto source_id = [&image](const std::string& uri) {
    auto it = std::find(image.companions.begin(), image.companions.end(), uri);
    if (it == image.companions.end()) {
      image.companions.push_back(uri);
      return static_cast<uint32_t>(image.companions.size());
    }
    return static_cast<uint32_t>(it - image.companions.begin() + 1);
  };
  std::vector<uint32_t> ids = {source_id(std::string(label_uri))};
  for (const std::string& c : label.companions) ids.push_back(source_id(c));

  ImageDesc desc;
  desc.name = name;
  desc.axes = target_image.axes;
  const std::vector<double>& base = target_image.scales[*match];
  for (size_t j = 0; j < label_levels.size(); ++j) {
    const auto& s = label_levels[j]->desc.shape;
    std::vector<double> scale = base;
    if (s.size() == 5 && scale.size() == 5 && s[3] && s[4]) {
      scale[3] *= static_cast<double>(l0.shape[3]) / s[3];
      scale[4] *= static_cast<double>(l0.shape[4]) / s[4];
    }
    desc.levels.push_back(label_image.levels[j]);
    desc.scales.push_back(scale);
  }
  for (size_t j = 0; j < label_levels.size(); ++j) {
    ScannedFile::Array copy;
    copy.path = Join(label_path, label_image.levels[j]);
    copy.desc = label_levels[j]->desc;
    RETURN_IF_ERROR(VisitChunksInOrder(
        *label_levels[j], [&](uint64_t index, const ChunkRef* stored,
                              const std::vector<std::byte>* inline_bytes) -> Status {
          if (stored) {
            ChunkRef ref = *stored;
            if (ref.source >= ids.size()) return InternalError(both + ": unknown chunk source");
            ref.source = ids[ref.source];
            copy.chunks.emplace_back(index, ref);
          } else {
            copy.inline_chunks.emplace_back(index, *inline_bytes);
          }
          return OkStatus();
        }));
    image.arrays.push_back(std::move(copy));
  }

  json colors = json::array({{{"label-value", 0}, {"rgba", {0, 0, 0, 0}}}});
  const uint64_t max_value =
      l0.dtype.kind == 'u' ? (l0.dtype.size >= 8 ? UINT64_MAX : (1ull << (8 * l0.dtype.size)) - 1)
                           : (1ull << (8 * l0.dtype.size - 1)) - 1;
  for (uint64_t v = 1; v <= std::min(kColoredLabels, max_value); ++v) {
    auto c = LabelColor(v);
    colors.push_back({{"label-value", v}, {"rgba", {c[0], c[1], c[2], c[3]}}});
  }
  ScannedFile::Group group;
  group.path = label_path;
  group.image = desc;
  group.attributes = {{"image-label", {{"colors", colors}, {"source", {{"image", "../../"}}}}}};
  ScannedFile::Group* labels_group = nullptr;
  for (auto& g : image.groups) {
    if (g.path == labels_path) labels_group = &g;
  }
  if (!labels_group) {
    image.groups.push_back({labels_path, {{"labels", json::array()}}, std::nullopt});
    labels_group = &image.groups.back();
  }
  labels_group->attributes["labels"].push_back(name);
  image.groups.push_back(std::move(group));
  return OkStatus();
}

Status ReplayScan(const ScannedFile& scan, ScanSink& sink) {
  std::vector<uint32_t> ids = {0};
  for (const std::string& c : scan.companions) {
    ASSIGN_OR_RETURN(uint32_t id, sink.AddSource(c));
    ids.push_back(id);
  }
  for (const auto& g : scan.groups) {
    RETURN_IF_ERROR(sink.AddGroup(g.path, g.attributes));
    if (g.image) RETURN_IF_ERROR(sink.AddImage(g.path, *g.image));
  }
  for (const auto& a : scan.arrays) {
    ASSIGN_OR_RETURN(ArrayHandle h, sink.AddArray(a.path, a.desc));
    RETURN_IF_ERROR(VisitChunksInOrder(
        a, [&](uint64_t index, const ChunkRef* stored,
               const std::vector<std::byte>* inline_bytes) -> Status {
          if (!stored) return sink.AddInlineChunk(h, index, *inline_bytes);
          ChunkRef ref = *stored;
          if (ref.source >= ids.size()) return InternalError(a.path + ": unknown chunk source");
          ref.source = ids[ref.source];
          return sink.AddChunk(h, index, ref);
        }));
  }
  for (const auto& f : scan.files) RETURN_IF_ERROR(sink.AddFile(f.path, f.bytes));
  for (const std::string& w : scan.warnings) sink.Warn(w);
  for (const auto& r : scan.refused) RETURN_IF_ERROR(sink.RefuseArray(r.path, r.reason));
  return OkStatus();
}

std::unique_ptr<ScanRunner> MakeLabelPairingRunner(ScanRunner& inner, std::vector<LabelRule> rules,
                                                   const SourceOpeners& openers) {
  return std::make_unique<LabelPairingRunner>(inner, std::move(rules), openers);
}

}  // namespace refzarr
