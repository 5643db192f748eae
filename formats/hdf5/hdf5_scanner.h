// The HDF5 scanner: every group and dataset of an HDF5 file (netCDF-4 included) as Zarr groups and
// arrays, and Imaris (.ims) / BigDataViewer (.h5 + .xml) files additionally as OME-NGFF images.
// docs/hdf5.md describes the mapping.
#pragma once

#include <memory>

#include "formats/core/scanner.h"

namespace refzarr {

/// The scanner for HDF5 files. Sniff finds the signature at 0, 512, 1024, ... within the head it is
/// given (a userblock precedes it). Needs ScanContext::path (the HDF5 library opens the file itself);
/// without it Scan fails with kUnsupported. Datasets that cannot be represented or served (128-bit
/// floats, references, a filter without plugin, a chunk past the end of the file, ...) are refused
/// through ScanSink::RefuseArray with the reason; the rest of the file is indexed; a non-native
/// array must pass the "hdf5" decoder's CheckArray. Chunk references are streamed to the sink as
/// they are found.
std::unique_ptr<Scanner> MakeHdf5Scanner();

}  // namespace refzarr
