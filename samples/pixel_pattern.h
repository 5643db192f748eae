// Deterministic pixel content for the generated sample TIFFs.
//
// Every sample value is a formula of (seed, plane, sample, y, x): a smooth gradient plus a
// hash-based noise term, so images compress realistically, never repeat, and any misplaced tile,
// strip or plane changes the checksum the manifest records.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace refzarr::samples {

/// Element type of a sample, as TIFF stores it (BitsPerSample + SampleFormat).
enum class SampleType { kU8, kI8, kU16, kI16, kU32, kI32, kU64, kI64, kF32, kF64 };

/// Bytes per element of `type`.
uint32_t SampleBytes(SampleType type);
/// TIFF SampleFormat tag value: 1 unsigned, 2 signed, 3 IEEE float.
uint16_t SampleFormatTag(SampleType type);
/// numpy dtype name ("uint16", "float32", ...), as the manifest records it.
std::string NumpyName(SampleType type);
/// Short token for file names ("u16", "f32", ...).
std::string ShortName(SampleType type);

/// One decoded TIFF page (or reduced level) held in memory, laid out as tifffile returns a page:
/// chunky (height, width, samples) or, when `planar`, (samples, height, width); host
/// (little-endian) byte order.
struct Plane {
  uint32_t width = 0;
  uint32_t height = 0;
  SampleType type = SampleType::kU8;
  uint16_t samples = 1;  ///< Samples per pixel.
  bool planar = false;   ///< PlanarConfiguration 2 (separate) when samples > 1.
  std::vector<std::byte> data;

  /// Bytes of one row of one sample plane (planar) or of interleaved pixels (chunky).
  size_t RowBytes() const;
  /// Pointer to element (s, y, x).
  std::byte* At(uint32_t s, uint32_t y, uint32_t x);
  const std::byte* At(uint32_t s, uint32_t y, uint32_t x) const;
  /// Sets the rectangle [x0, x0+w) x [y0, y0+h) of every sample to zero (clipped to the image).
  void Zero(uint32_t x0, uint32_t y0, uint32_t w, uint32_t h);
  /// CRC-32 (zlib) of `data`.
  uint32_t Crc32() const;
};

/// Fills a new plane from the formula. `seed` distinguishes files and series, `plane` the plane
/// index within a series. `smooth` reduces the noise term to suit lossy JPEG content.
Plane MakePlane(uint32_t width, uint32_t height, SampleType type, uint16_t samples, bool planar,
                uint64_t seed, uint32_t plane, bool smooth = false);

/// Reduces `src` by an integer `factor` (size rounded up) by keeping the top-left pixel of each
/// factor x factor block: exact for every type, and enough for a pyramid level to be recognisable.
Plane Downsample(const Plane& src, uint32_t factor);

/// CRC-32 of several planes' data concatenated in order (a series as tifffile stacks it).
uint32_t Crc32Of(const std::vector<const Plane*>& planes);

}  // namespace refzarr::samples
