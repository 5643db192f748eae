// Fuzz target: the Aperio (SVS) ImageDescription parser and IFD classification
// (formats/ome/svs.h). Input: the description text. Seeds: tests/fuzz/svs/ (make_seeds.py, from
// the descriptions Aperio's scanners write).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "formats/ome/svs.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace refzarr;
  const std::string_view description(reinterpret_cast<const char*>(data), size);
  (void)ParseSvsDescription(description);
  for (uint64_t ifd : {0, 1, 2, 5}) {
    for (uint32_t subfile : {0u, 1u, 9u}) {
      (void)SvsImageKindName(ClassifySvsIfd(ifd, description, subfile, ifd % 2 == 0));
    }
  }
  return 0;
}
