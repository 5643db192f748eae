// The source model: a source is a URI plus a generation, opened through an explicit table of
// openers, one per URI scheme. A new kind of source (HTTP, S3) is a new opener and one line in
// DefaultSourceOpeners() (formats/registry); nothing else in the indexer or the store changes.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "formats/core/byte_source.h"
#include "formats/core/status.h"

namespace refzarr {

/// A source found by listing a prefix: its URI and what the listing says of it (a generation
/// equal to Stat()'s when the listing gives one, else unknown).
struct ListedSource {
  std::string uri;
  SourceStat stat;
};

/// Opens and stats the sources of one URI scheme. Safe to use from several threads at once.
class SourceOpener {
 public:
  virtual ~SourceOpener() = default;
  /// The scheme this opener handles, without "://" ("file").
  virtual std::string_view Scheme() const = 0;
  /// The source's size and generation now, without reading its bytes (a stat, a HEAD).
  /// kNotFound when it does not exist, kIo otherwise.
  virtual Result<SourceStat> Stat(std::string_view uri) const = 0;
  /// Opens the source for reading; its Stat() describes exactly the bytes it reads.
  virtual Result<std::unique_ptr<ByteSource>> Open(std::string_view uri) const = 0;
  /// Whether its sources' reads validate themselves (ByteSource::ValidatesReads) when the server
  /// gives a version: callers may then stat them less often.
  virtual bool ValidatesReads() const { return false; }
  /// Calls `each` with every source whose URI starts with `prefix` (a folder-like URI ending in
  /// '/': an object store prefix), in byte order of their URIs, stopping at the first error it
  /// returns. kUnsupported (the default) for schemes that cannot list, such as HTTP.
  virtual Status List(std::string_view prefix,
                      const std::function<Status(const ListedSource&)>& each) const;
};

/// The table of openers, looked up by scheme.
class SourceOpeners {
 public:
  explicit SourceOpeners(std::vector<std::unique_ptr<SourceOpener>> openers)
      : openers_(std::move(openers)) {}
  /// The opener of `uri`'s scheme; kUnsupported naming the URI when there is none.
  Result<const SourceOpener*> Find(std::string_view uri) const;
  Result<SourceStat> Stat(std::string_view uri) const;
  Result<std::unique_ptr<ByteSource>> Open(std::string_view uri) const;
  Status List(std::string_view prefix,
              const std::function<Status(const ListedSource&)>& each) const;

 private:
  std::vector<std::unique_ptr<SourceOpener>> openers_;
};

/// The opener of file:// URIs (local files). Its generation is the file's device, inode, size,
/// modification and change times, so a file replaced by another of the same size and mtime
/// (`cp -p`, `rsync -a`) is a different generation.
std::unique_ptr<SourceOpener> MakeLocalFileOpener();

/// A table with the local-file opener alone: what the store uses when it is given none.
const SourceOpeners& LocalSourceOpeners();

/// `file://` plus the absolute, normalised `path`, percent-encoded (RFC 3986 / RFC 8089): bytes
/// other than unreserved characters and "/" become %XX.
std::string FileUri(const std::filesystem::path& path);

/// `path` with every byte other than an unreserved character (RFC 3986) or '/' as %XX: the one
/// percent-encoder (file URIs, URL paths of the HTTP front end).
std::string PercentEncodePath(std::string_view path);

/// `s` with its %XX escapes decoded: the one percent-decoder (file names of URIs, object keys,
/// tree paths). A malformed escape is kept as it is.
std::string PercentDecode(std::string_view s);

/// The URI's scheme ("file", "https"), or empty when `uri` has none.
std::string_view UriScheme(std::string_view uri);

/// The local path of a file:// URI; kInvalidArgument for any other URI or a malformed escape.
Result<std::filesystem::path> LocalPathOfUri(std::string_view uri);

/// The URI that `relative` (a '/'-separated path relative to `uri`'s folder, may contain "..")
/// names next to `uri`: how companions and multi-file members resolve, local or remote.
std::string SiblingUri(std::string_view uri, std::string_view relative);

/// The last '/'-separated segment of `uri`'s path, percent-decoded ("a b.tif" for
/// "https://host/x/a%20b.tif"): the file name that image names and OME-TIFF members use. Empty
/// when `uri` is empty or ends in '/'; a malformed escape is kept as it is.
std::string UriFileName(std::string_view uri);

/// What a source is shown as in messages: the local path for file:// URIs, else the URI.
std::string DisplaySource(std::string_view uri);

/// The content fingerprint of an open source of `size` bytes: xxh3-64, in hex, of the size and
/// its first and last 64 KiB. With `head`, also returns its first min(size, head_bytes) bytes from
/// the same read, for sniffing, so a new file is opened and read once.
Result<std::string> ContentFingerprint(ByteSource& source, uint64_t size,
                                       std::vector<std::byte>* head = nullptr,
                                       size_t head_bytes = 0);

}  // namespace refzarr
