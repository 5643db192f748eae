// refzarr-make-bench-tiff OUT.tif [--pages 1600] [--size 2048] [--tile 256] [--uncompressed]
//
// Writes the indexing benchmark file: a BigTIFF of N pages of size x size uint16 in tile x tile
// deflate tiles (102,400 tiles by default). Tile content is a smooth gradient plus a few bits of
// noise, so tiles compress as fluorescence data does (about 3x). To stay fast, a small set of
// distinct tiles is deflated once and every tile is written raw (TIFFWriteRawTile) from one of
// them; byte counts therefore vary from tile to tile as in a real file. --uncompressed writes
// the templates as they are (no compression): every page then has the same size, and the IFDs
// lie at a uniform stride, as in the uncompressed stacks microscopes write.
#include <tiffio.h>
#include <zlib.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "formats/core/status.h"
#include "samples/tiff_open.h"

namespace refzarr::bench {
namespace {

uint64_t SplitMix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

struct Options {
  std::string out;
  uint32_t pages = 1600;
  uint32_t size = 2048;
  uint32_t tile = 256;
  uint32_t templates = 61;  // prime, so neighbouring tiles and pages use different templates
  bool uncompressed = false;
};

// One deflated template tile, shaped like fluorescence data: a dim background with a slow gradient
// (slope and offset depend on k), a bright smooth blob on every other template, and 3 bits of
// noise.
Result<std::vector<uint8_t>> TemplateTile(uint32_t k, uint32_t tile, bool deflate) {
  std::vector<uint16_t> px(size_t{tile} * tile);
  const uint64_t gx = 1 + k % 5, gy = 1 + (k / 5) % 4, base = 100 + 7 * k;
  const double cx = tile * (0.2 + 0.6 * ((k * 7) % 11) / 10.0),
               cy = tile * (0.2 + 0.6 * ((k * 3) % 7) / 6.0);
  const double r2 = (tile / 6.0) * (tile / 6.0) * (1 + k % 3);
  for (uint32_t y = 0; y < tile; ++y) {
    for (uint32_t x = 0; x < tile; ++x) {
      const uint64_t h = SplitMix64((uint64_t{k} << 40) ^ (uint64_t{y} << 20) ^ x);
      const double d2 = (x - cx) * (x - cx) + (y - cy) * (y - cy);
      const double blob = (k % 2 == 0 && d2 < 4 * r2) ? 3000.0 * std::exp(-d2 / r2) : 0.0;
      px[size_t{y} * tile + x] = static_cast<uint16_t>(base + (gx * x + gy * y) / 16 +
                                                       static_cast<uint64_t>(blob) + (h & 7));
    }
  }
  // Little-endian file and host: the samples are written as they are in memory.
  if (!deflate) {
    const auto* raw = reinterpret_cast<const uint8_t*>(px.data());
    return std::vector<uint8_t>(raw, raw + px.size() * 2);
  }
  uLongf size = compressBound(static_cast<uLong>(px.size() * 2));
  std::vector<uint8_t> z(size);
  if (compress2(z.data(), &size, reinterpret_cast<const Bytef*>(px.data()),
                static_cast<uLong>(px.size() * 2), 6) != Z_OK) {
    return InternalError("deflate of template tile " + std::to_string(k) + " failed");
  }
  z.resize(size);
  return z;
}

Status Write(const Options& o) {
  if (o.tile == 0 || o.tile % 16 != 0)
    return InvalidArgumentError("--tile must be a multiple of 16");
  if (o.size == 0 || o.pages == 0)
    return InvalidArgumentError("--size and --pages must be positive");
  std::vector<std::vector<uint8_t>> templates;
  uint64_t template_bytes = 0;
  for (uint32_t k = 0; k < o.templates; ++k) {
    ASSIGN_OR_RETURN(std::vector<uint8_t> t, TemplateTile(k, o.tile, !o.uncompressed));
    template_bytes += t.size();
    templates.push_back(std::move(t));
  }
  std::string log;
  samples::TiffPtr tif = samples::OpenTiffForWriting(o.out, "w8l", &log);
  if (!tif) return IoError("write " + o.out + ": cannot create (libtiff: " + log + ")");
  const uint32_t across = (o.size + o.tile - 1) / o.tile;
  const uint32_t tiles_per_page = across * across;
  uint64_t n = 0;
  for (uint32_t page = 0; page < o.pages; ++page) {
    TIFF* t = tif.get();
    const bool ok =
        TIFFSetField(t, TIFFTAG_IMAGEWIDTH, o.size) &&
        TIFFSetField(t, TIFFTAG_IMAGELENGTH, o.size) &&
        TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, 16) && TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, 1) &&
        TIFFSetField(t, TIFFTAG_SAMPLEFORMAT, SAMPLEFORMAT_UINT) &&
        TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK) &&
        TIFFSetField(t, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG) &&
        TIFFSetField(t, TIFFTAG_COMPRESSION,
                     o.uncompressed ? COMPRESSION_NONE : COMPRESSION_ADOBE_DEFLATE) &&
        TIFFSetField(t, TIFFTAG_TILEWIDTH, o.tile) && TIFFSetField(t, TIFFTAG_TILELENGTH, o.tile) &&
        TIFFSetField(t, TIFFTAG_SOFTWARE, "refzarr-make-bench-tiff");
    const std::string where = "write " + o.out + ": page " + std::to_string(page);
    if (!ok) return InternalError(where + ": setting tags failed (libtiff: " + log + ")");
    for (uint32_t i = 0; i < tiles_per_page; ++i, ++n) {
      std::vector<uint8_t>& z = templates[n % templates.size()];
      if (TIFFWriteRawTile(t, i, z.data(), static_cast<tmsize_t>(z.size())) < 0) {
        return IoError(where + ": TIFFWriteRawTile " + std::to_string(i) +
                       " failed (libtiff: " + log + ")");
      }
    }
    if (!TIFFWriteDirectory(t))
      return IoError(where + ": TIFFWriteDirectory failed (libtiff: " + log + ")");
  }
  tif.reset();
  if (!log.empty()) return IoError("write " + o.out + ": libtiff: " + log);
  std::cerr << "wrote " << o.out << ": " << o.pages << " pages, " << n << " tiles, ~"
            << (template_bytes / templates.size()) << " bytes per tile (of "
            << size_t{o.tile} * o.tile * 2 << " raw)\n";
  return OkStatus();
}

}  // namespace
}  // namespace refzarr::bench

int main(int argc, char** argv) {
  refzarr::bench::Options o;
  CLI::App app{"Writes the refzarr indexing benchmark BigTIFF (uint16 deflate tiles)."};
  app.add_option("OUT", o.out, "output .tif")->required();
  app.add_option("--pages", o.pages, "number of pages (IFDs)")->capture_default_str();
  app.add_option("--size", o.size, "width and height of each page, pixels")->capture_default_str();
  app.add_option("--tile", o.tile, "tile width and height, pixels (multiple of 16)")
      ->capture_default_str();
  app.add_option("--templates", o.templates, "distinct tile contents to cycle through")
      ->capture_default_str();
  app.add_flag("--uncompressed", o.uncompressed,
               "write the tiles uncompressed: pages of one size, IFDs at a uniform stride");
  CLI11_PARSE(app, argc, argv);
  try {
    const auto start = std::chrono::steady_clock::now();
    const refzarr::Status status = refzarr::bench::Write(o);
    if (!status.ok()) {
      std::cerr << "refzarr-make-bench-tiff: " << status.message() << "\n";
      return 1;
    }
    std::cerr << "in "
              << std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()
              << " s\n";
  } catch (const std::exception& e) {
    std::cerr << "refzarr-make-bench-tiff: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
