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
    message += ": ";
    for (size_t i = 0; i < parts.size() && i < 8; ++i) {
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

std::recursive_mutex& Hdf5Mutex() {
  static std::recursive_mutex mutex;
  return mutex;
}

}  // namespace refzarr::internal
