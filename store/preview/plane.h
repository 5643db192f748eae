// Reading one 2-D plane of an array as numbers, and the robust display window of a plane: what a
// thumbnail is drawn from (store/preview/thumbnail.h) and what the indexer computes display windows
// from when a file gives none (indexer/display_windows.h). Where the decoded chunks come from is
// the caller's: a view's compat chunks, or a scan's stored references.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "formats/core/model.h"
#include "formats/core/status.h"

namespace refzarr {

/// The decoded C-order bytes (ArrayDesc::ChunkBytes(), fill value where the chunk has no data) of
/// the chunk at grid coordinates `coords`, or nullopt when the chunk is not stored (it is then the
/// fill value).
using DecodedChunkFetcher =
    std::function<Result<std::optional<std::string>>(std::span<const uint64_t> coords)>;

/// A plane of numbers, row-major: values[y * width + x].
struct Plane {
  uint64_t height = 0, width = 0;
  std::vector<double> values;
};

/// Most elements ReadPlane reads into one plane (8192 x 8192).
inline constexpr uint64_t kMaxPlaneElements = 1ull << 26;

/// Reads the plane of `array` through `origin` (one index per dimension; those of `y_dim` and
/// `x_dim` are ignored) spanning the whole of dimensions `y_dim` and `x_dim`, asking `fetch` for
/// each chunk it crosses once. Elements are converted to double (bool, integers and floats of any
/// size and byte order). kUnsupported for other dtypes; kInvalidArgument for an origin outside
/// the array or a plane of more than kMaxPlaneElements; errors of `fetch` (with the box read in
/// front); kCorrupt when a fetched chunk has the wrong size. The chunks are copied into place by
/// an ArrayReader (store/array_reader.h), one band of chunk rows at a time.
Result<Plane> ReadPlane(const ArrayDesc& array, const DecodedChunkFetcher& fetch,
                        std::span<const uint64_t> origin, int y_dim, int x_dim);

/// The `low` and `high` quantiles (0..1) of the finite values, interpolated linearly between the
/// order statistics as numpy.percentile does by default; nullopt when no value is finite.
std::optional<std::pair<double, double>> Quantiles(std::span<const double> values, double low,
                                                   double high);

/// The quantiles a robust display window is made of: 0.1 % and 99.9 %.
inline constexpr double kWindowLowQuantile = 0.001;
inline constexpr double kWindowHighQuantile = 0.999;

}  // namespace refzarr
