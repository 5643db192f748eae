// ByteSource: where scanners and the store read bytes from (a local file, an in-memory buffer; HTTP later).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string_view>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "formats/core/status.h"

struct stat;

namespace refzarr {

/// A byte range inside a source: `length` bytes starting at `offset`.
struct ByteRange {
  uint64_t offset = 0;
  uint64_t length = 0;
  friend bool operator==(const ByteRange&, const ByteRange&) = default;
};

/// An opaque version of a source's bytes, made by its opener (TensorStore's StorageGeneration is
/// the model): a source whose generation is unchanged holds the bytes it held. Compared, stored,
/// never interpreted outside its opener. Empty: unknown.
struct Generation {
  std::string value;
  bool unknown() const { return value.empty(); }
  friend bool operator==(const Generation&, const Generation&) = default;
};

/// What a source is now: its size and generation.
struct SourceStat {
  uint64_t size = 0;
  Generation generation;
};

/// Random-access, read-only bytes. Implementations are safe to call from several threads at once.
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  /// Size and generation of the bytes this source reads (for a local file, of the open file, not
  /// of whatever its path names now).
  virtual Result<SourceStat> Stat() = 0;
  /// Total size in bytes.
  Result<uint64_t> Size() {
    ASSIGN_OR_RETURN(SourceStat st, Stat());
    return st.size;
  }
  /// A local descriptor the bytes can be sent from without copying (sendfile, splice), valid while
  /// this source lives; -1 when there is none.
  virtual int LocalDescriptor() const { return -1; }
  /// Fills `out` (exactly range.length bytes) from range.offset. A read past the end is kCorrupt
  /// ("truncated"), an OS failure kIo; both name the source.
  virtual Status ReadInto(ByteRange range, std::span<std::byte> out) = 0;
  /// A hint that these ranges will be read soon (a scanner that can predict its next reads says
  /// so). A source whose reads cost a round trip fetches the missing ones now, concurrently, into
  /// its cache; a local file ignores it. It never fails: a range that could not be fetched is
  /// fetched again, and its error reported, by the read that wants it.
  virtual void Prefetch(std::span<const ByteRange> ranges) { (void)ranges; }
  /// Whether every read checks that the bytes are still of the generation Stat() gave, failing
  /// with kStale instead of returning another version's bytes (remote sources: conditional
  /// requests). A holder of such a source need not stat it again before reading; a local file,
  /// rewritable in place under an open descriptor, cannot promise it.
  virtual bool ValidatesReads() const { return false; }
  /// "file:/data/a.tif", "memory:name": used in every message about this source.
  virtual std::string Describe() const = 0;
};

/// The size and generation of a local file from its stat(2): device, inode, size, mtime, ctime.
SourceStat LocalFileStat(const struct stat& st);

/// Opens a local file for positional reads (pread). Errors: kNotFound, kIo.
Result<std::unique_ptr<ByteSource>> OpenLocalFile(const std::filesystem::path& path);

/// An in-memory source that owns `bytes`; Describe() is "memory:<name>".
std::unique_ptr<ByteSource> MakeMemorySource(std::vector<std::byte> bytes, std::string name);

/// Reads `range` into a new buffer.
Result<std::vector<std::byte>> ReadRange(ByteSource& source, ByteRange range);

/// Reads a whole local file (for small companion files: XML sidecars, OME companions).
Result<std::string> ReadFileToString(const std::filesystem::path& path);

}  // namespace refzarr
