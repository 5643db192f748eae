// Renders Zarr v2 / v3 metadata documents and OME-NGFF 0.4 / 0.5 attributes from the neutral model.
#pragma once

#include <nlohmann/json.hpp>
#include <span>

#include "formats/core/model.h"

namespace refzarr {

/// The Zarr v2 compressor of transcoded ("compat") chunks: blosc, lz4, byte shuffle, level 5.
nlohmann::json CompatCompressorV2();

/// `.zarray` of `array`. With `transcoded`, the chunks are served as CompatCompressorV2() blosc
/// in C order; otherwise the stored encoding is described as is ("filters" null when there are
/// none), interleaved samples with a leading {"id":"refzarr_transpose","order":[...]} filter that
/// no library implements, so that clients fail instead of misplacing samples.
nlohmann::json RenderZarrayV2(const ArrayDesc& array, bool transcoded);

/// `.zattrs` of an array: its attributes, plus `_ARRAY_DIMENSIONS` when it has dimension names.
nlohmann::json RenderArrayAttrsV2(const ArrayDesc& array);

/// `zarr.json` of an array (Zarr v3). With `transcoded`, the codecs are TranscodeCodecsV3(array):
/// C-order "bytes" then "blosc", or "gzip" for re-framed zlib arrays (CompatCodecOf). Otherwise
/// the stored encoding is described as is: "transpose" for interleaved samples, core codecs under
/// their v3 names and any other numcodecs codec as zarr-python 3's "numcodecs.<id>" (what a
/// compat view never serves: NeedsTranscode sends those arrays to the transcoder).
/// With `chunks_per_shard` (one per dimension), the array is sharded: its chunk grid is one of
/// shards (chunks x chunks_per_shard elements) and its one codec is "sharding_indexed", whose
/// inner chunks are the chunks with the codecs above, and whose index, at the end of each shard,
/// has the codecs [bytes little-endian, crc32c].
nlohmann::json RenderArrayV3(const ArrayDesc& array, bool transcoded,
                             std::span<const uint64_t> chunks_per_shard = {});

/// Attributes of a group: `attributes` plus, when `image` is set, OME-NGFF `multiscales` and
/// `omero` (0.4 at the top level for zarr_format 2; 0.5 under "ome" for zarr_format 3, where
/// "bioformats2raw.layout" moves under "ome" too). `level0` is the first level's array (for the
/// channel count and the default display window); may be null.
nlohmann::json RenderGroupAttributes(const nlohmann::json& attributes, const ImageDesc* image,
                                     const ArrayDesc* level0, int zarr_format);

/// `zarr.json` of a group (Zarr v3) with the given rendered attributes.
nlohmann::json RenderGroupV3(const nlohmann::json& rendered_attributes);

}  // namespace refzarr
