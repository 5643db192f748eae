// Thumbnails of the images of a view: the smallest pyramid level large enough, its channels
// composited with their OMERO colours and display windows, as RGB pixels and as a PNG. A library
// so that `refzarr thumbnail` and the HTTP front end draw the same picture.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "formats/core/model.h"
#include "formats/core/status.h"
#include "store/preview/plane.h"
#include "store/zarr_view.h"

namespace refzarr {

/// 8-bit RGB pixels, row-major, 3 bytes a pixel.
struct RgbImage {
  uint32_t width = 0, height = 0;
  std::vector<uint8_t> rgb;
};

/// How one channel was drawn.
struct ThumbnailChannel {
  std::string label;
  uint32_t color = 0xFFFFFF;  ///< 0xRRGGBB.
  double start = 0, end = 0;  ///< The display window used.
  /// The window is the 0.1/99.9 % quantiles of the drawn plane (Quantiles): the image has no
  /// omero window, or only the whole range of its dtype (beyond 8 bits), which shows no data.
  bool auto_contrast = false;
};

struct Thumbnail {
  RgbImage image;
  std::string level;          ///< Path of the level drawn, relative to the image ("2").
  uint64_t level_width = 0, level_height = 0;
  uint64_t t = 0, z = 0;      ///< The plane drawn: the first t, the middle z.
  std::vector<ThumbnailChannel> channels;  ///< The channels drawn, in order.
};

struct ThumbnailOptions {
  uint32_t size = 512;  ///< Most pixels on the longer side; smaller levels are not enlarged.
};

/// Draws the OME-NGFF image at `image_path` of `view`, which must be a Zarr v2 compat view
/// (chunks come decoded by DecodeNative: every codec of the sources, through the view's own
/// decoders and transcoder). The level is the smallest whose longer side is at least
/// `options.size` (else the largest); t is 0 and z the middle plane. Each active channel is mapped
/// through its window (inverted if it says so) and added in its colour; a channel labelled
/// "Alpha" is not drawn. The level is then shrunk by box averaging to at most `options.size` on
/// its longer side. kNotFound when `image_path` is not an image of the view; kInvalidArgument for
/// another kind of view or a size of 0; errors of the view (kStale...) as they come.
Result<Thumbnail> RenderThumbnail(ZarrView& view, std::string_view image_path,
                                  const ThumbnailOptions& options);

/// A chunk fetcher over array `array_key` of a Zarr v2 compat view, whose served description
/// (`.zarray`) is `served`: Get, Materialize, then DecodeNative.
DecodedChunkFetcher ViewChunkFetcher(ZarrView& view, std::string array_key, ArrayDesc served);

/// The served description of the array at `array_key` of a Zarr v2 view, from its `.zarray`:
/// shape, chunks, dtype, fill value, compressor and filters. kNotFound when it is not an array.
Result<ArrayDesc> ServedArrayV2(ZarrView& view, std::string_view array_key);

/// `image` as a PNG file (8-bit RGB, libpng). kInvalidArgument for an empty image.
Result<std::string> EncodePng(const RgbImage& image);

}  // namespace refzarr
