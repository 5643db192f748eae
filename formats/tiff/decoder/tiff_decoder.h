// TIFF ChunkDecoder: decodes one stored TIFF tile or strip with libtiff's own codecs, without the file.
//
// The stored bytes are wrapped in a tiny in-memory TIFF (one IFD describing a single tile or strip of
// the chunk's geometry, with the same Compression, Predictor, BitsPerSample, JPEGTables, ...) that
// libtiff opens through TIFFClientOpenExt; the decoded samples are then laid out as the Zarr chunk.
// Old-style JPEG also gets the JPEG header the scanner read from the file, and YCbCr is converted
// to RGB through libtiff's RGBA interface, as GDAL reads it (docs/tiff.md).
#pragma once

#include <memory>

#include "formats/core/scanner.h"

namespace refzarr {

/// A ChunkDecoder for the family "tiff": ArrayDesc::encoding.params as described in
/// docs/contracts.md ("TIFF chunk encoding").
///
/// Decode() writes the C-order chunk: (1, 1, 1, h, w) for one sample per pixel or planar pixels,
/// (1, S, 1, h, w) for chunky (interleaved) pixels, which are de-interleaved. Samples are written in
/// the byte order of array.dtype; sub-byte and odd-width samples (1, 2, 4, 12 bits, ...) are unpacked
/// one per element. The last strip fills only the rows it covers in the image; a chunk that decodes
/// to fewer rows than that is kCorrupt. The sample plane of planar images is chunk_coords[1] modulo
/// samples_per_pixel.
///
/// CheckArray() refuses, from the params alone, everything Decode() would refuse whatever the bytes.
/// Errors: kInvalidArgument for params that do not describe a chunk of `array`, kUnsupported for a
/// codec libtiff was built without or a layout that cannot be represented, kCorrupt when libtiff
/// refuses the bytes (its message is included). Never writes to stderr; safe on any thread (each
/// thread keeps its own cached in-memory TIFF template).
std::unique_ptr<ChunkDecoder> MakeTiffChunkDecoder();

}  // namespace refzarr
