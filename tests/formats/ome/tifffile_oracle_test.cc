// refzarr's reading of OME / ImageJ / Aperio metadata against tifffile's (LABELS e2e: starts
// /usr/bin/python3 with Debian's python3-tifffile via tifffile_series.py).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "formats/ome/imagej.h"
#include "formats/ome/ome_xml.h"
#include "formats/ome/svs.h"

namespace refzarr {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const fs::path kScript = fs::path(REFZARR_OME_TEST_DIR) / "tifffile_series.py";
const fs::path kOmeDir =
    fs::path(REFZARR_SHARED_DIR) / "realdata/tiff/tlnagy+OMETIFF.jl/test/testdata";

std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Runs tifffile_series.py with `args` and parses its JSON output.
json RunTifffile(const std::string& args) {
  std::string command = "/usr/bin/python3 " + Quote(kScript.string()) + " " + args;
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
  EXPECT_TRUE(pipe) << command;
  if (!pipe) return json();
  std::string output;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, pipe.get())) > 0;) output.append(buf, n);
  json j = json::parse(output, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << command << " printed: " << output.substr(0, 500);
  return j;
}

json TifffileOnText(const std::string& option, const std::string& text) {
  fs::path tmp = fs::temp_directory_path() /
                 ("refzarr_ome_desc_" + std::to_string(::getpid()) + ".txt");
  {
    std::ofstream out(tmp, std::ios::binary);
    out << text;
  }
  json j = RunTifffile(option + " " + Quote(tmp.string()));
  fs::remove(tmp);
  return j;
}

// Compares every OME image of `path` with tifffile's series: shape per axis and, page by page, the
// file and IFD of each plane.
void CompareOmeFile(const fs::path& path) {
  SCOPED_TRACE(path.string());
  json tf = RunTifffile(Quote(path.string()));
  ASSERT_TRUE(tf.is_object());
  ASSERT_FALSE(tf["descriptions"].empty());
  auto doc = ParseOmeXml(tf["descriptions"][0].get<std::string>());
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  const std::string own_name = path.filename().string();
  auto all = MapAllPlanes(*doc, {tf["ifds"].get<uint64_t>(), doc->uuid, own_name});
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(tf["series"].size(), doc->images.size());
  for (size_t i = 0; i < doc->images.size(); ++i) {
    SCOPED_TRACE("image " + std::to_string(i));
    const json& series = tf["series"][i];
    EXPECT_EQ(series["kind"], "ome");
    const OmePixels& p = doc->images[i].pixels;
    std::map<char, uint64_t> size = {{'T', p.size_t_}, {'C', p.EffectiveSizeC()},
                                     {'Z', p.size_z},  {'Y', p.size_y},
                                     {'X', p.size_x},  {'S', p.SamplesPerPixel()}};
    const std::string axes = series["axes"];
    std::map<char, uint64_t> seen;
    for (size_t a = 0; a < axes.size(); ++a) {
      ASSERT_TRUE(size.count(axes[a])) << "tifffile axis " << axes[a];
      EXPECT_EQ(series["shape"][a].get<uint64_t>(), size[axes[a]]) << "axis " << axes[a];
      seen[axes[a]] = series["shape"][a];
    }
    for (char a : std::string("TCZ")) {
      if (!seen.count(a)) EXPECT_EQ(size[a], 1u) << "axis " << a << " squeezed by tifffile";
    }
    // Page k of the series is C order over its leading (non-YXS) axes.
    const json& pages = series["pages"];
    ASSERT_EQ(pages.size(), (*all)[i].size());
    for (size_t k = 0; k < pages.size(); ++k) {
      uint64_t rest = k;
      std::map<char, uint32_t> pos;
      for (size_t a = axes.size(); a-- > 0;) {
        if (axes[a] == 'Y' || axes[a] == 'X' || axes[a] == 'S') continue;
        pos[axes[a]] = static_cast<uint32_t>(rest % seen[axes[a]]);
        rest /= seen[axes[a]];
      }
      const PlaneRef& ref =
          (*all)[i][(uint64_t{pos['T']} * p.EffectiveSizeC() + pos['C']) * p.size_z + pos['Z']];
      ASSERT_FALSE(pages[k].is_null());
      EXPECT_EQ(pages[k][0].get<std::string>(), ref.this_file ? own_name : ref.file.file_name)
          << "page " << k;
      EXPECT_EQ(pages[k][1].get<uint64_t>(), ref.ifd) << "page " << k;
    }
  }
}

TEST(TifffileOracle, OmeSeriesAgreeForMultiChannelZSeries) {
  CompareOmeFile(kOmeDir / "singles/multi-channel-z-series.ome.tif");
}

TEST(TifffileOracle, OmeSeriesAgreeForMicroManagerPositions) {
  CompareOmeFile(kOmeDir / "singles/181003_multi_pos_time_course_1_MMStack.ome.tif");
}

TEST(TifffileOracle, OmeSeriesAgreeForMultiFileMaster) {
  CompareOmeFile(kOmeDir / "multiples/master/multifile-Z1.ome.tiff");
}

TEST(TifffileOracle, BinaryOnlyMembersHaveNoOmeSeries) {
  for (int z = 2; z <= 5; ++z) {
    fs::path path = kOmeDir / ("multiples/master/multifile-Z" + std::to_string(z) + ".ome.tiff");
    json tf = RunTifffile(Quote(path.string()));
    ASSERT_TRUE(tf.is_object());
    auto doc = ParseOmeXml(tf["descriptions"][0].get<std::string>());
    ASSERT_TRUE(doc.ok()) << doc.status().ToString();
    EXPECT_TRUE(doc->images.empty());
    EXPECT_TRUE(doc->binary_only);
    // tifffile falls back to its generic series for a BinaryOnly file, as refzarr's scanner will.
    EXPECT_EQ(tf["series"][0]["kind"], "generic");
  }
}

TEST(TifffileOracle, ImageJMetadataOfMicroManagerFileAgrees) {
  fs::path path = kOmeDir / "singles/181003_multi_pos_time_course_1_MMStack.ome.tif";
  json tf = RunTifffile(Quote(path.string()));
  ASSERT_TRUE(tf.is_object());
  ASSERT_EQ(tf["descriptions"].size(), 2u);  // OME-XML, then the ImageJ description
  auto info = ParseImageJDescription(tf["descriptions"][1].get<std::string>());
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  const json& ij = tf["imagej"];
  EXPECT_EQ(info->version, ij["ImageJ"].get<std::string>());
  EXPECT_EQ(info->frames, ij["frames"].get<uint32_t>());
  EXPECT_EQ(info->hyperstack, ij["hyperstack"].get<bool>());
  EXPECT_EQ(info->unit, ij["unit"].get<std::string>());
  EXPECT_EQ(info->min, ij["min"].get<double>());
  EXPECT_EQ(info->max, ij["max"].get<double>());
}

TEST(TifffileOracle, ImageJDescriptionsParseLikeTifffile) {
  const std::string texts[] = {
      "ImageJ=1.53t\nimages=24\nchannels=2\nslices=3\nframes=4\nhyperstack=true\n"
      "mode=composite\nunit=micron\nspacing=0.5\nfinterval=2.5\nloop=false\nmin=10.0\nmax=4000.0\n",
      "ImageJ=1.11a\nimages=510\nslices=510\nunit=\\u00B5m\nspacing=0.25\n",
      "ImageJ=\nimages=3\nframes=3\nfinterval=0.1\ntunit=ms\n"};
  for (const std::string& text : texts) {
    SCOPED_TRACE(text);
    json tf = TifffileOnText("--imagej-description", text);
    ASSERT_TRUE(tf.is_object());
    auto info = ParseImageJDescription(text);
    ASSERT_TRUE(info.ok()) << info.status().ToString();
    ASSERT_EQ(info->entries.size(), tf.size());
    for (const auto& [key, value] : info->entries) {
      ASSERT_TRUE(tf.contains(key)) << key;
      const json& t = tf[key];
      if (key == "images") EXPECT_EQ(info->images, t.get<uint64_t>());
      if (key == "channels") EXPECT_EQ(info->channels, t.get<uint32_t>());
      if (key == "slices") EXPECT_EQ(info->slices, t.get<uint32_t>());
      if (key == "frames") EXPECT_EQ(info->frames, t.get<uint32_t>());
      if (key == "spacing") EXPECT_EQ(info->spacing, t.get<double>());
      if (key == "finterval") EXPECT_EQ(info->finterval, t.get<double>());
      if (key == "min") EXPECT_EQ(info->min, t.get<double>());
      if (key == "max") EXPECT_EQ(info->max, t.get<double>());
      if (key == "hyperstack") EXPECT_EQ(info->hyperstack, t.get<bool>());
      if (key == "loop") EXPECT_EQ(info->loop, t.get<bool>());
      if (t.is_string()) EXPECT_EQ(value, t.get<std::string>()) << key;
    }
  }
}

TEST(TifffileOracle, SvsDescriptionsParseLikeTifffile) {
  const std::string texts[] = {
      "Aperio Image Library v10.0.51\r\n46920x33014 [0,100 46000x32914] (256x256) JPEG/RGB Q=30"
      "|AppMag = 20|StripeWidth = 2040|ScanScope ID = CPAPERIOCS|Filename = CMU-1|MPP = 0.4990"
      "|Left = 25.691574|Top = 23.449873|Date = 12/29/09|Time = 09:59:15",
      "Aperio Image Library v10.0.51\r\n46000x32914 -> 1024x732 - |AppMag = 20|MPP = 0.4990",
      "Aperio Image Library v12.0.15\r\nlabel 415x422",
      "Aperio Image Library v11.2.1\r\n46000x32914 [0,0 46000x32914] (240x240) -> 11500x8228 "
      "J2K/YUV16 Q=70|AppMag = 40|MPP = 0.2520|Exposure Scale = 0.000001"};
  for (const std::string& text : texts) {
    SCOPED_TRACE(text);
    json tf = TifffileOnText("--svs-description", text);
    ASSERT_TRUE(tf.is_object());
    auto info = ParseSvsDescription(text);
    ASSERT_TRUE(info.ok()) << info.status().ToString();
    // tifffile keeps the header with its geometry line; refzarr splits it off.
    EXPECT_TRUE(tf["Header"].get<std::string>().starts_with(info->header));
    ASSERT_EQ(info->properties.size() + 1, tf.size());
    for (const auto& [key, value] : info->properties) {
      ASSERT_TRUE(tf.contains(key)) << key;
      const json& t = tf[key];
      if (t.is_number()) {
        EXPECT_DOUBLE_EQ(std::stod(value), t.get<double>()) << key;
      } else {
        EXPECT_EQ(value, t.get<std::string>()) << key;
      }
    }
    if (tf.contains("MPP")) EXPECT_EQ(info->mpp, tf["MPP"].get<double>());
    if (tf.contains("AppMag")) EXPECT_EQ(info->app_mag, tf["AppMag"].get<double>());
  }
}

}  // namespace
}  // namespace refzarr
