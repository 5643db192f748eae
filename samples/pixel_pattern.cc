#include "samples/pixel_pattern.h"

#include <zlib.h>

#include <bit>
#include <cstring>

namespace refzarr::samples {
namespace {

static_assert(std::endian::native == std::endian::little,
              "the manifest checksums assume a little-endian host");

uint64_t SplitMix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

template <typename T>
void Store(std::byte* out, T value) {
  std::memcpy(out, &value, sizeof(T));
}

// The value formula. The gradient keeps neighbouring pixels correlated (so predictors and deflate
// behave as on real data); the hash term makes every pixel distinct from its copy in any other
// tile.
void WriteValue(std::byte* out, SampleType type, uint64_t seed, uint32_t plane, uint32_t s,
                uint32_t y, uint32_t x, bool smooth) {
  const uint64_t h = SplitMix64(seed * 0x100000001B3ULL ^ (uint64_t{plane} << 44) ^
                                (uint64_t{s} << 58) ^ (uint64_t{y} << 22) ^ x);
  const uint64_t g =
      uint64_t{x} * 3 + uint64_t{y} * 5 + uint64_t{s} * 40 + uint64_t{plane} * 11 + (seed & 0xff);
  const uint64_t noise = smooth ? (h & 3) : (h & 15);
  const uint64_t band = ((y >> 3) + plane * 7 + s * 13) & 0xff;  // smooth high byte
  switch (type) {
    case SampleType::kU8:
      Store<uint8_t>(out, static_cast<uint8_t>(g + noise));
      break;
    case SampleType::kI8:
      Store<int8_t>(out, static_cast<int8_t>(static_cast<uint8_t>(g + noise)));
      break;
    case SampleType::kU16:
      Store<uint16_t>(out, static_cast<uint16_t>(g * 37 + (h & 255)));
      break;
    case SampleType::kI16:
      Store<int16_t>(out, static_cast<int16_t>(static_cast<uint16_t>(g * 37 + (h & 255))));
      break;
    case SampleType::kU32:
      Store<uint32_t>(out, static_cast<uint32_t>(g * 37 + (h & 255) + (band << 24)));
      break;
    case SampleType::kI32:
      Store<int32_t>(
          out, static_cast<int32_t>(static_cast<uint32_t>(g * 37 + (h & 255) + (band << 24))));
      break;
    case SampleType::kU64:
      Store<uint64_t>(out, g * 37 + ((h & 0xffff) << 24) + (band << 56));
      break;
    case SampleType::kI64:
      Store<int64_t>(out, static_cast<int64_t>(g * 37 + ((h & 0xffff) << 24) + (band << 56)));
      break;
    case SampleType::kF32:
      Store<float>(out, static_cast<float>(static_cast<double>(g) * 0.25 +
                                           static_cast<double>(h & 255) / 256.0 - 200.0));
      break;
    case SampleType::kF64:
      Store<double>(out, static_cast<double>(g) * 0.25 + static_cast<double>(h & 0xffff) / 65536.0 -
                             200.0 + static_cast<double>(h >> 44) * 1e-12);
      break;
  }
}

}  // namespace

uint32_t SampleBytes(SampleType type) {
  switch (type) {
    case SampleType::kU8:
    case SampleType::kI8:
      return 1;
    case SampleType::kU16:
    case SampleType::kI16:
      return 2;
    case SampleType::kU32:
    case SampleType::kI32:
    case SampleType::kF32:
      return 4;
    case SampleType::kU64:
    case SampleType::kI64:
    case SampleType::kF64:
      return 8;
  }
  return 1;
}

uint16_t SampleFormatTag(SampleType type) {
  switch (type) {
    case SampleType::kI8:
    case SampleType::kI16:
    case SampleType::kI32:
    case SampleType::kI64:
      return 2;
    case SampleType::kF32:
    case SampleType::kF64:
      return 3;
    default:
      return 1;
  }
}

std::string NumpyName(SampleType type) {
  switch (type) {
    case SampleType::kU8:
      return "uint8";
    case SampleType::kI8:
      return "int8";
    case SampleType::kU16:
      return "uint16";
    case SampleType::kI16:
      return "int16";
    case SampleType::kU32:
      return "uint32";
    case SampleType::kI32:
      return "int32";
    case SampleType::kU64:
      return "uint64";
    case SampleType::kI64:
      return "int64";
    case SampleType::kF32:
      return "float32";
    case SampleType::kF64:
      return "float64";
  }
  return "?";
}

std::string ShortName(SampleType type) {
  switch (type) {
    case SampleType::kU8:
      return "u8";
    case SampleType::kI8:
      return "i8";
    case SampleType::kU16:
      return "u16";
    case SampleType::kI16:
      return "i16";
    case SampleType::kU32:
      return "u32";
    case SampleType::kI32:
      return "i32";
    case SampleType::kU64:
      return "u64";
    case SampleType::kI64:
      return "i64";
    case SampleType::kF32:
      return "f32";
    case SampleType::kF64:
      return "f64";
  }
  return "?";
}

size_t Plane::RowBytes() const {
  return size_t{width} * SampleBytes(type) * (planar ? 1 : samples);
}

std::byte* Plane::At(uint32_t s, uint32_t y, uint32_t x) {
  const size_t e = SampleBytes(type);
  if (planar) return data.data() + ((size_t{s} * height + y) * width + x) * e;
  return data.data() + ((size_t{y} * width + x) * samples + s) * e;
}

const std::byte* Plane::At(uint32_t s, uint32_t y, uint32_t x) const {
  return const_cast<Plane*>(this)->At(s, y, x);
}

void Plane::Zero(uint32_t x0, uint32_t y0, uint32_t w, uint32_t h) {
  const size_t e = SampleBytes(type);
  for (uint32_t s = 0; s < samples; ++s) {
    for (uint32_t y = y0; y < y0 + h && y < height; ++y) {
      for (uint32_t x = x0; x < x0 + w && x < width; ++x) std::memset(At(s, y, x), 0, e);
    }
  }
}

uint32_t Plane::Crc32() const { return Crc32Of({this}); }

uint32_t Crc32Of(const std::vector<const Plane*>& planes) {
  uLong crc = crc32(0L, Z_NULL, 0);
  for (const Plane* p : planes) {
    // zlib's length is a uInt; sample planes are far below 4 GiB.
    crc = crc32(crc, reinterpret_cast<const Bytef*>(p->data.data()),
                static_cast<uInt>(p->data.size()));
  }
  return static_cast<uint32_t>(crc);
}

Plane MakePlane(uint32_t width, uint32_t height, SampleType type, uint16_t samples, bool planar,
                uint64_t seed, uint32_t plane, bool smooth) {
  Plane p{width, height, type, samples, planar && samples > 1, {}};
  p.data.resize(size_t{width} * height * samples * SampleBytes(type));
  for (uint32_t s = 0; s < samples; ++s) {
    for (uint32_t y = 0; y < height; ++y) {
      for (uint32_t x = 0; x < width; ++x)
        WriteValue(p.At(s, y, x), type, seed, plane, s, y, x, smooth);
    }
  }
  return p;
}

Plane Downsample(const Plane& src, uint32_t factor) {
  Plane p{(src.width + factor - 1) / factor,
          (src.height + factor - 1) / factor,
          src.type,
          src.samples,
          src.planar,
          {}};
  const size_t e = SampleBytes(src.type);
  p.data.resize(size_t{p.width} * p.height * p.samples * e);
  for (uint32_t s = 0; s < p.samples; ++s) {
    for (uint32_t y = 0; y < p.height; ++y) {
      for (uint32_t x = 0; x < p.width; ++x)
        std::memcpy(p.At(s, y, x), src.At(s, y * factor, x * factor), e);
    }
  }
  return p;
}

}  // namespace refzarr::samples
