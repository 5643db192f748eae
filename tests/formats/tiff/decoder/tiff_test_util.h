// Test helpers: write TIFFs with libtiff, describe an IFD the way docs/contracts.md says a scanner
// does, and lay libtiff's own decoded segments out as the Zarr chunk (the oracle).
#pragma once

#include <tiffio.h>

#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <map>
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
  bool ycbcr_jpeg = false;      ///< JPEG in YCbCr with `ycbcr_subsampling`, fed RGB.
  uint16_t ycbcr_subsampling[2] = {2, 2};
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
      TIFFSetField(t, TIFFTAG_YCBCRSUBSAMPLING, spec.ycbcr_subsampling[0], spec.ycbcr_subsampling[1]);
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

/// Where a hand-made old-style JPEG file keeps its JPEG tables (the layouts libtiff's codec reads).
enum class OjpegTables {
  kTags,                 ///< JPEGQTables/DCTables/ACTables only; strips hold entropy-coded data.
  kHeaderInInterchange,  ///< JPEGInterchangeFormat = SOI..DHT (frame header included); the first
                         ///< strip starts with SOS; the table tags are written too (ignored).
  kWholeStream,          ///< One strip: JPEGInterchangeFormat is a complete JPEG, the strip too.
};

/// What to write in a hand-made old-style JPEG (Compression 6) TIFF.
struct OjpegSpec {
  uint32_t width = 150, length = 100;
  uint16_t spp = 3;                       ///< 3: YCbCr, 1: grey
  uint16_t ycbcr_subsampling[2] = {2, 2};
  uint32_t rows_per_strip = 32;           ///< A multiple of 8 x vertical subsampling.
  uint32_t tile = 0;                      ///< Square tiles; 0: strips.
  OjpegTables tables = OjpegTables::kTags;
  bool big_endian = false;
  /// ReferenceBlackWhite 16..235/240 and explicit YCbCrCoefficients (as scanners wrote them).
  bool studio_range = false;
};

namespace ojpeg_internal {

// The pieces of a baseline JPEG stream (or of an abbreviated tables-only one).
struct JpegParts {
  std::vector<std::string> dqt;      // each: one table, Pq/Tq byte then 64 values
  std::vector<std::string> dht;      // each: Tc/Th byte, 16 counts, values
  std::string sof, sos;              // payloads, without marker and length
  std::string entropy;               // after SOS up to (without) EOI
};

inline bool SplitJpeg(const std::string& j, JpegParts& out) {
  size_t pos = 2;
  if (j.size() < 4 || static_cast<uint8_t>(j[0]) != 0xFF || static_cast<uint8_t>(j[1]) != 0xD8) return false;
  while (pos + 4 <= j.size()) {
    if (static_cast<uint8_t>(j[pos]) != 0xFF) return false;
    const uint8_t marker = static_cast<uint8_t>(j[pos + 1]);
    const size_t len = size_t{static_cast<uint8_t>(j[pos + 2])} << 8 | static_cast<uint8_t>(j[pos + 3]);
    const std::string payload = j.substr(pos + 4, len - 2);
    if (marker == 0xDB) {
      for (size_t k = 0; k + 65 <= payload.size(); k += 65) out.dqt.push_back(payload.substr(k, 65));
    } else if (marker == 0xC4) {
      size_t k = 0;
      while (k + 17 <= payload.size()) {
        size_t n = 0;
        for (size_t i = 1; i <= 16; ++i) n += static_cast<uint8_t>(payload[k + i]);
        out.dht.push_back(payload.substr(k, 17 + n));
        k += 17 + n;
      }
    } else if (marker == 0xC0) {
      out.sof = payload;
    } else if (marker == 0xDA) {
      out.sos = payload;
      size_t end = j.size() - 2;  // EOI
      out.entropy = j.substr(pos + 2 + len, end - (pos + 2 + len));
      return true;
    } else if (marker == 0xD9) {
      return true;  // a tables-only stream
    }
    pos += 2 + len;
  }
  return pos + 2 == j.size() && static_cast<uint8_t>(j[pos + 1]) == 0xD9;
}

inline std::string Segment(uint8_t marker, const std::string& payload) {
  return std::string{static_cast<char>(0xFF), static_cast<char>(marker),
                     static_cast<char>((payload.size() + 2) >> 8),
                     static_cast<char>((payload.size() + 2) & 0xFF)} +
         payload;
}

// A classic TIFF written by hand: blobs first, the IFD last.
class HandTiff {
 public:
  explicit HandTiff(bool big) : big_(big) {
    bytes_ = big ? std::string("MM\0*", 4) : std::string("II*\0", 4);
    bytes_.append(4, '\0');
  }
  uint32_t Blob(const std::string& b) {
    if (bytes_.size() % 2) bytes_ += '\0';
    uint32_t at = static_cast<uint32_t>(bytes_.size());
    bytes_ += b;
    return at;
  }
  void Short(uint16_t tag, std::vector<uint16_t> v) { Add(tag, 3, v.size(), Pack(v, 2)); }
  void Long(uint16_t tag, std::vector<uint32_t> v) { Add(tag, 4, v.size(), Pack(v, 4)); }
  void Rational(uint16_t tag, std::vector<std::pair<uint32_t, uint32_t>> v) {
    std::vector<uint32_t> flat;
    for (auto [n, d] : v) flat.insert(flat.end(), {n, d});
    Add(tag, 5, v.size(), Pack(flat, 4));
  }
  std::string Finish() {
    std::sort(entries_.begin(), entries_.end(), [](const auto& a, const auto& b) { return a.tag < b.tag; });
    std::vector<std::string> values;
    for (auto& e : entries_) {
      if (e.value.size() > 4) {
        uint32_t at = Blob(e.value);
        e.value = Pack(std::vector<uint32_t>{at}, 4);
      } else {
        e.value.resize(4, '\0');
      }
    }
    uint32_t ifd = Blob("");
    Put(bytes_, 4, ifd, 4);
    std::string d = Pack(std::vector<uint16_t>{static_cast<uint16_t>(entries_.size())}, 2);
    for (const auto& e : entries_) {
      d += Pack(std::vector<uint16_t>{e.tag, e.type}, 2);
      d += Pack(std::vector<uint32_t>{e.count}, 4);
      d += e.value;
    }
    d.append(4, '\0');
    bytes_ += d;
    return bytes_;
  }

 private:
  struct Entry {
    uint16_t tag, type;
    uint32_t count;
    std::string value;
  };
  void Add(uint16_t tag, uint16_t type, size_t count, std::string value) {
    entries_.push_back({tag, type, static_cast<uint32_t>(count), std::move(value)});
  }
  template <typename T>
  std::string Pack(const std::vector<T>& v, int size) const {
    std::string out;
    for (T x : v) {
      std::string b(size, '\0');
      Put(b, 0, x, size);
      out += b;
    }
    return out;
  }
  void Put(std::string& b, size_t at, uint64_t v, int size) const {
    for (int i = 0; i < size; ++i) {
      b[at + i] = static_cast<char>(v >> (8 * (big_ ? size - 1 - i : i)));
    }
  }
  bool big_;
  std::string bytes_;
  std::vector<Entry> entries_;
};

}  // namespace ojpeg_internal

/// The new-style JPEG TIFF an old-style one is made from (see WriteOjpegTiff).
inline TiffSpec OjpegSource(const OjpegSpec& spec) {
  const bool whole = spec.tables == OjpegTables::kWholeStream;
  TiffSpec s;
  s.width = spec.width;
  s.length = spec.length;
  s.spp = spec.spp;
  s.compression = COMPRESSION_JPEG;
  s.photometric = spec.spp == 3 ? PHOTOMETRIC_RGB : PHOTOMETRIC_MINISBLACK;
  s.ycbcr_jpeg = spec.spp == 3;
  s.ycbcr_subsampling[0] = spec.ycbcr_subsampling[0];
  s.ycbcr_subsampling[1] = spec.ycbcr_subsampling[1];
  s.tile = spec.tile;
  s.rows_per_strip = whole ? spec.length : spec.rows_per_strip;
  return s;
}

/// Writes an old-style JPEG TIFF to `path`, which libtiff cannot write: the entropy-coded data of
/// each strip or tile comes from libtiff's new-style JPEG writer (each segment its own complete
/// JPEG, so each is an independent run of MCUs, as libtiff's OJPEG reader expects), the TIFF
/// around it is written here. False when a step fails.
inline bool WriteOjpegTiff(const std::string& path, const OjpegSpec& spec) {
  using namespace ojpeg_internal;
  const bool whole = spec.tables == OjpegTables::kWholeStream;
  const std::string source = path + ".newjpeg.tif";
  if (!WriteTiff(source, OjpegSource(spec))) return false;
  // libtiff keeps the quantisation and (standard) Huffman tables in JPEGTables, shared by all
  // segments, each segment holding SOI, SOF, SOS, data, EOI.
  std::vector<JpegParts> parts;
  JpegParts tables;
  {
    TiffPtr tif = OpenTiff(source, "r");
    if (!tif) return false;
    uint32_t n_tables = 0;
    void* raw_tables = nullptr;
    if (!TIFFGetField(tif.get(), TIFFTAG_JPEGTABLES, &n_tables, &raw_tables) ||
        !SplitJpeg(std::string(static_cast<const char*>(raw_tables), n_tables), tables)) {
      return false;
    }
    const uint32_t n = spec.tile ? TIFFNumberOfTiles(tif.get()) : TIFFNumberOfStrips(tif.get());
    for (uint32_t i = 0; i < n; ++i) {
      std::string raw(TIFFGetStrileByteCount(tif.get(), i), '\0');
      tmsize_t got = spec.tile ? TIFFReadRawTile(tif.get(), i, raw.data(), raw.size())
                               : TIFFReadRawStrip(tif.get(), i, raw.data(), raw.size());
      if (got <= 0) return false;
      raw.resize(got);
      JpegParts p;
      if (!SplitJpeg(raw, p)) return false;
      parts.push_back(std::move(p));
    }
  }
  std::remove(source.c_str());
  if (parts.empty()) return false;
  JpegParts first = parts.front();
  first.dqt = tables.dqt;
  first.dht = tables.dht;
  std::string table_segments;
  for (const std::string& d : first.dqt) table_segments += Segment(0xDB, d);
  for (const std::string& h : first.dht) table_segments += Segment(0xC4, h);
  const uint16_t spp = spec.spp;
  HandTiff t(spec.big_endian);
  // Tables per component: Q by the frame's Tq, Huffman by the scan's Td/Ta. Components sharing a
  // table get the same offset (libtiff then shares it).
  auto table_offsets = [&](auto pick) {
    std::map<std::string, uint32_t> at;
    std::vector<uint32_t> offsets;
    for (uint16_t c = 0; c < spp; ++c) {
      std::string table = pick(c);
      if (!at.count(table)) at[table] = t.Blob(table);
      offsets.push_back(at[table]);
    }
    return offsets;
  };
  auto dqt_of = [&](uint8_t id) {
    for (const std::string& q : first.dqt) if ((static_cast<uint8_t>(q[0]) & 15) == id) return q.substr(1);
    return std::string();
  };
  auto dht_of = [&](uint8_t cls, uint8_t id) {
    for (const std::string& h : first.dht) if (static_cast<uint8_t>(h[0]) == (cls << 4 | id)) return h.substr(1);
    return std::string();
  };
  std::vector<uint32_t> q = table_offsets([&](uint16_t c) { return dqt_of(first.sof[6 + 3 * c + 2] & 15); });
  std::vector<uint32_t> dc = table_offsets([&](uint16_t c) { return dht_of(0, static_cast<uint8_t>(first.sos[1 + 2 * c + 1]) >> 4); });
  std::vector<uint32_t> ac = table_offsets([&](uint16_t c) { return dht_of(1, first.sos[1 + 2 * c + 1] & 15); });
  std::vector<uint32_t> offsets, counts;
  if (spec.tables == OjpegTables::kTags) {
    for (const JpegParts& p : parts) {
      offsets.push_back(t.Blob(p.entropy));
      counts.push_back(static_cast<uint32_t>(p.entropy.size()));
    }
  } else if (spec.tables == OjpegTables::kHeaderInInterchange) {
    // The frame header of the whole image: one strip's width, every strip's rows.
    std::string sof = first.sof;
    uint32_t rows = spec.tile ? (spec.length + spec.tile - 1) / spec.tile * spec.tile : spec.length;
    sof[1] = static_cast<char>(rows >> 8);
    sof[2] = static_cast<char>(rows & 0xFF);
    std::string header = "\xFF\xD8";
    for (const std::string& d : first.dqt) header += Segment(0xDB, d);
    header += Segment(0xC0, sof);
    for (const std::string& h : first.dht) header += Segment(0xC4, h);
    uint32_t at = t.Blob(header);
    t.Long(TIFFTAG_JPEGIFOFFSET, {at});
    t.Long(TIFFTAG_JPEGIFBYTECOUNT, {static_cast<uint32_t>(header.size())});
    for (size_t i = 0; i < parts.size(); ++i) {
      std::string data = parts[i].entropy;
      if (i == 0) data = Segment(0xDA, parts[i].sos) + data;
      offsets.push_back(t.Blob(data));
      counts.push_back(static_cast<uint32_t>(data.size()));
    }
  } else {
    if (parts.size() != 1) return false;
    const JpegParts& p = parts.front();
    std::string stream = "\xFF\xD8" + table_segments + Segment(0xC0, p.sof) +
                         Segment(0xDA, p.sos) + p.entropy + "\xFF\xD9";
    uint32_t at = t.Blob(stream);
    t.Long(TIFFTAG_JPEGIFOFFSET, {at});
    t.Long(TIFFTAG_JPEGIFBYTECOUNT, {static_cast<uint32_t>(stream.size())});
    offsets.push_back(at);
    counts.push_back(static_cast<uint32_t>(stream.size()));
  }
  t.Long(TIFFTAG_IMAGEWIDTH, {spec.width});
  t.Long(TIFFTAG_IMAGELENGTH, {spec.length});
  t.Short(TIFFTAG_BITSPERSAMPLE, std::vector<uint16_t>(spp, 8));
  t.Short(TIFFTAG_COMPRESSION, {COMPRESSION_OJPEG});
  t.Short(TIFFTAG_PHOTOMETRIC, {static_cast<uint16_t>(spp == 3 ? PHOTOMETRIC_YCBCR : PHOTOMETRIC_MINISBLACK)});
  t.Short(TIFFTAG_SAMPLESPERPIXEL, {spp});
  t.Short(TIFFTAG_PLANARCONFIG, {PLANARCONFIG_CONTIG});
  if (spec.tile) {
    t.Long(TIFFTAG_TILEWIDTH, {spec.tile});
    t.Long(TIFFTAG_TILELENGTH, {spec.tile});
    t.Long(TIFFTAG_TILEOFFSETS, offsets);
    t.Long(TIFFTAG_TILEBYTECOUNTS, counts);
  } else {
    t.Long(TIFFTAG_ROWSPERSTRIP, {whole ? spec.length : spec.rows_per_strip});
    t.Long(TIFFTAG_STRIPOFFSETS, offsets);
    t.Long(TIFFTAG_STRIPBYTECOUNTS, counts);
  }
  t.Short(TIFFTAG_JPEGPROC, {1});
  if (spec.tables != OjpegTables::kWholeStream) {
    t.Long(TIFFTAG_JPEGQTABLES, q);
    t.Long(TIFFTAG_JPEGDCTABLES, dc);
    t.Long(TIFFTAG_JPEGACTABLES, ac);
  }
  if (spp == 3) {
    t.Short(TIFFTAG_YCBCRSUBSAMPLING, {spec.ycbcr_subsampling[0], spec.ycbcr_subsampling[1]});
    if (spec.studio_range) {
      t.Rational(TIFFTAG_YCBCRCOEFFICIENTS, {{299, 1000}, {587, 1000}, {114, 1000}});
      t.Rational(TIFFTAG_REFERENCEBLACKWHITE, {{16, 1}, {235, 1}, {128, 1}, {240, 1}, {128, 1}, {240, 1}});
    }
  }
  std::string bytes = t.Finish();
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return false;
  bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  return std::fclose(f) == 0 && ok;
}

/// libtiff's decode of the whole file through its RGBA interface, as GDAL reads old-style JPEG
/// YCbCr: R, G, B planes of width x length bytes. Empty when libtiff fails.
inline std::vector<uint8_t> RgbaPlanes(const std::string& path) {
  TiffPtr tif = OpenTiff(path, "r");
  if (!tif) return {};
  uint32_t w = 0, h = 0;
  TIFFGetField(tif.get(), TIFFTAG_IMAGEWIDTH, &w);
  TIFFGetField(tif.get(), TIFFTAG_IMAGELENGTH, &h);
  std::vector<uint32_t> raster(size_t{w} * h);
  if (!TIFFReadRGBAImageOriented(tif.get(), w, h, raster.data(), ORIENTATION_TOPLEFT, 1)) return {};
  std::vector<uint8_t> planes(size_t{3} * w * h);
  for (size_t i = 0; i < raster.size(); ++i) {
    planes[i] = TIFFGetR(raster[i]);
    planes[raster.size() + i] = TIFFGetG(raster[i]);
    planes[2 * raster.size() + i] = TIFFGetB(raster[i]);
  }
  return planes;
}

}  // namespace refzarr::testing
