// Scanner: understands one family of file formats and describes a file through a ScanSink.
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "formats/core/byte_source.h"
#include "formats/core/model.h"
#include "formats/core/source.h"
#include "formats/core/status.h"

namespace refzarr {

/// What a scanner may know about the file besides its bytes: the source's URI and how to open the
/// sources next to it (BDV XML, OME-TIFF members, HDF5 external files), local or remote alike.
class ScanContext {
 public:
  /// No URI: the bytes alone (tests of in-memory sources). Siblings cannot be resolved and
  /// LocalPath() fails.
  ScanContext() = default;
  /// The local file at `local_file`, its siblings opened through LocalSourceOpeners().
  explicit ScanContext(const std::filesystem::path& local_file)
      : uri_(FileUri(local_file)), openers_(&LocalSourceOpeners()) {}
  /// The source named `uri`, its siblings opened through `openers` (not owned; must outlive this).
  ScanContext(std::string uri, const SourceOpeners& openers)
      : uri_(std::move(uri)), openers_(&openers) {}

  /// The scanned source's URI ("file:///data/a.ome.tif", "https://host/a.tif"); empty: none.
  const std::string& uri() const { return uri_; }
  /// The openers siblings are opened through.
  const SourceOpeners& openers() const { return *openers_; }
  /// The source's file name, percent-decoded (UriFileName): what image names are made from.
  std::string FileName() const { return UriFileName(uri_); }
  /// The URI of `name`, a '/'-separated path as a file spells it (not percent-encoded; may hold
  /// ".."), relative to the source's folder (SiblingUri). An absolute `name` is absolute on the
  /// source's own host: a file URI for a local source (HDF5 external files written with an
  /// absolute path), never a local file for a remote one. Empty when the context has no URI.
  std::string SiblingUri(std::string_view name) const {
    if (uri_.empty()) return {};
    return refzarr::SiblingUri(uri_, PercentEncodePath(name));
  }
  /// Opens SiblingUri(name) through the openers: kNotFound from the opener, naming the source,
  /// when it does not exist; kNotFound when the context has no URI; the opener's errors otherwise
  /// (kUnsupported for a scheme without an opener).
  Result<std::unique_ptr<ByteSource>> OpenSibling(std::string_view name) const {
    if (uri_.empty()) {
      return NotFoundError("the scanned bytes have no URI, so no file next to them can be opened");
    }
    return openers_->Open(SiblingUri(name));
  }
  /// The local path of a file:// source, for what can only read local files (`who`: "the HDF5
  /// library"). kUnsupported "<who> needs a local file" naming the scheme for any other source
  /// (the message does not repeat the URI: the indexer names the file).
  Result<std::filesystem::path> LocalPath(std::string_view who) const {
    if (UriScheme(uri_) == "file") return LocalPathOfUri(uri_);
    const std::string_view scheme = UriScheme(uri_);
    return UnsupportedError(std::string(who) + " needs a local file, and this source " +
                            (scheme.empty() ? std::string("has no URI")
                                            : "is a " + std::string(scheme) + ":// URI"));
  }

 private:
  std::string uri_;
  const SourceOpeners* openers_ = &LocalSourceOpeners();
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
