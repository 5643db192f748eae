// CRC-32C (Castagnoli, the iSCSI/ext4/Zarr v3 "crc32c" checksum): the checksum of verified mode
// (`refzarr index --checksums`, docs/verified.md), computed by Intel's ISA-L (libisal), which picks
// the fastest of its SSE4.2 / PCLMULQDQ / AVX-512 kernels at run time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace refzarr {

/// The CRC-32C of `bytes` continued from `crc`, the CRC-32C of the bytes before them (0 for
/// none): Crc32c(b, Crc32c(a)) == Crc32c(a + b). Any length.
uint32_t Crc32c(std::span<const std::byte> bytes, uint32_t crc = 0);

}  // namespace refzarr
