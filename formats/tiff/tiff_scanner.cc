#include "formats/tiff/tiff_scanner.h"

#include <tiff.h>

#include "formats/tiff/tiff_pages.h"
#include "formats/tiff/tiff_series.h"

namespace refzarr {
namespace {

using nlohmann::json;

std::string Base64(const std::string& in) {
  static const char* kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out += kAlphabet[(v >> s) & 63];
  }
  if (i < in.size()) {
    uint32_t v = uint8_t(in[i]) << 16;
    if (i + 1 < in.size()) v |= uint8_t(in[i + 1]) << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < in.size() ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

// The array dtype of a page's samples. Sub-byte and odd sizes decode to the next byte size.
Result<DType> PageDType(const TiffPage& p, bool big_endian) {
  int bits = p.bits_per_sample;
  char kind = p.sample_format == SAMPLEFORMAT_INT ? 'i'
              : p.sample_format == SAMPLEFORMAT_IEEEFP ? 'f'
              : p.sample_format == SAMPLEFORMAT_UINT || p.sample_format == SAMPLEFORMAT_VOID ? 'u'
              : 0;
  if (kind == 0) {
    return UnsupportedError("SampleFormat " + std::to_string(p.sample_format) + " (complex) ");
  }
  if (kind == 'f' && bits != 16 && bits != 32 && bits != 64) {
    return UnsupportedError(std::to_string(bits) + "-bit floating-point samples");
  }
  if (bits < 1 || bits > 64) return UnsupportedError(std::to_string(bits) + "-bit samples");
  uint32_t bytes = bits <= 8 ? 1 : bits <= 16 ? 2 : bits <= 32 ? 4 : 8;
  return DType::Make(kind, bytes, big_endian ? '>' : '<');
}

// How the page's stored tiles are encoded, in Zarr terms where standard codecs suffice.
ChunkEncoding PageEncoding(const TiffPage& p, const DType& dtype, bool big_endian) {
  ChunkEncoding e;
  bool whole_bytes = p.bits_per_sample % 8 == 0;
  bool plain = whole_bytes && p.predictor == 1 && p.fill_order == 1;
  switch (p.compression) {
    case COMPRESSION_NONE:
      e.compressor = nullptr;
      e.native = plain;
      break;
    case COMPRESSION_ADOBE_DEFLATE:
    case COMPRESSION_DEFLATE:
      e.compressor = {{"id", "zlib"}, {"level", 6}};
      e.native = plain;
      break;
    case COMPRESSION_ZSTD:
      // libtiff writes zstd frames without a content size, which numcodecs before 0.13 cannot
      // decode: standard clients get these chunks transcoded.
      e.compressor = {{"id", "zstd"}, {"level", 0}};
      e.native = false;
      break;
    case COMPRESSION_LZMA:
      e.compressor = {{"id", "lzma"}, {"format", 1}, {"check", -1}, {"preset", nullptr},
                      {"filters", nullptr}};
      e.native = plain;
      break;
    case COMPRESSION_LZW:
      e.compressor = {{"id", "imagecodecs_lzw"}};
      e.native = false;
      break;
    case COMPRESSION_JPEG: {
      json c = {{"id", "imagecodecs_jpeg"}, {"bitspersample", p.bits_per_sample}};
      if (!p.jpeg_tables.empty()) c["tables"] = Base64(p.jpeg_tables);
      if (p.photometric == PHOTOMETRIC_YCBCR) {
        c["colorspace_jpeg"] = "YCbCr";
        c["colorspace_data"] = "RGB";
      }
      e.compressor = c;
      e.native = false;
      break;
    }
    case COMPRESSION_PACKBITS:
      e.compressor = {{"id", "imagecodecs_packbits"}};
      e.native = false;
      break;
    case COMPRESSION_WEBP:
      e.compressor = {{"id", "imagecodecs_webp"}};
      e.native = false;
      break;
    default:
      e.compressor = {{"id", "imagecodecs_tiff_compression_" + std::to_string(p.compression)}};
      e.native = false;
  }
  if (p.predictor == 2) {
    e.filters = json::array({{{"id", "imagecodecs_delta"}, {"axis", -2}, {"dist", 1}}});
    e.native = false;
  } else if (p.predictor == 3) {
    e.filters = json::array({{{"id", "imagecodecs_floatpred"}, {"axis", -2}, {"dist", 1}}});
    e.native = false;
  }
  if (!e.native && !e.filters.is_array() && p.predictor == 1 && !whole_bytes) {
    e.filters = json::array({{{"id", "imagecodecs_packints"}, {"bitspersample", p.bits_per_sample}}});
  }
  e.decoder = "tiff";
  e.params = {{"compression", p.compression},
              {"predictor", p.predictor},
              {"photometric", p.photometric},
              {"bits_per_sample", p.bits_per_sample},
              {"sample_format", p.sample_format},
              {"samples_per_pixel", p.samples_per_pixel},
              {"planar", p.planar},
              {"tiled", p.tiled},
              {"tile_width", p.tile_width},
              {"tile_length", p.tile_length},
              {"rows_per_strip", p.tiled ? 0u : p.tile_length},
              {"image_width", p.width},
              {"image_length", p.length},
              {"byte_order", big_endian ? ">" : "<"},
              {"fill_order", p.fill_order},
              {"jpeg_colormode_rgb", p.compression == COMPRESSION_JPEG &&
                                         p.photometric == PHOTOMETRIC_YCBCR}};
  if (!p.jpeg_tables.empty()) e.params["jpeg_tables"] = Base64(p.jpeg_tables);
  if (p.photometric == PHOTOMETRIC_YCBCR) {
    e.params["ycbcr_subsampling"] = {p.ycbcr_subsampling[0], p.ycbcr_subsampling[1]};
  }
  if (p.samples_per_pixel > 1 && p.planar == PLANARCONFIG_CONTIG) e.stored_order = {0, 2, 3, 4, 1};
  (void)dtype;
  return e;
}

class TiffScanner final : public Scanner {
 public:
  std::string_view Name() const override { return "tiff"; }
  bool Sniff(std::span<const std::byte> head) const override { return LooksLikeTiff(head); }

  Status Scan(ByteSource& source, const ScanContext& context, ScanSink& out) const override {
    ASSIGN_OR_RETURN(TiffStructure tiff, ReadTiffStructure(source));
    ASSIGN_OR_RETURN(uint64_t file_size, source.Size());
    for (std::string& w : tiff.warnings) out.Warn(std::move(w));
    std::vector<std::string> warnings;
    std::vector<SeriesPlan> plans = PlanDefaultSeries(tiff, warnings);
    for (std::string& w : warnings) out.Warn(std::move(w));
    RETURN_IF_ERROR(out.AddGroup("", {{"bioformats2raw.layout", 3}}));
    for (size_t s = 0; s < plans.size(); ++s) {
      Status st = EmitSeries(tiff, file_size, plans[s], std::to_string(s), out);
      if (!st.ok()) return st.WithContext("series " + std::to_string(s));
    }
    return OkStatus();
  }

 private:
  static Status EmitSeries(const TiffStructure& tiff, uint64_t file_size, const SeriesPlan& plan,
                           const std::string& path, ScanSink& out) {
    ImageDesc image;
    image.name = plan.name;
    image.axes = plan.axes;
    image.channels = plan.channels;
    const TiffPage& base = tiff.pages[plan.levels[0].front()];
    for (size_t k = 0; k < plan.levels.size(); ++k) {
      const TiffPage& first = tiff.pages[plan.levels[k].front()];
      std::string level_path = path + "/" + std::to_string(k);
      RETURN_IF_ERROR(EmitLevel(tiff, file_size, plan, plan.levels[k], level_path, out)
                          .WithContext("level " + std::to_string(k)));
      image.levels.push_back(std::to_string(k));
      std::vector<double> scale = plan.base_scale;
      scale[3] *= static_cast<double>(base.length) / first.length;
      scale[4] *= static_cast<double>(base.width) / first.width;
      image.scales.push_back(scale);
    }
    return out.AddImage(path, image);
  }

  static Status EmitLevel(const TiffStructure& tiff, uint64_t file_size, const SeriesPlan& plan,
                          const std::vector<int>& planes, const std::string& path, ScanSink& out) {
    const TiffPage& p = tiff.pages[planes.front()];
    if (p.depth > 1) return UnsupportedError("ImageDepth " + std::to_string(p.depth) + " (3-D tiles)");
    for (int idx : planes) {
      if (!UniformPages(p, tiff.pages[idx])) {
        return InternalError("IFD " + std::to_string(tiff.pages[idx].index) +
                             " differs from the rest of its level");
      }
    }
    ASSIGN_OR_RETURN(DType dtype, PageDType(p, tiff.big_endian));
    const uint64_t spp = p.samples_per_pixel;
    const bool chunky = spp > 1 && p.planar == PLANARCONFIG_CONTIG;
    ArrayDesc a;
    a.shape = {plan.size_t, plan.page_channels * spp, plan.size_z, p.length, p.width};
    a.chunks = {1, chunky ? spp : 1, 1, p.ChunkRows(), p.ChunkCols()};
    a.dtype = dtype;
    a.fill_value = 0;
    a.encoding = PageEncoding(p, dtype, tiff.big_endian);
    a.dimension_names = {"t", "c", "z", "y", "x"};
    ASSIGN_OR_RETURN(ArrayHandle h, out.AddArray(path, a));

    const auto grid = a.GridShape();
    const uint32_t across = p.ChunksAcross(), down = p.ChunksDown();
    const uint64_t per_plane = uint64_t{across} * down;
    const uint64_t sample_planes = chunky ? 1 : spp;
    const bool uncompressed = p.compression == COMPRESSION_NONE && p.bits_per_sample % 8 == 0;
    const uint64_t row_bytes = uint64_t{p.ChunkCols()} * (chunky ? spp : 1) * dtype.size;
    for (uint64_t plane = 0; plane < planes.size(); ++plane) {
      const TiffPage& page = tiff.pages[planes[plane]];
      const uint64_t z = plane % plan.size_z;
      const uint64_t tc = plane / plan.size_z;
      const uint64_t c_page = tc % plan.page_channels, t = tc / plan.page_channels;
      for (uint64_t s = 0; s < sample_planes; ++s) {
        for (uint32_t r = 0; r < down; ++r) {
          for (uint32_t q = 0; q < across; ++q) {
            uint64_t i = s * per_plane + uint64_t{r} * across + q;
            ChunkRef ref{0, page.offsets[i], page.byte_counts[i], 0};
            if (ref.offset == 0 || ref.length == 0) continue;  // sparse: fill value
            if (ref.offset > file_size || ref.length > file_size - ref.offset) {
              return CorruptError("IFD " + std::to_string(page.index) + ": " +
                                  (page.tiled ? "tile " : "strip ") + std::to_string(i) +
                                  " (offset " + std::to_string(ref.offset) + ", " +
                                  std::to_string(ref.length) + " bytes) lies past the end of the "
                                  "file (" + std::to_string(file_size) + " bytes)");
            }
            uint32_t rows = page.RowsIn(r);
            if (rows < page.ChunkRows()) ref.flags |= kChunkShort;
            if (uncompressed) {
              // Uncompressed: the chunk is exactly its rows; extra bytes are padding.
              uint64_t expected = row_bytes * rows;
              if (ref.length > expected) ref.length = expected;
              if (ref.length < row_bytes * page.ChunkRows()) ref.flags |= kChunkShort;
            }
            uint64_t c = chunky ? c_page : c_page * spp + s;
            std::vector<uint64_t> coords = {t, c, z, r, q};
            RETURN_IF_ERROR(out.AddChunk(h, LinearChunkIndex(grid, coords), ref));
          }
        }
      }
    }
    return OkStatus();
  }
};

}  // namespace

std::unique_ptr<Scanner> MakeTiffScanner() { return std::make_unique<TiffScanner>(); }

}  // namespace refzarr
