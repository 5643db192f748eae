// Test helpers: write TIFFs with libtiff, describe an IFD the way docs/contracts.md says a scanner
// does, and lay libtiff's own decoded segments out as the Zarr chunk (the oracle).
#pragma once

#include <tiffio.h>

#include <cmath>
#include <cstdarg>
#include <cstring>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "formats/core/model.h"

namespace refzarr::testing {

inline int SilentTiffHandler(TIFF*, void*, const char*, const char*, va_list) { return 1; }

struct TiffCloser {
  void operator()(TIFF* t) const { TIFFClose(t); }
};
using TiffPtr = std::unique_ptr<TIFF, TiffCloser>;

/// Opens `path` with libtiff, silencing its messages ("r" or "w" modes).
inline TiffPtr OpenTiff(const std::string& path, const char* mode) {
  TIFFOpenOptions* opts = TIFFOpenOptionsAlloc();
  TIFFOpenOptionsSetErrorHandlerExtR(opts, SilentTiffHandler, nullptr);
  TIFFOpenOptionsSetWarningHandlerExtR(opts, SilentTiffHandler, nullptr);
  TiffPtr t(TIFFOpenExt(path.c_str(), mode, opts));
  TIFFOpenOptionsFree(opts);
  return t;
}

inline std::string Base64(const void* data, size_t n) {
  static const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const auto* p = static_cast<const uint8_t*>(data);
  std::string out;
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = p[i] << 16 | (i + 1 < n ? p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
    out += a[(v >> 18) & 63];
    out += a[(v >> 12) & 63];
    out += i + 1 < n ? a[(v >> 6) & 63] : '=';
    out += i + 2 < n ? a[v & 63] : '=';
  }
  return out;
}

/// The current IFD of `tif` as a refzarr array, described independently of the scanner.
struct IfdArray {
  ArrayDesc array;
  uint32_t segments = 0;       ///< Tiles or strips in the IFD.
  uint32_t per_plane = 0;      ///< Segments per sample plane.
  uint32_t across = 1;         ///< Tiles per row.
  bool tiled = false;
  uint16_t spp = 1, bps = 8, planar = 1, photometric = 1, compression = 1;
  uint32_t rows_per_strip = 0;
};

/// Returns nullopt for layouts refzarr does not represent (more than 64 bits, mixed samples).
inline std::optional<IfdArray> DescribeIfd(TIFF* tif, char dtype_order) {
  IfdArray d;
  uint32_t width = 0, length = 0;
  uint16_t sample_format = 1, predictor = 1, fill_order = 1;
  TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &width);
  TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &length);
  TIFFGetFieldDefaulted(tif, TIFFTAG_BITSPERSAMPLE, &d.bps);
  TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLESPERPIXEL, &d.spp);
  TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLEFORMAT, &sample_format);
  TIFFGetFieldDefaulted(tif, TIFFTAG_PLANARCONFIG, &d.planar);
  TIFFGetFieldDefaulted(tif, TIFFTAG_COMPRESSION, &d.compression);
  TIFFGetFieldDefaulted(tif, TIFFTAG_PHOTOMETRIC, &d.photometric);
  TIFFGetFieldDefaulted(tif, TIFFTAG_FILLORDER, &fill_order);
  if (d.compression != COMPRESSION_OJPEG && d.compression != COMPRESSION_JPEG) {
    TIFFGetFieldDefaulted(tif, TIFFTAG_PREDICTOR, &predictor);
  }
  if (width == 0 || length == 0 || d.bps == 0 || d.bps > 64 || d.spp == 0 || d.spp > 16) {
    return std::nullopt;
  }
  nlohmann::json p = {{"compression", d.compression}, {"predictor", predictor},
                      {"photometric", d.photometric}, {"bits_per_sample", d.bps},
                      {"sample_format", sample_format}, {"samples_per_pixel", d.spp},
                      {"planar", d.planar},           {"image_width", width},
                      {"image_length", length},       {"fill_order", fill_order},
                      {"byte_order", TIFFIsBigEndian(tif) ? ">" : "<"}};
  d.tiled = TIFFIsTiled(tif);
  p["tiled"] = d.tiled;
  uint32_t chunk_h, chunk_w;
  if (d.tiled) {
    uint32_t tw = 0, tl = 0;
    TIFFGetField(tif, TIFFTAG_TILEWIDTH, &tw);
    TIFFGetField(tif, TIFFTAG_TILELENGTH, &tl);
    p["tile_width"] = tw;
    p["tile_length"] = tl;
    chunk_h = tl;
    chunk_w = tw;
    d.across = (width + tw - 1) / tw;
  } else {
    TIFFGetFieldDefaulted(tif, TIFFTAG_ROWSPERSTRIP, &d.rows_per_strip);
    d.rows_per_strip = std::min(d.rows_per_strip, length);
    p["rows_per_strip"] = d.rows_per_strip;
    chunk_h = d.rows_per_strip;
    chunk_w = width;
  }
  uint32_t tables_n = 0;
  void* tables = nullptr;
  if (d.compression == COMPRESSION_JPEG && TIFFGetField(tif, TIFFTAG_JPEGTABLES, &tables_n, &tables) &&
      tables_n > 0) {
    p["jpeg_tables"] = Base64(tables, tables_n);
  }
  if (d.photometric == PHOTOMETRIC_YCBCR) {
    uint16_t h = 2, v = 2;
    TIFFGetFieldDefaulted(tif, TIFFTAG_YCBCRSUBSAMPLING, &h, &v);
    p["ycbcr_subsampling"] = {h, v};
    p["jpeg_colormode_rgb"] = d.compression == COMPRESSION_JPEG;
  }
  uint32_t size = d.bps <= 8 ? 1 : d.bps <= 16 ? 2 : d.bps <= 32 ? 4 : 8;
  char kind = sample_format == 3 ? 'f' : sample_format == 2 ? 'i' : 'u';
  if (kind == 'f' && d.bps != 16 && d.bps != 32 && d.bps != 64) return std::nullopt;
  ArrayDesc& a = d.array;
  a.dtype = DType::Make(kind, size, dtype_order);
  a.shape = {1, d.spp, 1, length, width};
  a.chunks = {1, d.planar == 1 ? d.spp : uint64_t{1}, 1, chunk_h, chunk_w};
  a.encoding.native = false;
  a.encoding.decoder = "tiff";
  a.encoding.params = p;
  if (d.planar == 1 && d.spp > 1) a.encoding.stored_order = {0, 2, 3, 4, 1};
  d.segments = d.tiled ? TIFFNumberOfTiles(tif) : TIFFNumberOfStrips(tif);
  d.per_plane = d.planar == 2 ? d.segments / d.spp : d.segments;
  return d;
}

/// Chunk coords (t,c,z,y,x) of segment `i`.
inline std::vector<uint64_t> SegmentCoords(const IfdArray& d, uint32_t i) {
  uint32_t plane = d.planar == 2 ? i / d.per_plane : 0;
  uint32_t k = i % d.per_plane;
  if (!d.tiled) return {0, plane, 0, k, 0};
  return {0, plane, 0, k / d.across, k % d.across};
}

/// The stored bytes of segment `i`, as TIFFReadRawTile/Strip returns them.
inline std::optional<std::vector<std::byte>> RawSegment(TIFF* tif, const IfdArray& d, uint32_t i) {
  uint64_t n = TIFFGetStrileByteCount(tif, i);
  if (n == 0 || n > (64u << 20)) return std::nullopt;
  std::vector<std::byte> raw(n);
  tmsize_t got = d.tiled ? TIFFReadRawTile(tif, i, raw.data(), n) : TIFFReadRawStrip(tif, i, raw.data(), n);
  if (got <= 0) return std::nullopt;
  raw.resize(got);
  return raw;
}

/// libtiff's decode of segment `i`, laid out as the Zarr chunk (the oracle). nullopt when libtiff
/// cannot decode it. `out` must be pre-filled; only covered samples are written.
inline bool OracleChunk(TIFF* tif, const IfdArray& d, uint32_t i, std::vector<std::byte>& out) {
  if (d.compression == COMPRESSION_JPEG && d.photometric == PHOTOMETRIC_YCBCR) {
    TIFFSetField(tif, TIFFTAG_JPEGCOLORMODE, JPEGCOLORMODE_RGB);
  }
  int64_t size = d.tiled ? TIFFTileSize64(tif) : TIFFStripSize64(tif);
  if (size <= 0) return false;
  std::vector<uint8_t> buf(size);
  tmsize_t got = d.tiled ? TIFFReadEncodedTile(tif, i, buf.data(), size)
                         : TIFFReadEncodedStrip(tif, i, buf.data(), size);
  if (got < 0) return false;
  const ArrayDesc& a = d.array;
  const uint64_t h = a.chunks[3], w = a.chunks[4];
  const uint32_t samples = d.planar == 1 ? d.spp : 1;
  const uint32_t seg_w = d.tiled ? w : a.shape[4];
  const uint64_t stride_bits = (uint64_t{seg_w} * samples * d.bps + 7) / 8 * 8;
  const uint64_t rows = std::min<uint64_t>(h, static_cast<uint64_t>(got) * 8 / stride_bits);
  const uint32_t size_out = a.dtype.size;
  for (uint64_t y = 0; y < rows; ++y) {
    for (uint64_t x = 0; x < std::min<uint64_t>(w, seg_w); ++x) {
      for (uint32_t s = 0; s < samples; ++s) {
        uint64_t bit = y * stride_bits + (x * samples + s) * d.bps;
        uint64_t v = 0;
        if (d.bps % 8 == 0) {
          // Whole bytes: libtiff returns host (little-endian) order.
          for (uint32_t b = 0; b < d.bps / 8; ++b) v |= uint64_t{buf[bit / 8 + b]} << (8 * b);
        } else {
          for (uint32_t b = 0; b < d.bps; ++b) {
            uint64_t at = bit + b;
            v = v << 1 | ((buf[at / 8] >> (7 - at % 8)) & 1);
          }
        }
        uint64_t o = ((s * h + y) * w + x) * size_out;
        for (uint32_t b = 0; b < size_out; ++b) {
          int shift = 8 * (a.dtype.byte_order == '>' ? size_out - 1 - b : b);
          out[o + b] = static_cast<std::byte>(v >> shift);
        }
      }
    }
  }
  return true;
}

/// What to write in a synthetic TIFF.
struct TiffSpec {
  uint32_t width = 200, length = 150;
  uint16_t spp = 1, bps = 8, sample_format = SAMPLEFORMAT_UINT;
  uint16_t compression = COMPRESSION_NONE, predictor = 1;
  uint16_t photometric = PHOTOMETRIC_MINISBLACK, planar = PLANARCONFIG_CONTIG;
  uint32_t tile = 0;            ///< Square tile size; 0: strips.
  uint32_t rows_per_strip = 32;
  bool big_endian = false;
  bool ycbcr_jpeg = false;      ///< JPEG in YCbCr with 2x2 subsampling, fed RGB.
  double noise = 0.02;          ///< Amplitude of the uniform noise, as a fraction of `range`.
  double range = 1.0;           ///< Fraction of the integer range used (1/16: 12-bit data in 16).
};

/// Smooth pixels with a little noise, so codecs have real work and every sample differs.
inline double Pixel(uint32_t x, uint32_t y, uint32_t s, double noise, std::mt19937& rng) {
  double v = 0.5 + 0.25 * std::sin(x * 0.05 + s) + 0.2 * std::cos(y * 0.07 - s);
  return v + std::uniform_real_distribution<double>(-noise, noise)(rng);
}

/// Writes `spec` to `path` with libtiff; false when libtiff refuses (codec not built in).
inline bool WriteTiff(const std::string& path, const TiffSpec& spec) {
  TiffPtr tif = OpenTiff(path, spec.big_endian ? "wb" : "wl");
  if (!tif) return false;
  TIFF* t = tif.get();
  TIFFSetField(t, TIFFTAG_IMAGEWIDTH, spec.width);
  TIFFSetField(t, TIFFTAG_IMAGELENGTH, spec.length);
  TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, spec.bps);
  TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, spec.spp);
  TIFFSetField(t, TIFFTAG_SAMPLEFORMAT, spec.sample_format);
  TIFFSetField(t, TIFFTAG_PLANARCONFIG, spec.planar);
  TIFFSetField(t, TIFFTAG_PHOTOMETRIC, spec.ycbcr_jpeg ? PHOTOMETRIC_YCBCR : spec.photometric);
  if (!TIFFSetField(t, TIFFTAG_COMPRESSION, spec.compression)) return false;
  if (spec.predictor != 1) TIFFSetField(t, TIFFTAG_PREDICTOR, spec.predictor);
  if (spec.compression == COMPRESSION_JPEG) {
    TIFFSetField(t, TIFFTAG_JPEGQUALITY, 90);
    if (spec.ycbcr_jpeg) {
      TIFFSetField(t, TIFFTAG_YCBCRSUBSAMPLING, 2, 2);
      TIFFSetField(t, TIFFTAG_JPEGCOLORMODE, JPEGCOLORMODE_RGB);
    }
  }
  if (spec.tile) {
    TIFFSetField(t, TIFFTAG_TILEWIDTH, spec.tile);
    TIFFSetField(t, TIFFTAG_TILELENGTH, spec.tile);
  } else {
    TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, spec.rows_per_strip);
  }
  std::mt19937 rng(spec.width * 31 + spec.bps);
  const uint32_t samples = spec.planar == PLANARCONFIG_CONTIG ? spec.spp : 1;
  const uint32_t planes = spec.planar == PLANARCONFIG_CONTIG ? 1 : spec.spp;
  const uint32_t bytes = spec.bps / 8;
  auto put = [&](uint8_t* dst, double v) {
    if (spec.sample_format == SAMPLEFORMAT_IEEEFP) {
      if (bytes == 4) {
        float f = static_cast<float>(v * 1000 - 300);
        std::memcpy(dst, &f, 4);
      } else {
        double f = v * 1000 - 300;
        std::memcpy(dst, &f, 8);
      }
      return;
    }
    double max = (std::ldexp(1.0, spec.bps) - 1) * spec.range;
    uint64_t u = static_cast<uint64_t>(std::clamp(v, 0.0, 1.0) * max);
    if (spec.sample_format == SAMPLEFORMAT_INT) u -= static_cast<uint64_t>(max / 2);
    std::memcpy(dst, &u, bytes);  // host order; libtiff swaps for big-endian files
  };
  auto fill = [&](std::vector<uint8_t>& buf, uint32_t x0, uint32_t y0, uint32_t w, uint32_t h,
                  uint32_t plane) {
    buf.assign(size_t{w} * h * samples * bytes, 0);
    for (uint32_t y = 0; y < h; ++y) {
      for (uint32_t x = 0; x < w; ++x) {
        for (uint32_t s = 0; s < samples; ++s) {
          uint32_t gx = std::min(x0 + x, spec.width - 1), gy = std::min(y0 + y, spec.length - 1);
          put(&buf[((size_t{y} * w + x) * samples + s) * bytes], Pixel(gx, gy, s + plane, spec.noise, rng));
        }
      }
    }
  };
  std::vector<uint8_t> buf;
  if (spec.tile) {
    for (uint32_t plane = 0; plane < planes; ++plane) {
      for (uint32_t y = 0; y < spec.length; y += spec.tile) {
        for (uint32_t x = 0; x < spec.width; x += spec.tile) {
          fill(buf, x, y, spec.tile, spec.tile, plane);
          if (TIFFWriteEncodedTile(t, TIFFComputeTile(t, x, y, 0, plane), buf.data(), buf.size()) < 0) {
            return false;
          }
        }
      }
    }
  } else {
    for (uint32_t plane = 0; plane < planes; ++plane) {
      for (uint32_t y = 0; y < spec.length; y += spec.rows_per_strip) {
        uint32_t rows = std::min(spec.rows_per_strip, spec.length - y);
        fill(buf, 0, y, spec.width, rows, plane);
        if (TIFFWriteEncodedStrip(t, TIFFComputeStrip(t, y, plane), buf.data(), buf.size()) < 0) {
          return false;
        }
      }
    }
  }
  return TIFFWriteDirectory(t) == 1;
}

}  // namespace refzarr::testing
