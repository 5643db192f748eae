#include "samples/sample_catalogue.h"

#include <tiffio.h>

#include <cstdio>
#include <utility>

namespace refzarr::samples {
namespace {

using Shape = std::vector<uint64_t>;

// FNV-1a of the file name: each file gets its own, stable pixel seed.
uint64_t SeedOf(const std::string& s) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
  return h;
}

bool IsLossy(uint16_t compression) { return compression == COMPRESSION_JPEG; }

IfdSpec Stripped(Plane p, uint32_t rows_per_strip, uint16_t compression, uint16_t predictor = 1) {
  IfdSpec ifd;
  ifd.plane = std::move(p);
  ifd.rows_per_strip = rows_per_strip;
  ifd.compression = compression;
  ifd.predictor = predictor;
  return ifd;
}

IfdSpec Tiled(Plane p, uint32_t tile_w, uint32_t tile_h, uint16_t compression,
              uint16_t predictor = 1) {
  IfdSpec ifd;
  ifd.plane = std::move(p);
  ifd.tiled = true;
  ifd.tile_width = tile_w;
  ifd.tile_length = tile_h;
  ifd.compression = compression;
  ifd.predictor = predictor;
  return ifd;
}

// Shape and axes of one page as tifffile reports it.
Shape PageShape(const Plane& p) {
  if (p.samples == 1) return {p.height, p.width};
  if (p.planar) return {p.samples, p.height, p.width};
  return {p.height, p.width, p.samples};
}
std::string PageAxes(const Plane& p) {
  if (p.samples == 1) return "YX";
  return p.planar ? "SYX" : "YXS";
}

LevelExpect Level(Shape shape, const std::vector<const Plane*>& planes, bool lossy) {
  LevelExpect level{std::move(shape), std::nullopt};
  if (!lossy) level.crc32 = Crc32Of(planes);
  return level;
}

// A series of equal pages stacked along tifffile's generic 'I' axis (or one page alone).
LevelExpect StackLevel(const std::vector<const Plane*>& planes, bool lossy) {
  Shape shape = PageShape(*planes.front());
  if (planes.size() > 1) shape.insert(shape.begin(), planes.size());
  return Level(shape, planes, lossy);
}
SeriesExpect StackSeries(const std::vector<const Plane*>& planes, bool lossy) {
  const Plane& p = *planes.front();
  return {(planes.size() > 1 ? "I" : "") + PageAxes(p),
          NumpyName(p.type),
          {StackLevel(planes, lossy)},
          ""};
}

// The whole file is one series of its top-level IFDs (plus SubIFD levels of the first one).
SeriesExpect WholeFileSeries(const TiffFileSpec& f) {
  std::vector<const Plane*> planes;
  bool lossy = false;
  for (const IfdSpec& ifd : f.ifds) {
    planes.push_back(&ifd.plane);
    lossy |= IsLossy(ifd.compression);
  }
  SeriesExpect s = StackSeries(planes, lossy);
  for (size_t l = 0; l < f.ifds.front().subifds.size(); ++l) {
    std::vector<const Plane*> level;
    for (const IfdSpec& ifd : f.ifds) level.push_back(&ifd.subifds[l].plane);
    s.levels.push_back(StackLevel(level, lossy));
  }
  return s;
}

Sample Simple(std::string path, std::string covers, TiffFileSpec file) {
  Sample s{std::move(path), std::move(covers), std::move(file), {}, Damage::kNone};
  s.series.push_back(WholeFileSeries(s.file));
  return s;
}

Plane Make(const std::string& path, uint32_t w, uint32_t h, SampleType t, uint16_t spp = 1,
           bool planar = false, uint32_t plane = 0, bool smooth = false) {
  return MakePlane(w, h, t, spp, planar, SeedOf(path), plane, smooth);
}

// ---------------------------------------------------------------------------------------------
// Plain TIFF layouts

void AddDtypes(std::vector<Sample>& out) {
  const SampleType types[] = {
      SampleType::kU8,  SampleType::kI8,  SampleType::kU16, SampleType::kI16, SampleType::kU32,
      SampleType::kI32, SampleType::kU64, SampleType::kI64, SampleType::kF32, SampleType::kF64};
  for (SampleType t : types) {
    for (bool be : {false, true}) {
      if (be && SampleBytes(t) == 1) continue;  // byte order is moot for single bytes
      const std::string path =
          "dtypes/" + ShortName(t) + "_strips_none_" + (be ? "be" : "le") + ".tif";
      out.push_back(Simple(path,
                           NumpyName(t) + " samples, uncompressed strips (rps 16), " +
                               (be ? "big" : "little") + "-endian classic TIFF",
                           {false, be, {Stripped(Make(path, 61, 45, t), 16, COMPRESSION_NONE)}}));
    }
  }
}

void AddBigTiff(std::vector<Sample>& out) {
  {
    const std::string p = "bigtiff/u16_tiled_deflate_le.tif";
    out.push_back(
        Simple(p, "BigTIFF, little-endian, uint16 deflate tiles 64x64 with edge tiles",
               {true,
                false,
                {Tiled(Make(p, 150, 100, SampleType::kU16), 64, 64, COMPRESSION_ADOBE_DEFLATE)}}));
  }
  {
    const std::string p = "bigtiff/f32_strips_lzw_be.tif";
    out.push_back(
        Simple(p, "BigTIFF, big-endian, float32 LZW strips (rps 10, short last strip)",
               {true, true, {Stripped(Make(p, 70, 55, SampleType::kF32), 10, COMPRESSION_LZW)}}));
  }
  {
    const std::string p = "bigtiff/rgb_u8_tiled_zstd_be.tif";
    out.push_back(Simple(
        p, "BigTIFF, big-endian, RGB uint8 chunky zstd tiles",
        {true, true, {Tiled(Make(p, 96, 80, SampleType::kU8, 3), 32, 32, COMPRESSION_ZSTD)}}));
  }
  {
    const std::string p = "bigtiff/i64_tiled_none_be.tif";
    out.push_back(
        Simple(p, "BigTIFF, big-endian, int64 uncompressed tiles",
               {true, true, {Tiled(Make(p, 40, 40, SampleType::kI64), 16, 16, COMPRESSION_NONE)}}));
  }
}

void AddStripped(std::vector<Sample>& out) {
  {
    const std::string p = "stripped/u8_rps16_short_last_strip.tif";
    out.push_back(
        Simple(p, "height 100 with RowsPerStrip 16: last strip holds 4 rows; deflate",
               {false,
                false,
                {Stripped(Make(p, 90, 100, SampleType::kU8), 16, COMPRESSION_ADOBE_DEFLATE)}}));
  }
  {
    const std::string p = "stripped/u16_rps1_be.tif";
    out.push_back(
        Simple(p, "RowsPerStrip 1 (one strip per row), uncompressed, big-endian",
               {false, true, {Stripped(Make(p, 50, 40, SampleType::kU16), 1, COMPRESSION_NONE)}}));
  }
  {
    const std::string p = "stripped/i16_single_strip_packbits.tif";
    out.push_back(Simple(
        p, "whole image in one strip (RowsPerStrip = height), PackBits",
        {false, false, {Stripped(Make(p, 77, 33, SampleType::kI16), 0, COMPRESSION_PACKBITS)}}));
  }
  {
    const std::string p = "stripped/u16_lzw_pred2_rps7.tif";
    out.push_back(Simple(
        p, "LZW + horizontal predictor on strips of 7 rows (short last strip)",
        {false, false, {Stripped(Make(p, 64, 50, SampleType::kU16), 7, COMPRESSION_LZW, 2)}}));
  }
  {
    const std::string p = "stripped/u16_zstd.tif";
    out.push_back(Simple(
        p, "zstd (50000) strips of 16 rows",
        {false, false, {Stripped(Make(p, 80, 60, SampleType::kU16), 16, COMPRESSION_ZSTD)}}));
  }
  {
    const std::string p = "stripped/u8_packbits.tif";
    out.push_back(Simple(
        p, "PackBits strips of 8 rows",
        {false, false, {Stripped(Make(p, 100, 44, SampleType::kU8), 8, COMPRESSION_PACKBITS)}}));
  }
}

void AddTiled(std::vector<Sample>& out) {
  struct T {
    const char* path;
    const char* covers;
    SampleType type;
    uint16_t compression, predictor;
    bool be;
    uint32_t w, h, tw, th;
  };
  const T tiled[] = {
      {"tiled/u16_deflate_pred2_be.tif", "deflate + horizontal predictor, big-endian",
       SampleType::kU16, COMPRESSION_ADOBE_DEFLATE, 2, true, 128, 96, 32, 32},
      {"tiled/u8_lzw_pred2.tif", "LZW + horizontal predictor, uint8", SampleType::kU8,
       COMPRESSION_LZW, 2, false, 128, 96, 32, 32},
      {"tiled/i16_lzw_pred2_be.tif", "LZW + horizontal predictor, int16, big-endian",
       SampleType::kI16, COMPRESSION_LZW, 2, true, 100, 70, 32, 32},
      {"tiled/f32_deflate_pred3.tif", "deflate + floating-point predictor 3, float32",
       SampleType::kF32, COMPRESSION_ADOBE_DEFLATE, 3, false, 96, 64, 32, 32},
      {"tiled/f64_deflate_pred3.tif", "deflate + floating-point predictor 3, float64",
       SampleType::kF64, COMPRESSION_ADOBE_DEFLATE, 3, false, 64, 48, 32, 16},
      {"tiled/f32_deflate_pred3_be.tif",
       "deflate + floating-point predictor 3, float32, big-endian (predictor encoded by the "
       "generator)",
       SampleType::kF32, COMPRESSION_ADOBE_DEFLATE, 3, true, 96, 64, 32, 32},
      {"tiled/f64_deflate_pred3_be.tif",
       "deflate + floating-point predictor 3, float64, big-endian (predictor encoded by the "
       "generator: "
       "libtiff 4.5 corrupts this case)",
       SampleType::kF64, COMPRESSION_ADOBE_DEFLATE, 3, true, 64, 48, 32, 16},
      {"tiled/u16_zstd.tif", "zstd tiles", SampleType::kU16, COMPRESSION_ZSTD, 1, false, 128, 128,
       64, 64},
      {"tiled/u8_packbits.tif", "PackBits tiles", SampleType::kU8, COMPRESSION_PACKBITS, 1, false,
       64, 64, 32, 32},
      {"tiled/u32_none.tif", "uncompressed uint32 tiles", SampleType::kU32, COMPRESSION_NONE, 1,
       false, 64, 48, 32, 16},
      {"tiled/u16_edge_tiles_deflate.tif",
       "200x150 image in 64x64 tiles: partial edge tiles right and bottom", SampleType::kU16,
       COMPRESSION_ADOBE_DEFLATE, 1, false, 200, 150, 64, 64},
      {"tiled/u8_nonsquare_tiles_lzw.tif", "non-square 48x16 tiles, LZW, edge tiles",
       SampleType::kU8, COMPRESSION_LZW, 1, false, 100, 40, 48, 16},
      {"tiled/u8_single_oversize_tile.tif", "one 128x128 tile larger than the 90x70 image",
       SampleType::kU8, COMPRESSION_ADOBE_DEFLATE, 1, false, 90, 70, 128, 128},
  };
  for (const T& t : tiled) {
    IfdSpec ifd = Tiled(Make(t.path, t.w, t.h, t.type), t.tw, t.th, t.compression, t.predictor);
    ifd.own_float_predictor = t.be && t.predictor == PREDICTOR_FLOATINGPOINT;
    out.push_back(Simple(t.path, t.covers, {false, t.be, {std::move(ifd)}}));
  }
  {
    // Sparse: tiles 1, 4 and 5 are never written, so libtiff leaves their offset and count 0.
    const std::string p = "tiled/u16_sparse_tiles_deflate.tif";
    IfdSpec ifd = Tiled(Make(p, 128, 96, SampleType::kU16), 32, 32, COMPRESSION_ADOBE_DEFLATE);
    const uint32_t tiles_across = 4;
    for (uint32_t index : {1u, 4u, 5u, 11u}) {
      ifd.skipped_chunks.insert(index);
      ifd.plane.Zero((index % tiles_across) * 32, (index / tiles_across) * 32, 32, 32);
    }
    out.push_back(
        Simple(p, "sparse: tiles 1, 4, 5, 11 have TileOffsets/TileByteCounts 0 (read as zeros)",
               {false, false, {std::move(ifd)}}));
  }
}

void AddCompressionAndRgb(std::vector<Sample>& out) {
  {
    const std::string p = "jpeg/gray_u8_tiled_q80.tif";
    IfdSpec ifd =
        Tiled(Make(p, 200, 120, SampleType::kU8, 1, false, 0, true), 64, 64, COMPRESSION_JPEG);
    ifd.jpeg_quality = 80;
    out.push_back(Simple(p, "JPEG (7) 8-bit grayscale tiles with JPEGTables, edge tiles",
                         {false, false, {ifd}}));
  }
  {
    const std::string p = "jpeg/rgb_ycbcr_tiled_q75.tif";
    IfdSpec ifd =
        Tiled(Make(p, 200, 150, SampleType::kU8, 3, false, 0, true), 64, 64, COMPRESSION_JPEG);
    ifd.jpeg_ycbcr = true;
    out.push_back(Simple(p, "JPEG RGB as YCbCr 2x2 (JPEGCOLORMODE RGB), shared JPEGTables, tiles",
                         {false, false, {ifd}}));
  }
  {
    const std::string p = "jpeg/rgb_ycbcr_strips_be.tif";
    IfdSpec ifd =
        Stripped(Make(p, 120, 90, SampleType::kU8, 3, false, 0, true), 32, COMPRESSION_JPEG);
    ifd.jpeg_ycbcr = true;
    out.push_back(Simple(p, "JPEG YCbCr strips of 32 rows (short last strip), big-endian",
                         {false, true, {ifd}}));
  }
  {
    const std::string p = "rgb/rgb_u8_chunky_tiled_none.tif";
    out.push_back(Simple(
        p, "RGB chunky (interleaved) uncompressed tiles",
        {false, false, {Tiled(Make(p, 100, 80, SampleType::kU8, 3), 32, 32, COMPRESSION_NONE)}}));
  }
  {
    const std::string p = "rgb/rgb_u8_planar_tiled_deflate.tif";
    out.push_back(Simple(
        p, "RGB planar (separate) deflate tiles: one tile grid per sample",
        {false,
         false,
         {Tiled(Make(p, 100, 80, SampleType::kU8, 3, true), 32, 32, COMPRESSION_ADOBE_DEFLATE)}}));
  }
  {
    const std::string p = "rgb/rgb_u16_planar_strips_lzw_be.tif";
    out.push_back(
        Simple(p, "RGB uint16 planar LZW strips, big-endian",
               {false,
                true,
                {Stripped(Make(p, 70, 50, SampleType::kU16, 3, true), 16, COMPRESSION_LZW)}}));
  }
  {
    const std::string p = "rgb/rgb_u16_chunky_strips_deflate_pred2.tif";
    out.push_back(Simple(
        p, "RGB uint16 chunky deflate + predictor 2 strips",
        {false,
         false,
         {Stripped(Make(p, 70, 50, SampleType::kU16, 3), 16, COMPRESSION_ADOBE_DEFLATE, 2)}}));
  }
}

void AddStacksAndPyramids(std::vector<Sample>& out) {
  {
    const std::string p = "stacks/u16_zstack_10pages_deflate.tif";
    TiffFileSpec f{false, false, {}};
    for (uint32_t z = 0; z < 10; ++z) {
      f.ifds.push_back(
          Tiled(Make(p, 96, 64, SampleType::kU16, 1, false, z), 32, 32, COMPRESSION_ADOBE_DEFLATE));
    }
    out.push_back(
        Simple(p, "10 uniform pages: one series stacked along z (tifffile axis I)", std::move(f)));
  }
  {
    const std::string p = "stacks/two_series_u8_u16.tif";
    TiffFileSpec f{false, false, {}};
    for (uint32_t z = 0; z < 3; ++z)
      f.ifds.push_back(Stripped(Make(p, 64, 48, SampleType::kU8, 1, false, z), 16, 1));
    for (uint32_t z = 0; z < 2; ++z) {
      f.ifds.push_back(Tiled(Make(p, 100, 80, SampleType::kU16, 1, false, 10 + z), 32, 32,
                             COMPRESSION_ADOBE_DEFLATE));
    }
    Sample s{p,
             "pages differ: 3 uint8 64x48 strips then 2 uint16 100x80 tiles = two series",
             f,
             {},
             Damage::kNone};
    s.series.push_back(
        StackSeries({&s.file.ifds[0].plane, &s.file.ifds[1].plane, &s.file.ifds[2].plane}, false));
    s.series.push_back(StackSeries({&s.file.ifds[3].plane, &s.file.ifds[4].plane}, false));
    out.push_back(std::move(s));
  }
  {
    const std::string p = "pyramids/u16_subifd_pyramid_deflate.tif";
    IfdSpec base = Tiled(Make(p, 256, 192, SampleType::kU16), 64, 64, COMPRESSION_ADOBE_DEFLATE);
    for (uint32_t f : {2u, 4u}) {
      IfdSpec level = Tiled(Downsample(base.plane, f), 64, 64, COMPRESSION_ADOBE_DEFLATE);
      level.subfile_type = FILETYPE_REDUCEDIMAGE;
      base.subifds.push_back(std::move(level));
    }
    out.push_back(Simple(p, "pyramid in SubIFDs: 256x192 + 128x96 + 64x48 (NewSubfileType 1)",
                         {false, false, {std::move(base)}}));
  }
  {
    const std::string p = "pyramids/u8_cog_reduced_ifds.tif";
    TiffFileSpec f{false, false, {}};
    f.ifds.push_back(Tiled(Make(p, 256, 256, SampleType::kU8), 64, 64, COMPRESSION_ADOBE_DEFLATE));
    for (uint32_t factor : {2u, 4u}) {
      IfdSpec level = Tiled(Downsample(f.ifds[0].plane, factor), 64, 64, COMPRESSION_ADOBE_DEFLATE);
      level.subfile_type = FILETYPE_REDUCEDIMAGE;
      f.ifds.push_back(std::move(level));
    }
    Sample s{p,
             "COG-style pyramid: reduced-resolution IFDs (NewSubfileType 1) after the full image",
             f,
             {},
             Damage::kNone};
    SeriesExpect series = StackSeries({&s.file.ifds[0].plane}, false);
    series.levels.push_back(StackLevel({&s.file.ifds[1].plane}, false));
    series.levels.push_back(StackLevel({&s.file.ifds[2].plane}, false));
    s.series.push_back(std::move(series));
    out.push_back(std::move(s));
  }
}

// ---------------------------------------------------------------------------------------------
// Microscopy and slide flavours

void AddImageJ(std::vector<Sample>& out) {
  const std::string p = "imagej/hyperstack_u16_t4_z3_c2_be.tif";
  const uint32_t channels = 2, slices = 3, frames = 4;
  const std::string description =
      "ImageJ=1.54f\nimages=24\nchannels=2\nslices=3\nframes=4\nhyperstack=true\nmode=composite\n"
      "unit=micron\nspacing=0.5\nloop=false\nmin=0.0\nmax=4000.0\n";
  TiffFileSpec f{false, true, {}};  // ImageJ writes big-endian files
  for (uint32_t i = 0; i < channels * slices * frames; ++i) {
    IfdSpec ifd = Stripped(Make(p, 64, 48, SampleType::kU16, 1, false, i), 0, COMPRESSION_NONE);
    if (i == 0) ifd.description = description;
    ifd.x_resolution = 4.0;  // pixels per micron: 0.25 um pixels
    ifd.y_resolution = 4.0;
    ifd.resolution_unit = RESUNIT_NONE;
    ifd.software.clear();
    f.ifds.push_back(std::move(ifd));
  }
  Sample s{
      p,
      "ImageJ hyperstack: images=24 channels=2 slices=3 frames=4, 0.25 um pixels, spacing 0.5 um, "
      "one uncompressed strip per plane, big-endian",
      std::move(f),
      {},
      Damage::kNone};
  std::vector<const Plane*> planes;
  for (const IfdSpec& ifd : s.file.ifds) planes.push_back(&ifd.plane);
  s.series.push_back(
      {"TZCYX", "uint16", {Level({frames, slices, channels, 48, 64}, planes, false)}, ""});
  out.push_back(std::move(s));
}

void AddSvs(std::vector<Sample>& out) {
  const std::string p = "svs/aperio_style_jpeg_pyramid.svs";
  const uint32_t w = 700, h = 500;
  const std::string head = "Aperio Image Library v12.0.15 \r\n";
  const std::string props =
      "|AppMag = 20|StripeWidth = 1000|ScanScope ID = SS1234|Filename = refzarr-sample|Date = "
      "01/02/24"
      "|Time = 10:00:00|Time Zone = GMT+00:00|User = refzarr|MPP = 0.4990|Left = 25.000000"
      "|Top = 20.000000|LineCameraSkew = 0.000000|LineAreaXOffset = 0.000000|Focus Offset = "
      "0.000000"
      "|ImageID = 1|OriginalWidth = 700|OriginalHeight = 500|Filtered = 5|ICC Profile = ScanScope "
      "v1";
  const std::string size = std::to_string(w) + "x" + std::to_string(h);
  TiffFileSpec f{false, false, {}};
  auto jpeg_tiled = [&](Plane plane) {
    IfdSpec ifd = Tiled(std::move(plane), 240, 240, COMPRESSION_JPEG);
    ifd.jpeg_ycbcr = true;
    ifd.jpeg_quality = 70;
    ifd.software.clear();
    return ifd;
  };
  IfdSpec base = jpeg_tiled(Make(p, w, h, SampleType::kU8, 3, false, 0, true));
  base.description = head + size + " [0,100 " + size + "] (240x240) JPEG/RGB Q=70" + props;
  // Thumbnail: a stripped JPEG, second IFD, as Aperio writes it.
  IfdSpec thumb = Stripped(Downsample(base.plane, 5), 16, COMPRESSION_JPEG);
  thumb.jpeg_ycbcr = true;
  thumb.software.clear();
  thumb.description = head + size + " -> 140x100 - " + props;
  std::vector<IfdSpec> levels;
  for (uint32_t factor : {2u, 4u}) {
    IfdSpec level = jpeg_tiled(Downsample(base.plane, factor));
    level.description = head + size + " [0,100 " + size + "] (240x240) -> " +
                        std::to_string(level.plane.width) + "x" +
                        std::to_string(level.plane.height) + " JPEG/RGB Q=70" + props;
    levels.push_back(std::move(level));
  }
  IfdSpec label = Stripped(Make(p, 120, 100, SampleType::kU8, 3, false, 50), 16, COMPRESSION_LZW);
  label.subfile_type = FILETYPE_REDUCEDIMAGE;
  label.software.clear();
  label.description = "Aperio Image Library v12.0.15\r\nlabel 120x100";
  IfdSpec macro =
      Stripped(Make(p, 300, 100, SampleType::kU8, 3, false, 60, true), 16, COMPRESSION_JPEG);
  macro.jpeg_ycbcr = true;
  macro.subfile_type = FILETYPE_REDUCEDIMAGE | 8;  // 9: Aperio's marker for the macro image
  macro.software.clear();
  macro.description = "Aperio Image Library v12.0.15\r\nmacro 300x100";
  f.ifds.push_back(std::move(base));
  f.ifds.push_back(std::move(thumb));
  for (IfdSpec& l : levels) f.ifds.push_back(std::move(l));
  f.ifds.push_back(std::move(label));
  f.ifds.push_back(std::move(macro));
  Sample s{p,
           "Aperio SVS layout: 700x500 JPEG-YCbCr 240x240 tiles (shared JPEGTables), MPP 0.499, "
           "stripped JPEG thumbnail, 2 reduced tiled levels, LZW label (NewSubfileType 1), JPEG "
           "macro (9)",
           std::move(f),
           {},
           Damage::kNone};
  const auto& ifds = s.file.ifds;
  auto one = [](const IfdSpec& ifd) { return StackLevel({&ifd.plane}, IsLossy(ifd.compression)); };
  s.series.push_back({"YXS", "uint8", {one(ifds[0]), one(ifds[2]), one(ifds[3])}, "Baseline"});
  s.series.push_back({"YXS", "uint8", {one(ifds[1])}, "Thumbnail"});
  s.series.push_back({"YXS", "uint8", {one(ifds[4])}, "Label"});
  s.series.push_back({"YXS", "uint8", {one(ifds[5])}, "Macro"});
  out.push_back(std::move(s));
}

// OME-XML pieces.
std::string Uuid(const std::string& name) {
  const uint64_t a = SeedOf(name), b = SeedOf(name + "#");
  char buf[64];
  std::snprintf(buf, sizeof buf, "urn:uuid:%08x-%04x-4%03x-8%03x-%012llx",
                static_cast<unsigned>(a >> 32), static_cast<unsigned>(a >> 16) & 0xffff,
                static_cast<unsigned>(a) & 0xfff, static_cast<unsigned>(b >> 48) & 0xfff,
                static_cast<unsigned long long>(b & 0xffffffffffffULL));
  return buf;
}

std::string OmeType(SampleType t) {
  if (t == SampleType::kF32) return "float";
  if (t == SampleType::kF64) return "double";
  return NumpyName(t);
}

struct OmeImage {
  std::string name;
  SampleType type;
  uint32_t sx, sy, sc, sz, st;
  std::string physical;  // extra Pixels attributes (PhysicalSize..., TimeIncrement...)
  std::vector<std::pair<std::string, int32_t>> channels;  // name, RGBA colour as signed int
  std::string tiffdata;                                   // the TiffData elements
};

std::string OmeXml(const std::string& uuid, const std::vector<OmeImage>& images) {
  std::string x =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<OME xmlns=\"http://www.openmicroscopy.org/Schemas/OME/2016-06\" "
      "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" "
      "xsi:schemaLocation=\"http://www.openmicroscopy.org/Schemas/OME/2016-06 "
      "http://www.openmicroscopy.org/Schemas/OME/2016-06/ome.xsd\" UUID=\"" +
      uuid + "\" Creator=\"refzarr-samples\">\n";
  for (size_t i = 0; i < images.size(); ++i) {
    const OmeImage& im = images[i];
    const std::string id = std::to_string(i);
    x += "  <Image ID=\"Image:" + id + "\" Name=\"" + im.name + "\">\n";
    x += "    <Pixels ID=\"Pixels:" + id + "\" DimensionOrder=\"XYCZT\" Type=\"" +
         OmeType(im.type) + "\" SizeX=\"" + std::to_string(im.sx) + "\" SizeY=\"" +
         std::to_string(im.sy) + "\" SizeC=\"" + std::to_string(im.sc) + "\" SizeZ=\"" +
         std::to_string(im.sz) + "\" SizeT=\"" + std::to_string(im.st) + "\"" + im.physical + ">\n";
    for (size_t c = 0; c < im.channels.size(); ++c) {
      x += "      <Channel ID=\"Channel:" + id + ":" + std::to_string(c) + "\" Name=\"" +
           im.channels[c].first + "\" Color=\"" + std::to_string(im.channels[c].second) +
           "\" SamplesPerPixel=\"1\"/>\n";
    }
    x += im.tiffdata;
    x += "    </Pixels>\n  </Image>\n";
  }
  x += "</OME>\n";
  return x;
}

constexpr int32_t kBlue = 0x0000FFFF;   // RGBA 0,0,255,255
constexpr int32_t kGreen = 0x00FF00FF;  // RGBA 0,255,0,255
constexpr int32_t kRed = static_cast<int32_t>(0xFF0000FFu);
constexpr int32_t kWhite = -1;

void AddOme(std::vector<Sample>& out) {
  const std::string um = "\u00b5m";
  {
    // Two Images in one file: (C2, Z3) uint16 tiles then T3 uint8 strips.
    const std::string p = "ome/multiseries_2images.ome.tif";
    TiffFileSpec f{false, false, {}};
    for (uint32_t i = 0; i < 6; ++i) {
      f.ifds.push_back(Tiled(Make(p, 160, 120, SampleType::kU16, 1, false, i), 64, 64,
                             COMPRESSION_ADOBE_DEFLATE));
    }
    for (uint32_t t = 0; t < 3; ++t) {
      f.ifds.push_back(
          Stripped(Make(p, 100, 80, SampleType::kU8, 1, false, 100 + t), 16, COMPRESSION_NONE));
    }
    OmeImage a{"cells",
               SampleType::kU16,
               160,
               120,
               2,
               3,
               1,
               " PhysicalSizeX=\"0.325\" PhysicalSizeXUnit=\"" + um +
                   "\" PhysicalSizeY=\"0.325\" "
                   "PhysicalSizeYUnit=\"" +
                   um + "\" PhysicalSizeZ=\"1.5\" PhysicalSizeZUnit=\"" + um + "\"",
               {{"DAPI", kBlue}, {"GFP", kGreen}},
               "      <TiffData IFD=\"0\" PlaneCount=\"6\"/>\n"};
    OmeImage b{"timelapse",
               SampleType::kU8,
               100,
               80,
               1,
               1,
               3,
               " PhysicalSizeX=\"2.0\" PhysicalSizeXUnit=\"" + um +
                   "\" PhysicalSizeY=\"2.0\" "
                   "PhysicalSizeYUnit=\"" +
                   um + "\" TimeIncrement=\"2.5\" TimeIncrementUnit=\"s\"",
               {{"Brightfield", kWhite}},
               "      <TiffData IFD=\"6\" PlaneCount=\"3\"/>\n"};
    f.ifds[0].description = OmeXml(Uuid(p), {a, b});
    Sample s{
        p,
        "OME-TIFF with 2 Images (XYCZT): C2 Z3 uint16 deflate tiles (0.325x0.325x1.5 um, channel "
        "names and colours) + T3 uint8 strips (TimeIncrement 2.5 s)",
        std::move(f),
        {},
        Damage::kNone};
    std::vector<const Plane*> pa, pb;
    for (uint32_t i = 0; i < 6; ++i) pa.push_back(&s.file.ifds[i].plane);
    for (uint32_t i = 6; i < 9; ++i) pb.push_back(&s.file.ifds[i].plane);
    s.series.push_back({"TZCYX", "uint16", {Level({1, 3, 2, 120, 160}, pa, false)}, "cells"});
    s.series.push_back({"TZCYX", "uint8", {Level({3, 1, 1, 80, 100}, pb, false)}, "timelapse"});
    out.push_back(std::move(s));
  }
  {
    // Planes stored T-major, then Z, then C reversed: every TiffData names its plane explicitly.
    const std::string p = "ome/shuffled_planes.ome.tif";
    const uint32_t sc = 2, sz = 3, st = 2;
    std::vector<Plane> logical;  // in tifffile's (t, z, c) order
    for (uint32_t i = 0; i < sc * sz * st; ++i)
      logical.push_back(Make(p, 96, 64, SampleType::kU16, 1, false, i));
    TiffFileSpec f{false, false, {}};
    std::string tiffdata;
    uint32_t ifd = 0;
    for (uint32_t t = 0; t < st; ++t) {
      for (uint32_t c = sc; c-- > 0;) {
        for (uint32_t z = 0; z < sz; ++z) {
          f.ifds.push_back(Stripped(logical[(t * sz + z) * sc + c], 16, COMPRESSION_ADOBE_DEFLATE));
          tiffdata += "      <TiffData IFD=\"" + std::to_string(ifd++) + "\" FirstC=\"" +
                      std::to_string(c) + "\" FirstZ=\"" + std::to_string(z) + "\" FirstT=\"" +
                      std::to_string(t) + "\" PlaneCount=\"1\"/>\n";
        }
      }
    }
    OmeImage a{"shuffled",
               SampleType::kU16,
               96,
               64,
               sc,
               sz,
               st,
               " PhysicalSizeX=\"0.5\" PhysicalSizeXUnit=\"" + um +
                   "\" PhysicalSizeY=\"0.5\" "
                   "PhysicalSizeYUnit=\"" +
                   um + "\" PhysicalSizeZ=\"2\" PhysicalSizeZUnit=\"" + um + "\"",
               {{"red", kRed}, {"green", kGreen}},
               tiffdata};
    f.ifds[0].description = OmeXml(Uuid(p), {a});
    Sample s{p,
             "OME-TIFF whose 12 planes are stored in non-default IFD order (T, then C descending, "
             "then Z); "
             "one TiffData per plane with FirstC/FirstZ/FirstT",
             std::move(f),
             {},
             Damage::kNone};
    std::vector<const Plane*> planes;
    for (const Plane& pl : logical) planes.push_back(&pl);
    s.series.push_back(
        {"TZCYX", "uint16", {Level({st, sz, sc, 64, 96}, planes, false)}, "shuffled"});
    out.push_back(std::move(s));
  }
  {
    const std::string p = "ome/pyramid_subifds.ome.tif";
    TiffFileSpec f{false, false, {}};
    for (uint32_t c = 0; c < 2; ++c) {
      IfdSpec base = Tiled(Make(p, 256, 192, SampleType::kU16, 1, false, c), 64, 64,
                           COMPRESSION_ADOBE_DEFLATE);
      for (uint32_t factor : {2u, 4u}) {
        IfdSpec level = Tiled(Downsample(base.plane, factor), 64, 64, COMPRESSION_ADOBE_DEFLATE);
        level.subfile_type = FILETYPE_REDUCEDIMAGE;
        base.subifds.push_back(std::move(level));
      }
      f.ifds.push_back(std::move(base));
    }
    OmeImage a{"pyramid",
               SampleType::kU16,
               256,
               192,
               2,
               1,
               1,
               " PhysicalSizeX=\"0.25\" PhysicalSizeXUnit=\"" + um +
                   "\" PhysicalSizeY=\"0.25\" "
                   "PhysicalSizeYUnit=\"" +
                   um + "\"",
               {{"DAPI", kBlue}, {"GFP", kGreen}},
               "      <TiffData IFD=\"0\" PlaneCount=\"2\"/>\n"};
    f.ifds[0].description = OmeXml(Uuid(p), {a});
    Sample s{p,
             "OME-TIFF pyramid: C2 256x192 planes, each with 2 SubIFD levels (128x96, 64x48)",
             std::move(f),
             {},
             Damage::kNone};
    SeriesExpect series{"TZCYX", "uint16", {}, "pyramid"};
    series.levels.push_back(
        Level({1, 1, 2, 192, 256}, {&s.file.ifds[0].plane, &s.file.ifds[1].plane}, false));
    series.levels.push_back(
        Level({1, 1, 2, 96, 128},
              {&s.file.ifds[0].subifds[0].plane, &s.file.ifds[1].subifds[0].plane}, false));
    series.levels.push_back(
        Level({1, 1, 2, 48, 64},
              {&s.file.ifds[0].subifds[1].plane, &s.file.ifds[1].subifds[1].plane}, false));
    s.series.push_back(std::move(series));
    out.push_back(std::move(s));
  }
  {
    // Multi-file set: each file holds the two channels of one z; z0 holds the master OME-XML.
    const std::string dir = "ome/multifile/";
    const uint32_t sz = 3;
    std::vector<std::string> names, uuids;
    for (uint32_t z = 0; z < sz; ++z) {
      names.push_back("multifile_z" + std::to_string(z) + ".ome.tif");
      uuids.push_back(Uuid(dir + names.back()));
    }
    std::string tiffdata;
    for (uint32_t z = 0; z < sz; ++z) {
      tiffdata += "      <TiffData FirstZ=\"" + std::to_string(z) +
                  "\" IFD=\"0\" PlaneCount=\"2\">\n"
                  "        <UUID FileName=\"" +
                  names[z] + "\">" + uuids[z] + "</UUID>\n      </TiffData>\n";
    }
    OmeImage a{"multifile",
               SampleType::kU8,
               64,
               48,
               2,
               sz,
               1,
               " PhysicalSizeX=\"1.0\" PhysicalSizeXUnit=\"" + um +
                   "\" PhysicalSizeY=\"1.0\" "
                   "PhysicalSizeYUnit=\"" +
                   um + "\" PhysicalSizeZ=\"3.0\" PhysicalSizeZUnit=\"" + um + "\"",
               {{"ch0", kRed}, {"ch1", kGreen}},
               tiffdata};
    std::vector<Sample> files;
    for (uint32_t z = 0; z < sz; ++z) {
      const std::string p = dir + names[z];
      TiffFileSpec f{false, false, {}};
      for (uint32_t c = 0; c < 2; ++c) {
        f.ifds.push_back(Stripped(Make(dir, 64, 48, SampleType::kU8, 1, false, z * 2 + c), 16,
                                  COMPRESSION_NONE));
      }
      if (z == 0) {
        f.ifds[0].description = OmeXml(uuids[0], {a});
      } else {
        f.ifds[0].description =
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<OME xmlns=\"http://www.openmicroscopy.org/Schemas/OME/2016-06\" UUID=\"" +
            uuids[z] + "\" Creator=\"refzarr-samples\">\n  <BinaryOnly MetadataFile=\"" + names[0] +
            "\" UUID=\"" + uuids[0] + "\"/>\n</OME>\n";
      }
      const std::string covers =
          z == 0
              ? "multi-file OME-TIFF master: full OME-XML, TiffData/UUID FileName referencing all "
                "3 files (C2 Z3)"
              : "multi-file OME-TIFF member: BinaryOnly OME-XML pointing at the master; 2 planes";
      files.push_back(Sample{p, covers, std::move(f), {}, Damage::kNone});
    }
    std::vector<const Plane*> all;
    for (const Sample& s : files) {
      for (const IfdSpec& ifd : s.file.ifds) all.push_back(&ifd.plane);
    }
    files[0].series.push_back(
        {"TZCYX", "uint8", {Level({1, sz, 2, 48, 64}, all, false)}, "multifile"});
    // tifffile does not follow BinaryOnly, so members read as plain 2-page stacks.
    for (uint32_t z = 1; z < sz; ++z) files[z].series.push_back(WholeFileSeries(files[z].file));
    for (Sample& s : files) out.push_back(std::move(s));
  }
}

void AddBad(std::vector<Sample>& out) {
  {
    const std::string p = "bad/truncated_half.tif";
    Sample s = Simple(
        p, "truncated to half its size: the IFD (written last) is gone, header points past EOF",
        {false,
         false,
         {Tiled(Make(p, 128, 128, SampleType::kU16), 32, 32, COMPRESSION_ADOBE_DEFLATE)}});
    s.series.clear();
    s.damage = Damage::kTruncateHalf;
    out.push_back(std::move(s));
  }
  {
    const std::string p = "bad/next_ifd_past_eof.tif";
    TiffFileSpec f{false, false, {}};
    for (uint32_t z = 0; z < 2; ++z)
      f.ifds.push_back(Stripped(Make(p, 64, 64, SampleType::kU8, 1, false, z), 16, 1));
    Sample s{
        p,
        "2 pages cut just before the second IFD: the first IFD's next-IFD offset points past EOF",
        std::move(f),
        {},
        Damage::kCutBeforeLastIfd};
    out.push_back(std::move(s));
  }
}

nlohmann::json ShapeJson(const Shape& shape) {
  nlohmann::json j = nlohmann::json::array();
  for (uint64_t v : shape) j.push_back(v);
  return j;
}

nlohmann::json CrcJson(const std::optional<uint32_t>& crc) {
  return crc ? nlohmann::json(*crc) : nlohmann::json(nullptr);
}

}  // namespace

std::vector<Sample> BuildCatalogue() {
  std::vector<Sample> out;
  AddDtypes(out);
  AddBigTiff(out);
  AddStripped(out);
  AddTiled(out);
  AddCompressionAndRgb(out);
  AddStacksAndPyramids(out);
  AddImageJ(out);
  AddSvs(out);
  AddOme(out);
  AddBad(out);
  return out;
}

nlohmann::json ManifestEntry(const Sample& s) {
  nlohmann::json j;
  j["path"] = s.path;
  j["covers"] = s.covers;
  j["bigtiff"] = s.file.bigtiff;
  j["byte_order"] = s.file.big_endian ? ">" : "<";
  j["bad"] = s.damage != Damage::kNone;
  j["ifds"] = s.file.ifds.size();
  nlohmann::json pages = nlohmann::json::array();
  for (const IfdSpec& ifd : s.file.ifds) {
    nlohmann::json page;
    page["shape"] = ShapeJson(PageShape(ifd.plane));
    page["dtype"] = NumpyName(ifd.plane.type);
    page["compression"] = ifd.compression;
    page["predictor"] = ifd.predictor;
    page["tiled"] = ifd.tiled;
    page["subifds"] = ifd.subifds.size();
    page["skipped_chunks"] = ifd.skipped_chunks;
    page["crc32"] =
        IsLossy(ifd.compression) ? nlohmann::json(nullptr) : nlohmann::json(ifd.plane.Crc32());
    pages.push_back(page);
  }
  j["pages"] = pages;
  nlohmann::json series = nlohmann::json::array();
  for (const SeriesExpect& se : s.series) {
    nlohmann::json sj;
    sj["axes"] = se.axes;
    sj["dtype"] = se.dtype;
    if (!se.name.empty()) sj["name"] = se.name;
    nlohmann::json levels = nlohmann::json::array();
    for (const LevelExpect& l : se.levels)
      levels.push_back({{"shape", ShapeJson(l.shape)}, {"crc32", CrcJson(l.crc32)}});
    sj["levels"] = levels;
    series.push_back(sj);
  }
  j["series"] = series;
  return j;
}

}  // namespace refzarr::samples
