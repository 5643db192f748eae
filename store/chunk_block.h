// The compact encoding of chunk references: one blob per block of kBlockSize consecutive chunks.
//
// Layout (docs/index-format.md): a mode byte (bit 0: per-entry source ids, bit 1: per-entry flags,
// bit 2: per-entry CRC-32C of the chunk's bytes, 4 bytes little-endian: verified mode),
// a varint entry count, then per entry: varint (length + 1, or 0 when the chunk is missing); for a
// present chunk the zigzag varint difference between its offset and the offset predicted from the
// previous present chunk (its offset + length), then the source id and the flags when the mode says
// so. Regularly written files cost 3-5 bytes per reference.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "formats/core/model.h"
#include "formats/core/status.h"

namespace refzarr {

/// Chunks per block: a lookup decodes at most this many entries.
inline constexpr uint64_t kBlockSize = 4096;
/// Internal ChunkRef flag: the chunk's bytes live in the index (inline_chunks table).
inline constexpr uint32_t kChunkInline = 1u << 31;

/// One position of a block.
struct BlockEntry {
  bool present = false;
  ChunkRef ref;
  /// CRC-32C (formats/core/crc32c.h) of the chunk's stored bytes, recorded by `index
  /// --checksums`; every read of the chunk checks it. Unset: not recorded.
  std::optional<uint32_t> crc32c;
};

/// Encodes `entries` (position i of the block is entries[i]; trailing missing ones may be omitted).
/// Checksums are stored when every present entry has one (kInvalidArgument when only some do).
Result<std::vector<std::byte>> EncodeChunkBlock(std::span<const BlockEntry> entries);

/// Decodes a block. kCorrupt when the bytes are malformed or use a mode bit this build does not
/// know (so a build older than verified mode refuses checksummed blocks instead of misreading them).
Result<std::vector<BlockEntry>> DecodeChunkBlock(std::span<const std::byte> bytes);

}  // namespace refzarr
