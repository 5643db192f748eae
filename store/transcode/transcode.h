// Transcoding: turning a stored chunk that standard Zarr clients cannot read (or that is laid out
// unlike the array's other chunks) into the chunk a compat view serves: plain C order, compressed
// with c-blosc (lz4, byte shuffle, level 5), which every numcodecs/zarr client decodes; or, in
// Zarr v3, a zlib-framed deflate stream re-framed as gzip without recompressing it.
//
//   stored bytes --DecodeChunk--> C-order chunk --EncodeBlosc--> served bytes
//   stored zlib stream --ReframeZlibAsGzip--> gzip member holding the same deflate stream
//
// DecodeChunk decodes the standard codecs (zlib, gzip, zstd, blosc, lzma, shuffle) in process and
// hands everything else to the ChunkDecoder of the array's `encoding.decoder` family (libtiff for
// TIFF, the HDF5 library for HDF5 filters). Nothing here includes a format library.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>

#include "formats/core/model.h"
#include "formats/core/scanner.h"
#include "formats/core/status.h"
#include "store/zarr_view.h"

namespace refzarr {

/// Blosc settings of every transcoded chunk.
inline constexpr const char* kTranscodeCname = "lz4";
inline constexpr int kTranscodeClevel = 5;
inline constexpr int kTranscodeShuffle = 1;  ///< numcodecs Blosc.SHUFFLE (byte shuffle).

/// The Zarr v2 "compressor" of transcoded chunks (numcodecs Blosc config):
/// {"id":"blosc","cname":"lz4","clevel":5,"shuffle":1,"blocksize":0}. "filters" is null.
nlohmann::json TranscodeCodecV2();

/// How a compat view encodes the chunks of an array it transcodes.
enum class CompatCodec {
  kBlosc,  ///< Decoded to C order and compressed with blosc (TranscodeCodecV2, TranscodeCodecsV3).
  kGzip,   ///< Zarr v3 only: the stored zlib stream re-framed as gzip (ReframeZlibAsGzip).
};

/// kGzip for an array a Zarr v3 (`zarr_format` 3) compat view serves re-framed: plain C-order
/// chunks whose only stored codec is numcodecs "zlib" (TIFF deflate without predictor, HDF5
/// deflate alone). Everything else that is transcoded, and everything in Zarr v2, is kBlosc.
CompatCodec CompatCodecOf(const ArrayDesc& array, int zarr_format);

/// Whether Zarr v3 clients read `name` everywhere: the codecs of the v3 core specification that
/// zarrita.js, ome-zarr.js, neuroglancer and zarr-python all implement (bytes, gzip, blosc,
/// crc32c) and zstd (a registered extension they all implement). "transpose" is core too but is
/// not one of them: ome-zarr.js and neuroglancer do not draw arrays that use it.
bool IsCompatCodecV3(std::string_view name);

/// The Zarr v3 "bytes" codec of elements of `dtype`: {"name":"bytes"}, with
/// {"endian":"little"|"big"} where the element has a byte order (numbers wider than a byte).
nlohmann::json BytesCodecV3(const DType& dtype);

/// The Zarr v3 "codecs" of transcoded chunks of `array`: "bytes" (with the dtype's endianness)
/// followed by "blosc" (lz4, shuffle, level 5, typesize = element size), or by "gzip" (the level
/// of the stored zlib stream) when CompatCodecOf(array, 3) is kGzip.
nlohmann::json TranscodeCodecsV3(const ArrayDesc& array);

/// Whether a view with `policy` must serve the chunks of `array` transcoded. Under kCompat this is
/// true when the stored encoding is not native numcodecs, when decoded chunks are stored in another
/// axis order (interleaved samples), when any chunk of the array is flagged (a short strip, an
/// HDF5 filter mask), and in Zarr v3 (`zarr_format` 3) when a stored codec is not one
/// IsCompatCodecV3 accepts (numcodecs zlib, shuffle, lzma): then every chunk of the array is
/// transcoded (CompatCodecOf says how), so its metadata stays true. Under kPassthrough it is
/// always false. Variable-length strings (dtype 'O', vlen-utf8) are always served as stored.
bool NeedsTranscode(const ArrayDesc& array, CodecPolicy policy, bool any_chunk_has_flags,
                    int zarr_format = 2);

/// Fills `out` (a whole number of elements) with the array's fill value in the dtype's byte order.
/// A null fill value is zeros. kInvalidArgument when the fill value does not fit the dtype.
Status FillChunk(const ArrayDesc& array, std::span<std::byte> out);

/// Decodes `stored` through the array's standard pipeline (`encoding.filters` then
/// `encoding.compressor`, numcodecs ids zlib, gzip, zstd, blosc, lzma, shuffle) into `out`, which holds
/// array.ChunkBytes() bytes pre-filled with the fill value. The HDF5 filter mask in ref.flags skips
/// pipeline stages: bit i refers to the i-th stage of filters..., compressor (the HDF5 pipeline
/// order). When `encoding.stored_order` is set, the decoded bytes are transposed into C order. A
/// chunk flagged kChunkShort (at the array's edge) may decode to fewer bytes, but never to fewer
/// than cover its elements inside the array (ShortChunkBytes); the rest keeps the fill value.
/// Errors: kUnsupported for another codec id, kCorrupt when a codec refuses the bytes or they decode
/// to a size other than the chunk's (or, short, to less than its part inside the array).
Status DecodeNative(const ArrayDesc& array, std::span<const uint64_t> chunk_coords,
                    const ChunkRef& ref, std::span<const std::byte> stored,
                    std::span<std::byte> out);

/// The fewest decoded bytes a short chunk at `chunk_coords` may have: up to and including its last
/// element inside the array, in stored order (encoding.stored_order) or C order. A chunk wholly
/// inside the array needs all of array.ChunkBytes().
uint64_t ShortChunkBytes(const ArrayDesc& array, std::span<const uint64_t> chunk_coords);

/// Decodes any stored chunk into the C-order chunk `out` (array.ChunkBytes() bytes): fills it with
/// the fill value, then DecodeNative for native encodings or the ChunkDecoder of family
/// `encoding.decoder` from `decoders` (which writes C order itself; `stored_order` is not applied
/// again). A native encoding whose codec DecodeNative does not know falls back to that decoder
/// when one is given. kUnsupported when no decoder of that family is given.
Status DecodeChunk(const ArrayDesc& array, std::span<const uint64_t> chunk_coords,
                   const ChunkRef& ref, std::span<const std::byte> stored,
                   std::span<const ChunkDecoder* const> decoders, std::span<std::byte> out);

/// Whether every chunk of `array` can be served by a view under every codec policy and Zarr
/// format, judged from its description at index time: DecodeChunk must be able to decode it (each
/// stage of a native encoding is a codec decoded in process, else the ChunkDecoder of the
/// encoding's family from `decoders` accepts the array, ChunkDecoder::CheckArray), and a chunk that
/// a compat view of either format encodes with blosc (NeedsTranscode, CompatCodecOf) must fit
/// blosc's 2 GB limit (re-framed gzip has none). Flags are per chunk and not known here: the
/// check assumes none. Variable-length strings (served as stored) need no decoding.
/// kUnsupported with the reason (the codec, the decoder's message) otherwise.
Status CheckServable(const ArrayDesc& array, std::span<const ChunkDecoder* const> decoders);

/// Re-frames one zlib stream (RFC 1950) as one gzip member (RFC 1952) without recompressing: a
/// gzip header, the stream's raw deflate data byte for byte, and a trailer with the CRC-32 and the
/// length of the inflated bytes, which are inflated once (in 64 KiB pieces, never held whole) to
/// compute them and to check the zlib stream's Adler-32. Bytes after the zlib stream are dropped.
/// kCorrupt when `zlib` is not one zlib stream (a preset dictionary included) or does not inflate
/// to exactly `expected_bytes`.
Result<std::string> ReframeZlibAsGzip(std::span<const std::byte> zlib, uint64_t expected_bytes);

/// Compresses a decoded chunk as TranscodeCodecV2() says (blosc_compress_ctx: thread-safe, no
/// global state). `typesize` is the element size in bytes (used for the shuffle; sizes above 255
/// shuffle as 1). kInvalidArgument above blosc's 2 GB limit.
Result<std::string> EncodeBlosc(std::span<const std::byte> chunk, uint32_t typesize);

/// Decompresses a blosc buffer into `out`, which must be exactly its decompressed size.
/// kCorrupt when the buffer is not valid blosc or decompresses to another size.
Status DecodeBlosc(std::span<const std::byte> compressed, std::span<std::byte> out);

/// The bytes a compat view of `zarr_format` serves for this chunk, as CompatCodecOf says: blosc
/// (DecodeChunk then EncodeBlosc), or gzip: the stored stream re-framed (ReframeZlibAsGzip), or,
/// for a flagged chunk (a short strip, a skipped deflate stage), DecodeChunk compressed as gzip.
Result<std::string> TranscodeChunk(const ArrayDesc& array, std::span<const uint64_t> chunk_coords,
                                   const ChunkRef& ref, std::span<const std::byte> stored,
                                   std::span<const ChunkDecoder* const> decoders,
                                   int zarr_format = 2);

}  // namespace refzarr
