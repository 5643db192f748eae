#include "formats/hdf5/lzf_filter.h"

#include <hdf5.h>
#include <lzf.h>

#include <cerrno>
#include <cstdlib>
#include <mutex>

namespace refzarr::internal {
namespace {

// HDF5 filter callback (a C callback: nothing may throw). cd_values[2], when set, is the chunk size
// in bytes, which is the decompressed size of a full chunk.
size_t LzfFilter(unsigned int flags, size_t cd_nelmts, const unsigned int cd_values[], size_t nbytes,
                 size_t* buf_size, void** buf) {
  if (flags & H5Z_FLAG_REVERSE) {
    size_t out_size = cd_nelmts >= 3 && cd_values[2] != 0 ? cd_values[2] : *buf_size;
    for (int attempt = 0; attempt < 8; ++attempt) {
      void* out = std::malloc(out_size);
      if (out == nullptr) return 0;
      unsigned n = lzf_decompress(*buf, static_cast<unsigned>(nbytes), out,
                                  static_cast<unsigned>(out_size));
      if (n != 0) {
        std::free(*buf);
        *buf = out;
        *buf_size = out_size;
        return n;
      }
      std::free(out);
      if (errno != E2BIG) return 0;  // corrupt data: the read fails
      out_size *= 2;
    }
    return 0;
  }
  // Encoding (only for completeness: refzarr never writes chunks). Incompressible data fails the
  // filter, which HDF5 records in the chunk's filter mask, as h5py's filter does.
  if (nbytes < 2) return 0;
  void* out = std::malloc(nbytes);
  if (out == nullptr) return 0;
  unsigned n = lzf_compress(*buf, static_cast<unsigned>(nbytes), out, static_cast<unsigned>(nbytes - 1));
  if (n == 0) {
    std::free(out);
    return 0;
  }
  std::free(*buf);
  *buf = out;
  *buf_size = nbytes;
  return n;
}

const H5Z_class2_t kLzfClass = {
    H5Z_CLASS_T_VERS,
    static_cast<H5Z_filter_t>(kLzfFilterId),
    1,  // encoder present
    1,  // decoder present
    "lzf (refzarr, liblzf)",
    nullptr,  // can_apply
    nullptr,  // set_local
    LzfFilter,
};

}  // namespace

void RegisterLzfFilter() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (H5Zfilter_avail(kLzfFilterId) <= 0) {
      H5Eclear2(H5E_DEFAULT);
      H5Zregister(&kLzfClass);
    }
  });
}

}  // namespace refzarr::internal
