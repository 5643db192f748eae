#include "formats/hdf5/hdf5_util.h"

#include <vector>

namespace refzarr::internal {

void H5Id::Reset() {
  if (id_ >= 0) {
    // Closing can fail only for ids the library already invalidated; nothing useful to report.
    H5Idec_ref(id_);
    id_ = H5I_INVALID_HID;
  }
}

Status FromHdf5(StatusCode code, std::string_view what) {
  std::vector<std::string> parts;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_DOWNWARD,
      [](unsigned, const H5E_error2_t* e, void* data) -> herr_t {
        auto* out = static_cast<std::vector<std::string>*>(data);
        std::string desc = e->desc ? e->desc : "";
        if (desc.empty()) {
          char buf[256] = {};
          if (H5Eget_msg(e->min_num, nullptr, buf, sizeof buf) > 0) desc = buf;
        }
        if (!desc.empty() && (out->empty() || out->back() != desc)) out->push_back(desc);
        return 0;
      },
      &parts);
  H5Eclear2(H5E_DEFAULT);
  std::string message(what);
  if (parts.empty()) {
    message += ": HDF5 library call failed";
  } else {
    // Outermost first; a deep stack keeps its first and its innermost (most specific) reasons.
    if (parts.size() > 8) {
      parts.erase(parts.begin() + 3, parts.end() - 4);
      parts.insert(parts.begin() + 3, "...");
    }
    message += ": ";
    for (size_t i = 0; i < parts.size(); ++i) {
      if (i) message += "; ";
      message += parts[i];
    }
  }
  return Status(code, std::move(message));
}

Result<H5Id> CheckId(hid_t id, std::string_view what, StatusCode code) {
  if (id < 0) return FromHdf5(code, what);
  return H5Id(id);
}

Status CheckErr(herr_t err, std::string_view what, StatusCode code) {
  if (err < 0) return FromHdf5(code, what);
  return OkStatus();
}

Hdf5ErrorSilencer::Hdf5ErrorSilencer() {
  H5Eget_auto2(H5E_DEFAULT, &old_func_, &old_data_);
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
}

Hdf5ErrorSilencer::~Hdf5ErrorSilencer() { H5Eset_auto2(H5E_DEFAULT, old_func_, old_data_); }

Result<H5Id> OpenHdf5File(const std::string& path) {
  ASSIGN_OR_RETURN(H5Id fapl, CheckId(H5Pcreate(H5P_FILE_ACCESS), "file access properties", StatusCode::kInternal));
  RETURN_IF_ERROR(CheckErr(H5Pset_metadata_read_attempts(fapl.get(), kHdf5MetadataReadAttempts),
                           "metadata read attempts", StatusCode::kInternal));
  H5Id file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl.get()));
  if (!file.valid()) {
    // A file whose writer crashed keeps its "open for writing" flag; SWMR-read mode reads it.
    H5Eclear2(H5E_DEFAULT);
    file = H5Id(H5Fopen(path.c_str(), H5F_ACC_RDONLY | H5F_ACC_SWMR_READ, fapl.get()));
  }
  if (!file.valid()) return FromHdf5(StatusCode::kCorrupt, "open with the HDF5 library");
  return file;
}

std::recursive_mutex& Hdf5Mutex() {
  static std::recursive_mutex mutex;
  return mutex;
}

}  // namespace refzarr::internal
