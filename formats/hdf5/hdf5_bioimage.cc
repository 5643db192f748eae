#include "formats/hdf5/hdf5_bioimage.h"

namespace refzarr::internal {

Result<bool> DescribeBioimage(const Hdf5FileContext& ctx, ScanSink& sink) { return false; }

}  // namespace refzarr::internal
