// Scanner: understands one family of file formats and describes a file through a ScanSink.
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "formats/core/byte_source.h"
#include "formats/core/model.h"
#include "formats/core/status.h"

namespace refzarr {

/// What a scanner may know about the file besides its bytes.
struct ScanContext {
  /// Local path of the file, used to find companions (BDV XML, OME-TIFF members, HDF5 external
  /// files). Empty when the source is not a local file.
  std::filesystem::path path;
};

/// One per format family. Implementations are stateless and safe to use from several threads.
class Scanner {
 public:
  virtual ~Scanner() = default;
  /// Short name for messages and `info` ("tiff", "hdf5").
  virtual std::string_view Name() const = 0;
  /// True when `head` (the first bytes of the file, up to 4096) looks like this format.
  virtual bool Sniff(std::span<const std::byte> head) const = 0;
  /// Describes the whole file into `out`. Errors name the place in the file (IFD, dataset); the
  /// caller names the file.
  virtual Status Scan(ByteSource& source, const ScanContext& context, ScanSink& out) const = 0;
};

/// Turns stored chunk bytes that standard Zarr codecs cannot read into a plain chunk.
/// Implementations are stateless or keep per-thread state, and are safe to call concurrently.
class ChunkDecoder {
 public:
  virtual ~ChunkDecoder() = default;
  /// The ChunkEncoding::decoder family this handles ("tiff", "hdf5").
  virtual std::string_view Family() const = 0;
  /// Decodes the stored bytes of the chunk at `chunk_coords` of `array` into `out`, which holds
  /// array.ChunkBytes() bytes in C order and the dtype's byte order, pre-filled with the fill value.
  /// A short chunk fills only what it covers. Errors say what failed (codec, chunk).
  virtual Status Decode(const ArrayDesc& array, std::span<const uint64_t> chunk_coords,
                        const ChunkRef& ref, std::span<const std::byte> stored,
                        std::span<std::byte> out) const = 0;
  /// Whether Decode() can decode the chunks of `array`, judged from its description alone (the
  /// codec is available in this build, the parameters describe chunks of the array): OK, or
  /// kUnsupported / kInvalidArgument saying why not. Called at index time, so that an array whose
  /// chunks could never be served is refused then, not failed at read time. Reads no chunk bytes.
  virtual Status CheckArray(const ArrayDesc& array) const = 0;
};

}  // namespace refzarr
