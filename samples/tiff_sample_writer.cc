#include "samples/tiff_sample_writer.h"
#include "samples/tiff_open.h"

#include <tiffio.h>
#include <zlib.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <memory>

namespace refzarr::samples {
namespace {

class IfdWriter {
 public:
  IfdWriter(TIFF* tif, const std::string* log) : tif_(tif), log_(log) {}

  Status Write(const IfdSpec& ifd, const std::string& where) {
    RETURN_IF_ERROR(SetTags(ifd, where));
    RETURN_IF_ERROR(ifd.tiled ? WriteTiles(ifd, where) : WriteStrips(ifd, where));
    if (!TIFFWriteDirectory(tif_)) return Fail(where, "TIFFWriteDirectory failed");
    for (size_t i = 0; i < ifd.subifds.size(); ++i) {
      RETURN_IF_ERROR(Write(ifd.subifds[i], where + " SubIFD " + std::to_string(i)));
    }
    return OkStatus();
  }

 private:
  Status Fail(const std::string& where, const std::string& what) const {
    return InternalError(where + ": " + what + (log_->empty() ? "" : " (libtiff: " + *log_ + ")"));
  }

  Status SetTags(const IfdSpec& ifd, const std::string& where) {
    const Plane& p = ifd.plane;
    if (ifd.tiled &&
        (ifd.tile_width % 16 != 0 || ifd.tile_length % 16 != 0 || ifd.tile_width == 0)) {
      return InvalidArgumentError(where + ": tile size must be a non-zero multiple of 16");
    }
    bool ok = TIFFSetField(tif_, TIFFTAG_IMAGEWIDTH, p.width) &&
              TIFFSetField(tif_, TIFFTAG_IMAGELENGTH, p.height) &&
              TIFFSetField(tif_, TIFFTAG_BITSPERSAMPLE, SampleBytes(p.type) * 8) &&
              TIFFSetField(tif_, TIFFTAG_SAMPLESPERPIXEL, p.samples) &&
              TIFFSetField(tif_, TIFFTAG_SAMPLEFORMAT, SampleFormatTag(p.type)) &&
              TIFFSetField(tif_, TIFFTAG_PLANARCONFIG,
                           p.planar ? PLANARCONFIG_SEPARATE : PLANARCONFIG_CONTIG) &&
              TIFFSetField(tif_, TIFFTAG_COMPRESSION, ifd.compression);
    if (!ok) return Fail(where, "setting the basic tags failed (is the codec built into libtiff?)");
    uint16_t photometric = p.samples == 3 ? PHOTOMETRIC_RGB : PHOTOMETRIC_MINISBLACK;
    if (ifd.compression == COMPRESSION_JPEG && ifd.jpeg_ycbcr) photometric = PHOTOMETRIC_YCBCR;
    ok = TIFFSetField(tif_, TIFFTAG_PHOTOMETRIC, photometric);
    if (ok && ifd.predictor != 1) ok = TIFFSetField(tif_, TIFFTAG_PREDICTOR, ifd.predictor);
    if (ok && ifd.compression == COMPRESSION_JPEG) {
      ok = TIFFSetField(tif_, TIFFTAG_JPEGQUALITY, ifd.jpeg_quality);
      if (ok && ifd.jpeg_ycbcr) ok = TIFFSetField(tif_, TIFFTAG_JPEGCOLORMODE, JPEGCOLORMODE_RGB);
    }
    if (ok && ifd.zip_level >= 0 &&
        (ifd.compression == COMPRESSION_ADOBE_DEFLATE || ifd.compression == COMPRESSION_DEFLATE)) {
      ok = TIFFSetField(tif_, TIFFTAG_ZIPQUALITY, ifd.zip_level);
    }
    if (ok && ifd.zip_level >= 0 && ifd.compression == COMPRESSION_ZSTD) {
      ok = TIFFSetField(tif_, TIFFTAG_ZSTD_LEVEL, ifd.zip_level);
    }
    if (ok && ifd.tiled) {
      ok = TIFFSetField(tif_, TIFFTAG_TILEWIDTH, ifd.tile_width) &&
           TIFFSetField(tif_, TIFFTAG_TILELENGTH, ifd.tile_length);
    } else if (ok) {
      ok = TIFFSetField(tif_, TIFFTAG_ROWSPERSTRIP,
                        ifd.rows_per_strip == 0 ? p.height : ifd.rows_per_strip);
    }
    if (ok && ifd.subfile_type != 0) ok = TIFFSetField(tif_, TIFFTAG_SUBFILETYPE, ifd.subfile_type);
    if (ok && !ifd.description.empty()) {
      ok = TIFFSetField(tif_, TIFFTAG_IMAGEDESCRIPTION, ifd.description.c_str());
    }
    if (ok && !ifd.software.empty())
      ok = TIFFSetField(tif_, TIFFTAG_SOFTWARE, ifd.software.c_str());
    if (ok && ifd.x_resolution && ifd.y_resolution) {
      ok = TIFFSetField(tif_, TIFFTAG_XRESOLUTION, *ifd.x_resolution) &&
           TIFFSetField(tif_, TIFFTAG_YRESOLUTION, *ifd.y_resolution) &&
           TIFFSetField(tif_, TIFFTAG_RESOLUTIONUNIT, ifd.resolution_unit);
    }
    if (ok && !ifd.subifds.empty()) {
      // libtiff fills the offsets in as the following directories are written.
      std::vector<toff_t> offsets(ifd.subifds.size(), 0);
      ok =
          TIFFSetField(tif_, TIFFTAG_SUBIFD, static_cast<uint16_t>(offsets.size()), offsets.data());
    }
    if (!ok) return Fail(where, "setting tags failed");
    return OkStatus();
  }

  // Copies rows [y0, y0+rows) x cols [x0, x0+cols) of sample plane `s` (planar) or of all samples
  // (chunky) into `buf`, whose rows are `buf_row_bytes` apart; the rest of `buf` stays zero.
  static void CopyBlock(const Plane& p, uint32_t s, uint32_t x0, uint32_t y0, uint32_t cols,
                        uint32_t rows, std::vector<std::byte>& buf, size_t buf_row_bytes) {
    const size_t px = size_t{SampleBytes(p.type)} * (p.planar ? 1 : p.samples);
    for (uint32_t r = 0; r < rows && y0 + r < p.height; ++r) {
      const uint32_t n = std::min(cols, p.width - x0);
      std::memcpy(buf.data() + r * buf_row_bytes, p.At(p.planar ? s : 0, y0 + r, x0), n * px);
    }
  }

  // TIFF Technical Note 3: per row, the bytes of each sample are split into planes, most
  // significant byte first (whatever the file's byte order), then differenced bytewise with a
  // stride of the samples per pixel; the result is deflated.
  static Result<std::vector<std::byte>> FloatPredictDeflate(const Plane& p,
                                                            const std::vector<std::byte>& host,
                                                            size_t row_bytes,
                                                            const std::string& where) {
    const size_t bps = SampleBytes(p.type);
    const size_t stride = p.planar ? 1 : p.samples;
    const size_t n = row_bytes / bps;  // samples per row
    std::vector<uint8_t> pred(host.size());
    for (size_t row = 0; row * row_bytes < host.size(); ++row) {
      const auto* in = reinterpret_cast<const uint8_t*>(host.data()) + row * row_bytes;
      uint8_t* out = pred.data() + row * row_bytes;
      for (size_t i = 0; i < n; ++i) {
        for (size_t b = 0; b < bps; ++b)
          out[b * n + i] = in[i * bps + (bps - 1 - b)];  // host is LE
      }
      for (size_t i = row_bytes; i-- > stride;)
        out[i] = static_cast<uint8_t>(out[i] - out[i - stride]);
    }
    uLongf size = compressBound(static_cast<uLong>(pred.size()));
    std::vector<std::byte> z(size);
    if (compress2(reinterpret_cast<Bytef*>(z.data()), &size, pred.data(),
                  static_cast<uLong>(pred.size()), 6) != Z_OK) {
      return InternalError(where + ": zlib compress2 failed");
    }
    z.resize(size);
    return z;
  }

  Status WriteTiles(const IfdSpec& ifd, const std::string& where) {
    const Plane& p = ifd.plane;
    const tmsize_t tile_bytes = TIFFTileSize(tif_);
    const size_t row_bytes =
        size_t{ifd.tile_width} * SampleBytes(p.type) * (p.planar ? 1 : p.samples);
    const uint32_t planes = p.planar ? p.samples : 1;
    for (uint32_t s = 0; s < planes; ++s) {
      for (uint32_t y = 0; y < p.height; y += ifd.tile_length) {
        for (uint32_t x = 0; x < p.width; x += ifd.tile_width) {
          const uint32_t index = TIFFComputeTile(tif_, x, y, 0, static_cast<uint16_t>(s));
          if (ifd.skipped_chunks.count(index)) continue;
          std::vector<std::byte> buf(static_cast<size_t>(tile_bytes));
          CopyBlock(p, s, x, y, ifd.tile_width, ifd.tile_length, buf, row_bytes);
          if (ifd.own_float_predictor) {
            ASSIGN_OR_RETURN(std::vector<std::byte> raw,
                             FloatPredictDeflate(p, buf, row_bytes, where));
            if (TIFFWriteRawTile(tif_, index, raw.data(), static_cast<tmsize_t>(raw.size())) < 0) {
              return Fail(where, "TIFFWriteRawTile of tile " + std::to_string(index) + " failed");
            }
            continue;
          }
          if (TIFFWriteEncodedTile(tif_, index, buf.data(), tile_bytes) < 0) {
            return Fail(where, "TIFFWriteEncodedTile of tile " + std::to_string(index) + " failed");
          }
        }
      }
    }
    return OkStatus();
  }

  Status WriteStrips(const IfdSpec& ifd, const std::string& where) {
    const Plane& p = ifd.plane;
    const uint32_t rps = ifd.rows_per_strip == 0 ? p.height : ifd.rows_per_strip;
    const size_t row_bytes = p.RowBytes();
    const uint32_t planes = p.planar ? p.samples : 1;
    for (uint32_t s = 0; s < planes; ++s) {
      for (uint32_t y = 0; y < p.height; y += rps) {
        const uint32_t index = TIFFComputeStrip(tif_, y, static_cast<uint16_t>(s));
        if (ifd.skipped_chunks.count(index)) continue;
        const uint32_t rows = std::min(rps, p.height - y);
        std::vector<std::byte> buf(rows * row_bytes);
        CopyBlock(p, s, 0, y, p.width, rows, buf, row_bytes);
        if (ifd.own_float_predictor) {
          ASSIGN_OR_RETURN(std::vector<std::byte> raw,
                           FloatPredictDeflate(p, buf, row_bytes, where));
          if (TIFFWriteRawStrip(tif_, index, raw.data(), static_cast<tmsize_t>(raw.size())) < 0) {
            return Fail(where, "TIFFWriteRawStrip of strip " + std::to_string(index) + " failed");
          }
          continue;
        }
        if (TIFFWriteEncodedStrip(tif_, index, buf.data(), static_cast<tmsize_t>(buf.size())) < 0) {
          return Fail(where, "TIFFWriteEncodedStrip of strip " + std::to_string(index) + " failed");
        }
      }
    }
    return OkStatus();
  }

  TIFF* tif_;
  const std::string* log_;
};

}  // namespace

Status WriteTiffFile(const std::filesystem::path& path, const TiffFileSpec& spec) {
  const std::string name = path.string();
  std::string log;
  std::string mode = "w";
  if (spec.bigtiff) mode += "8";
  mode += spec.big_endian ? "b" : "l";
  TiffPtr tif = OpenTiffForWriting(name, mode, &log);
  if (!tif) return IoError("write " + name + ": cannot create (libtiff: " + log + ")");
  IfdWriter writer(tif.get(), &log);
  for (size_t i = 0; i < spec.ifds.size(); ++i) {
    RETURN_IF_ERROR(writer.Write(spec.ifds[i], "write " + name + ": IFD " + std::to_string(i)));
  }
  // TIFFClose flushes; it reports failures only through the error handler.
  tif.reset();
  if (!log.empty()) return IoError("write " + name + ": libtiff: " + log);
  return OkStatus();
}

}  // namespace refzarr::samples
