#include "tests/formats/hdf5/recording_sink.h"

namespace refzarr::testing_hdf5 {

Result<uint32_t> RecordingSink::AddSource(const std::filesystem::path& path) {
  sources.push_back(path);
  return static_cast<uint32_t>(sources.size());
}

Status RecordingSink::AddGroup(std::string_view path, const nlohmann::json& attributes) {
  if (!attributes.is_object()) return InvalidArgumentError("group attributes must be an object");
  groups[std::string(path)] = attributes;
  return OkStatus();
}

Status RecordingSink::AddImage(std::string_view path, const ImageDesc& image) {
  images[std::string(path)] = image;
  return OkStatus();
}

Result<ArrayHandle> RecordingSink::AddArray(std::string_view path, const ArrayDesc& array) {
  if (FindArray(path)) return InvalidArgumentError("array " + std::string(path) + " declared twice");
  if (array.chunks.size() != array.shape.size()) return InvalidArgumentError("chunks and shape ranks differ");
  // The JSON round trip must work (it is what the store persists).
  auto back = ArrayDesc::FromJson(array.ToJson());
  if (!back.ok()) return back.status();
  arrays.push_back({std::string(path), array, {}, {}});
  return static_cast<ArrayHandle>(arrays.size() - 1);
}

Status RecordingSink::AddChunk(ArrayHandle array, uint64_t chunk_index, const ChunkRef& ref) {
  if (array >= arrays.size()) return InvalidArgumentError("bad handle");
  if (refused.count(arrays[array].path)) return OkStatus();
  Array& a = arrays[array];
  if (chunk_index >= a.desc.ChunkCount()) return InvalidArgumentError("chunk index outside the grid");
  if (ref.source > sources.size()) return InvalidArgumentError("unknown source");
  if (!a.chunks.emplace(chunk_index, ref).second || a.inline_chunks.count(chunk_index)) {
    return InvalidArgumentError("chunk " + std::to_string(chunk_index) + " of " + a.path + " added twice");
  }
  return OkStatus();
}

Status RecordingSink::AddInlineChunk(ArrayHandle array, uint64_t chunk_index, std::span<const std::byte> bytes) {
  if (array >= arrays.size()) return InvalidArgumentError("bad handle");
  if (refused.count(arrays[array].path)) return OkStatus();
  Array& a = arrays[array];
  if (chunk_index >= a.desc.ChunkCount()) return InvalidArgumentError("chunk index outside the grid");
  if (a.chunks.count(chunk_index) || !a.inline_chunks.emplace(chunk_index, std::vector<std::byte>(bytes.begin(), bytes.end())).second) {
    return InvalidArgumentError("inline chunk added twice");
  }
  return OkStatus();
}

Status RecordingSink::RefuseArray(std::string_view path, std::string reason) {
  refused.emplace(std::string(path), std::move(reason));
  for (Array& a : arrays) {
    if (a.path != path) continue;
    a.chunks.clear();
    a.inline_chunks.clear();
  }
  return OkStatus();
}

Status RecordingSink::AddFile(std::string_view path, std::string bytes) {
  files[std::string(path)] = std::move(bytes);
  return OkStatus();
}

const RecordingSink::Array* RecordingSink::FindArray(std::string_view path) const {
  if (refused.count(std::string(path))) return nullptr;
  for (const Array& a : arrays) {
    if (a.path == path) return &a;
  }
  return nullptr;
}

}  // namespace refzarr::testing_hdf5
