// Fuzz target: the ImageJ parsers (formats/ome/imagej.h): the ImageDescription "ImageJ=..." text
// and its plane layout, and the IJMetadata tag with its byte counts.
// Input: the first byte chooses; 'I' (or anything but 'M'): the rest is a description, whose
// plane layout is computed for 1 and for 64 IFDs. 'M': u8 n, then n u32 LE IJMetadataByteCounts,
// then the IJMetadata bytes. Seeds: tests/fuzz/imagej/ (make_seeds.py).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

#include "formats/ome/imagej.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace refzarr;
  if (size < 1) return 0;
  const uint8_t mode = data[0];
  ++data;
  --size;
  if (mode != 'M') {
    Result<ImageJInfo> info =
        ParseImageJDescription(std::string_view(reinterpret_cast<const char*>(data), size));
    if (!info.ok()) return 0;
    (void)info->PlaneCount();
    for (uint64_t ifds : {uint64_t{1}, uint64_t{64}}) {
      Result<ImageJLayout> layout = ImageJPlaneLayout(*info, ifds);
      if (layout.ok() && layout->planes > 0) {
        // The last plane's index, as the scanner maps (t, c, z) to planes.
        (void)ImageJPlaneIndex(*info, info->SizeT() - 1, info->SizeC() - 1, info->SizeZ() - 1);
      }
    }
    return 0;
  }
  if (size < 1) return 0;
  const size_t n = data[0];
  ++data;
  --size;
  if (size < n * 4) return 0;
  std::vector<uint32_t> counts(n);
  if (n > 0) std::memcpy(counts.data(), data, n * 4);
  (void)ParseImageJMetadata(fuzz::Bytes(data + n * 4, size - n * 4), counts);
  return 0;
}
