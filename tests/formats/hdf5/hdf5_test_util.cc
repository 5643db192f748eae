#include "tests/formats/hdf5/hdf5_test_util.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <random>

namespace refzarr::testing_hdf5 {

TempDir::TempDir() {
  std::random_device rd;
  path_ = std::filesystem::temp_directory_path() /
          ("refzarr-hdf5-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
  std::filesystem::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::filesystem::path RealDataHdf5Dir() {
  const char* dir = std::getenv("REFZARR_SHARED_DIR");
  if (!dir) return {};
  return std::filesystem::path(dir) / "realdata" / "hdf5";
}

std::vector<std::filesystem::path> RealDataHdf5Files() {
  std::vector<std::filesystem::path> out;
  auto root = RealDataHdf5Dir();
  if (root.empty() || !std::filesystem::exists(root)) return out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(root)) {
    if (!e.is_regular_file()) continue;
    if (H5Fis_hdf5(e.path().c_str()) > 0) out.push_back(e.path());
  }
  H5Eclear2(H5E_DEFAULT);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> DatasetPaths(hid_t file) {
  std::vector<std::string> out;
  H5Ovisit2(
      file, H5_INDEX_NAME, H5_ITER_INC,
      [](hid_t, const char* name, const H5O_info_t* info, void* data) -> herr_t {
        if (info->type == H5O_TYPE_DATASET) {
          static_cast<std::vector<std::string>*>(data)->push_back(std::string("/") + name);
        }
        return 0;
      },
      &out, H5O_INFO_BASIC);
  H5Eclear2(H5E_DEFAULT);
  return out;
}

}  // namespace refzarr::testing_hdf5
