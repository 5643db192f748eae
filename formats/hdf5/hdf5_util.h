// Shared helpers for code that talks to the HDF5 C library: handle ownership, error translation,
// error-stack silencing and the lock that serialises library calls.
#pragma once

#include <hdf5.h>

#include <mutex>
#include <string>
#include <string_view>

#include "formats/core/status.h"

namespace refzarr::internal {

/// Owns one hid_t (file, group, dataset, dataspace, datatype, property list, attribute) and closes
/// it with H5Idec_ref. Move-only. An invalid id (< 0) owns nothing.
class H5Id {
 public:
  H5Id() = default;
  explicit H5Id(hid_t id) : id_(id) {}
  ~H5Id() { Reset(); }
  H5Id(H5Id&& o) noexcept : id_(o.id_) { o.id_ = H5I_INVALID_HID; }
  H5Id& operator=(H5Id&& o) noexcept {
    if (this != &o) {
      Reset();
      id_ = o.id_;
      o.id_ = H5I_INVALID_HID;
    }
    return *this;
  }
  H5Id(const H5Id&) = delete;
  H5Id& operator=(const H5Id&) = delete;

  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }
  void Reset();

 private:
  hid_t id_ = H5I_INVALID_HID;
};

/// Turns the current thread's HDF5 error stack into a Status with `code`, message
/// "<what>: <innermost descriptions>", and clears the stack.
Status FromHdf5(StatusCode code, std::string_view what);

/// Wraps an id returned by the library: an owner, or FromHdf5(code, what) when it is negative.
Result<H5Id> CheckId(hid_t id, std::string_view what, StatusCode code = StatusCode::kCorrupt);

/// Checks an herr_t: ok, or FromHdf5(code, what).
Status CheckErr(herr_t err, std::string_view what, StatusCode code = StatusCode::kCorrupt);

/// Turns off the HDF5 library's automatic error printing on the calling thread (HDF5 keeps one
/// error stack per thread) and restores the previous handler on destruction.
class Hdf5ErrorSilencer {
 public:
  Hdf5ErrorSilencer();
  ~Hdf5ErrorSilencer();
  Hdf5ErrorSilencer(const Hdf5ErrorSilencer&) = delete;
  Hdf5ErrorSilencer& operator=(const Hdf5ErrorSilencer&) = delete;

 private:
  H5E_auto2_t old_func_ = nullptr;
  void* old_data_ = nullptr;
};

/// The lock serialising HDF5 library calls (builds without thread safety corrupt shared state).
std::recursive_mutex& Hdf5Mutex();

/// How often the library reads a piece of checksummed metadata before it gives up. In SWMR-read
/// mode its default is 100 tries with a doubling sleep between them (a wait without end on a file
/// whose checksum is simply wrong); a file that is not being written gains nothing from a retry.
inline constexpr unsigned kHdf5MetadataReadAttempts = 4;

/// Opens `path` read-only with a bounded number of metadata read attempts; a file whose
/// "open for writing" flag was left set (its writer crashed) is retried in SWMR-read mode.
/// kCorrupt "open with the HDF5 library: <the library's reasons>" when neither open works.
/// Call with Hdf5Mutex() held.
Result<H5Id> OpenHdf5File(const std::string& path);

}  // namespace refzarr::internal
