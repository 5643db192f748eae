#include "formats/core/crc32c.h"

#include <algorithm>
#include <climits>

#include <isa-l/crc.h>

namespace refzarr {

uint32_t Crc32c(std::span<const std::byte> bytes, uint32_t crc) {
  // ISA-L's crc32_iscsi works on the raw register (no pre- and post-inversion) and takes an int
  // length: the standard value is its result on ~crc, inverted, fed in pieces below 2 GiB.
  uint32_t reg = ~crc;
  constexpr size_t kPiece = size_t{1} << 30;
  while (!bytes.empty()) {
    const size_t n = std::min(bytes.size(), kPiece);
    reg = crc32_iscsi(reinterpret_cast<unsigned char*>(const_cast<std::byte*>(bytes.data())),
                      static_cast<int>(n), reg);
    bytes = bytes.subspan(n);
  }
  return ~reg;
}

}  // namespace refzarr
