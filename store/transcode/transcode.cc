#include "store/transcode/transcode.h"
#include "formats/core/base64.h"
#include "store/codecs/codecs.h"

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
// The libraries are behind the codecs table (store/codecs/codecs.h): linked in, or a module the
// refzarr binary loads the first time a chunk is decoded or encoded.

Status Inflate(std::span<const std::byte> in, int window_bits, size_t max_out, Bytes& out,
               const char* name) {
  ASSIGN_OR_RETURN(const CodecLibs* codecs, Codecs());
  return codecs->inflate(in, window_bits, max_out, out, name);
}

Status InflateZlib(std::span<const std::byte> in, size_t max_out, Bytes& out) {
  ASSIGN_OR_RETURN(const CodecLibs* codecs, Codecs());
  return codecs->inflate_zlib(in, max_out, out);
}

Status Zstd(std::span<const std::byte> in, size_t max_out, Bytes& out) {
  ASSIGN_OR_RETURN(const CodecLibs* codecs, Codecs());
  return codecs->zstd(in, max_out, out);
}

Status Lzma(std::span<const std::byte> in, size_t max_out, Bytes& out) {
  ASSIGN_OR_RETURN(const CodecLibs* codecs, Codecs());
  return codecs->lzma(in, max_out, out);
}

Status Blosc(std::span<const std::byte> in, size_t max_out, Bytes& out) {
  ASSIGN_OR_RETURN(const CodecLibs* codecs, Codecs());
  return codecs->blosc(in, max_out, out);
}

Result<std::string> EncodeGzip(std::span<const std::byte> chunk, int level) {
  ASSIGN_OR_RETURN(const CodecLibs* codecs, Codecs());
  return codecs->encode_gzip(chunk, level);
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
  if (chunk_bytes > kBloscMaxBufferBytes) {
    for (int format : {2, 3}) {
      if (NeedsTranscode(array, CodecPolicy::kCompat, false, format) &&
          CompatCodecOf(array, format) == CompatCodec::kBlosc) {
        return UnsupportedError("chunks of " + std::to_string(chunk_bytes) +
                                " bytes are too large to transcode for Zarr v" +
                                std::to_string(format) + " (blosc's limit is " +
                                std::to_string(kBloscMaxBufferBytes) + ")");
      }
    }
  }
  return OkStatus();
}

Result<std::string> ReframeZlibAsGzip(std::span<const std::byte> zlib, uint64_t expected_bytes) {
  ASSIGN_OR_RETURN(const CodecLibs* codecs, Codecs());
  return codecs->reframe_zlib_as_gzip(zlib, expected_bytes);
}

Result<std::string> EncodeBlosc(std::span<const std::byte> chunk, uint32_t typesize) {
  ASSIGN_OR_RETURN(const CodecLibs* codecs, Codecs());
  return codecs->encode_blosc(chunk, typesize, kTranscodeCname, kTranscodeClevel, kTranscodeShuffle);
}

Status DecodeBlosc(std::span<const std::byte> compressed, std::span<std::byte> out) {
  ASSIGN_OR_RETURN(const CodecLibs* codecs, Codecs());
  return codecs->decode_blosc(compressed, out);
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
