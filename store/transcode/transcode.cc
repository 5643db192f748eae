#include "store/transcode/transcode.h"
#include "formats/core/base64.h"

#include <blosc.h>
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

// The codec ids DecodeStage decodes in process.
bool DecodedInProcess(const json& codec) {
  if (!codec.is_object() || !codec.contains("id") || !codec["id"].is_string()) return false;
  const std::string id = codec["id"].get<std::string>();
  return id == "zlib" || id == "gzip" || id == "zstd" || id == "blosc" || id == "lzma" ||
         id == "shuffle";
}

Status DecodeStage(const json& codec, std::span<const std::byte> in, size_t max_out, uint32_t element,
                   Bytes& out) {
  if (!codec.is_object() || !codec.contains("id") || !codec["id"].is_string()) {
    return InvalidArgumentError("codec " + codec.dump() + " has no id");
  }
  const std::string id = codec["id"].get<std::string>();
  if (id == "zlib") return Inflate(in, 15, max_out, out, "zlib");
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

}  // namespace

json TranscodeCodecV2() {
  return {{"id", "blosc"}, {"cname", kTranscodeCname}, {"clevel", kTranscodeClevel},
          {"shuffle", kTranscodeShuffle}, {"blocksize", 0}};
}

json TranscodeCodecsV3(const DType& dtype) {
  json bytes = {{"name", "bytes"}};
  if (dtype.size > 1) bytes["configuration"] = {{"endian", dtype.byte_order == '>' ? "big" : "little"}};
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
  bool reordered = !array.encoding.stored_order.empty() && zarr_format != 3;
  return !array.encoding.native || reordered || any_chunk_has_flags;
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

Status DecodeNative(const ArrayDesc& array, const ChunkRef& ref, std::span<const std::byte> stored,
                    std::span<std::byte> out) {
  const size_t chunk_bytes = array.ChunkBytes();
  if (out.size() != chunk_bytes) {
    return InvalidArgumentError("output holds " + std::to_string(out.size()) + " bytes, chunk is " +
                                std::to_string(chunk_bytes));
  }
  std::vector<json> stages;
  if (array.encoding.filters.is_array()) {
    for (const json& f : array.encoding.filters) stages.push_back(f);
  }
  if (array.encoding.compressor.is_object()) stages.push_back(array.encoding.compressor);
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
    Status s = DecodeNative(array, ref, stored, out);
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
    std::vector<json> stages;
    if (array.encoding.filters.is_array()) {
      for (const json& f : array.encoding.filters) stages.push_back(f);
    }
    if (array.encoding.compressor.is_object()) stages.push_back(array.encoding.compressor);
    for (const json& stage : stages) {
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
  if (chunk_bytes > static_cast<uint64_t>(BLOSC_MAX_BUFFERSIZE) &&
      (NeedsTranscode(array, CodecPolicy::kCompat, false, 2) ||
       NeedsTranscode(array, CodecPolicy::kCompat, false, 3))) {
    return UnsupportedError("chunks of " + std::to_string(chunk_bytes) + " bytes are too large to "
                            "transcode (blosc's limit is " +
                            std::to_string(BLOSC_MAX_BUFFERSIZE) + ")");
  }
  return OkStatus();
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
                                   std::span<const ChunkDecoder* const> decoders) {
  // One scratch chunk per thread; a huge one is not kept around.
  thread_local Bytes chunk;
  chunk.resize(array.ChunkBytes());
  Status s = DecodeChunk(array, chunk_coords, ref, stored, decoders, chunk);
  Result<std::string> out = s.ok() ? EncodeBlosc(chunk, array.dtype.size) : Result<std::string>(s);
  if (chunk.capacity() > (64u << 20)) Bytes().swap(chunk);
  return out;
}

}  // namespace refzarr
