#include "indexer/scan_runner.h"

#include "formats/core/byte_source.h"
#include "indexer/display_windows.h"
#include "store/transcode/transcode.h"

namespace refzarr {
namespace {

// Passes everything on to `inner`; an array CheckServable rejects is declared and refused at once,
// so its chunks are dropped as they come (ScanSink::RefuseArray).
class ServableArraysSink final : public ScanSink {
 public:
  ServableArraysSink(ScanSink& inner, std::span<const ChunkDecoder* const> decoders)
      : inner_(inner), decoders_(decoders) {}

  Result<uint32_t> AddSource(std::string_view uri) override { return inner_.AddSource(uri); }
  Status AddGroup(std::string_view path, const nlohmann::json& attributes) override {
    return inner_.AddGroup(path, attributes);
  }
  Status AddImage(std::string_view path, const ImageDesc& image) override {
    return inner_.AddImage(path, image);
  }
  Result<ArrayHandle> AddArray(std::string_view path, const ArrayDesc& array) override {
    ASSIGN_OR_RETURN(ArrayHandle h, inner_.AddArray(path, array));
    Status servable = CheckServable(array, decoders_);
    if (!servable.ok()) RETURN_IF_ERROR(inner_.RefuseArray(path, servable.message()));
    return h;
  }
  Status AddChunk(ArrayHandle array, uint64_t chunk_index, const ChunkRef& ref) override {
    return inner_.AddChunk(array, chunk_index, ref);
  }
  Status AddInlineChunk(ArrayHandle array, uint64_t chunk_index,
                        std::span<const std::byte> bytes) override {
    return inner_.AddInlineChunk(array, chunk_index, bytes);
  }
  Status AddFile(std::string_view path, std::string bytes) override {
    return inner_.AddFile(path, std::move(bytes));
  }
  void Warn(std::string message) override { inner_.Warn(std::move(message)); }
  Status RefuseArray(std::string_view path, std::string reason) override {
    return inner_.RefuseArray(path, std::move(reason));
  }

 private:
  ScanSink& inner_;
  std::span<const ChunkDecoder* const> decoders_;
};

class InProcessScanRunner final : public ScanRunner {
 public:
  InProcessScanRunner(const std::vector<std::unique_ptr<Scanner>>& scanners,
                      std::vector<const ChunkDecoder*> decoders, const SourceOpeners& openers,
                      ScanSettings settings)
      : scanners_(scanners), decoders_(std::move(decoders)), openers_(openers),
        settings_(settings) {}

  Status Scan(std::string_view name, std::string_view uri, ScanSink& sink) override {
    const Scanner* scanner = FindScanner(scanners_, name);
    if (!scanner) return InternalError("no scanner called '" + std::string(name) + "'");
    return ScanFileInto(*scanner, uri, openers_, decoders_, sink, settings_);
  }

 private:
  const std::vector<std::unique_ptr<Scanner>>& scanners_;
  std::vector<const ChunkDecoder*> decoders_;
  const SourceOpeners& openers_;
  const ScanSettings settings_;
};

}  // namespace

Status ScanFileInto(const Scanner& scanner, std::string_view uri, const SourceOpeners& openers,
                    std::span<const ChunkDecoder* const> decoders, ScanSink& sink,
                    const ScanSettings& settings) {
  ASSIGN_OR_RETURN(auto source, openers.Open(uri));
  const ScanContext context(std::string(uri), openers);
  if (!settings.data_windows) {
    ServableArraysSink gate(sink, decoders);
    return scanner.Scan(*source, context, gate);
  }
  // scanner -> servable gate -> display windows -> sink: windows are read only from arrays
  // that are served, after the scan, from the source the scan read.
  DisplayWindowSink windows(sink, *source, openers, decoders);
  ServableArraysSink gate(windows, decoders);
  RETURN_IF_ERROR(scanner.Scan(*source, context, gate));
  return windows.Finish();
}

const Scanner* FindScanner(const std::vector<std::unique_ptr<Scanner>>& scanners,
                           std::string_view name) {
  for (const auto& s : scanners) {
    if (s->Name() == name) return s.get();
  }
  return nullptr;
}

std::unique_ptr<ScanRunner> MakeInProcessScanRunner(
    const std::vector<std::unique_ptr<Scanner>>& scanners,
    std::vector<const ChunkDecoder*> decoders, const SourceOpeners& openers,
    ScanSettings settings) {
  return std::make_unique<InProcessScanRunner>(scanners, std::move(decoders), openers, settings);
}

}  // namespace refzarr
