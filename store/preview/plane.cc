#include "store/preview/plane.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <functional>

namespace refzarr {
namespace {

// IEEE 754 half precision to double (numpy's float16).
double HalfToDouble(uint16_t h) {
  const int exponent = (h >> 10) & 0x1F;
  const int mantissa = h & 0x3FF;
  const double sign = (h & 0x8000) ? -1.0 : 1.0;
  if (exponent == 0) return sign * std::ldexp(mantissa, -24);
  if (exponent == 31) return mantissa ? std::nan("") : sign * INFINITY;
  return sign * std::ldexp(1024 + mantissa, exponent - 25);
}

template <typename T>
T Load(const std::byte* p, bool swap) {
  T v;
  std::memcpy(&v, p, sizeof v);
  if (swap) {
    unsigned char b[sizeof(T)];
    std::memcpy(b, &v, sizeof v);
    std::reverse(b, b + sizeof(T));
    std::memcpy(&v, b, sizeof v);
  }
  return v;
}

using Converter = double (*)(const std::byte*, bool);

template <typename T>
double Convert(const std::byte* p, bool swap) {
  return static_cast<double>(Load<T>(p, swap));
}

double ConvertHalf(const std::byte* p, bool swap) { return HalfToDouble(Load<uint16_t>(p, swap)); }
double ConvertBool(const std::byte* p, bool) { return *p != std::byte{0} ? 1.0 : 0.0; }

Result<Converter> ConverterFor(const DType& d) {
  const auto kind = d.kind;
  if (kind == 'b' && d.size == 1) return ConvertBool;
  if (kind == 'u') {
    switch (d.size) {
      case 1: return Convert<uint8_t>;
      case 2: return Convert<uint16_t>;
      case 4: return Convert<uint32_t>;
      case 8: return Convert<uint64_t>;
    }
  }
  if (kind == 'i') {
    switch (d.size) {
      case 1: return Convert<int8_t>;
      case 2: return Convert<int16_t>;
      case 4: return Convert<int32_t>;
      case 8: return Convert<int64_t>;
    }
  }
  if (kind == 'f') {
    switch (d.size) {
      case 2: return ConvertHalf;
      case 4: return Convert<float>;
      case 8: return Convert<double>;
    }
  }
  return UnsupportedError("elements of dtype kind '" + std::string(1, kind) + "' and size " +
                          std::to_string(d.size) + " are not numbers a plane can show");
}

}  // namespace

Result<Plane> ReadPlane(const ArrayDesc& array, const DecodedChunkFetcher& fetch,
                        std::span<const uint64_t> origin, int y_dim, int x_dim) {
  const size_t rank = array.shape.size();
  if (origin.size() != rank || array.chunks.size() != rank || y_dim < 0 || x_dim < 0 ||
      static_cast<size_t>(y_dim) >= rank || static_cast<size_t>(x_dim) >= rank || y_dim == x_dim) {
    return InvalidArgumentError("plane: origin or plane dimensions do not fit an array of rank " +
                                std::to_string(rank));
  }
  for (size_t d = 0; d < rank; ++d) {
    if (array.chunks[d] == 0) return CorruptError("plane: chunk size 0 in dimension " + std::to_string(d));
    if (static_cast<int>(d) != y_dim && static_cast<int>(d) != x_dim && origin[d] >= array.shape[d]) {
      return InvalidArgumentError("plane: index " + std::to_string(origin[d]) + " is outside dimension " +
                                  std::to_string(d) + " of size " + std::to_string(array.shape[d]));
    }
  }
  Plane plane;
  plane.height = array.shape[y_dim];
  plane.width = array.shape[x_dim];
  if (plane.height * plane.width > kMaxPlaneElements) {
    return InvalidArgumentError("plane: " + std::to_string(plane.height) + " x " +
                                std::to_string(plane.width) + " elements is more than a plane may hold");
  }
  ASSIGN_OR_RETURN(Converter convert, ConverterFor(array.dtype));
  const bool swap = array.dtype.size > 1 && array.dtype.byte_order != '|' &&
                    (array.dtype.byte_order == '>') != (std::endian::native == std::endian::big);
  // Fill first: chunks that are not stored keep it.
  double fill = 0;
  if (array.fill_value.is_number()) fill = array.fill_value.get<double>();
  if (array.fill_value.is_string() && array.fill_value.get<std::string>() == "NaN") fill = std::nan("");
  plane.values.assign(plane.height * plane.width, fill);

  // C-order strides of a chunk, in elements; the offset of the plane inside its chunks.
  std::vector<uint64_t> stride(rank, 1);
  for (size_t d = rank - 1; d > 0; --d) stride[d - 1] = stride[d] * array.chunks[d];
  uint64_t base = 0;
  std::vector<uint64_t> coords(rank, 0);
  for (size_t d = 0; d < rank; ++d) {
    if (static_cast<int>(d) == y_dim || static_cast<int>(d) == x_dim) continue;
    coords[d] = origin[d] / array.chunks[d];
    base += (origin[d] % array.chunks[d]) * stride[d];
  }
  const uint64_t cy_count = (plane.height + array.chunks[y_dim] - 1) / array.chunks[y_dim];
  const uint64_t cx_count = (plane.width + array.chunks[x_dim] - 1) / array.chunks[x_dim];
  const uint64_t esize = array.dtype.size;
  for (uint64_t cy = 0; cy < cy_count; ++cy) {
    for (uint64_t cx = 0; cx < cx_count; ++cx) {
      coords[y_dim] = cy;
      coords[x_dim] = cx;
      ASSIGN_OR_RETURN(std::optional<std::string> chunk, fetch(coords));
      if (!chunk) continue;
      if (chunk->size() != array.ChunkBytes()) {
        return CorruptError("plane: a decoded chunk has " + std::to_string(chunk->size()) +
                            " bytes, expected " + std::to_string(array.ChunkBytes()));
      }
      const auto* bytes = reinterpret_cast<const std::byte*>(chunk->data());
      const uint64_t y0 = cy * array.chunks[y_dim], x0 = cx * array.chunks[x_dim];
      const uint64_t ny = std::min(array.chunks[y_dim], plane.height - y0);
      const uint64_t nx = std::min(array.chunks[x_dim], plane.width - x0);
      for (uint64_t y = 0; y < ny; ++y) {
        double* row = &plane.values[(y0 + y) * plane.width + x0];
        for (uint64_t x = 0; x < nx; ++x) {
          const uint64_t at = base + y * stride[y_dim] + x * stride[x_dim];
          row[x] = convert(bytes + at * esize, swap);
        }
      }
    }
  }
  return plane;
}

std::optional<std::pair<double, double>> Quantiles(std::span<const double> values, double low,
                                                   double high) {
  // numpy's default ("linear"): the order statistics at position q * (n - 1), interpolated.
  double lo = INFINITY, hi = -INFINITY;
  size_t n = 0;
  bool integral = true;
  for (double v : values) {
    if (!std::isfinite(v)) continue;
    ++n;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
    integral = integral && v == std::floor(v);
  }
  if (n == 0) return std::nullopt;
  // Order statistic k (0-based) and k + 1 of the finite values.
  std::function<std::pair<double, double>(size_t)> stats;
  std::vector<uint32_t> counts;
  std::vector<double> finite;
  constexpr double kMaxBins = 1 << 22;
  if (integral && hi - lo < kMaxBins) {
    // Integers in a small range (every camera's data): a counting pass, exact, O(n).
    counts.assign(static_cast<size_t>(hi - lo) + 1, 0);
    for (double v : values) {
      if (std::isfinite(v)) ++counts[static_cast<size_t>(v - lo)];
    }
    stats = [&counts, lo](size_t k) {
      size_t seen = 0, bin = 0;
      while (seen + counts[bin] <= k) seen += counts[bin++];
      const double a = lo + static_cast<double>(bin);
      if (seen + counts[bin] > k + 1) return std::make_pair(a, a);
      size_t next = bin + 1;
      while (next < counts.size() && counts[next] == 0) ++next;
      return std::make_pair(a, next < counts.size() ? lo + static_cast<double>(next) : a);
    };
  } else {
    finite.reserve(n);
    for (double v : values) {
      if (std::isfinite(v)) finite.push_back(v);
    }
    stats = [&finite](size_t k) {
      std::nth_element(finite.begin(), finite.begin() + k, finite.end());
      const double a = finite[k];
      if (k + 1 >= finite.size()) return std::make_pair(a, a);
      return std::make_pair(a, *std::min_element(finite.begin() + k + 1, finite.end()));
    };
  }
  auto quantile = [&](double q) {
    const double pos = std::clamp(q, 0.0, 1.0) * static_cast<double>(n - 1);
    const size_t below = static_cast<size_t>(std::floor(pos));
    auto [a, b] = stats(below);
    return a + (b - a) * (pos - static_cast<double>(below));
  };
  const double q_low = quantile(low);
  const double q_high = quantile(high);
  return std::make_pair(q_low, q_high);
}

}  // namespace refzarr
