#include "store/transcode/transcode.h"
#include "formats/core/base64.h"

#include <blosc.h>
#include <libdeflate.h>
#include <lzma.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <vector>

namespace refzarr {
namespace {

using nlohmann::json;

static_assert(std::endian::native == std::endian::little, "refzarr assumes a little-endian host");

using Bytes = std::vector<std::byte>;

uint16_t DoubleToHalf(double value) {
  float f = static_cast<float>(value);
  uint32_t x = std::bit_cast<uint32_t>(f);
  uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t exp = (x >> 23) & 0xFF;
  uint32_t mant = x & 0x7FFFFFu;
  if (exp == 0xFF) return static_cast<uint16_t>(sign | 0x7C00u | (mant ? 0x200u : 0));
  int e = static_cast<int>(exp) - 127 + 15;
  if (e >= 0x1F) return static_cast<uint16_t>(sign | 0x7C00u);  // overflow: infinity
  if (e <= 0) {
    if (e < -10) return static_cast<uint16_t>(sign);  // underflow: signed zero
    mant |= 0x800000u;
    uint32_t shift = static_cast<uint32_t>(14 - e);
    uint32_t half = mant >> shift;
    uint32_t rest = mant & ((1u << shift) - 1), mid = 1u << (shift - 1);
    if (rest > mid || (rest == mid && (half & 1))) ++half;
    return static_cast<uint16_t>(sign | half);
  }
  uint32_t half = sign | (static_cast<uint32_t>(e) << 10) | (mant >> 13);
  uint32_t rest = mant & 0x1FFFu;
  if (rest > 0x1000u || (rest == 0x1000u && (half & 1))) ++half;  // may carry into the exponent
  return static_cast<uint16_t>(half);
}

Result<double> FloatFill(const json& v) {
  if (v.is_number()) return v.get<double>();
  if (v.is_string()) {
    std::string s = v.get<std::string>();
    if (s == "NaN") return std::numeric_limits<double>::quiet_NaN();
    if (s == "Infinity") return std::numeric_limits<double>::infinity();
    if (s == "-Infinity") return -std::numeric_limits<double>::infinity();
  }
  return InvalidArgumentError("fill value " + v.dump() + " is not a float");
}

void PutLittle(uint64_t v, uint8_t* out, uint32_t size) {
  for (uint32_t i = 0; i < size; ++i) out[i] = static_cast<uint8_t>(v >> (8 * i));
}

// One element holding the fill value, in the dtype's byte order.
Result<std::vector<uint8_t>> FillElement(const ArrayDesc& a) {
  const DType& d = a.dtype;
  std::vector<uint8_t> e(d.size, 0);
  const json& v = a.fill_value;
  if (v.is_null() || d.size == 0) return e;
  auto bad = [&] {
    return InvalidArgumentError("fill value " + v.dump() + " does not fit dtype " + d.ToV2().dump());
  };
  bool swap = d.byte_order == '>';
  if (!d.fields.is_null() || d.kind == 'S' || d.kind == 'V' || d.kind == 'U') {
    if (v.is_number() && v.get<double>() == 0) return e;
    if (!v.is_string()) return bad();
    ASSIGN_OR_RETURN(std::string raw, DecodeBase64(v.get<std::string>()));
    if (raw.size() != d.size) return bad();
    std::memcpy(e.data(), raw.data(), raw.size());
    return e;  // raw bytes are already in the element's own layout
  }
  switch (d.kind) {
    case 'b':
      if (!v.is_boolean() && !v.is_number()) return bad();
      e[0] = (v.is_boolean() ? v.get<bool>() : v.get<double>() != 0) ? 1 : 0;
      break;
    case 'i':
    case 'u': {
      if (!v.is_number_integer() && !(v.is_number_float() && std::trunc(v.get<double>()) == v.get<double>())) {
        return bad();
      }
      uint64_t u = v.is_number_unsigned() ? v.get<uint64_t>()
                   : v.is_number_integer() ? static_cast<uint64_t>(v.get<int64_t>())
                                           : static_cast<uint64_t>(static_cast<int64_t>(v.get<double>()));
      if (d.size > 8) return bad();
      PutLittle(u, e.data(), d.size);
      break;
    }
    case 'f': {
      ASSIGN_OR_RETURN(double f, FloatFill(v));
      if (d.size == 2) {
        PutLittle(DoubleToHalf(f), e.data(), 2);
      } else if (d.size == 4) {
        PutLittle(std::bit_cast<uint32_t>(static_cast<float>(f)), e.data(), 4);
      } else if (d.size == 8) {
        PutLittle(std::bit_cast<uint64_t>(f), e.data(), 8);
      } else {
        return bad();
      }
      break;
    }
    case 'c': {
      json re = v, im = 0.0;
      if (v.is_array() && v.size() == 2) {
        re = v[0];
        im = v[1];
      }
      ASSIGN_OR_RETURN(double r, FloatFill(re));
      ASSIGN_OR_RETURN(double i, FloatFill(im));
      uint32_t half = d.size / 2;
      if (half == 4) {
        PutLittle(std::bit_cast<uint32_t>(static_cast<float>(r)), e.data(), 4);
        PutLittle(std::bit_cast<uint32_t>(static_cast<float>(i)), e.data() + 4, 4);
      } else if (half == 8) {
        PutLittle(std::bit_cast<uint64_t>(r), e.data(), 8);
        PutLittle(std::bit_cast<uint64_t>(i), e.data() + 8, 8);
      } else {
        return bad();
      }
      if (swap) {
        std::reverse(e.begin(), e.begin() + half);
        std::reverse(e.begin() + half, e.end());
      }
      return e;
    }
    default:
      return bad();
  }
  if (swap) std::reverse(e.begin(), e.end());
  return e;
}

// --- the standard codecs ---------------------------------------------------------------------

Status Inflate(std::span<const std::byte> in, int window_bits, size_t max_out, Bytes& out,
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
Status InflateZlib(std::span<const std::byte> in, size_t max_out, Bytes& out) {
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

Status Zstd(std::span<const std::byte> in, size_t max_out, Bytes& out) {
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
Status Lzma(std::span<const std::byte> in, size_t max_out, Bytes& out) {
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

Status Blosc(std::span<const std::byte> in, size_t max_out, Bytes& out) {
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

void Unshuffle(std::span<const std::byte> in, uint32_t element, Bytes& out) {
  out.resize(in.size());
  if (element <= 1) {
    std::memcpy(out.data(), in.data(), in.size());
    return;
  }
  const size_t count = in.size() / element;
  for (size_t b = 0; b < element; ++b) {
    const std::byte* src = in.data() + b * count;
    for (size_t i = 0; i < count; ++i) out[i * element + b] = src[i];
  }
  // Leftover bytes that make no whole element are stored unshuffled (numcodecs, HDF5).
  size_t done = count * element;
  std::memcpy(out.data() + done, in.data() + done, in.size() - done);
}

// The numcodecs id of a codec config, or "" when it has none.
std::string CodecId(const json& codec) {
  if (!codec.is_object() || !codec.contains("id") || !codec["id"].is_string()) return "";
  return codec["id"].get<std::string>();
}

// The stored stages of an encoding in pipeline order: filters..., compressor.
std::vector<json> Stages(const ChunkEncoding& e) {
  std::vector<json> stages;
  if (e.filters.is_array()) {
    for (const json& f : e.filters) stages.push_back(f);
  }
  if (e.compressor.is_object()) stages.push_back(e.compressor);
  return stages;
}

// The codec ids DecodeStage decodes in process.
bool DecodedInProcess(const json& codec) {
  const std::string id = CodecId(codec);
  return id == "zlib" || id == "gzip" || id == "zstd" || id == "blosc" || id == "lzma" ||
         id == "shuffle";
}

Status DecodeStage(const json& codec, std::span<const std::byte> in, size_t max_out, uint32_t element,
                   Bytes& out) {
  if (!codec.is_object() || !codec.contains("id") || !codec["id"].is_string()) {
    return InvalidArgumentError("codec " + codec.dump() + " has no id");
  }
  const std::string id = codec["id"].get<std::string>();
  if (id == "zlib") return InflateZlib(in, max_out, out);
  if (id == "gzip") return Inflate(in, 15 + 16, max_out, out, "gzip");
  if (id == "zstd") return Zstd(in, max_out, out);
  if (id == "blosc") return Blosc(in, max_out, out);
  if (id == "lzma") return Lzma(in, max_out, out);
  if (id == "shuffle") {
    uint32_t es = element;
    if (codec.contains("elementsize") && codec["elementsize"].is_number_unsigned()) {
      es = codec["elementsize"].get<uint32_t>();
    }
    Unshuffle(in, es, out);
    return OkStatus();
  }
  return UnsupportedError("codec '" + id + "' cannot be decoded in process");
}

// Copies `in` (the chunk with its axes permuted: stored axis i is chunk axis order[i]) into the
// C-order chunk `out`.
template <size_t kSize>
void TransposeInto(const std::byte* in, std::byte* out, const std::vector<uint64_t>& stored_shape,
                   const std::vector<uint64_t>& out_stride_for_stored_axis, size_t element) {
  const size_t n = stored_shape.size();
  const size_t size = kSize ? kSize : element;
  std::vector<uint64_t> idx(n, 0);
  const uint64_t inner = stored_shape[n - 1];
  const uint64_t inner_step = out_stride_for_stored_axis[n - 1] * size;
  uint64_t outer = 1;
  for (size_t i = 0; i + 1 < n; ++i) outer *= stored_shape[i];
  for (uint64_t o = 0; o < outer; ++o) {
    uint64_t base = 0;
    for (size_t i = 0; i + 1 < n; ++i) base += idx[i] * out_stride_for_stored_axis[i];
    std::byte* dst = out + base * size;
    for (uint64_t k = 0; k < inner; ++k) {
      std::memcpy(dst, in, size);
      dst += inner_step;
      in += size;
    }
    for (size_t i = n - 1; i-- > 0;) {
      if (++idx[i] < stored_shape[i]) break;
      idx[i] = 0;
    }
  }
}

Status Transpose(const ArrayDesc& a, std::span<const std::byte> in, std::span<std::byte> out) {
  const std::vector<int>& order = a.encoding.stored_order;
  const size_t n = a.chunks.size();
  if (order.size() != n || n == 0) {
    return InvalidArgumentError("stored_order has " + std::to_string(order.size()) + " axes, the chunk " +
                                std::to_string(n));
  }
  std::vector<bool> seen(n, false);
  for (int o : order) {
    if (o < 0 || static_cast<size_t>(o) >= n || seen[o]) {
      return InvalidArgumentError("stored_order is not a permutation of the chunk's axes");
    }
    seen[o] = true;
  }
  std::vector<uint64_t> c_stride(n, 1);
  for (size_t i = n - 1; i-- > 0;) c_stride[i] = c_stride[i + 1] * a.chunks[i + 1];
  std::vector<uint64_t> stored_shape(n), stride(n);
  for (size_t i = 0; i < n; ++i) {
    stored_shape[i] = a.chunks[order[i]];
    stride[i] = c_stride[order[i]];
  }
  const size_t e = a.dtype.size;
  switch (e) {
    case 1: TransposeInto<1>(in.data(), out.data(), stored_shape, stride, e); break;
    case 2: TransposeInto<2>(in.data(), out.data(), stored_shape, stride, e); break;
    case 4: TransposeInto<4>(in.data(), out.data(), stored_shape, stride, e); break;
    case 8: TransposeInto<8>(in.data(), out.data(), stored_shape, stride, e); break;
    default: TransposeInto<0>(in.data(), out.data(), stored_shape, stride, e); break;
  }
  return OkStatus();
}

// The zlib level a stored zlib stream names (numcodecs "level"), clamped to gzip's 0..9.
int ZlibLevel(const ArrayDesc& a) {
  int level = 6;
  const json& c = a.encoding.compressor;
  if (c.is_object() && c.contains("level") && c["level"].is_number_integer()) {
    level = c["level"].get<int>();
  }
  return level < 0 ? 6 : std::min(level, 9);  // -1: zlib's default, 6
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

void PutLittle32(uint32_t v, std::string& out) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

}  // namespace

json TranscodeCodecV2() {
  return {{"id", "blosc"}, {"cname", kTranscodeCname}, {"clevel", kTranscodeClevel},
          {"shuffle", kTranscodeShuffle}, {"blocksize", 0}};
}

CompatCodec CompatCodecOf(const ArrayDesc& array, int zarr_format) {
  const ChunkEncoding& e = array.encoding;
  bool zlib_alone = (e.filters.is_null() || (e.filters.is_array() && e.filters.empty())) &&
                    CodecId(e.compressor) == "zlib";
  if (zarr_format == 3 && e.native && e.stored_order.empty() && zlib_alone &&
      array.dtype.kind != 'O') {
    return CompatCodec::kGzip;
  }
  return CompatCodec::kBlosc;
}

bool IsCompatCodecV3(std::string_view name) {
  return name == "bytes" || name == "gzip" || name == "blosc" || name == "zstd" || name == "crc32c";
}

json BytesCodecV3(const DType& dtype) {
  json bytes = {{"name", "bytes"}};
  if (dtype.size > 1 && dtype.byte_order != '|') {
    bytes["configuration"] = {{"endian", dtype.byte_order == '>' ? "big" : "little"}};
  }
  return bytes;
}

json TranscodeCodecsV3(const ArrayDesc& array) {
  const DType& dtype = array.dtype;
  const json bytes = BytesCodecV3(dtype);
  if (CompatCodecOf(array, 3) == CompatCodec::kGzip) {
    json gzip = {{"name", "gzip"}, {"configuration", {{"level", ZlibLevel(array)}}}};
    return json::array({bytes, gzip});
  }
  json blosc = {{"name", "blosc"},
                {"configuration",
                 {{"cname", kTranscodeCname},
                  {"clevel", kTranscodeClevel},
                  {"shuffle", "shuffle"},
                  {"typesize", dtype.size <= 255 ? dtype.size : 1},
                  {"blocksize", 0}}}};
  return json::array({bytes, blosc});
}

bool NeedsTranscode(const ArrayDesc& array, CodecPolicy policy, bool any_chunk_has_flags,
                    int zarr_format) {
  if (policy == CodecPolicy::kPassthrough) return false;
  if (array.dtype.kind == 'O') return false;  // vlen-utf8 strings: no other encoding holds them
  const ChunkEncoding& e = array.encoding;
  if (!e.native || !e.stored_order.empty() || any_chunk_has_flags) return true;
  // What every client reads: in Zarr v3 the core codecs by their v3 names (numcodecs' others are
  // refused); in Zarr v2 the compressors every v2 client has (zarrita.js 0.5 lacks numcodecs'
  // shuffle filter and lzma). zlib in v3 is re-framed as gzip (CompatCodecOf).
  for (const json& stage : Stages(e)) {
    std::string id = CodecId(stage);
    const bool everywhere = id == "gzip" || id == "zstd" || id == "blosc" ||
                            (zarr_format != 3 && id == "zlib");
    if (!everywhere) return true;
  }
  return false;
}

Status FillChunk(const ArrayDesc& array, std::span<std::byte> out) {
  ASSIGN_OR_RETURN(std::vector<uint8_t> e, FillElement(array));
  if (e.empty()) return OkStatus();
  if (std::all_of(e.begin(), e.end(), [&e](uint8_t b) { return b == e.front(); })) {
    std::memset(out.data(), e.front(), out.size());
    return OkStatus();
  }
  if (out.size() % e.size() != 0) return InvalidArgumentError("buffer is not a whole number of elements");
  // Doubling copies: log2(n) memcpy calls instead of one per element.
  size_t filled = std::min(e.size(), out.size());
  std::memcpy(out.data(), e.data(), filled);
  while (filled < out.size()) {
    size_t n = std::min(filled, out.size() - filled);
    std::memcpy(out.data() + filled, out.data(), n);
    filled += n;
  }
  return OkStatus();
}

uint64_t ShortChunkBytes(const ArrayDesc& array, std::span<const uint64_t> coords) {
  const size_t rank = array.chunks.size();
  if (coords.size() != rank) return array.ChunkBytes();
  // Extent of the chunk inside the array along each axis, then in the order bytes are stored.
  std::vector<uint64_t> extent(rank), dims(array.chunks);
  for (size_t d = 0; d < rank; ++d) {
    const uint64_t start = coords[d] * array.chunks[d];
    extent[d] = start >= array.shape[d] ? 0 : std::min(array.chunks[d], array.shape[d] - start);
    if (extent[d] == 0) return 0;
  }
  const std::vector<int>& order = array.encoding.stored_order;
  if (order.size() == rank) {
    std::vector<uint64_t> e(rank), c(rank);
    for (size_t i = 0; i < rank; ++i) {
      e[i] = extent[order[i]];
      c[i] = array.chunks[order[i]];
    }
    extent = e;
    dims = c;
  }
  uint64_t last = 0, stride = 1;
  for (size_t d = rank; d-- > 0;) {
    last += (extent[d] - 1) * stride;
    stride *= dims[d];
  }
  return (last + 1) * array.dtype.size;
}

Status DecodeNative(const ArrayDesc& array, std::span<const uint64_t> chunk_coords,
                    const ChunkRef& ref, std::span<const std::byte> stored,
                    std::span<std::byte> out) {
  const size_t chunk_bytes = array.ChunkBytes();
  if (out.size() != chunk_bytes) {
    return InvalidArgumentError("output holds " + std::to_string(out.size()) + " bytes, chunk is " +
                                std::to_string(chunk_bytes));
  }
  const std::vector<json> stages = Stages(array.encoding);
  const uint32_t mask = ref.flags & kChunkFilterMask;

  Bytes a, b;
  std::span<const std::byte> cur = stored;
  for (size_t i = stages.size(); i-- > 0;) {
    if (i < 32 && (mask >> i) & 1u) continue;  // this stage was not applied when writing
    Bytes& next = (cur.data() == a.data() && !a.empty()) ? b : a;
    Status s = DecodeStage(stages[i], cur, chunk_bytes, array.dtype.size, next);
    if (!s.ok()) return s;
    cur = next;
  }
  if (cur.size() > chunk_bytes || (cur.size() < chunk_bytes && !(ref.flags & kChunkShort))) {
    return CorruptError("stored chunk decodes to " + std::to_string(cur.size()) + " bytes, expected " +
                        std::to_string(chunk_bytes));
  }
  if (cur.size() < chunk_bytes) {
    // Short at the array's edge: it must still hold every element inside the array. Zeros for
    // pixels the file lost would be fabricated.
    const uint64_t needed = ShortChunkBytes(array, chunk_coords);
    if (cur.size() < needed) {
      return CorruptError("stored chunk decodes to " + std::to_string(cur.size()) +
                          " bytes, its part inside the array needs " + std::to_string(needed));
    }
  }
  if (array.encoding.stored_order.empty()) {
    std::memcpy(out.data(), cur.data(), cur.size());
    return OkStatus();
  }
  if (cur.size() == chunk_bytes) return Transpose(array, cur, out);
  // A short chunk in stored order: complete it with the fill value before moving axes.
  Bytes full(chunk_bytes);
  RETURN_IF_ERROR(FillChunk(array, full));
  std::memcpy(full.data(), cur.data(), cur.size());
  return Transpose(array, full, out);
}

Status DecodeChunk(const ArrayDesc& array, std::span<const uint64_t> chunk_coords, const ChunkRef& ref,
                   std::span<const std::byte> stored, std::span<const ChunkDecoder* const> decoders,
                   std::span<std::byte> out) {
  RETURN_IF_ERROR(FillChunk(array, out));
  const std::string& family = array.encoding.decoder;
  const ChunkDecoder* decoder = nullptr;
  for (const ChunkDecoder* d : decoders) {
    if (d != nullptr && !family.empty() && d->Family() == family) decoder = d;
  }
  if (array.encoding.native) {
    Status s = DecodeNative(array, chunk_coords, ref, stored, out);
    // A native codec this build cannot decode in process: the format's own decoder still can.
    if (s.code() != StatusCode::kUnsupported || decoder == nullptr) return s;
    RETURN_IF_ERROR(FillChunk(array, out));
  }
  if (decoder == nullptr) {
    return UnsupportedError("no decoder for chunk encoding '" + family + "'");
  }
  return decoder->Decode(array, chunk_coords, ref, stored, out);
}

Status CheckServable(const ArrayDesc& array, std::span<const ChunkDecoder* const> decoders) {
  if (array.dtype.kind == 'O') return OkStatus();
  const std::string& family = array.encoding.decoder;
  const ChunkDecoder* decoder = nullptr;
  for (const ChunkDecoder* d : decoders) {
    if (d != nullptr && !family.empty() && d->Family() == family) decoder = d;
  }
  bool in_process = array.encoding.native;
  if (in_process) {
    for (const json& stage : Stages(array.encoding)) {
      if (DecodedInProcess(stage)) continue;
      in_process = false;
      if (decoder == nullptr) {
        return UnsupportedError("codec " + stage.dump() + " cannot be decoded by this build");
      }
    }
  }
  if (!in_process) {
    if (decoder == nullptr) {
      return UnsupportedError("no decoder for chunk encoding '" + family + "' in this build");
    }
    RETURN_IF_ERROR(decoder->CheckArray(array));
  }
  const uint64_t chunk_bytes = array.ChunkBytes();
  if (chunk_bytes > static_cast<uint64_t>(BLOSC_MAX_BUFFERSIZE)) {
    for (int format : {2, 3}) {
      if (NeedsTranscode(array, CodecPolicy::kCompat, false, format) &&
          CompatCodecOf(array, format) == CompatCodec::kBlosc) {
        return UnsupportedError("chunks of " + std::to_string(chunk_bytes) +
                                " bytes are too large to transcode for Zarr v" +
                                std::to_string(format) + " (blosc's limit is " +
                                std::to_string(BLOSC_MAX_BUFFERSIZE) + ")");
      }
    }
  }
  return OkStatus();
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

Result<std::string> EncodeBlosc(std::span<const std::byte> chunk, uint32_t typesize) {
  if (chunk.size() > static_cast<size_t>(BLOSC_MAX_BUFFERSIZE)) {
    return InvalidArgumentError("chunk of " + std::to_string(chunk.size()) +
                                " bytes exceeds blosc's limit");
  }
  std::string out(chunk.size() + BLOSC_MAX_OVERHEAD, '\0');
  int n = blosc_compress_ctx(kTranscodeClevel, BLOSC_SHUFFLE, typesize <= 255 ? typesize : 1,
                             chunk.size(), chunk.data(), out.data(), out.size(), kTranscodeCname,
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

Result<std::string> TranscodeChunk(const ArrayDesc& array, std::span<const uint64_t> chunk_coords,
                                   const ChunkRef& ref, std::span<const std::byte> stored,
                                   std::span<const ChunkDecoder* const> decoders, int zarr_format) {
  const CompatCodec codec = CompatCodecOf(array, zarr_format);
  // A chunk encoded like the rest keeps its deflate stream; a short strip or a chunk whose deflate
  // stage was skipped is decoded and compressed as gzip, so that every chunk is a full gzip chunk.
  if (codec == CompatCodec::kGzip && (ref.flags & (kChunkFilterMask | kChunkShort)) == 0) {
    return ReframeZlibAsGzip(stored, array.ChunkBytes());
  }
  // One scratch chunk per thread; a huge one is not kept around.
  thread_local Bytes chunk;
  chunk.resize(array.ChunkBytes());
  Status s = DecodeChunk(array, chunk_coords, ref, stored, decoders, chunk);
  Result<std::string> out = !s.ok()                       ? Result<std::string>(s)
                            : codec == CompatCodec::kGzip ? EncodeGzip(chunk, ZlibLevel(array))
                                                          : EncodeBlosc(chunk, array.dtype.size);
  if (chunk.capacity() > (64u << 20)) Bytes().swap(chunk);
  return out;
}

}  // namespace refzarr
