// Deterministic HDF5 sample files: a plain file covering layouts, dtypes, attributes and filters; a
// file with a userblock; an Imaris 5.5 (.ims) file; a BigDataViewer .h5 with its .xml.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "formats/core/status.h"

namespace refzarr::samples {

/// Writes every HDF5 sample into `dir` (created if needed) and returns the written file names.
/// Content is a formula of the file, dataset and element position; identical on every run
/// (timestamps are not written: HDF5 object times are off).
Result<std::vector<std::string>> WriteHdf5Samples(const std::filesystem::path& dir);

/// Imaris sample geometry, for tests: real size (x, y, z), timepoints, channels, levels.
struct ImarisSampleGeometry {
  int x = 100, y = 70, z = 9, t = 2, c = 2, levels = 3;
};

/// The value the samples store at a voxel of an Imaris or BigDataViewer image.
uint16_t SampleVoxel(int t, int c, int level, int z, int y, int x);

}  // namespace refzarr::samples
