// Internal: the HDF5 library reading a file through a ByteSource (a local file, an in-memory
// buffer, an HTTP(S)/S3 object) instead of opening a path itself: a read-only HDF5 virtual file
// driver. Files the library opens on its own while it reads one (the sources of a virtual
// dataset, to learn its extent) resolve beside it through a ScanContext, like every sibling.
// Also: a latch that remembers the first failed read of a scan's sources, because the library
// turns some failed reads into something else (a retried metadata read, a skipped attribute, an
// object it calls corrupt), and a scan must fail on them instead of indexing part of a file.
#pragma once

#include <memory>
#include <mutex>

#include "formats/core/byte_source.h"
#include "formats/core/scanner.h"
#include "formats/core/status.h"
#include "formats/hdf5/hdf5_util.h"

namespace refzarr::internal {

/// Remembers the first error that a read (or stat) of the sources wrapped by LatchReadErrors
/// gave. Thread-safe.
class ReadErrorLatch {
 public:
  /// Keeps `error` when it is the first error recorded.
  void Record(const Status& error);
  /// Keeps the error of an open of a file beside the scanned one when it says the file could not
  /// be read (kIo, kStale), not that it cannot be had (kNotFound, a scheme without an opener):
  /// the former fails the scan, the latter is an answer (a missing companion is refused).
  void RecordOpenFailure(const Status& error);
  /// OK, or the first error recorded (with its code and message as the source gave them).
  Status first() const;

 private:
  mutable std::mutex mutex_;
  Status first_;
};

/// A ByteSource that reads through `inner` (not owned, must outlive it) and records every failure
/// of its Stat() and ReadInto() in `latch` (not owned), then returns it as `inner` gave it.
std::unique_ptr<ByteSource> LatchReadErrors(ByteSource& inner, ReadErrorLatch& latch);

/// How a file opened through the driver finds the files the library opens itself.
struct Hdf5SourceOptions {
  /// The scanned file's URI and openers: a file the library opens while it reads this one (a
  /// virtual dataset's source, named relative to this file or absolute) is opened with
  /// OpenSibling. Without a URI such opens fail, as a missing file does.
  ScanContext siblings;
  /// Records the read errors of the files the library opens itself (not owned; may be null).
  /// When the file's own source records into it too (LatchReadErrors), an open that failed on a
  /// failed read is not retried.
  ReadErrorLatch* latch = nullptr;
};

/// Opens the HDF5 file held in `source` read-only through the ByteSource driver, with a bounded
/// number of metadata read attempts; a file whose "open for writing" flag was left set (its
/// writer crashed) is retried in SWMR-read mode (as OpenHdf5File). `source` (not owned) must
/// outlive the file and every object opened from it. Every read the library makes becomes a
/// ReadInto() of `source`; a failed one is an error of the library call that needed it, whose
/// message (FromHdf5) holds the source's Describe() and the ByteSource's message. Reads past the
/// end of `source` read zeros, as the library's own file driver does. Writes fail.
/// kCorrupt "open with the HDF5 library: <the library's reasons>" when neither open works.
/// Takes Hdf5Mutex().
Result<H5Id> OpenHdf5OnSource(ByteSource& source, const Hdf5SourceOptions& options = {});

}  // namespace refzarr::internal
