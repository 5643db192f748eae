// ImageJ and Aperio descriptions, units, colours and the neutral-model helpers.
#include <array>
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "formats/ome/imagej.h"
#include "formats/ome/ngff_model.h"
#include "formats/ome/svs.h"
#include "formats/ome/units.h"

namespace refzarr {
namespace {

// ---- units and colours ----

TEST(Units, ConvertsOmeSymbolsToNgffNames) {
  EXPECT_EQ(NgffSpaceUnit("\xC2\xB5m"), "micrometer");  // MICRO SIGN
  EXPECT_EQ(NgffSpaceUnit("\xCE\xBCm"), "micrometer");  // GREEK MU
  EXPECT_EQ(NgffSpaceUnit("nm"), "nanometer");
  EXPECT_EQ(NgffSpaceUnit("mm"), "millimeter");
  EXPECT_EQ(NgffSpaceUnit("Mm"), "megameter");  // symbols are case-sensitive
  EXPECT_EQ(NgffSpaceUnit("cm"), "centimeter");
  EXPECT_EQ(NgffSpaceUnit("m"), "meter");
  EXPECT_EQ(NgffSpaceUnit("\xC3\x85"), "angstrom");
  EXPECT_EQ(NgffSpaceUnit("pm"), "picometer");
  EXPECT_EQ(NgffSpaceUnit("in"), "inch");
  EXPECT_EQ(NgffTimeUnit("s"), "second");
  EXPECT_EQ(NgffTimeUnit("ms"), "millisecond");
  EXPECT_EQ(NgffTimeUnit("\xC2\xB5s"), "microsecond");
  EXPECT_EQ(NgffTimeUnit("ns"), "nanosecond");
  EXPECT_EQ(NgffTimeUnit("min"), "minute");
  EXPECT_EQ(NgffTimeUnit("h"), "hour");
  EXPECT_EQ(NgffTimeUnit("d"), "day");
}

TEST(Units, ConvertsImageJSpellingsAndNames) {
  EXPECT_EQ(NgffSpaceUnit("micron"), "micrometer");
  EXPECT_EQ(NgffSpaceUnit("microns"), "micrometer");
  EXPECT_EQ(NgffSpaceUnit(" um "), "micrometer");
  EXPECT_EQ(NgffSpaceUnit("Micrometers"), "micrometer");
  EXPECT_EQ(NgffSpaceUnit("micrometre"), "micrometer");
  EXPECT_EQ(NgffSpaceUnit("nanometer"), "nanometer");
  EXPECT_EQ(NgffTimeUnit("sec"), "second");
  EXPECT_EQ(NgffTimeUnit("msec"), "millisecond");
  EXPECT_EQ(NgffTimeUnit("seconds"), "second");
}

TEST(Units, RefusesUnitsOmeNgffCannotExpress) {
  EXPECT_FALSE(NgffSpaceUnit("pixel"));
  EXPECT_FALSE(NgffSpaceUnit("reference frame"));
  EXPECT_FALSE(NgffSpaceUnit("dam"));  // decameter: an OME unit, not an OME-NGFF one
  EXPECT_FALSE(NgffSpaceUnit(""));
  EXPECT_FALSE(NgffSpaceUnit("s"));
  EXPECT_FALSE(NgffTimeUnit("um"));
}

TEST(Units, EveryConvertedNameIsInTheNgffLists) {
  for (const char* u : {"\xC2\xB5m", "nm", "mm", "cm", "m", "km", "pm", "fm", "am", "zm", "ym",
                        "Ym", "Zm", "Em", "Pm", "Tm", "Gm", "Mm", "hm", "dm", "in", "ft", "yd",
                        "mi", "pc", "\xC3\x85"}) {
    auto name = NgffSpaceUnit(u);
    ASSERT_TRUE(name) << u;
    EXPECT_TRUE(IsNgffSpaceUnit(*name)) << *name;
  }
  for (const char* u : {"s", "ms", "\xC2\xB5s", "ns", "ps", "fs", "as", "zs", "ys", "ks", "Ms",
                        "Gs", "Ts", "Ps", "Es", "Zs", "Ys", "hs", "ds", "cs", "min", "h", "d"}) {
    auto name = NgffTimeUnit(u);
    ASSERT_TRUE(name) << u;
    EXPECT_TRUE(IsNgffTimeUnit(*name)) << *name;
  }
}

TEST(Colors, ConvertsSignedRgbaToRgb) {
  EXPECT_EQ(OmeColorToRgb(-1), 0xFFFFFFu);                 // opaque white
  EXPECT_EQ(OmeColorToRgb(-16776961), 0xFF0000u);          // 0xFF0000FF opaque red
  EXPECT_EQ(OmeColorToRgb(16711935), 0x00FF00u);           // 0x00FF00FF opaque green
  EXPECT_EQ(OmeColorToRgb(65535), 0x0000FFu);              // 0x0000FFFF opaque blue
  EXPECT_EQ(OmeColorToRgb(-2147483648), 0x800000u);        // 0x80000000
  EXPECT_EQ(OmeColorToRgb(0x12345600), 0x123456u);         // transparent: alpha dropped
  EXPECT_EQ(RgbHex(0xFF0000), "FF0000");
  EXPECT_EQ(RgbHex(0x00ff0a), "00FF0A");
}

// ---- ImageJ ----

TEST(ImageJ, ParsesAHyperstackDescription) {
  auto info = ParseImageJDescription(
      "ImageJ=1.53t\nimages=24\nchannels=2\nslices=3\nframes=4\nhyperstack=true\nmode=composite\n"
      "unit=micron\nspacing=0.5\nfinterval=2.5\nloop=false\nmin=10.0\nmax=4000.0\n");
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->version, "1.53t");
  EXPECT_EQ(info->images, 24u);
  EXPECT_EQ(info->channels, 2u);
  EXPECT_EQ(info->slices, 3u);
  EXPECT_EQ(info->frames, 4u);
  EXPECT_TRUE(info->hyperstack);
  EXPECT_EQ(info->mode, "composite");
  EXPECT_EQ(info->unit, "micron");
  EXPECT_EQ(info->spacing, 0.5);
  EXPECT_EQ(info->finterval, 2.5);
  EXPECT_EQ(info->loop, false);
  EXPECT_EQ(info->min, 10.0);
  EXPECT_EQ(info->max, 4000.0);
  EXPECT_EQ(info->entries.size(), 13u);
  EXPECT_EQ(info->PlaneCount(), 24u);
  // Channel fastest, then slice, then frame.
  EXPECT_EQ(ImageJPlaneIndex(*info, 0, 1, 0), 1u);
  EXPECT_EQ(ImageJPlaneIndex(*info, 0, 0, 1), 2u);
  EXPECT_EQ(ImageJPlaneIndex(*info, 1, 0, 0), 6u);
  EXPECT_EQ(ImageJPlaneIndex(*info, 3, 1, 2), 23u);
}

TEST(ImageJ, ParsesTheMicroManagerDescription) {
  // The second ImageDescription of realdata 181003_multi_pos_time_course_1_MMStack.ome.tif.
  auto info = ParseImageJDescription(
      "ImageJ=1.49h\nframes=10\nhyperstack=true\nunit=um\nmin=0\nmax=0\n");
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->SizeT(), 10u);
  EXPECT_EQ(info->SizeC(), 1u);
  EXPECT_EQ(info->SizeZ(), 1u);
  EXPECT_EQ(info->PlaneCount(), 10u);
  EXPECT_FALSE(info->images);
}

TEST(ImageJ, PlainStackOfImagesIsAZStack) {
  auto info = ParseImageJDescription("ImageJ=1.52\r\nimages=7\r\n\0\0\0padding");
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->SizeZ(), 7u);
  EXPECT_EQ(info->PlaneCount(), 7u);
}

TEST(ImageJ, LargeFileWithOneIfdIsContiguous) {
  auto info = ParseImageJDescription("ImageJ=1.53\nimages=600\nslices=600\n");
  ASSERT_TRUE(info.ok());
  auto one = ImageJPlaneLayout(*info, 1);
  ASSERT_TRUE(one.ok()) << one.status().ToString();
  EXPECT_EQ(one->planes, 600u);
  EXPECT_TRUE(one->contiguous_after_first_ifd);
  auto all = ImageJPlaneLayout(*info, 600);
  ASSERT_TRUE(all.ok());
  EXPECT_FALSE(all->contiguous_after_first_ifd);
  auto extra = ImageJPlaneLayout(*info, 601);
  ASSERT_TRUE(extra.ok());
  EXPECT_EQ(extra->planes, 600u);
  auto some = ImageJPlaneLayout(*info, 17);
  ASSERT_FALSE(some.ok());
  EXPECT_NE(some.status().message().find("600 planes but the file has 17 IFDs"), std::string::npos);
}

TEST(ImageJ, InconsistentCountsAreAnError) {
  auto info = ParseImageJDescription("ImageJ=1.53\nimages=10\nchannels=2\nslices=3\n");
  ASSERT_TRUE(info.ok());
  auto layout = ImageJPlaneLayout(*info, 10);
  ASSERT_FALSE(layout.ok());
  EXPECT_NE(layout.status().message().find("images=10 but channels*slices*frames = 6"),
            std::string::npos);
}

// An IJMetadata tag as ImageJ's TiffEncoder lays it out: header (magic, then type/count pairs),
// then the entries in header order; byte_counts[0] is the header's size.
struct IjTag {
  std::vector<std::byte> data;
  std::vector<uint32_t> counts;
};

IjTag MakeIjTag(bool big_endian, const std::vector<std::pair<double, double>>& ranges,
                const std::vector<std::array<uint8_t, 3>>& lut_ends) {
  IjTag tag;
  auto u32 = [&](uint32_t v) {
    for (int i = 0; i < 4; ++i) {
      int shift = big_endian ? 24 - 8 * i : 8 * i;
      tag.data.push_back(static_cast<std::byte>((v >> shift) & 0xff));
    }
  };
  auto f64 = [&](double d) {
    uint64_t v;
    std::memcpy(&v, &d, 8);
    for (int i = 0; i < 8; ++i) {
      int shift = big_endian ? 56 - 8 * i : 8 * i;
      tag.data.push_back(static_cast<std::byte>((v >> shift) & 0xff));
    }
  };
  u32(0x494a494a);  // "IJIJ" in the file's byte order ("JIJI" on disk for little-endian)
  u32(0x696e666f);  // "info": one entry, skipped
  u32(1);
  u32(0x72616e67);  // "rang"
  u32(1);
  u32(0x6c757473);  // "luts"
  u32(static_cast<uint32_t>(lut_ends.size()));
  tag.counts.push_back(static_cast<uint32_t>(tag.data.size()));
  for (char16_t c : std::u16string(u"info text")) {
    tag.data.push_back(static_cast<std::byte>(big_endian ? c >> 8 : c & 0xff));
    tag.data.push_back(static_cast<std::byte>(big_endian ? c & 0xff : c >> 8));
  }
  tag.counts.push_back(18);
  for (auto [low, high] : ranges) {
    f64(low);
    f64(high);
  }
  tag.counts.push_back(static_cast<uint32_t>(16 * ranges.size()));
  for (const auto& end : lut_ends) {
    for (int plane = 0; plane < 3; ++plane) {
      for (int i = 0; i < 256; ++i) tag.data.push_back(static_cast<std::byte>(end[plane] * i / 255));
    }
    tag.counts.push_back(768);
  }
  return tag;
}

TEST(ImageJ, MetadataTagGivesRangesAndLutColoursInBothByteOrders) {
  for (bool big_endian : {true, false}) {
    IjTag tag = MakeIjTag(big_endian, {{1, 100}, {5.5, 500}}, {{255, 0, 255}, {0, 200, 50}});
    auto display = ParseImageJMetadata(tag.data, tag.counts);
    ASSERT_TRUE(display.ok()) << display.status().ToString();
    EXPECT_EQ(display->ranges, (std::vector<std::pair<double, double>>{{1, 100}, {5.5, 500}}));
    EXPECT_EQ(display->lut_colors, (std::vector<uint32_t>{0xFF00FF, 0x00C832}));
  }
}

TEST(ImageJ, MalformedMetadataTagsAreErrors) {
  IjTag good = MakeIjTag(true, {{1, 2}}, {{1, 2, 3}});
  auto message = [](const IjTag& t) {
    auto r = ParseImageJMetadata(t.data, t.counts);
    return r.ok() ? std::string("ok") : r.status().message();
  };
  IjTag magic = good;
  magic.data[0] = std::byte{'X'};
  EXPECT_NE(message(magic).find("bad magic"), std::string::npos);
  IjTag short_counts = good;
  short_counts.counts.pop_back();
  EXPECT_NE(message(short_counts).find("more entries than byte counts"), std::string::npos);
  IjTag truncated = good;
  truncated.data.resize(truncated.data.size() - 1);
  EXPECT_NE(message(truncated).find("runs past the tag"), std::string::npos);
  IjTag lut = good;
  lut.counts.back() = 767;
  EXPECT_NE(message(lut).find("LUT entry of 767 bytes"), std::string::npos);
  IjTag no_header = good;
  no_header.counts = {};
  EXPECT_NE(message(no_header).find("no header"), std::string::npos);
}

TEST(ImageJ, RejectsWhatIsNotImageJ) {
  EXPECT_FALSE(ParseImageJDescription("<?xml version=\"1.0\"?><OME/>").ok());
  EXPECT_FALSE(ParseImageJDescription("").ok());
  EXPECT_FALSE(ParseImageJDescription("Aperio Image Library").ok());
  auto bad = ParseImageJDescription("ImageJ=1.5\nslices=0\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("slices=0 is not a positive integer"), std::string::npos);
  EXPECT_FALSE(ParseImageJDescription("ImageJ=1.5\nspacing=abc\n").ok());
  EXPECT_TRUE(ParseImageJDescription("SCIFIO=0.9\nimages=2\n").ok());
}

TEST(ImageJ, ScaleFromResolutionSpacingAndInterval) {
  auto info = ParseImageJDescription(
      "ImageJ=1.53\nimages=4\nslices=2\nframes=2\nunit=\\u00B5m\nspacing=2.0\nfinterval=0.5\n");
  ASSERT_TRUE(info.ok());
  PhysicalScale s = ScaleFromImageJ(*info, 4.0, 2.0);  // 4 and 2 pixels per micrometer
  EXPECT_EQ(s.x, (Quantity{0.25, "micrometer"}));
  EXPECT_EQ(s.y, (Quantity{0.5, "micrometer"}));
  EXPECT_EQ(s.z, (Quantity{2.0, "micrometer"}));
  EXPECT_EQ(s.t, (Quantity{0.5, "second"}));
  auto pixel = ParseImageJDescription("ImageJ=1.53\nunit=pixel\n");
  ASSERT_TRUE(pixel.ok());
  PhysicalScale p = ScaleFromImageJ(*pixel, 1.0, 0.0);
  EXPECT_EQ(p.x, (Quantity{1.0, ""}));
  EXPECT_EQ(p.y, (Quantity{1.0, ""}));
}

// ---- Aperio SVS ----

constexpr char kBaseline[] =
    "Aperio Image Library v10.0.51\r\n46920x33014 [0,100 46000x32914] (256x256) JPEG/RGB Q=30"
    "|AppMag = 20|StripeWidth = 2040|ScanScope ID = CPAPERIOCS|Filename = CMU-1|MPP = 0.4990"
    "|Left = 25.691574|Top = 23.449873|OriginalWidth = 46000|Originalheight = 32914";

TEST(Svs, ParsesTheBaselineDescription) {
  auto info = ParseSvsDescription(kBaseline);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->header, "Aperio Image Library v10.0.51");
  EXPECT_EQ(info->image_width, 46920u);
  EXPECT_EQ(info->image_height, 33014u);
  EXPECT_EQ(info->region_x, 0u);
  EXPECT_EQ(info->region_y, 100u);
  EXPECT_EQ(info->region_width, 46000u);
  EXPECT_EQ(info->region_height, 32914u);
  EXPECT_EQ(info->tile_width, 256u);
  EXPECT_EQ(info->tile_height, 256u);
  EXPECT_FALSE(info->level_width);
  EXPECT_EQ(info->compression, "JPEG/RGB");
  EXPECT_EQ(info->quality, 30u);
  EXPECT_EQ(info->mpp, 0.499);
  EXPECT_EQ(info->app_mag, 20.0);
  ASSERT_EQ(info->properties.size(), 9u);
  EXPECT_EQ(info->properties[2].first, "ScanScope ID");
  EXPECT_EQ(info->properties[2].second, "CPAPERIOCS");
}

TEST(Svs, ParsesLevelThumbnailLabelAndMacroDescriptions) {
  auto level = ParseSvsDescription(
      "Aperio Image Library v10.0.51\r\n46000x32914 [0,0 46000x32914] (256x256) -> 11500x8228 "
      "JPEG/RGB Q=30|AppMag = 20|MPP = 0.4990");
  ASSERT_TRUE(level.ok());
  EXPECT_EQ(level->image_width, 46000u);
  EXPECT_EQ(level->level_width, 11500u);
  EXPECT_EQ(level->level_height, 8228u);
  EXPECT_EQ(level->compression, "JPEG/RGB");
  auto thumb = ParseSvsDescription(
      "Aperio Image Library v10.0.51\r\n46000x32914 -> 1024x732 - |AppMag = 20|MPP = 0.4990");
  ASSERT_TRUE(thumb.ok());
  EXPECT_EQ(thumb->level_width, 1024u);
  EXPECT_EQ(thumb->level_height, 732u);
  EXPECT_EQ(thumb->compression, "");
  auto label = ParseSvsDescription("Aperio Image Library v10.0.51\r\nlabel 415x422");
  ASSERT_TRUE(label.ok());
  EXPECT_EQ(label->image_type, "label");
  EXPECT_EQ(label->image_width, 415u);
  auto macro = ParseSvsDescription("Aperio Image Library v10.0.51\nmacro 1280x431");
  ASSERT_TRUE(macro.ok());
  EXPECT_EQ(macro->image_type, "macro");
  EXPECT_TRUE(macro->properties.empty());
}

TEST(Svs, RejectsNonAperioAndBadNumbers) {
  EXPECT_FALSE(ParseSvsDescription("ImageJ=1.5").ok());
  auto bad = ParseSvsDescription("Aperio Image Library v1\r\n1x1|MPP = fast");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("MPP = \"fast\""), std::string::npos);
}

TEST(Svs, ClassifiesIfdsAsAperioWritesThem) {
  const std::string prefix = "Aperio Image Library v10.0.51\r\n";
  EXPECT_EQ(ClassifySvsIfd(0, kBaseline, 0, true), SvsImageKind::kBaseline);
  EXPECT_EQ(ClassifySvsIfd(1, prefix + "46000x32914 -> 1024x732 - |AppMag = 20", 0, false),
            SvsImageKind::kThumbnail);
  EXPECT_EQ(ClassifySvsIfd(2, prefix + "46000x32914 [0,0 46000x32914] (256x256) -> 11500x8228",
                           0, true),
            SvsImageKind::kReducedLevel);
  EXPECT_EQ(ClassifySvsIfd(4, prefix + "label 415x422", 1, false), SvsImageKind::kLabel);
  EXPECT_EQ(ClassifySvsIfd(5, prefix + "macro 1280x431", 9, false), SvsImageKind::kMacro);
  // Without the words, NewSubfileType decides.
  EXPECT_EQ(ClassifySvsIfd(4, "", 1, false), SvsImageKind::kLabel);
  EXPECT_EQ(ClassifySvsIfd(5, "", 9, false), SvsImageKind::kMacro);
  EXPECT_EQ(ClassifySvsIfd(5, "", 0, false), SvsImageKind::kOther);
  EXPECT_EQ(ClassifySvsIfd(0, kBaseline, 0, false), SvsImageKind::kOther);
  EXPECT_EQ(SvsImageKindName(SvsImageKind::kReducedLevel), "level");
}

// ---- neutral model ----

TEST(NgffModel, LevelScaleIsBaseTimesSizeRatio) {
  PhysicalScale s;
  s.x = {0.499, "micrometer"};
  s.y = {0.499, "micrometer"};
  s.z = {2.0, "micrometer"};
  s.t = {5.0, "second"};
  std::vector<LevelSize> levels = {{46000, 32914}, {11500, 8228}, {2875, 2057}};
  auto scales = LevelScales(s, levels);
  ASSERT_EQ(scales.size(), 3u);
  EXPECT_EQ(scales[0], (std::vector<double>{5.0, 1.0, 2.0, 0.499, 0.499}));
  EXPECT_DOUBLE_EQ(scales[1][4], 0.499 * 4.0);
  EXPECT_DOUBLE_EQ(scales[1][3], 0.499 * 32914.0 / 8228.0);
  EXPECT_DOUBLE_EQ(scales[2][4], 0.499 * 16.0);
  EXPECT_DOUBLE_EQ(scales[2][3], 0.499 * 32914.0 / 2057.0);
  EXPECT_EQ(scales[2][2], 2.0);
}

TEST(NgffModel, BuildsTczyxImage) {
  auto info = ParseSvsDescription(kBaseline);
  ASSERT_TRUE(info.ok());
  std::vector<LevelSize> levels = {{1000, 800}, {500, 400}};
  ImageDesc image = MakeTczyxImage("slide", ScaleFromSvs(*info), levels, {});
  EXPECT_EQ(image.name, "slide");
  ASSERT_EQ(image.axes.size(), 5u);
  EXPECT_EQ(image.axes[0].name, "t");
  EXPECT_EQ(image.axes[0].type, "time");
  EXPECT_EQ(image.axes[0].unit, "");
  EXPECT_EQ(image.axes[1].type, "channel");
  EXPECT_EQ(image.axes[4].name, "x");
  EXPECT_EQ(image.axes[4].type, "space");
  EXPECT_EQ(image.axes[4].unit, "micrometer");
  EXPECT_EQ(image.levels, (std::vector<std::string>{"0", "1"}));
  EXPECT_EQ(image.scales[1], (std::vector<double>{1.0, 1.0, 1.0, 0.998, 0.998}));
}

TEST(NgffModel, ChannelsFromOmeExpandRgbAndNameTheUnnamed) {
  OmePixels p;
  p.size_c = 5;
  p.channels = {OmeChannel{"C0", "DAPI", 0x0000FF, 1}, OmeChannel{"C1", "", std::nullopt, 1},
                OmeChannel{"C2", "bright", std::nullopt, 3}};
  auto ch = ChannelsFromOme(p);
  ASSERT_EQ(ch.size(), 5u);
  EXPECT_EQ(ch[0].label, "DAPI");
  EXPECT_EQ(ch[0].color, 0x0000FFu);
  EXPECT_EQ(ch[1].label, "Channel 1");
  EXPECT_FALSE(ch[1].color);
  EXPECT_EQ(ch[2].label, "bright R");
  EXPECT_EQ(ch[2].color, 0xFF0000u);
  EXPECT_EQ(ch[4].label, "bright B");
  EXPECT_EQ(ch[4].color, 0x0000FFu);
  OmePixels none;
  none.size_c = 2;
  auto unnamed = ChannelsFromOme(none);
  ASSERT_EQ(unnamed.size(), 2u);
  EXPECT_EQ(unnamed[1].label, "Channel 1");
}

TEST(NgffModel, ScaleFromOmeKeepsOnlyPositiveSizes) {
  OmePixels p;
  p.physical_size_x = Quantity{0.1, "micrometer"};
  p.physical_size_y = Quantity{0, "micrometer"};
  p.time_increment = Quantity{300, "millisecond"};
  PhysicalScale s = ScaleFromOme(p);
  EXPECT_EQ(s.x, (Quantity{0.1, "micrometer"}));
  EXPECT_EQ(s.y, (Quantity{1.0, ""}));
  EXPECT_EQ(s.z, (Quantity{1.0, ""}));
  EXPECT_EQ(s.t, (Quantity{300, "millisecond"}));
  auto axes = TczyxAxes(s);
  EXPECT_EQ(axes[0].unit, "millisecond");
  EXPECT_EQ(axes[3].unit, "");
  EXPECT_EQ(axes[4].unit, "micrometer");
}

}  // namespace
}  // namespace refzarr
