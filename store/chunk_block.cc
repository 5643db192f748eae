#include "store/chunk_block.h"

namespace refzarr {
namespace {

void PutVarint(std::vector<std::byte>& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<std::byte>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<std::byte>(v));
}

bool GetVarint(std::span<const std::byte> in, size_t& pos, uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (pos >= in.size()) return false;
    uint64_t b = static_cast<uint8_t>(in[pos++]);
    v |= (b & 0x7f) << shift;
    if ((b & 0x80) == 0) return true;
  }
  return false;
}

uint64_t ZigZag(int64_t v) { return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63); }
int64_t UnZigZag(uint64_t v) { return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1); }

constexpr uint8_t kModeSources = 1;
constexpr uint8_t kModeFlags = 2;
constexpr uint8_t kModeChecksums = 4;

void PutU32(std::vector<std::byte>& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<std::byte>((v >> (8 * i)) & 0xff));
}

}  // namespace

Result<std::vector<std::byte>> EncodeChunkBlock(std::span<const BlockEntry> entries) {
  size_t count = entries.size();
  while (count > 0 && !entries[count - 1].present) --count;
  uint8_t mode = 0;
  size_t present = 0, checksummed = 0;
  for (size_t i = 0; i < count; ++i) {
    if (!entries[i].present) continue;
    ++present;
    if (entries[i].crc32c) ++checksummed;
    if (entries[i].ref.source != 0) mode |= kModeSources;
    if (entries[i].ref.flags != 0) mode |= kModeFlags;
  }
  if (checksummed != 0 && checksummed != present) {
    return InvalidArgumentError("chunk block: " + std::to_string(checksummed) + " of " +
                                std::to_string(present) + " chunks have a checksum");
  }
  if (checksummed != 0) mode |= kModeChecksums;
  std::vector<std::byte> out;
  out.reserve(8 + count * ((mode & kModeChecksums) ? 8 : 4));
  out.push_back(static_cast<std::byte>(mode));
  PutVarint(out, count);
  uint64_t predicted = 0;
  for (size_t i = 0; i < count; ++i) {
    const BlockEntry& e = entries[i];
    if (!e.present) {
      PutVarint(out, 0);
      continue;
    }
    PutVarint(out, e.ref.length + 1);
    PutVarint(out, ZigZag(static_cast<int64_t>(e.ref.offset - predicted)));
    if (mode & kModeSources) PutVarint(out, e.ref.source);
    if (mode & kModeFlags) PutVarint(out, e.ref.flags);
    if (mode & kModeChecksums) PutU32(out, *e.crc32c);
    predicted = e.ref.offset + e.ref.length;
  }
  return out;
}

Result<std::vector<BlockEntry>> DecodeChunkBlock(std::span<const std::byte> in) {
  if (in.empty()) return CorruptError("chunk block: empty");
  uint8_t mode = static_cast<uint8_t>(in[0]);
  if (mode & ~(kModeSources | kModeFlags | kModeChecksums)) {
    return CorruptError("chunk block: unknown mode " + std::to_string(mode) +
                        " (written by a newer refzarr?)");
  }
  size_t pos = 1;
  uint64_t count = 0;
  if (!GetVarint(in, pos, count) || count > kBlockSize) {
    return CorruptError("chunk block: bad entry count");
  }
  std::vector<BlockEntry> entries(count);
  uint64_t predicted = 0;
  for (uint64_t i = 0; i < count; ++i) {
    uint64_t len1 = 0, delta = 0, source = 0, flags = 0;
    if (!GetVarint(in, pos, len1)) return CorruptError("chunk block: truncated");
    if (len1 == 0) continue;
    if (!GetVarint(in, pos, delta)) return CorruptError("chunk block: truncated");
    if ((mode & kModeSources) && !GetVarint(in, pos, source)) {
      return CorruptError("chunk block: truncated");
    }
    if ((mode & kModeFlags) && !GetVarint(in, pos, flags)) {
      return CorruptError("chunk block: truncated");
    }
    BlockEntry& e = entries[i];
    if (mode & kModeChecksums) {
      if (in.size() - pos < 4) return CorruptError("chunk block: truncated");
      uint32_t crc = 0;
      for (int k = 0; k < 4; ++k) crc |= uint32_t{static_cast<uint8_t>(in[pos++])} << (8 * k);
      e.crc32c = crc;
    }
    e.present = true;
    e.ref.length = len1 - 1;
    e.ref.offset = predicted + static_cast<uint64_t>(UnZigZag(delta));
    e.ref.source = static_cast<uint32_t>(source);
    e.ref.flags = static_cast<uint32_t>(flags);
    predicted = e.ref.offset + e.ref.length;
  }
  if (pos != in.size()) return CorruptError("chunk block: trailing bytes");
  return entries;
}

}  // namespace refzarr
