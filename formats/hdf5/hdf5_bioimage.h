// Internal: Imaris and BigDataViewer layouts of an HDF5 file as OME-NGFF images.
#pragma once

#include "formats/core/model.h"
#include "formats/hdf5/hdf5_dataset.h"

namespace refzarr::internal {

/// If the file is an Imaris file (DataSet/ResolutionLevel 0/TimePoint 0/Channel 0/Data with
/// DataSetInfo) or a BigDataViewer file (s00/resolutions + t00000/s00/0/cells), declares its
/// images at "0", "1", ... through `sink` and returns true. Problems with one image are warnings.
/// Only sink errors are returned.
Result<bool> DescribeBioimage(const Hdf5FileContext& ctx, ScanSink& sink);

}  // namespace refzarr::internal
