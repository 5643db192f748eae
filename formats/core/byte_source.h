// ByteSource: where scanners and the store read bytes from (a local file, an in-memory buffer; HTTP later).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "formats/core/status.h"

namespace refzarr {

/// A byte range inside a source: `length` bytes starting at `offset`.
struct ByteRange {
  uint64_t offset = 0;
  uint64_t length = 0;
  friend bool operator==(const ByteRange&, const ByteRange&) = default;
};

/// Random-access, read-only bytes. Implementations are safe to call from several threads at once.
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  /// Total size in bytes.
  virtual Result<uint64_t> Size() = 0;
  /// Fills `out` (exactly range.length bytes) from range.offset. A read past the end is kCorrupt
  /// ("truncated"), an OS failure kIo; both name the source.
  virtual Status ReadInto(ByteRange range, std::span<std::byte> out) = 0;
  /// "file:/data/a.tif", "memory:name": used in every message about this source.
  virtual std::string Describe() const = 0;
};

/// Opens a local file for positional reads (pread). Errors: kNotFound, kIo.
Result<std::unique_ptr<ByteSource>> OpenLocalFile(const std::filesystem::path& path);

/// An in-memory source that owns `bytes`; Describe() is "memory:<name>".
std::unique_ptr<ByteSource> MakeMemorySource(std::vector<std::byte> bytes, std::string name);

/// Reads `range` into a new buffer.
Result<std::vector<std::byte>> ReadRange(ByteSource& source, ByteRange range);

/// Reads a whole local file (for small companion files: XML sidecars, OME companions).
Result<std::string> ReadFileToString(const std::filesystem::path& path);

}  // namespace refzarr
