// Helpers shared by the HDF5 tests: temporary files, owned ids, and the list of real-world files.
#pragma once

#include <hdf5.h>

#include <filesystem>
#include <string>
#include <vector>

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

}  // namespace refzarr::testing_hdf5
