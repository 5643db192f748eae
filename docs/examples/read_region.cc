// Example: read a region of an array of an index as numbers (docs/api.md).
// Build: find_package(refzarr CONFIG) and link refzarr::view (see docs/api.md).
// Run:   read_region INDEX ARRAY [t0:t1 c0:c1 z0:z1 y0:y1 x0:x1]
//        (half-open ranges, one per dimension of the array; none: the whole array)
// Prints the region's shape and the sum of its values.
#include <cstdint>
#include <iostream>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "formats/registry/registry.h"
#include "store/array_reader.h"
#include "store/zarr_view.h"

namespace {

// The decimal digits of a 128-bit integer (iostreams print at most 64 bits).
std::string Decimal(__int128 v) {
  const bool negative = v < 0;
  unsigned __int128 u = negative ? -static_cast<unsigned __int128>(v) : v;
  std::string digits;
  do {
    digits.insert(digits.begin(), static_cast<char>('0' + u % 10));
    u /= 10;
  } while (u != 0);
  return negative ? "-" + digits : digits;
}

// Reads `box` as elements of type T and prints the sum of their values.
template <typename T>
int PrintSum(const refzarr::ArrayReader& reader, const refzarr::Box& box) {
  std::vector<T> values(*refzarr::BoxElements(box));
  refzarr::Status status = reader.Read(box, std::span(values));
  if (!status.ok()) {
    std::cerr << "read_region: " << status.message() << "\n";
    return 1;
  }
  // Integers are summed exactly in 128 bits (no wrap-around), floats in double precision.
  if constexpr (std::is_floating_point_v<T>) {
    double sum = 0;
    for (T v : values) sum += v;
    std::cout.precision(17);
    std::cout << "sum " << sum << "\n";
  } else {
    __int128 sum = 0;
    for (T v : values) sum += v;
    std::cout << "sum " << Decimal(sum) << "\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: read_region INDEX ARRAY [t0:t1 c0:c1 z0:z1 y0:y1 x0:x1]\n";
    return 2;
  }
  // Decoders decode what standard codecs cannot (LZW, JPEG, predictors...); they outlive the view.
  auto decoders = refzarr::DefaultDecoders();
  refzarr::ViewOptions options;
  for (const auto& d : decoders) options.decoders.push_back(d.get());
  auto view = refzarr::OpenZarrView(argv[1], options);
  if (!view.ok()) {
    std::cerr << "read_region: " << view.status().message() << "\n";
    return 1;
  }
  auto reader = refzarr::OpenArrayReader(**view, argv[2]);  // all cores by default
  if (!reader.ok()) {
    std::cerr << "read_region: " << reader.status().message() << "\n";
    return 1;
  }
  refzarr::Box box = (*reader)->WholeBox();
  if (argc > 3) {
    std::vector<std::string> ranges(argv + 3, argv + argc);
    auto parsed = refzarr::ParseBox(ranges);
    if (!parsed.ok()) {
      std::cerr << "read_region: " << parsed.status().message() << "\n";
      return 2;
    }
    box = std::move(*parsed);
  }

  const refzarr::ArrayDesc& array = (*reader)->array();
  std::cout << "shape";
  for (const refzarr::IndexRange& r : box) std::cout << " " << r.size();
  std::cout << "\n";
  if (box.size() != array.shape.size()) {  // Read names the problem; no buffer to size first
    std::cerr << "read_region: " << argv[2] << " has " << array.shape.size() << " dimensions, "
              << box.size() << " ranges given\n";
    return 2;
  }

  const refzarr::DType& t = array.dtype;
  switch (t.kind) {
    case 'u':
      if (t.size == 1) return PrintSum<uint8_t>(**reader, box);
      if (t.size == 2) return PrintSum<uint16_t>(**reader, box);
      if (t.size == 4) return PrintSum<uint32_t>(**reader, box);
      if (t.size == 8) return PrintSum<uint64_t>(**reader, box);
      break;
    case 'i':
      if (t.size == 1) return PrintSum<int8_t>(**reader, box);
      if (t.size == 2) return PrintSum<int16_t>(**reader, box);
      if (t.size == 4) return PrintSum<int32_t>(**reader, box);
      if (t.size == 8) return PrintSum<int64_t>(**reader, box);
      break;
    case 'f':
      if (t.size == 4) return PrintSum<float>(**reader, box);
      if (t.size == 8) return PrintSum<double>(**reader, box);
      break;
  }
  std::cerr << "read_region: " << argv[2] << ": no sum for elements of kind '" << t.kind << "' and "
            << t.size << " bytes\n";
  return 1;
}
