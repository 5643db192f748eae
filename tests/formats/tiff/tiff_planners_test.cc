// The flavour planners (OME-TIFF, ImageJ, Aperio SVS, COG) through the scanner: series, shapes,
// scales, channels, and where each plane's chunks point, checked against libtiff's own reading of
// the IFD the format's rules name (offsets of that IFD's strips/tiles) and against files the tests
// write byte by byte.
#include <gtest/gtest.h>
#include <tiffio.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "tests/support/memory_opener.h"
#include "formats/core/recording_sink.h"
#include "formats/tiff/tiff_scanner.h"

namespace refzarr {
namespace {

namespace fs = std::filesystem;

const fs::path kRealdata = fs::path(REFZARR_SHARED_DIR) / "realdata" / "tiff";

Result<ScannedFile> ScanPath(const fs::path& path) {
  ASSIGN_OR_RETURN(auto source, OpenLocalFile(path));
  RecordingSink sink;
  RETURN_IF_ERROR(MakeTiffScanner()->Scan(*source, ScanContext(path), sink));
  RETURN_IF_ERROR(sink.Finish());
  return std::move(sink).result();
}

// libtiff's strip/tile offsets of IFD `ifd` (or of its SubIFD `sub`).
std::vector<uint64_t> LibtiffOffsets(const fs::path& path, int ifd, int sub = -1) {
  std::vector<uint64_t> out;
  TIFF* tif = TIFFOpen(path.c_str(), "r");
  if (!tif) return out;
  if (TIFFSetDirectory(tif, ifd)) {
    bool ok = true;
    if (sub >= 0) {
      uint16_t n = 0;
      uint64_t* subs = nullptr;
      ok = TIFFGetField(tif, TIFFTAG_SUBIFD, &n, &subs) && sub < n &&
           TIFFSetSubDirectory(tif, subs[sub]);
    }
    uint64_t* offsets = nullptr;
    if (ok && TIFFGetField(tif, TIFFIsTiled(tif) ? TIFFTAG_TILEOFFSETS : TIFFTAG_STRIPOFFSETS,
                           &offsets)) {
      uint32_t n = TIFFIsTiled(tif) ? TIFFNumberOfTiles(tif) : TIFFNumberOfStrips(tif);
      out.assign(offsets, offsets + n);
    }
  }
  TIFFClose(tif);
  return out;
}

std::string LibtiffDescription(const fs::path& path) {
  std::string out;
  TIFF* tif = TIFFOpen(path.c_str(), "r");
  char* d = nullptr;
  if (tif && TIFFGetField(tif, TIFFTAG_IMAGEDESCRIPTION, &d) && d) out = d;
  if (tif) TIFFClose(tif);
  return out;
}

// The ref of the chunk at (t, c, z, 0, 0) of `a`, or nullopt.
std::optional<ChunkRef> FirstChunkOfPlane(const ScannedFile::Array& a, uint64_t t, uint64_t c,
                                          uint64_t z) {
  std::vector<uint64_t> coords = {t, c, z, 0, 0};
  uint64_t linear = LinearChunkIndex(a.desc.GridShape(), coords);
  for (const auto& [i, ref] : a.chunks) {
    if (i == linear) return ref;
  }
  return std::nullopt;
}

bool HasWarning(const ScannedFile& f, std::string_view text) {
  for (const std::string& w : f.warnings) {
    if (w.find(text) != std::string::npos) return true;
  }
  return false;
}

class TiffPlannersTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(fs::temp_directory_path() /
                        ("refzarr_planners_test_" + std::to_string(getpid())));
    fs::remove_all(*dir_);
    std::string cmd = std::string(REFZARR_SAMPLES_BIN) + " " + dir_->string() + " -q";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
  }
  static fs::path* dir_;
};
fs::path* TiffPlannersTest::dir_ = nullptr;

TEST_F(TiffPlannersTest, OmeImagesBecomeSeriesWithUnitsScalesAndChannels) {
  fs::path path = *dir_ / "ome/multiseries_2images.ome.tif";
  auto scan = ScanPath(path);
  ASSERT_TRUE(scan.ok()) << scan.status().message();
  const auto* cells = scan->FindGroup("0");
  const auto* timelapse = scan->FindGroup("1");
  ASSERT_TRUE(cells && cells->image && timelapse && timelapse->image);
  EXPECT_EQ(cells->image->name, "cells");
  EXPECT_EQ(scan->FindArray("0/0")->desc.shape, (std::vector<uint64_t>{1, 2, 3, 120, 160}));
  EXPECT_EQ(scan->FindArray("1/0")->desc.shape, (std::vector<uint64_t>{3, 1, 1, 80, 100}));
  EXPECT_EQ(cells->image->axes[4].unit, "micrometer");
  EXPECT_EQ(cells->image->scales[0], (std::vector<double>{1, 1, 1.5, 0.325, 0.325}));
  EXPECT_EQ(timelapse->image->axes[0].unit, "second");
  EXPECT_DOUBLE_EQ(timelapse->image->scales[0][0], 2.5);
  ASSERT_EQ(cells->image->channels.size(), 2u);
  EXPECT_EQ(cells->image->channels[0].label, "DAPI");
  EXPECT_EQ(cells->image->channels[0].color, 0x0000FFu);  // Color="65535": RGBA 0x0000FFFF
  EXPECT_EQ(cells->image->channels[1].label, "GFP");
  EXPECT_EQ(timelapse->image->channels[0].label, "Brightfield");
  // bioformats2raw's OME group and the original XML.
  const auto* ome = scan->FindGroup("OME");
  ASSERT_NE(ome, nullptr);
  EXPECT_EQ(ome->attributes["series"], (nlohmann::json{"0", "1"}));
  ASSERT_EQ(scan->files.size(), 1u);
  EXPECT_EQ(scan->files[0].path, "OME/METADATA.ome.xml");
  EXPECT_EQ(scan->files[0].bytes, LibtiffDescription(path));
  // XYCZT (channel fastest): the first image's planes are IFDs z * 2 + c; the second follows.
  for (int c = 0; c < 2; ++c) {
    for (int z = 0; z < 3; ++z) {
      auto ref = FirstChunkOfPlane(*scan->FindArray("0/0"), 0, c, z);
      ASSERT_TRUE(ref);
      EXPECT_EQ(ref->offset, LibtiffOffsets(path, z * 2 + c).at(0)) << c << " " << z;
    }
  }
  EXPECT_EQ(FirstChunkOfPlane(*scan->FindArray("1/0"), 2, 0, 0)->offset,
            LibtiffOffsets(path, 8).at(0));
}

TEST_F(TiffPlannersTest, ShuffledOmePlanesLandAtTheirTcz) {
  fs::path path = *dir_ / "ome/shuffled_planes.ome.tif";
  auto scan = ScanPath(path);
  ASSERT_TRUE(scan.ok()) << scan.status().message();
  const auto* a = scan->FindArray("0/0");
  ASSERT_NE(a, nullptr);
  ASSERT_EQ(a->desc.shape, (std::vector<uint64_t>{2, 2, 3, 64, 96}));
  // The generator stores T, then C descending, then Z.
  for (int t = 0; t < 2; ++t) {
    for (int c = 0; c < 2; ++c) {
      for (int z = 0; z < 3; ++z) {
        int ifd = t * 6 + (1 - c) * 3 + z;
        auto ref = FirstChunkOfPlane(*a, t, c, z);
        ASSERT_TRUE(ref);
        EXPECT_EQ(ref->offset, LibtiffOffsets(path, ifd).at(0)) << t << c << z;
      }
    }
  }
  EXPECT_TRUE(scan->warnings.empty()) << scan->warnings.front();
}

TEST_F(TiffPlannersTest, OmeSubIfdPyramidLevelsScaleByTheirSize) {
  fs::path path = *dir_ / "ome/pyramid_subifds.ome.tif";
  auto scan = ScanPath(path);
  ASSERT_TRUE(scan.ok()) << scan.status().message();
  const auto* g = scan->FindGroup("0");
  ASSERT_TRUE(g && g->image);
  ASSERT_EQ(g->image->levels.size(), 3u);
  for (int k = 0; k < 3; ++k) {
    const auto* a = scan->FindArray("0/" + std::to_string(k));
    ASSERT_NE(a, nullptr);
    EXPECT_EQ(a->desc.shape, (std::vector<uint64_t>{1, 2, 1, 192u >> k, 256u >> k}));
    EXPECT_DOUBLE_EQ(g->image->scales[k][4] / g->image->scales[0][4], double(1 << k));
    for (int c = 0; c < 2; ++c) {
      EXPECT_EQ(FirstChunkOfPlane(*a, 0, c, 0)->offset,
                LibtiffOffsets(path, c, k == 0 ? -1 : k - 1).at(0));
    }
  }
}

TEST_F(TiffPlannersTest, MultiFileOmeReferencesEveryMember) {
  fs::path dir = *dir_ / "ome/multifile";
  auto scan = ScanPath(dir / "multifile_z0.ome.tif");
  ASSERT_TRUE(scan.ok()) << scan.status().message();
  const auto* a = scan->FindArray("0/0");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->desc.shape, (std::vector<uint64_t>{1, 2, 3, 48, 64}));
  ASSERT_EQ(scan->companions.size(), 2u);
  std::set<uint32_t> sources;
  for (const auto& [i, ref] : a->chunks) sources.insert(ref.source);
  EXPECT_EQ(sources, (std::set<uint32_t>{0, 1, 2}));
  // Every plane's first strip is the first strip of the IFD its TiffData names.
  std::string xml = LibtiffDescription(dir / "multifile_z0.ome.tif");
  for (uint64_t c = 0; c < 2; ++c) {
    for (uint64_t z = 0; z < 3; ++z) {
      auto ref = FirstChunkOfPlane(*a, 0, c, z);
      ASSERT_TRUE(ref);
      fs::path file = ref->source == 0 ? dir / "multifile_z0.ome.tif"
                                       : *LocalPathOfUri(scan->companions[ref->source - 1]);
      bool found = false;
      for (int ifd = 0; ifd < 2 && !found; ++ifd) {
        auto offs = LibtiffOffsets(file, ifd);
        found = !offs.empty() && offs[0] == ref->offset;
      }
      EXPECT_TRUE(found) << c << " " << z << " " << file;
    }
  }
  // Members alone are BinaryOnly: plain TIFF, with a note.
  auto member = ScanPath(dir / "multifile_z1.ome.tif");
  ASSERT_TRUE(member.ok());
  EXPECT_EQ(member->FindArray("0/0")->desc.shape, (std::vector<uint64_t>{1, 1, 2, 48, 64}));
  EXPECT_TRUE(HasWarning(*member, "BinaryOnly"));
  EXPECT_EQ(member->FindGroup("OME"), nullptr);
}

using testing::MemoryOpener;

std::vector<std::byte> FileBytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::string s((std::istreambuf_iterator<char>(in)), {});
  const auto* b = reinterpret_cast<const std::byte*>(s.data());
  return std::vector<std::byte>(b, b + s.size());
}

// The members of a multi-file OME-TIFF resolve next to the scanned source's URI and open through
// its scheme's opener: nothing is looked up on the local disk.
TEST_F(TiffPlannersTest, MultiFileOmeMembersResolveThroughTheSourcesOpener) {
  const fs::path local = *dir_ / "ome/multifile";
  auto owned = std::make_unique<MemoryOpener>();
  MemoryOpener& mem = *owned;
  // A folder with a space: the members' URIs are percent-encoded, their FileNames are not.
  for (const char* name : {"multifile_z0.ome.tif", "multifile_z1.ome.tif", "multifile_z2.ome.tif"}) {
    mem.objects[std::string("mem://bucket/a%20set/") + name] = FileBytes(local / name);
  }
  std::vector<std::unique_ptr<SourceOpener>> list;
  list.push_back(std::move(owned));
  const SourceOpeners openers(std::move(list));
  const std::string uri = "mem://bucket/a%20set/multifile_z0.ome.tif";

  auto source = openers.Open(uri);
  ASSERT_TRUE(source.ok()) << source.status().message();
  RecordingSink sink;
  Status s = MakeTiffScanner()->Scan(**source, ScanContext(uri, openers), sink);
  ASSERT_TRUE(s.ok()) << s.message();
  ASSERT_TRUE(sink.Finish().ok());
  ScannedFile scan = std::move(sink).result();
  for (const std::string& w : scan.warnings) EXPECT_EQ(w.find("member"), std::string::npos) << w;
  EXPECT_EQ(scan.companions, (std::vector<std::string>{"mem://bucket/a%20set/multifile_z1.ome.tif",
                                                       "mem://bucket/a%20set/multifile_z2.ome.tif"}));
  for (const std::string& c : scan.companions) {
    EXPECT_NE(std::find(mem.opened.begin(), mem.opened.end(), c), mem.opened.end()) << c;
  }
  const auto* a = scan.FindArray("0/0");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->desc.shape, (std::vector<uint64_t>{1, 2, 3, 48, 64}));
  // The member planes point where libtiff finds them in the same files on disk.
  for (uint64_t c = 0; c < 2; ++c) {
    for (uint64_t z = 0; z < 3; ++z) {
      auto ref = FirstChunkOfPlane(*a, 0, c, z);
      ASSERT_TRUE(ref);
      fs::path file = local / (ref->source == 0 ? std::string("multifile_z0.ome.tif")
                                                : UriFileName(scan.companions[ref->source - 1]));
      bool found = false;
      for (int ifd = 0; ifd < 2 && !found; ++ifd) {
        auto offs = LibtiffOffsets(file, ifd);
        found = !offs.empty() && offs[0] == ref->offset;
      }
      EXPECT_TRUE(found) << c << " " << z << " " << file;
    }
  }

  // A member absent from the store is missing, named by its URI, like a missing local file.
  mem.objects.erase("mem://bucket/a%20set/multifile_z2.ome.tif");
  RecordingSink again;
  ASSERT_TRUE(MakeTiffScanner()->Scan(**source, ScanContext(uri, openers), again).ok());
  ASSERT_TRUE(again.Finish().ok());
  EXPECT_TRUE(HasWarning(again.result(), "multifile_z2.ome.tif\" is missing"));
  EXPECT_TRUE(HasWarning(again.result(), "mem://bucket/a%20set/multifile_z2.ome.tif"));
}

TEST_F(TiffPlannersTest, MissingOrForeignMemberIsAnErrorForThatImage) {
  fs::path src = *dir_ / "ome/multifile";
  fs::path dir = *dir_ / "multifile_broken";
  fs::create_directories(dir);
  fs::copy_file(src / "multifile_z0.ome.tif", dir / "multifile_z0.ome.tif",
                fs::copy_options::overwrite_existing);
  fs::copy_file(src / "multifile_z1.ome.tif", dir / "multifile_z1.ome.tif",
                fs::copy_options::overwrite_existing);
  auto scan = ScanPath(dir / "multifile_z0.ome.tif");
  ASSERT_TRUE(scan.ok()) << scan.status().message();
  EXPECT_TRUE(HasWarning(*scan, "multifile_z2.ome.tif\" is missing"));
  EXPECT_TRUE(scan->companions.empty());
  // Plain-TIFF fallback: the master's own planes only.
  EXPECT_EQ(scan->FindArray("0/0")->desc.shape[2], 2u);

  // A member whose root UUID differs (one hex digit changed).
  std::ifstream in(src / "multifile_z2.ome.tif", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  size_t pos = bytes.find("UUID=\"urn:uuid:");
  ASSERT_NE(pos, std::string::npos);
  char& digit = bytes[pos + 15];
  digit = digit == '0' ? '1' : '0';
  std::ofstream(dir / "multifile_z2.ome.tif", std::ios::binary) << bytes;
  scan = ScanPath(dir / "multifile_z0.ome.tif");
  ASSERT_TRUE(scan.ok()) << scan.status().message();
  EXPECT_TRUE(HasWarning(*scan, "has UUID")) << (scan->warnings.empty() ? "" : scan->warnings[0]);
}

// Writes `pages` uint16 strips of w x h with `description` on the first page.
void WriteStack(const fs::path& path, int pages, uint32_t w, uint32_t h,
                const std::string& description) {
  TIFF* tif = TIFFOpen(path.c_str(), "w");
  ASSERT_NE(tif, nullptr);
  std::vector<uint16_t> row(w);
  for (int p = 0; p < pages; ++p) {
    TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, w);
    TIFFSetField(tif, TIFFTAG_IMAGELENGTH, h);
    TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, 16);
    TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, 1);
    TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
    TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP, h);
    if (p == 0) TIFFSetField(tif, TIFFTAG_IMAGEDESCRIPTION, description.c_str());
    for (uint32_t y = 0; y < h; ++y) {
      for (uint32_t x = 0; x < w; ++x) row[x] = static_cast<uint16_t>(p * 100 + y + x);
      TIFFWriteScanline(tif, row.data(), y, 0);
    }
    TIFFWriteDirectory(tif);
  }
  TIFFClose(tif);
}

std::string OmeXml(int size_x, int size_z, const std::string& extra = "") {
  return "<?xml version=\"1.0\"?><OME xmlns=\"http://www.openmicroscopy.org/Schemas/OME/2016-06\">"
         "<Image ID=\"Image:0\" Name=\"x\"><Pixels ID=\"Pixels:0\" DimensionOrder=\"XYZCT\" "
         "Type=\"uint16\" SizeX=\"" + std::to_string(size_x) + "\" SizeY=\"8\" SizeZ=\"" +
         std::to_string(size_z) + "\" SizeC=\"1\" SizeT=\"1\">" + extra +
         "<Channel ID=\"Channel:0:0\" SamplesPerPixel=\"1\"/><TiffData/></Pixels></Image></OME>";
}

TEST_F(TiffPlannersTest, MalformedOrContradictingXmlFallsBackToPlainTiffWithAWarning) {
  struct Case {
    std::string name, description, warning;
  };
  std::vector<Case> cases = {
      {"malformed", OmeXml(16, 3).substr(0, 120) + "</OME>", "OME-XML ignored"},
      {"wrong_width", OmeXml(17, 3), "SizeX=17"},
      {"too_many_planes", OmeXml(16, 4), "have no TiffData"},
      {"bad_type", [] {
         std::string x = OmeXml(16, 3);
         x.replace(x.find("uint16"), 6, "float");
         return x;
       }(), "Pixels Type is \"float\""},
  };
  for (const Case& c : cases) {
    fs::path path = *dir_ / (c.name + ".ome.tif");
    WriteStack(path, 3, 16, 8, c.description);
    auto scan = ScanPath(path);
    ASSERT_TRUE(scan.ok()) << c.name << ": " << scan.status().message();
    EXPECT_TRUE(HasWarning(*scan, c.warning))
        << c.name << ": " << (scan->warnings.empty() ? "no warning" : scan->warnings[0]);
    EXPECT_TRUE(HasWarning(*scan, "indexed as plain TIFF")) << c.name;
    const auto* a = scan->FindArray("0/0");
    ASSERT_NE(a, nullptr) << c.name;
    EXPECT_EQ(a->desc.shape, (std::vector<uint64_t>{1, 1, 3, 8, 16})) << c.name;
    EXPECT_EQ(FirstChunkOfPlane(*a, 0, 0, 2)->offset, LibtiffOffsets(path, 2).at(0));
    EXPECT_EQ(scan->FindGroup("OME"), nullptr) << c.name;
  }
  // The well-formed, consistent version is an OME image.
  fs::path good = *dir_ / "good.ome.tif";
  WriteStack(good, 3, 16, 8, OmeXml(16, 3, ""));
  auto scan = ScanPath(good);
  ASSERT_TRUE(scan.ok());
  EXPECT_TRUE(scan->warnings.empty()) << scan->warnings.front();
  EXPECT_NE(scan->FindGroup("OME"), nullptr);
}

TEST_F(TiffPlannersTest, ImageJHyperstackPlanesAreChannelFastest) {
  fs::path path = *dir_ / "imagej/hyperstack_u16_t4_z3_c2_be.tif";
  auto scan = ScanPath(path);
  ASSERT_TRUE(scan.ok()) << scan.status().message();
  const auto* g = scan->FindGroup("0");
  const auto* a = scan->FindArray("0/0");
  ASSERT_TRUE(g && g->image && a);
  EXPECT_EQ(a->desc.shape, (std::vector<uint64_t>{4, 2, 3, 48, 64}));
  EXPECT_EQ(g->image->axes[2].unit, "micrometer");
  EXPECT_EQ(g->image->axes[4].unit, "micrometer");
  EXPECT_DOUBLE_EQ(g->image->scales[0][2], 0.5);
  EXPECT_NEAR(g->image->scales[0][4], 0.25, 1e-6);
  for (int t = 0; t < 4; ++t) {
    for (int c = 0; c < 2; ++c) {
      for (int z = 0; z < 3; ++z) {
        EXPECT_EQ(FirstChunkOfPlane(*a, t, c, z)->offset,
                  LibtiffOffsets(path, (t * 3 + z) * 2 + c).at(0));
      }
    }
  }
}

// An ImageJ file as ImageJ writes it beyond 4 GiB: one IFD, all planes back to back after it.
void WriteImageJOneIfd(const fs::path& path, uint32_t w, uint32_t h, int planes,
                       const std::string& description) {
  std::string f = "II*";
  f.push_back('\0');
  auto u16 = [&](uint16_t v) { f.append(reinterpret_cast<char*>(&v), 2); };
  auto u32 = [&](uint32_t v) { f.append(reinterpret_cast<char*>(&v), 4); };
  u32(8);
  const uint16_t n = 10;
  const uint32_t desc_at = 8 + 2 + 12 * n + 4;
  const uint32_t data_at = (desc_at + description.size() + 1 + 1) & ~1u;
  u16(n);
  auto entry = [&](uint16_t tag, uint16_t type, uint32_t count, uint32_t value) {
    u16(tag), u16(type), u32(count), u32(value);
  };
  entry(256, 4, 1, w);
  entry(257, 4, 1, h);
  entry(258, 3, 1, 16);
  entry(259, 3, 1, 1);
  entry(262, 3, 1, 1);
  entry(270, 2, description.size() + 1, desc_at);
  entry(273, 4, 1, data_at);
  entry(277, 3, 1, 1);
  entry(278, 4, 1, h);
  entry(279, 4, 1, w * h * 2);
  u32(0);
  f += description;
  f.resize(data_at, '\0');
  for (int p = 0; p < planes; ++p) {
    for (uint32_t i = 0; i < w * h; ++i) u16(static_cast<uint16_t>(p * 1000 + i));
  }
  std::ofstream(path, std::ios::binary) << f;
}

TEST_F(TiffPlannersTest, ImageJPlanesWithoutIfdsFollowTheFirstPlane) {
  const uint32_t w = 5, h = 4;
  const std::string desc =
      "ImageJ=1.53t\nimages=6\nchannels=2\nslices=3\nhyperstack=true\nunit=micron\nspacing=2.5\n";
  fs::path path = *dir_ / "imagej_one_ifd.tif";
  WriteImageJOneIfd(path, w, h, 6, desc);
  auto scan = ScanPath(path);
  ASSERT_TRUE(scan.ok()) << scan.status().message();
  const auto* a = scan->FindArray("0/0");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->desc.shape, (std::vector<uint64_t>{1, 2, 3, h, w}));
  EXPECT_DOUBLE_EQ(scan->FindGroup("0")->image->scales[0][2], 2.5);
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(FirstChunkOfPlane(*a, 0, 0, 0)->offset, LibtiffOffsets(path, 0).at(0));
  for (int c = 0; c < 2; ++c) {
    for (int z = 0; z < 3; ++z) {
      auto ref = FirstChunkOfPlane(*a, 0, c, z);
      ASSERT_TRUE(ref);
      ASSERT_EQ(ref->length, w * h * 2);
      ASSERT_LE(ref->offset + ref->length, bytes.size());
      // ImageJ plane z * C + c holds values plane * 1000 + i.
      uint16_t first = 0, last = 0;
      std::memcpy(&first, bytes.data() + ref->offset, 2);
      std::memcpy(&last, bytes.data() + ref->offset + ref->length - 2, 2);
      EXPECT_EQ(first, (z * 2 + c) * 1000) << c << " " << z;
      EXPECT_EQ(last, (z * 2 + c) * 1000 + w * h - 1);
    }
  }
  // One byte short of the last plane: the layout is refused, plain TIFF with a warning.
  fs::resize_file(path, bytes.size() - 1);
  scan = ScanPath(path);
  ASSERT_TRUE(scan.ok()) << scan.status().message();
  EXPECT_TRUE(HasWarning(*scan, "the file has"));
  EXPECT_EQ(scan->FindArray("0/0")->desc.shape, (std::vector<uint64_t>{1, 1, 1, h, w}));
}

TEST_F(TiffPlannersTest, SvsPyramidAndAssociatedImagesAreSeparateSeries) {
  fs::path path = *dir_ / "svs/aperio_style_jpeg_pyramid.svs";
  auto scan = ScanPath(path);
  ASSERT_TRUE(scan.ok()) << scan.status().message();
  const auto* g = scan->FindGroup("0");
  ASSERT_TRUE(g && g->image);
  ASSERT_EQ(g->image->levels.size(), 3u);
  EXPECT_EQ(scan->FindArray("0/0")->desc.shape, (std::vector<uint64_t>{1, 3, 1, 500, 700}));
  EXPECT_EQ(scan->FindArray("0/2")->desc.shape, (std::vector<uint64_t>{1, 3, 1, 125, 175}));
  EXPECT_EQ(g->image->axes[4].unit, "micrometer");
  EXPECT_DOUBLE_EQ(g->image->scales[0][4], 0.499);
  EXPECT_DOUBLE_EQ(g->image->scales[2][4], 0.499 * 4);
  const char* names[] = {"thumbnail", "label", "macro"};
  for (int s = 1; s <= 3; ++s) {
    const auto* series = scan->FindGroup(std::to_string(s));
    ASSERT_TRUE(series && series->image) << s;
    EXPECT_EQ(series->image->name, names[s - 1]);
    EXPECT_EQ(series->image->levels.size(), 1u);
  }
  EXPECT_EQ(scan->FindGroup("4"), nullptr);
  // Every level is the IFD of that size (libtiff's view of IFDs 0, 2, 3).
  EXPECT_EQ(FirstChunkOfPlane(*scan->FindArray("0/1"), 0, 0, 0)->offset,
            LibtiffOffsets(path, 2).at(0));
}

TEST(TiffPlannersRealdata, CogMasksAreTheirOwnPyramid) {
  fs::path path = kRealdata / "rasterio+rasterio/tests/data/cogeo.tif";
  ASSERT_TRUE(fs::exists(path)) << "realdata missing: " << path;
  auto scan = ScanPath(path);
  ASSERT_TRUE(scan.ok()) << scan.status().message();
  for (const char* s : {"0", "1"}) {
    const auto* g = scan->FindGroup(s);
    ASSERT_TRUE(g && g->image) << s;
    ASSERT_EQ(g->image->levels.size(), 7u) << s;
    for (int k = 0; k < 7; ++k) {
      const auto* a = scan->FindArray(std::string(s) + "/" + std::to_string(k));
      EXPECT_EQ(a->desc.shape[4], 1024u >> k);
    }
  }
  EXPECT_EQ(scan->FindArray("0/0")->desc.shape[1], 3u);
  EXPECT_EQ(scan->FindArray("1/0")->desc.shape[1], 1u);
  EXPECT_EQ(scan->FindGroup("2"), nullptr);
  // Image level 1 is IFD 2 (IFD 1 is the mask).
  EXPECT_EQ(FirstChunkOfPlane(*scan->FindArray("0/1"), 0, 0, 0)->offset,
            LibtiffOffsets(path, 2).at(0));
  EXPECT_EQ(FirstChunkOfPlane(*scan->FindArray("1/1"), 0, 0, 0)->offset,
            LibtiffOffsets(path, 8).at(0));
}

TEST(TiffPlannersRealdata, OmeFilesFollowTheirXml) {
  fs::path dir = kRealdata / "tlnagy+OMETIFF.jl/test/testdata";
  ASSERT_TRUE(fs::exists(dir)) << "realdata missing: " << dir;
  auto mcz = ScanPath(dir / "singles/multi-channel-z-series.ome.tif");
  ASSERT_TRUE(mcz.ok()) << mcz.status().message();
  EXPECT_EQ(mcz->FindArray("0/0")->desc.shape, (std::vector<uint64_t>{1, 3, 5, 167, 439}));
  EXPECT_EQ(mcz->FindArray("0/0")->desc.dtype, DType::Make('i', 1));

  auto mm = ScanPath(dir / "singles/181003_multi_pos_time_course_1_MMStack.ome.tif");
  ASSERT_TRUE(mm.ok()) << mm.status().message();
  EXPECT_EQ(mm->FindArray("0/0")->desc.shape, (std::vector<uint64_t>{10, 1, 1, 256, 256}));
  EXPECT_EQ(mm->FindArray("1/0")->desc.shape, (std::vector<uint64_t>{10, 1, 1, 256, 256}));
  EXPECT_EQ(mm->FindGroup("OME")->attributes["series"], (nlohmann::json{"0", "1"}));

  auto multi = ScanPath(dir / "multiples/master/multifile-Z1.ome.tiff");
  ASSERT_TRUE(multi.ok()) << multi.status().message();
  EXPECT_EQ(multi->FindArray("0/0")->desc.shape, (std::vector<uint64_t>{1, 1, 5, 24, 18}));
  EXPECT_EQ(multi->companions.size(), 4u);
  for (int z = 1; z < 5; ++z) {
    auto ref = FirstChunkOfPlane(*multi->FindArray("0/0"), 0, 0, z);
    ASSERT_TRUE(ref);
    ASSERT_GT(ref->source, 0u);
    fs::path member = *LocalPathOfUri(multi->companions[ref->source - 1]);
    EXPECT_EQ(member.filename(), "multifile-Z" + std::to_string(z + 1) + ".ome.tiff");
    EXPECT_EQ(ref->offset, LibtiffOffsets(member, 0).at(0));
  }
}

}  // namespace
}  // namespace refzarr
