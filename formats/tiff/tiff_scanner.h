// The TIFF scanner: classic TIFF and BigTIFF, both byte orders, every IFD and SubIFD, tiled and
// stripped, as bioformats2raw-style OME-Zarr series with pyramid levels.
#pragma once

#include <memory>

#include "formats/core/scanner.h"

namespace refzarr {

/// A scanner for TIFF-family files (TIFF, BigTIFF, OME-TIFF). Stateless, thread-safe.
std::unique_ptr<Scanner> MakeTiffScanner();

/// A scanner for OME-XML companion files (".companion.ome"): the multi-file OME-TIFF set they
/// describe, as one set of images whose chunks reference the member TIFFs.
std::unique_ptr<Scanner> MakeOmeCompanionScanner();

}  // namespace refzarr
