#include "indexer/chunk_checksums.h"

#include <algorithm>
#include <tuple>
#include <vector>

#include "formats/core/crc32c.h"

namespace refzarr {
namespace {

// Reads of at most 256 KiB: the buffer stays in the core's cache between the copy from the page
// cache and the CRC over it (8 MiB reads measured 0.47x `cat`, docs/performance.md).
constexpr uint64_t kReadBytes = 256ull << 10;
constexpr uint64_t kMaxGap = 64ull << 10;

// One stored chunk to read: where it is, and where its checksum goes.
struct Planned {
  uint64_t offset = 0;
  uint64_t length = 0;
  uint32_t source = 0;
  uint32_t array = 0;
  uint64_t position = 0;  // in the array's checksums
};

}  // namespace

Status ChecksumChunks(ScannedFile& scan, std::span<ByteSource* const> sources,
                      uint64_t* bytes_read) {
  std::vector<Planned> plan;
  for (size_t ai = 0; ai < scan.arrays.size(); ++ai) {
    ScannedFile::Array& a = scan.arrays[ai];
    a.checksums.assign(a.StoredCount(), 0);
    uint64_t position = 0;
    RETURN_IF_ERROR(VisitChunksInOrder(
        a, [&](uint64_t, const ChunkRef* stored, const std::vector<std::byte>*) -> Status {
          if (stored == nullptr) return OkStatus();
          if (stored->source >= sources.size() || sources[stored->source] == nullptr) {
            return CorruptError(a.path + ": a chunk names source " +
                                std::to_string(stored->source) + ", which the scan did not add");
          }
          plan.push_back({stored->offset, stored->length, stored->source,
                          static_cast<uint32_t>(ai), position++});
          return OkStatus();
        }));
  }
  std::sort(plan.begin(), plan.end(), [](const Planned& x, const Planned& y) {
    return std::tie(x.source, x.offset, x.length) < std::tie(y.source, y.offset, y.length);
  });
  std::vector<std::byte> buffer;
  uint64_t read = 0;
  size_t i = 0;
  while (i < plan.size()) {
    ByteSource& source = *sources[plan[i].source];
    const Planned& first = plan[i];
    if (first.length > kReadBytes) {
      // A chunk larger than the buffer: read in pieces, the CRC continued over them.
      buffer.resize(kReadBytes);
      uint32_t crc = 0;
      for (uint64_t done = 0; done < first.length;) {
        const uint64_t n = std::min(kReadBytes, first.length - done);
        auto piece = std::span(buffer).first(n);
        RETURN_IF_ERROR(source.ReadInto({first.offset + done, n}, piece));
        crc = Crc32c(piece, crc);
        done += n;
      }
      read += first.length;
      scan.arrays[first.array].checksums[first.position] = crc;
      ++i;
      continue;
    }
    // A run of neighbouring chunks of one source read at once: [start, end), within the buffer.
    const uint64_t start = first.offset;
    uint64_t end = first.offset + first.length;
    size_t j = i + 1;
    while (j < plan.size() && plan[j].source == first.source && plan[j].offset <= end + kMaxGap &&
           std::max(end, plan[j].offset + plan[j].length) - start <= kReadBytes) {
      end = std::max(end, plan[j].offset + plan[j].length);
      ++j;
    }
    buffer.resize(end - start);
    RETURN_IF_ERROR(source.ReadInto({start, end - start}, buffer));
    read += end - start;
    for (size_t k = i; k < j; ++k) {
      const Planned& p = plan[k];
      scan.arrays[p.array].checksums[p.position] =
          Crc32c(std::span(buffer).subspan(p.offset - start, p.length));
    }
    i = j;
  }
  for (ScannedFile::Array& a : scan.arrays) a.checksummed = true;
  if (bytes_read) *bytes_read = read;
  return OkStatus();
}

}  // namespace refzarr
