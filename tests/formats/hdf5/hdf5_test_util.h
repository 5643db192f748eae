// Helpers shared by the HDF5 tests: temporary files, owned ids, and the list of real-world files.
#pragma once

#include <hdf5.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "formats/core/recording_sink.h"
#include "formats/hdf5/hdf5_util.h"

namespace refzarr::testing_hdf5 {

using internal::H5Id;

/// A fresh directory under the system temp dir, removed at destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

/// REFZARR_SHARED_DIR/realdata/hdf5 (empty when the shared folder is absent).
std::filesystem::path RealDataHdf5Dir();

/// Every HDF5 file (by signature) under RealDataHdf5Dir(), sorted.
std::vector<std::filesystem::path> RealDataHdf5Files();

/// Paths ("/a/b") of every dataset in the open file, in visit order.
std::vector<std::string> DatasetPaths(hid_t file);

/// Scans `path` with the HDF5 scanner into the core RecordingSink (holding at most
/// `max_refs_in_memory` references in memory, 0: all), calls Finish() and returns the recording.
/// Fails the calling test when a recorded ArrayDesc does not survive the JSON round trip the store
/// makes.
Result<ScannedFile> ScanHdf5File(const std::filesystem::path& path, uint64_t max_refs_in_memory = 0);

/// An array's recorded chunks by linear index: stored references (in memory and spilled) and
/// inline bytes.
struct RecordedChunks {
  std::map<uint64_t, ChunkRef> stored;
  std::map<uint64_t, std::vector<std::byte>> inlined;
};
RecordedChunks ChunksOf(const ScannedFile::Array& array);

/// The refusal of the array at `path` (no leading '/'), or nullptr.
const ScannedFile::Refusal* FindRefusal(const ScannedFile& scan, std::string_view path);

/// What ScanHdf5File gave in a child process.
struct ChildScan {
  /// 0: scanned; 1: the scan failed (`error`); -N: killed by signal N; kChildTimedOut.
  int exit = 0;
  std::string error;
  std::vector<ScannedFile::Refusal> refused;
  std::vector<std::string> arrays;  ///< Paths of the arrays indexed.
  double seconds = 0;
};
inline constexpr int kChildTimedOut = -1000;

/// Scans `path` in a child process, killed after `limit` and (when `max_memory` is not 0, and not
/// under AddressSanitizer) limited to that many bytes of address space: a hang, a crash or an
/// unbounded allocation in the scanner or the HDF5 library ends the child, not the test.
ChildScan ScanInChild(const std::filesystem::path& path, std::chrono::seconds limit, uint64_t max_memory = 0);

}  // namespace refzarr::testing_hdf5
