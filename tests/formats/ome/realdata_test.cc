// The OME-XML of the realdata OME-TIFFs, read with libtiff (the oracle for IFD counts and sizes).
#include <filesystem>
#include <memory>
#include <string>

#include <gtest/gtest.h>
#include <tiffio.h>

#include "formats/ome/ngff_model.h"
#include "formats/ome/ome_xml.h"

namespace refzarr {
namespace {

namespace fs = std::filesystem;

const fs::path kOmeDir = fs::path(REFZARR_SHARED_DIR) / "realdata/tiff/tlnagy+OMETIFF.jl/test/testdata";

struct TiffCloser {
  void operator()(TIFF* t) const { TIFFClose(t); }
};
using TiffPtr = std::unique_ptr<TIFF, TiffCloser>;

struct TiffFacts {
  std::string description;  // ImageDescription of IFD 0
  uint64_t ifds = 0;
  std::vector<std::pair<uint32_t, uint32_t>> sizes;  // (width, length) per IFD
};

TiffFacts ReadFacts(const fs::path& path) {
  TiffFacts facts;
  TiffPtr tif(TIFFOpen(path.c_str(), "r"));
  EXPECT_TRUE(tif) << path;
  if (!tif) return facts;
  char* desc = nullptr;
  if (TIFFGetField(tif.get(), TIFFTAG_IMAGEDESCRIPTION, &desc) && desc) facts.description = desc;
  do {
    uint32_t w = 0, h = 0;
    TIFFGetField(tif.get(), TIFFTAG_IMAGEWIDTH, &w);
    TIFFGetField(tif.get(), TIFFTAG_IMAGELENGTH, &h);
    facts.sizes.emplace_back(w, h);
  } while (TIFFReadDirectory(tif.get()));
  facts.ifds = facts.sizes.size();
  return facts;
}

TEST(OmeRealdata, MultiChannelZSeriesMapsFifteenPlanes) {
  const fs::path path = kOmeDir / "singles/multi-channel-z-series.ome.tif";
  ASSERT_TRUE(fs::exists(path)) << "realdata missing: " << path;
  TiffFacts facts = ReadFacts(path);
  auto doc = ParseOmeXml(facts.description);
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  ASSERT_EQ(doc->images.size(), 1u);
  const OmePixels& p = doc->images[0].pixels;
  EXPECT_EQ(p.dimension_order, "XYZCT");
  EXPECT_EQ(p.dtype, DType::Make('i', 1));
  EXPECT_EQ(p.big_endian, true);
  EXPECT_EQ(p.PlaneCount(), facts.ifds);
  auto planes = MapPlanes(doc->images[0], {facts.ifds, doc->uuid, path.filename()});
  ASSERT_TRUE(planes.ok()) << planes.status().ToString();
  for (const PlaneRef& ref : *planes) {
    EXPECT_TRUE(ref.this_file);
    EXPECT_EQ(ref.ifd, ref.c * 5u + ref.z);  // XYZCT, written in order
    EXPECT_EQ(facts.sizes[ref.ifd], (std::pair<uint32_t, uint32_t>(p.size_x, p.size_y)));
  }
  auto channels = ChannelsFromOme(p);
  ASSERT_EQ(channels.size(), 3u);
  EXPECT_EQ(channels[2].label, "Channel 2");
}

TEST(OmeRealdata, MicroManagerPositionsAreTwoInterleavedImages) {
  const fs::path path = kOmeDir / "singles/181003_multi_pos_time_course_1_MMStack.ome.tif";
  ASSERT_TRUE(fs::exists(path)) << "realdata missing: " << path;
  TiffFacts facts = ReadFacts(path);
  auto doc = ParseOmeXml(facts.description);
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  EXPECT_TRUE(doc->uuid.empty());  // Micro-Manager writes no root UUID
  ASSERT_EQ(doc->images.size(), 2u);
  auto all = MapAllPlanes(*doc, {facts.ifds, doc->uuid, path.filename()});
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  for (size_t i = 0; i < 2; ++i) {
    const OmePixels& p = doc->images[i].pixels;
    ASSERT_EQ((*all)[i].size(), 10u);
    for (const PlaneRef& ref : (*all)[i]) {
      EXPECT_TRUE(ref.this_file);
      EXPECT_EQ(ref.ifd, 2u * ref.t + i);
      EXPECT_EQ(facts.sizes[ref.ifd], (std::pair<uint32_t, uint32_t>(p.size_x, p.size_y)));
    }
    PhysicalScale scale = ScaleFromOme(p);
    EXPECT_EQ(scale.x, (Quantity{5.2304, "micrometer"}));
    EXPECT_EQ(scale.t, (Quantity{5000.0, "millisecond"}));
    EXPECT_FALSE(p.physical_size_z);
  }
}

TEST(OmeRealdata, MultiFileMasterReferencesMembersByUuid) {
  const fs::path dir = kOmeDir / "multiples/master";
  const fs::path master = dir / "multifile-Z1.ome.tiff";
  ASSERT_TRUE(fs::exists(master)) << "realdata missing: " << master;
  TiffFacts facts = ReadFacts(master);
  auto doc = ParseOmeXml(facts.description);
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  ASSERT_EQ(doc->images.size(), 1u);
  auto planes = MapPlanes(doc->images[0], {facts.ifds, doc->uuid, master.filename()});
  ASSERT_TRUE(planes.ok()) << planes.status().ToString();
  ASSERT_EQ(planes->size(), 5u);
  EXPECT_TRUE((*planes)[0].this_file);
  for (size_t z = 1; z < 5; ++z) {
    const PlaneRef& ref = (*planes)[z];
    ASSERT_FALSE(ref.this_file);
    EXPECT_EQ(ref.z, z);
    EXPECT_EQ(ref.ifd, 0u);
    // The member file named by FileName carries the UUID the master expects, and says (BinaryOnly)
    // that its metadata is in the master.
    TiffFacts member = ReadFacts(dir / ref.file.file_name);
    auto member_doc = ParseOmeXml(member.description);
    ASSERT_TRUE(member_doc.ok()) << member_doc.status().ToString();
    EXPECT_EQ(member_doc->uuid, ref.file.uuid);
    ASSERT_TRUE(member_doc->binary_only);
    EXPECT_EQ(member_doc->binary_only->metadata_file, master.filename());
    EXPECT_EQ(member_doc->binary_only->uuid, doc->uuid);
    EXPECT_LT(ref.ifd, member.ifds);
    EXPECT_EQ(member.sizes[ref.ifd], (std::pair<uint32_t, uint32_t>(18, 24)));
  }
}

}  // namespace
}  // namespace refzarr
