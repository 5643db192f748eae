// The TIFF scanner: classic TIFF and BigTIFF, both byte orders, every IFD and SubIFD, tiled and
// stripped, as bioformats2raw-style OME-Zarr series with pyramid levels.
#pragma once

#include <memory>

#include "formats/core/scanner.h"

namespace refzarr {

/// A scanner for TIFF-family files (TIFF, BigTIFF, OME-TIFF). Stateless, thread-safe.
std::unique_ptr<Scanner> MakeTiffScanner();

}  // namespace refzarr
