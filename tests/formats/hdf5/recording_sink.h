// An in-memory ScanSink that records everything a scanner emits, for tests.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "formats/core/model.h"

namespace refzarr::testing_hdf5 {

class RecordingSink : public ScanSink {
 public:
  struct Array {
    std::string path;
    ArrayDesc desc;
    std::map<uint64_t, ChunkRef> chunks;
    std::map<uint64_t, std::vector<std::byte>> inline_chunks;
  };

  Result<uint32_t> AddSource(const std::filesystem::path& path) override;
  Status AddGroup(std::string_view path, const nlohmann::json& attributes) override;
  Status AddImage(std::string_view path, const ImageDesc& image) override;
  Result<ArrayHandle> AddArray(std::string_view path, const ArrayDesc& array) override;
  Status AddChunk(ArrayHandle array, uint64_t chunk_index, const ChunkRef& ref) override;
  Status AddInlineChunk(ArrayHandle array, uint64_t chunk_index, std::span<const std::byte> bytes) override;
  Status AddFile(std::string_view path, std::string bytes) override;
  void Warn(std::string message) override { warnings.push_back(std::move(message)); }
  Status RefuseArray(std::string_view path, std::string reason) override;

  /// The array at `path`, or nullptr.
  const Array* FindArray(std::string_view path) const;

  std::vector<std::filesystem::path> sources;  ///< Index i is source id i + 1.
  std::map<std::string, nlohmann::json> groups;
  std::map<std::string, ImageDesc> images;
  std::vector<Array> arrays;
  std::map<std::string, std::string> files;
  std::vector<std::string> warnings;
  std::map<std::string, std::string> refused;  ///< Refused array path -> reason.
};

}  // namespace refzarr::testing_hdf5
