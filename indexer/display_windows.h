// Display windows that show the data. A file that says how its channels are displayed (OME
// SignificantBits, TIFF SMin/SMaxSampleValue, ImageJ ranges, Imaris ColorRange) has its windows
// set by its scanner. For the other channels of numbers wider than 8 bits (whose whole range, the
// default window, shows 12-bit camera data near black), the window is the 0.1/99.9 % quantiles
// of one plane of the image's smallest level: the middle z, the first t. It is read once, at index
// time, in the scanning process (crash-isolated like the scan), and bounded (kMaxWindowPlane*).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "formats/core/byte_source.h"
#include "formats/core/model.h"
#include "formats/core/scanner.h"
#include "formats/core/source.h"

namespace refzarr {

/// Most elements of a plane read for a window (2048 x 2048).
inline constexpr uint64_t kMaxWindowPlaneElements = 1ull << 22;
/// Most decoded bytes read for the windows of one image.
inline constexpr uint64_t kMaxWindowDecodedBytes = 64ull << 20;
/// Most chunk references kept per scan for reading windows.
inline constexpr uint64_t kMaxWindowRefs = 1ull << 20;

/// A ScanSink in front of `inner` that passes everything on, except that it holds the images
/// back until Finish(), which gives the channels without a window one from the data (above) and
/// then declares them on `inner`. A window that cannot be read (a chunk fails to decode, a plane
/// beyond the bounds) is left unset, with a warning for a failure.
class DisplayWindowSink final : public ScanSink {
 public:
  /// `source` is the scanned file (ChunkRef::source 0); companions are opened with `openers`.
  /// `decoders` decode chunks that standard codecs cannot (DecodeChunk). None owned.
  DisplayWindowSink(ScanSink& inner, ByteSource& source, const SourceOpeners& openers,
                    std::span<const ChunkDecoder* const> decoders);

  Result<uint32_t> AddSource(std::string_view uri) override;
  Status AddGroup(std::string_view path, const nlohmann::json& attributes) override;
  Status AddImage(std::string_view path, const ImageDesc& image) override;
  Result<ArrayHandle> AddArray(std::string_view path, const ArrayDesc& array) override;
  Status AddChunk(ArrayHandle array, uint64_t chunk_index, const ChunkRef& ref) override;
  Status AddInlineChunk(ArrayHandle array, uint64_t chunk_index,
                        std::span<const std::byte> bytes) override;
  Status AddFile(std::string_view path, std::string bytes) override;
  void Warn(std::string message) override;
  Status RefuseArray(std::string_view path, std::string reason) override;

  /// Computes the windows and declares the held images on `inner`. Call once, after a scan that
  /// succeeded.
  Status Finish();

 private:
  struct Array {
    ArrayDesc desc;
    bool kept = false;  // chunks recorded (a plane within the bounds)
    bool refused = false;
    std::map<uint64_t, ChunkRef> refs;
    std::map<uint64_t, std::string> inline_chunks;
  };
  Status FillWindows(const std::string& image_path, ImageDesc& image);
  ScanSink& inner_;
  ByteSource& source_;
  const SourceOpeners& openers_;
  std::span<const ChunkDecoder* const> decoders_;
  std::map<uint32_t, std::string> source_uris_;
  std::map<uint32_t, std::unique_ptr<ByteSource>> companions_;
  std::map<std::string, ArrayHandle, std::less<>> handles_;
  std::map<ArrayHandle, Array> arrays_;
  std::vector<std::pair<std::string, ImageDesc>> images_;
  uint64_t kept_refs_ = 0;
};

}  // namespace refzarr
