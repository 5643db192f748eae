// The codecs of codecs.h over the libraries themselves (moved here from store/transcode and
// store/preview, unchanged, so that the refzarr binary can keep them in a module).
#include <blosc.h>
#include <libdeflate.h>
#include <lzma.h>
#include <png.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <memory>

#include "store/codecs/codecs.h"

namespace refzarr {
static_assert(kBloscMaxBufferBytes == static_cast<uint64_t>(BLOSC_MAX_BUFFERSIZE));
namespace {

void PutLittle32(uint32_t v, std::string& out) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

Status Inflate(std::span<const std::byte> in, int window_bits, size_t max_out, std::vector<std::byte>& out,
               const char* name) {
  z_stream z{};
  if (inflateInit2(&z, window_bits) != Z_OK) return InternalError(std::string(name) + ": inflateInit2 failed");
  std::unique_ptr<z_stream, void (*)(z_stream*)> guard(&z, [](z_stream* s) { inflateEnd(s); });
  out.resize(max_out);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(max_out);
  int rc = inflate(&z, Z_FINISH);
  if (rc == Z_STREAM_END) {
    out.resize(z.total_out);
    return OkStatus();
  }
  if (rc == Z_BUF_ERROR && z.avail_out == 0) {
    return CorruptError(std::string(name) + ": decompresses to more than the chunk's " +
                        std::to_string(max_out) + " bytes");
  }
  return CorruptError(std::string(name) + ": " + (z.msg ? z.msg : "truncated stream") + " after " +
                      std::to_string(z.total_in) + " of " + std::to_string(in.size()) + " bytes");
}

// A zlib stream through libdeflate (about twice zlib's speed on whole buffers, which chunks are:
// the decoded size is known). A stream libdeflate refuses goes to zlib, which decodes what it can
// and names where it failed.
Status InflateZlib(std::span<const std::byte> in, size_t max_out, std::vector<std::byte>& out) {
  struct Free {
    void operator()(libdeflate_decompressor* d) const { libdeflate_free_decompressor(d); }
  };
  thread_local std::unique_ptr<libdeflate_decompressor, Free> d(libdeflate_alloc_decompressor());
  if (d) {
    out.resize(max_out);
    size_t used = 0, produced = 0;  // `used` lets bytes after the stream be, as zlib does
    if (libdeflate_zlib_decompress_ex(d.get(), in.data(), in.size(), out.data(), max_out, &used,
                                      &produced) == LIBDEFLATE_SUCCESS) {
      out.resize(produced);
      return OkStatus();
    }
  }
  return Inflate(in, 15, max_out, out, "zlib");
}

Status Zstd(std::span<const std::byte> in, size_t max_out, std::vector<std::byte>& out) {
  struct Free {
    void operator()(ZSTD_DCtx* c) const { ZSTD_freeDCtx(c); }
  };
  thread_local std::unique_ptr<ZSTD_DCtx, Free> ctx(ZSTD_createDCtx());
  if (!ctx) return InternalError("zstd: cannot create a context");
  out.resize(max_out);
  size_t n = ZSTD_decompressDCtx(ctx.get(), out.data(), out.size(), in.data(), in.size());
  if (ZSTD_isError(n)) return CorruptError(std::string("zstd: ") + ZSTD_getErrorName(n));
  out.resize(n);
  return OkStatus();
}

// numcodecs LZMA with format 1 (xz, what TIFF LZMA stores too) or 0 (auto-detected xz/lzma-alone).
Status Lzma(std::span<const std::byte> in, size_t max_out, std::vector<std::byte>& out) {
  lzma_stream z = LZMA_STREAM_INIT;
  if (lzma_auto_decoder(&z, UINT64_MAX, 0) != LZMA_OK) return InternalError("lzma: cannot start a decoder");
  std::unique_ptr<lzma_stream, void (*)(lzma_stream*)> guard(&z, [](lzma_stream* s) { lzma_end(s); });
  out.resize(max_out);
  z.next_in = reinterpret_cast<const uint8_t*>(in.data());
  z.avail_in = in.size();
  z.next_out = reinterpret_cast<uint8_t*>(out.data());
  z.avail_out = out.size();
  lzma_ret rc = lzma_code(&z, LZMA_FINISH);
  if (rc == LZMA_STREAM_END) {
    out.resize(z.total_out);
    return OkStatus();
  }
  if (rc == LZMA_BUF_ERROR && z.avail_out == 0) {
    return CorruptError("lzma: decompresses to more than the chunk's " + std::to_string(max_out) + " bytes");
  }
  return CorruptError("lzma: cannot decode (code " + std::to_string(rc) + ") after " +
                      std::to_string(z.total_in) + " of " + std::to_string(in.size()) + " bytes");
}

Status Blosc(std::span<const std::byte> in, size_t max_out, std::vector<std::byte>& out) {
  size_t nbytes = 0;
  if (blosc_cbuffer_validate(in.data(), in.size(), &nbytes) < 0) {
    return CorruptError("blosc: not a valid blosc buffer (" + std::to_string(in.size()) + " bytes)");
  }
  if (nbytes > max_out) {
    return CorruptError("blosc: decompresses to " + std::to_string(nbytes) + " bytes, more than the chunk's " +
                        std::to_string(max_out));
  }
  out.resize(nbytes);
  if (nbytes == 0) return OkStatus();
  int n = blosc_decompress_ctx(in.data(), out.data(), out.size(), 1);
  if (n < 0 || static_cast<size_t>(n) != nbytes) {
    return CorruptError("blosc: decompression failed (code " + std::to_string(n) + ")");
  }
  return OkStatus();
}

// zlib counts in uInt: feed and drain larger buffers in pieces of this size.
constexpr size_t kZlibPiece = size_t{1} << 30;

// One gzip member (zlib's own gzip wrapper) of `chunk` at `level`.
Result<std::string> EncodeGzip(std::span<const std::byte> chunk, int level) {
  z_stream z{};
  if (deflateInit2(&z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    return InternalError("gzip: deflateInit2 failed");
  }
  std::unique_ptr<z_stream, void (*)(z_stream*)> guard(&z, [](z_stream* s) { deflateEnd(s); });
  std::string out(deflateBound(&z, std::min(chunk.size(), kZlibPiece)) + 64, '\0');
  size_t in_done = 0, out_done = 0;
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    if (z.avail_in == 0 && in_done < chunk.size()) {
      size_t n = std::min(chunk.size() - in_done, kZlibPiece);
      z.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(chunk.data() + in_done));
      z.avail_in = static_cast<uInt>(n);
      in_done += n;
    }
    if (out_done == out.size()) out.resize(out.size() * 2);
    size_t room = std::min(out.size() - out_done, kZlibPiece);
    z.next_out = reinterpret_cast<Bytef*>(out.data() + out_done);
    z.avail_out = static_cast<uInt>(room);
    rc = deflate(&z, in_done == chunk.size() ? Z_FINISH : Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
      return InternalError("gzip: deflate failed (code " + std::to_string(rc) + ")");
    }
    out_done += room - z.avail_out;
  }
  out.resize(out_done);
  return out;
}

Result<std::string> ReframeZlibAsGzip(std::span<const std::byte> zlib, uint64_t expected_bytes) {
  if (zlib.size() < 6) {
    return CorruptError("zlib: " + std::to_string(zlib.size()) + " bytes hold no zlib stream");
  }
  const auto cmf = static_cast<uint8_t>(zlib[0]), flg = static_cast<uint8_t>(zlib[1]);
  if ((cmf & 0x0F) != 8 || (cmf >> 4) > 7 || ((cmf << 8) | flg) % 31 != 0) {
    return CorruptError("zlib: no zlib header (bytes " + std::to_string(cmf) + " " +
                        std::to_string(flg) + ")");
  }
  if (flg & 0x20) return CorruptError("zlib: the stream needs a preset dictionary");
  z_stream z{};
  if (inflateInit2(&z, 15) != Z_OK) return InternalError("zlib: inflateInit2 failed");
  std::unique_ptr<z_stream, void (*)(z_stream*)> guard(&z, [](z_stream* s) { inflateEnd(s); });
  // Inflated only to learn the CRC-32 and the length (and to check the Adler-32): a small window
  // is refilled, so memory does not grow with the chunk.
  thread_local std::vector<Bytef> window(64 << 10);
  uint64_t in_done = 0, inflated = 0;
  uLong crc = crc32(0L, Z_NULL, 0);
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    if (z.avail_in == 0 && in_done < zlib.size()) {
      size_t n = std::min<uint64_t>(zlib.size() - in_done, kZlibPiece);
      z.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(zlib.data() + in_done));
      z.avail_in = static_cast<uInt>(n);
      in_done += n;
    }
    z.next_out = window.data();
    z.avail_out = static_cast<uInt>(window.size());
    rc = inflate(&z, Z_NO_FLUSH);
    if (rc == Z_BUF_ERROR && z.avail_in == 0 && in_done == zlib.size()) {
      return CorruptError("zlib: truncated stream (" + std::to_string(zlib.size()) +
                          " bytes inflate to " + std::to_string(inflated) + " of " +
                          std::to_string(expected_bytes) + ")");
    }
    if (rc != Z_OK && rc != Z_STREAM_END) {
      return CorruptError(std::string("zlib: ") + (z.msg ? z.msg : "cannot inflate") + " after " +
                          std::to_string(in_done - z.avail_in) + " of " +
                          std::to_string(zlib.size()) + " bytes");
    }
    const size_t produced = window.size() - z.avail_out;
    inflated += produced;
    if (inflated > expected_bytes) {
      return CorruptError("zlib: inflates to more than the chunk's " +
                          std::to_string(expected_bytes) + " bytes");
    }
    crc = crc32_z(crc, window.data(), produced);
  }
  if (inflated != expected_bytes) {
    return CorruptError("zlib: inflates to " + std::to_string(inflated) + " bytes, expected " +
                        std::to_string(expected_bytes));
  }
  // The deflate data lies between the 2-byte header and the 4-byte Adler-32 trailer.
  const uint64_t used = in_done - z.avail_in;
  std::span<const std::byte> deflate = zlib.subspan(2, used - 6);
  // Header: magic, CM 8 (deflate), no flags, no mtime, no extra flags, OS 255 (unknown).
  static constexpr unsigned char kHeader[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff};
  std::string out;
  out.reserve(sizeof kHeader + deflate.size() + 8);
  out.append(reinterpret_cast<const char*>(kHeader), sizeof kHeader);
  out.append(reinterpret_cast<const char*>(deflate.data()), deflate.size());
  PutLittle32(static_cast<uint32_t>(crc), out);
  PutLittle32(static_cast<uint32_t>(inflated & 0xFFFFFFFFu), out);  // ISIZE is the length mod 2^32
  return out;
}

Result<std::string> EncodeBlosc(std::span<const std::byte> chunk, uint32_t typesize,
                                const char* cname, int clevel, int shuffle) {
  if (chunk.size() > static_cast<size_t>(BLOSC_MAX_BUFFERSIZE)) {
    return InvalidArgumentError("chunk of " + std::to_string(chunk.size()) +
                                " bytes exceeds blosc's limit");
  }
  std::string out(chunk.size() + BLOSC_MAX_OVERHEAD, '\0');
  int n = blosc_compress_ctx(clevel, shuffle, typesize <= 255 ? typesize : 1,
                             chunk.size(), chunk.data(), out.data(), out.size(), cname,
                             /*blocksize=*/0, /*numinternalthreads=*/1);
  if (n <= 0) return InternalError("blosc: compression failed (code " + std::to_string(n) + ")");
  out.resize(static_cast<size_t>(n));
  return out;
}

Status DecodeBlosc(std::span<const std::byte> compressed, std::span<std::byte> out) {
  size_t nbytes = 0;
  if (blosc_cbuffer_validate(compressed.data(), compressed.size(), &nbytes) < 0) {
    return CorruptError("blosc: not a valid blosc buffer (" + std::to_string(compressed.size()) + " bytes)");
  }
  if (nbytes != out.size()) {
    return CorruptError("blosc: decompresses to " + std::to_string(nbytes) + " bytes, expected " +
                        std::to_string(out.size()));
  }
  if (nbytes == 0) return OkStatus();
  int n = blosc_decompress_ctx(compressed.data(), out.data(), out.size(), 1);
  if (n < 0 || static_cast<size_t>(n) != nbytes) {
    return CorruptError("blosc: decompression failed (code " + std::to_string(n) + ")");
  }
  return OkStatus();
}

Result<std::string> EncodePng(uint32_t width, uint32_t height, std::span<const uint8_t> rgb) {
  if (width == 0 || height == 0 || rgb.size() != static_cast<size_t>(width) * height * 3) {
    return InvalidArgumentError("PNG: an empty image or pixels of the wrong count");
  }
  png_image png{};
  png.version = PNG_IMAGE_VERSION;
  png.width = width;
  png.height = height;
  png.format = PNG_FORMAT_RGB;
  png_alloc_size_t size = 0;
  if (!png_image_write_to_memory(&png, nullptr, &size, 0, rgb.data(), 0, nullptr)) {
    std::string message = png.message;
    png_image_free(&png);
    return InternalError("PNG: " + message);
  }
  std::string out(size, '\0');
  if (!png_image_write_to_memory(&png, out.data(), &size, 0, rgb.data(), 0, nullptr)) {
    std::string message = png.message;
    png_image_free(&png);
    return InternalError("PNG: " + message);
  }
  out.resize(size);
  return out;
}

}  // namespace

const CodecLibs& LinkedCodecLibs() {
  static const CodecLibs libs{Inflate,     InflateZlib, Zstd,      Lzma,
                              Blosc,       DecodeBlosc, EncodeBlosc, EncodeGzip,
                              ReframeZlibAsGzip, EncodePng};
  return libs;
}

}  // namespace refzarr
