#include "store/shard_layout.h"

#include "formats/core/crc32c.h"

#include <algorithm>

namespace refzarr::internal {

std::vector<uint64_t> ChunksPerShard(const ShardingSpec& spec, std::span<const uint64_t> grid,
                                     uint64_t max_chunks) {
  const uint64_t limit = std::clamp<uint64_t>(max_chunks, 1, kAutoShardChunks);
  const size_t rank = grid.size();
  if (spec.mode == ShardingSpec::Mode::kNone || rank == 0) return {};
  std::vector<uint64_t> per(rank, 1);
  if (spec.mode == ShardingSpec::Mode::kShape) {
    const auto& want = spec.chunks_per_shard;
    for (size_t i = 0; i < std::min(rank, want.size()); ++i) {
      const size_t d = rank - 1 - i;
      per[d] = std::clamp<uint64_t>(want[want.size() - 1 - i], 1, std::max<uint64_t>(grid[d], 1));
    }
    return per;
  }
  uint64_t budget = limit;  // chunks a shard may still grow by (as a factor)
  size_t d = rank;
  uint64_t plane = 0;
  if (rank >= 2 && (__builtin_mul_overflow(grid[rank - 1], grid[rank - 2], &plane) ||
                    plane > limit)) {
    // A plane too large for one shard: squares of tiles, so that a viewer's window of the plane
    // touches few shards whichever way it moves; a thin grid gives the other side the rest.
    uint64_t side = 1;  // floor(sqrt(limit)): 32 for 1,024
    while ((side + 1) * (side + 1) <= limit) ++side;
    per[rank - 1] = std::min(grid[rank - 1], side);
    per[rank - 2] = std::min(grid[rank - 2], limit / per[rank - 1]);
    per[rank - 1] = std::min(grid[rank - 1], limit / per[rank - 2]);
    return per;  // the shard is full: earlier dimensions stay 1
  }
  while (d-- > 0 && budget > 1) {
    per[d] = std::clamp<uint64_t>(grid[d], 1, budget);
    budget /= per[d];
  }
  return per;
}

std::vector<uint64_t> ShardGrid(std::span<const uint64_t> grid,
                                std::span<const uint64_t> per_shard) {
  std::vector<uint64_t> out(grid.size());
  for (size_t i = 0; i < grid.size(); ++i) out[i] = (grid[i] + per_shard[i] - 1) / per_shard[i];
  return out;
}

namespace {
void PutLe64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
}  // namespace

std::string EncodeShardIndex(std::span<const InnerChunk> entries) {
  std::string out;
  out.reserve(ShardIndexBytes(entries.size()));
  for (const InnerChunk& e : entries) {
    PutLe64(out, e.offset);
    PutLe64(out, e.length);
  }
  const uint32_t crc = Crc32c(std::as_bytes(std::span(out)));
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((crc >> (8 * i)) & 0xFF));
  return out;
}

}  // namespace refzarr::internal
