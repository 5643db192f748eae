#include "store/preview/plane.h"

#include "store/array_reader.h"

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

// Elements as the reader gives them: this machine's byte order.
using Converter = double (*)(const std::byte*);

template <typename T>
double Convert(const std::byte* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return static_cast<double>(v);
}

double ConvertHalf(const std::byte* p) {
  uint16_t h;
  std::memcpy(&h, p, sizeof h);
  return HalfToDouble(h);
}
double ConvertBool(const std::byte* p) { return *p != std::byte{0} ? 1.0 : 0.0; }

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

// The fetcher's chunks as DecodedChunks, for an ArrayReader: a chunk of the wrong size is
// kCorrupt.
class FetchedChunks final : public DecodedChunks {
 public:
  FetchedChunks(const ArrayDesc& array, const DecodedChunkFetcher& fetch) : array_(array), fetch_(fetch) {}
  const ArrayDesc& array() const override { return array_; }
  Result<bool> Decode(std::span<const uint64_t> coords, std::span<std::byte> out) override {
    ASSIGN_OR_RETURN(std::optional<std::string> chunk, fetch_(coords));
    if (!chunk) return false;
    if (chunk->size() != out.size()) {
      return CorruptError("plane: a decoded chunk has " + std::to_string(chunk->size()) +
                          " bytes, expected " + std::to_string(out.size()));
    }
    std::memcpy(out.data(), chunk->data(), out.size());
    return true;
  }

 private:
  const ArrayDesc& array_;
  const DecodedChunkFetcher& fetch_;
};

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
  // One band of chunk rows at a time (the reader fills chunks that are not stored), so the
  // stored elements held besides the plane's doubles are one band's.
  ASSIGN_OR_RETURN(auto reader, OpenArrayReader(std::make_unique<FetchedChunks>(array, fetch), "plane",
                                                {.threads = 1}));
  plane.values.resize(plane.height * plane.width);
  const ElementType type{array.dtype.kind, array.dtype.size};
  const uint64_t esize = array.dtype.size;
  Box box(rank);
  for (size_t d = 0; d < rank; ++d) box[d] = {origin[d], origin[d] + 1};
  box[x_dim] = {0, plane.width};
  std::vector<std::byte> band;
  for (uint64_t y0 = 0; y0 < plane.height; y0 += array.chunks[y_dim]) {
    const uint64_t rows = std::min(array.chunks[y_dim], plane.height - y0);
    box[y_dim] = {y0, y0 + rows};
    band.resize(rows * plane.width * esize);
    Status s = reader->ReadInto(box, type, band);
    if (!s.ok()) return s;
    // The band is in the array's dimension order: rows outside when y comes before x.
    for (uint64_t y = 0; y < rows; ++y) {
      double* row = &plane.values[(y0 + y) * plane.width];
      for (uint64_t x = 0; x < plane.width; ++x) {
        const uint64_t at = y_dim < x_dim ? y * plane.width + x : x * rows + y;
        row[x] = convert(band.data() + at * esize);
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
