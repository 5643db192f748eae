// Opening a TIFF for writing with libtiff's messages collected per handle (never on stderr), for
// the sample generator and the benchmark file generator.
#pragma once

#include <tiffio.h>

#include <memory>
#include <string>

namespace refzarr::samples {

struct TiffCloser {
  void operator()(TIFF* tif) const {
    if (tif != nullptr) TIFFClose(tif);
  }
};
using TiffPtr = std::unique_ptr<TIFF, TiffCloser>;

/// Opens `path` with libtiff `mode` ("w", "w8l", ...). libtiff's error messages are appended to
/// `*log` (which must outlive the handle); warnings are dropped. Null on failure, with the reason
/// in `*log`.
TiffPtr OpenTiffForWriting(const std::string& path, const std::string& mode, std::string* log);

}  // namespace refzarr::samples
