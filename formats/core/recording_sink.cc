#include "formats/core/recording_sink.h"

#include <algorithm>

#include "formats/core/source.h"

namespace refzarr {

uint64_t ScannedFile::ChunkCount() const {
  uint64_t n = 0;
  for (const Array& a : arrays) n += a.StoredCount() + a.inline_chunks.size();
  return n;
}

const ScannedFile::Array* ScannedFile::FindArray(std::string_view path) const {
  for (const Array& a : arrays) {
    if (a.path == path) return &a;
  }
  return nullptr;
}

const ScannedFile::Group* ScannedFile::FindGroup(std::string_view path) const {
  for (const Group& g : groups) {
    if (g.path == path) return &g;
  }
  return nullptr;
}

Status ValidateNodePath(std::string_view path) {
  if (path.empty()) return OkStatus();
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string_view name = path.substr(start, end - start);
    if (name.empty() || name == "." || name == ".." || name.find('\0') != std::string_view::npos) {
      return InvalidArgumentError("bad node path '" + std::string(path) + "'");
    }
    start = end + 1;
  }
  return OkStatus();
}

Result<uint32_t> RecordingSink::AddSource(std::string_view uri) {
  if (UriScheme(uri).empty()) {
    return InvalidArgumentError("companion source '" + std::string(uri) + "' is not a URI");
  }
  for (size_t i = 0; i < file_.companions.size(); ++i) {
    if (file_.companions[i] == uri) return static_cast<uint32_t>(i + 1);
  }
  file_.companions.emplace_back(uri);
  return static_cast<uint32_t>(file_.companions.size());
}

Result<ScannedFile::Group*> RecordingSink::GroupAt(std::string_view path) {
  RETURN_IF_ERROR(ValidateNodePath(path));
  if (array_index_.count(path)) {
    return InvalidArgumentError("'" + std::string(path) + "' is an array, not a group");
  }
  auto it = group_index_.find(path);
  if (it != group_index_.end()) return &file_.groups[it->second];
  group_index_.emplace(std::string(path), file_.groups.size());
  file_.groups.push_back({std::string(path), nlohmann::json::object(), std::nullopt});
  return &file_.groups.back();
}

Status RecordingSink::AddGroup(std::string_view path, const nlohmann::json& attributes) {
  if (!attributes.is_object()) return InvalidArgumentError("group attributes must be an object");
  ASSIGN_OR_RETURN(ScannedFile::Group * g, GroupAt(path));
  g->attributes.update(attributes);
  return OkStatus();
}

Status RecordingSink::AddImage(std::string_view path, const ImageDesc& image) {
  if (image.levels.empty() || image.scales.size() != image.levels.size()) {
    return InvalidArgumentError("image '" + std::string(path) + "': needs one scale per level");
  }
  for (const auto& s : image.scales) {
    if (s.size() != image.axes.size()) {
      return InvalidArgumentError("image '" + std::string(path) + "': scale rank differs from axes");
    }
  }
  ASSIGN_OR_RETURN(ScannedFile::Group * g, GroupAt(path));
  g->image = image;
  return OkStatus();
}

Result<ArrayHandle> RecordingSink::AddArray(std::string_view path, const ArrayDesc& array) {
  RETURN_IF_ERROR(ValidateNodePath(path));
  if (path.empty()) return InvalidArgumentError("an array cannot be the file group itself");
  if (array_index_.count(path) || group_index_.count(path)) {
    return InvalidArgumentError("node '" + std::string(path) + "' declared twice");
  }
  if (array.shape.size() != array.chunks.size()) {
    return InvalidArgumentError("array '" + std::string(path) + "': shape and chunks differ in rank");
  }
  for (size_t i = 0; i < array.chunks.size(); ++i) {
    if (array.chunks[i] == 0) {
      return InvalidArgumentError("array '" + std::string(path) + "': zero chunk size");
    }
  }
  array_index_.emplace(std::string(path), file_.arrays.size());
  file_.arrays.push_back({std::string(path), array, {}, {}});
  chunk_counts_.push_back(array.ChunkCount());
  refused_.push_back(refused_paths_.count(path) > 0);
  return static_cast<ArrayHandle>(file_.arrays.size() - 1);
}

Status RecordingSink::RefuseArray(std::string_view path, std::string reason) {
  RETURN_IF_ERROR(ValidateNodePath(path));
  if (refused_paths_.count(path)) return OkStatus();  // The first reason is the one reported.
  refused_paths_.emplace(std::string(path), reason);
  file_.refused.push_back({std::string(path), std::move(reason)});
  auto it = array_index_.find(path);
  if (it == array_index_.end()) return OkStatus();
  ScannedFile::Array& a = file_.arrays[it->second];
  refused_[it->second] = true;
  in_memory_ -= std::min<uint64_t>(in_memory_, a.chunks.size());
  a.chunks = {};
  a.inline_chunks = {};
  a.spilled.reset();
  return OkStatus();
}

Status RecordingSink::AddChunk(ArrayHandle array, uint64_t chunk_index, const ChunkRef& ref) {
  if (array >= file_.arrays.size()) return InvalidArgumentError("unknown array handle");
  if (refused_[array]) return OkStatus();
  ScannedFile::Array& a = file_.arrays[array];
  if (chunk_index >= chunk_counts_[array]) {
    return InvalidArgumentError("array '" + a.path + "': chunk " + std::to_string(chunk_index) +
                                " outside its grid of " + std::to_string(chunk_counts_[array]));
  }
  if (ref.source > file_.companions.size()) {
    return InvalidArgumentError("array '" + a.path + "': chunk refers to unknown source " +
                                std::to_string(ref.source));
  }
  a.chunks.emplace_back(chunk_index, ref);
  if (max_in_memory_ != 0 && ++in_memory_ >= max_in_memory_) return Spill();
  return OkStatus();
}

Status RecordingSink::Spill() {
  for (ScannedFile::Array& a : file_.arrays) {
    if (a.chunks.empty()) continue;
    if (!a.spilled) {
      ASSIGN_OR_RETURN(a.spilled, SpilledRefs::Create());
    }
    RETURN_IF_ERROR(a.spilled->AppendRun(a.chunks).WithContext("array '" + a.path + "'"));
  }
  in_memory_ = 0;
  return OkStatus();
}

Status RecordingSink::AddInlineChunk(ArrayHandle array, uint64_t chunk_index,
                                     std::span<const std::byte> bytes) {
  if (array >= file_.arrays.size()) return InvalidArgumentError("unknown array handle");
  if (refused_[array]) return OkStatus();
  ScannedFile::Array& a = file_.arrays[array];
  if (chunk_index >= chunk_counts_[array]) {
    return InvalidArgumentError("array '" + a.path + "': inline chunk " +
                                std::to_string(chunk_index) + " outside its grid");
  }
  a.inline_chunks.emplace_back(chunk_index, std::vector<std::byte>(bytes.begin(), bytes.end()));
  return OkStatus();
}

Status RecordingSink::AddFile(std::string_view path, std::string bytes) {
  RETURN_IF_ERROR(ValidateNodePath(path));
  if (path.empty()) return InvalidArgumentError("a file needs a name");
  file_.files.push_back({std::string(path), std::move(bytes)});
  return OkStatus();
}

void RecordingSink::Warn(std::string message) { file_.warnings.push_back(std::move(message)); }

Status RecordingSink::Finish() {
  if (!refused_paths_.empty()) DropRefused();
  for (const ScannedFile::Array& a : file_.arrays) {
    if (a.spilled) continue;  // Checked while merged at commit (see the header).
    RETURN_IF_ERROR(VisitChunksInOrder(
        a, [](uint64_t, const ChunkRef*, const std::vector<std::byte>*) { return OkStatus(); }));
  }
  return OkStatus();
}

void RecordingSink::DropRefused() {
  std::vector<ScannedFile::Array> kept;
  for (size_t i = 0; i < file_.arrays.size(); ++i) {
    if (!refused_[i]) kept.push_back(std::move(file_.arrays[i]));
  }
  file_.arrays = std::move(kept);
  array_index_.clear();
  for (size_t i = 0; i < file_.arrays.size(); ++i) array_index_.emplace(file_.arrays[i].path, i);
  refused_.assign(file_.arrays.size(), false);
  chunk_counts_.clear();
  for (const ScannedFile::Array& a : file_.arrays) chunk_counts_.push_back(a.desc.ChunkCount());
  // An image keeps the levels that are still arrays, in order; their scales stay true.
  for (ScannedFile::Group& g : file_.groups) {
    if (!g.image) continue;
    ImageDesc& image = *g.image;
    ImageDesc kept_image = image;
    kept_image.levels.clear();
    kept_image.scales.clear();
    kept_image.translations.clear();
    for (size_t k = 0; k < image.levels.size(); ++k) {
      std::string level = g.path.empty() ? image.levels[k] : g.path + "/" + image.levels[k];
      if (!array_index_.count(level)) continue;
      kept_image.levels.push_back(image.levels[k]);
      kept_image.scales.push_back(image.scales[k]);
      if (k < image.translations.size()) kept_image.translations.push_back(image.translations[k]);
    }
    if (kept_image.levels.size() == image.levels.size()) continue;
    if (kept_image.levels.empty()) {
      file_.warnings.push_back("image '" + g.path + "' has no servable level left: its group is "
                               "not an OME-NGFF image");
      g.image.reset();
      continue;
    }
    if (!kept_image.translations.empty() &&
        kept_image.translations.size() != kept_image.levels.size()) {
      kept_image.translations.clear();
    }
    file_.warnings.push_back("image '" + g.path + "' keeps " +
                             std::to_string(kept_image.levels.size()) + " of its " +
                             std::to_string(image.levels.size()) + " levels");
    image = std::move(kept_image);
  }
}

Status VisitChunksInOrder(const ScannedFile::Array& array, const ChunkVisitor& visit) {
  SortedChunkRefs stored(array.chunks, array.spilled.get());
  const auto& inlined = array.inline_chunks;  // Few: sorted through their positions.
  std::vector<size_t> inline_order(inlined.size());
  for (size_t i = 0; i < inline_order.size(); ++i) inline_order[i] = i;
  std::stable_sort(inline_order.begin(), inline_order.end(),
                   [&](size_t x, size_t y) { return inlined[x].first < inlined[y].first; });
  ASSIGN_OR_RETURN(auto next, stored.Next());
  size_t k = 0;
  std::optional<uint64_t> last;
  while (next || k < inline_order.size()) {
    const bool take_stored =
        next && (k == inline_order.size() || next->first <= inlined[inline_order[k]].first);
    const uint64_t index = take_stored ? next->first : inlined[inline_order[k]].first;
    if (last && *last == index) {
      return InvalidArgumentError("array '" + array.path + "': chunk " + std::to_string(index) +
                                  " given twice");
    }
    last = index;
    if (take_stored) {
      RETURN_IF_ERROR(visit(index, &next->second, nullptr));
      ASSIGN_OR_RETURN(next, stored.Next());
    } else {
      RETURN_IF_ERROR(visit(index, nullptr, &inlined[inline_order[k++]].second));
    }
  }
  return OkStatus();
}

}  // namespace refzarr
