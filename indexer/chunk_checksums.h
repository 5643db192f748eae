// Verified mode's index-time pass (`refzarr index --checksums`, docs/verified.md): the CRC-32C of
// every stored chunk of a scanned file, read once, in file order.
#pragma once

#include <cstdint>
#include <span>

#include "formats/core/byte_source.h"
#include "formats/core/recording_sink.h"
#include "formats/core/status.h"

namespace refzarr {

/// Reads every stored chunk of every array of `scan` once and records its CRC-32C in the array
/// (ScannedFile::Array::checksummed, ::checksums). `sources[i]` reads ChunkRef::source i (0: the
/// scanned file, then its companions); not owned. Reads go in file order, source by source and by
/// offset, neighbouring chunks (gaps under 64 KiB) in one read of at most 256 KiB, so a file is read
/// front to back once; a larger chunk is read 256 KiB at a time. Memory: 24 bytes per stored
/// reference (the read plan) plus the 256 KiB buffer. `bytes_read` (optional) receives the bytes
/// read. Errors: the source's read errors (kIo, kCorrupt "truncated", kStale), naming it;
/// kCorrupt when a reference names a source not given.
Status ChecksumChunks(ScannedFile& scan, std::span<ByteSource* const> sources,
                      uint64_t* bytes_read = nullptr);

}  // namespace refzarr
