// The geometry and the index of the shards a Zarr v3 view computes (the `sharding_indexed`
// codec of the Zarr v3 sharding specification): which chunks each shard holds, and the bytes of
// its index. Internal to the store (ZarrView); docs/sharding.md describes the layout.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "store/zarr_view.h"

namespace refzarr::internal {

/// Chunks the auto shape aims at per shard (whole planes of tiles when one fits).
inline constexpr uint64_t kAutoShardChunks = 1024;

/// Offset or length of a missing inner chunk in a shard index.
inline constexpr uint64_t kMissingInnerChunk = ~uint64_t{0};

/// Chunks per shard along each dimension of an array whose chunk grid is `grid`, for `spec`;
/// empty when the array is served unsharded (kNone, or a 0-d array). kAuto: from the last
/// dimension back, each takes as much of its grid as keeps the shard within kAutoShardChunks,
/// except that a plane of more than that many chunks is cut into squares of chunks (32 x 32).
/// kShape: the spec's shape right-aligned, leading dimensions 1, each clipped to the grid.
/// `max_chunks` lowers the auto bound (shards of transcoded chunks, which are built whole in
/// memory: kAutoShardBytes / chunk bytes); the squares are then as large as fit.
std::vector<uint64_t> ChunksPerShard(const ShardingSpec& spec, std::span<const uint64_t> grid,
                                     uint64_t max_chunks = kAutoShardChunks);

/// Decoded bytes an auto shard of transcoded chunks holds at most (ChunkBytes() x chunks): such
/// shards are built whole and cached, so that the shards a client reads at once fit the cache.
inline constexpr uint64_t kAutoShardBytes = 8ull << 20;

/// The grid of shards: ceil(grid / per_shard) along each dimension.
std::vector<uint64_t> ShardGrid(std::span<const uint64_t> grid,
                                std::span<const uint64_t> per_shard);

/// One entry of a shard index: where an inner chunk lies in the shard, in bytes.
struct InnerChunk {
  uint64_t offset = kMissingInnerChunk;
  uint64_t length = kMissingInnerChunk;
};

/// Bytes of the index of a shard of `count` inner chunks: 16 per chunk plus the checksum.
inline uint64_t ShardIndexBytes(uint64_t count) { return count * 16 + 4; }

/// The shard index: (offset, length) of each inner chunk as little-endian uint64 in C order of
/// the shard's chunk grid, then the CRC-32C of those bytes as a little-endian uint32 (the index
/// codecs [bytes little-endian, crc32c]).
std::string EncodeShardIndex(std::span<const InnerChunk> entries);

}  // namespace refzarr::internal
