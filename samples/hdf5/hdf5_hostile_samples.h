// Hostile HDF5 files: well-formed files written with the HDF5 library, then damaged in one place
// each (a metadata checksum, a dataspace whose size overflows or outgrows its data, a chunk
// reference past the end of the file, a chunk shorter than a chunk), for tests that an index refuses them by name, in
// bounded time and memory.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "formats/core/status.h"

namespace refzarr::samples {

/// One damaged file and what indexing it must give.
struct HostileHdf5Sample {
  std::string file;    ///< Name in the folder.
  std::string array;   ///< The array refused (path in the file); empty: the whole file fails.
  std::string reason;  ///< Text the refusal (or the file's failure) contains.
  std::string intact;  ///< An array of the same file that must still be indexed, or empty.
};

/// Writes the hostile samples into `dir` (created if needed) and returns them. Deterministic.
Result<std::vector<HostileHdf5Sample>> WriteHostileHdf5Samples(const std::filesystem::path& dir);

}  // namespace refzarr::samples
