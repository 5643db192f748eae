#include "formats/ome/ome_xml.h"

#include <string>

#include <gtest/gtest.h>

namespace refzarr {
namespace {

// An OME document with one image; `pixels_attrs` extends the Pixels element, `body` goes inside it.
std::string OmeXml(std::string pixels_attrs, std::string body, std::string ns_year = "2016-06",
                   std::string root_attrs = "") {
  return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
         "<OME xmlns=\"http://www.openmicroscopy.org/Schemas/OME/" + ns_year + "\" " + root_attrs +
         "><Image ID=\"Image:0\" Name=\"img\"><Pixels ID=\"Pixels:0\" Type=\"uint8\" SizeX=\"4\" "
         "SizeY=\"3\" " + pixels_attrs + ">" + body + "</Pixels></Image></OME>";
}

OmeImage ParseOne(const std::string& xml) {
  Result<OmeDocument> doc = ParseOmeXml(xml);
  EXPECT_TRUE(doc.ok()) << doc.status().ToString();
  if (!doc.ok() || doc->images.size() != 1) return {};
  return doc->images[0];
}

PlaneMapContext Ctx(uint64_t ifds, std::string uuid = "", std::string name = "") {
  return PlaneMapContext{ifds, std::move(uuid), std::move(name)};
}

// IFD of each plane in (t, c, z) C order.
std::vector<uint64_t> Ifds(const std::vector<PlaneRef>& planes) {
  std::vector<uint64_t> out;
  for (const PlaneRef& p : planes) out.push_back(p.ifd);
  return out;
}

TEST(OmeXml, ParsesPixelsChannelsAndUnits) {
  Result<OmeDocument> doc = ParseOmeXml(OmeXml(
      "DimensionOrder=\"XYCZT\" SizeZ=\"2\" SizeC=\"2\" SizeT=\"3\" BigEndian=\"true\" "
      "PhysicalSizeX=\"0.5\" PhysicalSizeXUnit=\"nm\" PhysicalSizeY=\"0.25\" PhysicalSizeZ=\"2\" "
      "PhysicalSizeZUnit=\"mm\" TimeIncrement=\"100\" TimeIncrementUnit=\"ms\" "
      "SignificantBits=\"12\" Interleaved=\"false\"",
      "<Channel ID=\"Channel:0:0\" Name=\"DAPI\" Color=\"65535\" SamplesPerPixel=\"1\"/>"
      "<Channel ID=\"Channel:0:1\" Color=\"-16776961\"/>",
      "2016-06", "UUID=\"urn:uuid:abc\" Creator=\"me\""));
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  EXPECT_EQ(doc->uuid, "urn:uuid:abc");
  EXPECT_EQ(doc->creator, "me");
  ASSERT_EQ(doc->images.size(), 1u);
  const OmeImage& image = doc->images[0];
  EXPECT_EQ(image.id, "Image:0");
  EXPECT_EQ(image.name, "img");
  const OmePixels& p = image.pixels;
  EXPECT_EQ(p.dimension_order, "XYCZT");
  EXPECT_EQ(p.size_x, 4u);
  EXPECT_EQ(p.size_y, 3u);
  EXPECT_EQ(p.size_z, 2u);
  EXPECT_EQ(p.size_c, 2u);
  EXPECT_EQ(p.size_t_, 3u);
  EXPECT_EQ(p.dtype, DType::Make('u', 1));
  EXPECT_EQ(p.big_endian, true);
  EXPECT_EQ(p.physical_size_x, (Quantity{0.5, "nanometer"}));
  EXPECT_EQ(p.physical_size_y, (Quantity{0.25, "micrometer"}));  // default unit µm
  EXPECT_EQ(p.physical_size_z, (Quantity{2, "millimeter"}));
  EXPECT_EQ(p.time_increment, (Quantity{100, "millisecond"}));
  EXPECT_EQ(p.significant_bits, 12u);
  EXPECT_EQ(p.interleaved, false);
  ASSERT_EQ(p.channels.size(), 2u);
  EXPECT_EQ(p.channels[0].name, "DAPI");
  EXPECT_EQ(p.channels[0].color, 0x0000FFu);  // RGBA 0x0000FFFF
  EXPECT_EQ(p.channels[1].color, 0xFF0000u);  // RGBA 0xFF0000FF as a negative int
  EXPECT_TRUE(doc->warnings.empty());
}

TEST(OmeXml, DefaultsWhenAttributesAreAbsent) {
  OmeImage image = ParseOne(OmeXml("", ""));
  EXPECT_EQ(image.pixels.dimension_order, "XYZCT");
  EXPECT_EQ(image.pixels.PlaneCount(), 1u);
  EXPECT_FALSE(image.pixels.physical_size_x);
  EXPECT_FALSE(image.pixels.time_increment);
  EXPECT_EQ(image.pixels.dtype.byte_order, '|');
}

TEST(OmeXml, TimeIncrementDefaultsToSeconds) {
  OmeImage image = ParseOne(OmeXml("TimeIncrement=\"2.5\"", ""));
  EXPECT_EQ(image.pixels.time_increment, (Quantity{2.5, "second"}));
}

TEST(OmeXml, MatchesElementsOfAnySchemaYearAndPrefix) {
  for (const char* year : {"2008-02", "2010-06", "2013-06", "2015-01", "2016-06"}) {
    OmeImage image = ParseOne(OmeXml("SizeZ=\"7\"", "<TiffData PlaneCount=\"7\"/>", year));
    EXPECT_EQ(image.pixels.size_z, 7u) << year;
    EXPECT_EQ(image.pixels.tiff_data.size(), 1u) << year;
  }
  Result<OmeDocument> doc = ParseOmeXml(
      "<ome:OME xmlns:ome=\"http://www.openmicroscopy.org/Schemas/OME/2016-06\">"
      "<ome:Image ID=\"Image:0\"><ome:Pixels Type=\"uint16\" SizeX=\"2\" SizeY=\"2\" SizeC=\"3\" "
      "DimensionOrder=\"XYCZT\"><ome:Channel SamplesPerPixel=\"3\"/><ome:TiffData IFD=\"0\"/>"
      "</ome:Pixels></ome:Image></ome:OME>");
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  ASSERT_EQ(doc->images.size(), 1u);
  EXPECT_EQ(doc->images[0].pixels.size_c, 3u);
  EXPECT_EQ(doc->images[0].pixels.SamplesPerPixel(), 3u);
  EXPECT_EQ(doc->images[0].pixels.tiff_data.at(0).ifd, 0u);
}

TEST(OmeXml, ReadsTiffDataUuidAndFileName) {
  OmeImage image = ParseOne(OmeXml(
      "SizeZ=\"2\"",
      "<TiffData IFD=\"3\" FirstZ=\"1\" PlaneCount=\"1\"><UUID FileName=\"b.ome.tif\">\n"
      "  urn:uuid:bbb  </UUID></TiffData>"));
  ASSERT_EQ(image.pixels.tiff_data.size(), 1u);
  const OmeTiffData& td = image.pixels.tiff_data[0];
  EXPECT_EQ(td.ifd, 3u);
  EXPECT_EQ(td.first_z, 1u);
  EXPECT_FALSE(td.first_c);
  EXPECT_EQ(td.plane_count, 1u);
  EXPECT_EQ(td.file.uuid, "urn:uuid:bbb");
  EXPECT_EQ(td.file.file_name, "b.ome.tif");
}

TEST(OmeXml, ReadsBinaryOnly) {
  Result<OmeDocument> doc = ParseOmeXml(
      "<OME xmlns=\"http://www.openmicroscopy.org/Schemas/OME/2016-06\" UUID=\"urn:uuid:2\">"
      "<BinaryOnly MetadataFile=\"master.ome.tif\" UUID=\"urn:uuid:1\"/></OME>");
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  EXPECT_TRUE(doc->images.empty());
  ASSERT_TRUE(doc->binary_only);
  EXPECT_EQ(doc->binary_only->metadata_file, "master.ome.tif");
  EXPECT_EQ(doc->binary_only->uuid, "urn:uuid:1");
}

TEST(OmeXml, MapsEveryPixelType) {
  struct Case {
    const char* type;
    DType dtype;
  } cases[] = {{"int8", DType::Make('i', 1)},          {"int16", DType::Make('i', 2)},
               {"int32", DType::Make('i', 4)},         {"uint8", DType::Make('u', 1)},
               {"uint16", DType::Make('u', 2)},        {"uint32", DType::Make('u', 4)},
               {"float", DType::Make('f', 4)},         {"double", DType::Make('f', 8)},
               {"complex", DType::Make('c', 8)},       {"double-complex", DType::Make('c', 16)},
               {"bit", DType::Make('b', 1)}};
  for (const Case& c : cases) {
    EXPECT_EQ(OmePixelTypeToDType(c.type, false), c.dtype) << c.type;
  }
  EXPECT_EQ(OmePixelTypeToDType("uint16", true), DType::Make('u', 2, '>'));
  EXPECT_FALSE(OmePixelTypeToDType("uint12", false));
}

TEST(OmeXml, RejectsMalformedDocumentsWithTheReason) {
  struct Case {
    std::string xml;
    std::string expected;
  } cases[] = {
      {"<OME><Image>", "not well-formed"},
      {"<NotOme/>", "not <OME>"},
      {"<OME><Image ID=\"Image:7\"/></OME>", "Image:7: Image has no Pixels"},
      {OmeXml("DimensionOrder=\"XYZZT\"", ""), "DimensionOrder \"XYZZT\""},
      {OmeXml("SizeZ=\"0\"", ""), "size of 0"},
      {OmeXml("SizeZ=\"two\"", ""), "SizeZ=\"two\""},
      {"<OME><Image ID=\"I\"><Pixels Type=\"uint8\" SizeX=\"1\"/></Image></OME>", "no SizeX/SizeY"},
      {OmeXml("", "").replace(OmeXml("", "").find("uint8"), 5, "uint12"), "unknown pixel Type"},
      {OmeXml("", "<TiffData IFD=\"-1\"/>"), "TiffData 0: IFD=\"-1\""},
  };
  for (const Case& c : cases) {
    Result<OmeDocument> doc = ParseOmeXml(c.xml);
    ASSERT_FALSE(doc.ok()) << c.xml;
    EXPECT_EQ(doc.status().code(), StatusCode::kCorrupt);
    EXPECT_NE(doc.status().message().find(c.expected), std::string::npos)
        << doc.status().message() << " lacks " << c.expected;
  }
}

TEST(OmeXml, IgnoresUnparseablePhysicalSizeWithAWarning) {
  Result<OmeDocument> doc = ParseOmeXml(OmeXml(
      "PhysicalSizeX=\"abc\" PhysicalSizeY=\"1\" PhysicalSizeYUnit=\"pixel\"", ""));
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  EXPECT_FALSE(doc->images[0].pixels.physical_size_x);
  EXPECT_EQ(doc->images[0].pixels.physical_size_y, (Quantity{1, ""}));
  ASSERT_EQ(doc->warnings.size(), 2u);
  EXPECT_NE(doc->warnings[0].find("PhysicalSizeX=\"abc\""), std::string::npos);
  EXPECT_NE(doc->warnings[1].find("\"pixel\""), std::string::npos);
}

// ---- TiffData rules (OME-TIFF specification fragments and Bio-Formats' fill rule) ----

TEST(MapPlanes, WithoutTiffDataPlanesAreIfdsInDimensionOrder) {
  // XYZTC: z fastest, then t, then c. Spec fragment 1 (SizeZ 3, SizeT 2, SizeC 2).
  OmeImage image = ParseOne(OmeXml("DimensionOrder=\"XYZTC\" SizeZ=\"3\" SizeT=\"2\" SizeC=\"2\"",
                                   ""));
  auto planes = MapPlanes(image, Ctx(14));  // extra IFDs are ignored
  ASSERT_TRUE(planes.ok()) << planes.status().ToString();
  ASSERT_EQ(planes->size(), 12u);
  for (const PlaneRef& p : *planes) {
    EXPECT_TRUE(p.this_file);
    EXPECT_EQ(p.ifd, p.z + 3u * p.t + 6u * p.c);
  }
  // Output order is (t, c, z): plane (t=1, c=0, z=2) is index (1*2+0)*3+2 = 8.
  EXPECT_EQ((*planes)[8].t, 1u);
  EXPECT_EQ((*planes)[8].c, 0u);
  EXPECT_EQ((*planes)[8].z, 2u);
  EXPECT_EQ((*planes)[8].ifd, 5u);
}

TEST(MapPlanes, EmptyTiffDataCoversAllPlanesFromIfdZero) {
  OmeImage image = ParseOne(OmeXml("DimensionOrder=\"XYCTZ\" SizeZ=\"2\" SizeC=\"2\" SizeT=\"2\"",
                                   "<TiffData/>"));
  auto planes = MapPlanes(image, Ctx(8));
  ASSERT_TRUE(planes.ok()) << planes.status().ToString();
  // XYCTZ: c fastest, then t, then z.
  for (const PlaneRef& p : *planes) EXPECT_EQ(p.ifd, p.c + 2u * p.t + 4u * p.z);
}

TEST(MapPlanes, PlaneCountStartingAtAnIfd) {
  // Spec fragment 3 with a PlaneCount that covers the image: IFDs 0-2 are not used.
  OmeImage image = ParseOne(OmeXml("DimensionOrder=\"XYZTC\" SizeZ=\"4\" SizeT=\"2\"",
                                   "<TiffData IFD=\"3\" PlaneCount=\"8\"/>"));
  auto planes = MapPlanes(image, Ctx(11));
  ASSERT_TRUE(planes.ok()) << planes.status().ToString();
  EXPECT_EQ(Ifds(*planes), (std::vector<uint64_t>{3, 4, 5, 6, 7, 8, 9, 10}));
}

TEST(MapPlanes, IfdWithoutPlaneCountFillsAllRemainingPlanes) {
  OmeImage image = ParseOne(OmeXml("SizeZ=\"5\"", "<TiffData IFD=\"2\"/>"));
  auto planes = MapPlanes(image, Ctx(7));
  ASSERT_TRUE(planes.ok()) << planes.status().ToString();
  EXPECT_EQ(Ifds(*planes), (std::vector<uint64_t>{2, 3, 4, 5, 6}));
}

TEST(MapPlanes, FirstPositionsWithoutPlaneCountPlaceOnePlaneEach) {
  // Spec fragment 4: time points stored in reverse order.
  std::string body;
  for (int i = 0; i < 6; ++i) {
    body += "<TiffData IFD=\"" + std::to_string(i) + "\" FirstT=\"" + std::to_string(5 - i) + "\"/>";
  }
  OmeImage image = ParseOne(OmeXml("DimensionOrder=\"XYZTC\" SizeT=\"6\"", body));
  auto planes = MapPlanes(image, Ctx(6));
  ASSERT_TRUE(planes.ok()) << planes.status().ToString();
  EXPECT_EQ(Ifds(*planes), (std::vector<uint64_t>{5, 4, 3, 2, 1, 0}));
}

TEST(MapPlanes, FillStopsAtThePlaneAnotherTiffDataPlaced) {
  // The first element fills z=1..2, then z=3 is placed explicitly at IFD 10 and fills z=4.
  OmeImage image = ParseOne(OmeXml(
      "SizeZ=\"5\"", "<TiffData IFD=\"0\"/><TiffData IFD=\"10\" FirstZ=\"3\"/>"));
  auto planes = MapPlanes(image, Ctx(12));
  ASSERT_TRUE(planes.ok()) << planes.status().ToString();
  EXPECT_EQ(Ifds(*planes), (std::vector<uint64_t>{0, 1, 2, 10, 11}));
}

TEST(MapPlanes, PlaneCountRunsInDimensionOrderFromTheFirstPosition) {
  // XYCZT with C=2, Z=3: start at (c=1, z=0), the next planes are (c=0, z=1), (c=1, z=1).
  OmeImage image = ParseOne(OmeXml(
      "DimensionOrder=\"XYCZT\" SizeC=\"2\" SizeZ=\"3\"",
      "<TiffData IFD=\"0\" PlaneCount=\"1\"/>"
      "<TiffData IFD=\"5\" FirstC=\"1\" PlaneCount=\"3\"/>"
      "<TiffData IFD=\"1\" FirstC=\"0\" FirstZ=\"2\" PlaneCount=\"2\"/>"));
  auto planes = MapPlanes(image, Ctx(8));
  ASSERT_TRUE(planes.ok()) << planes.status().ToString();
  // (t,c,z) order: c0: z0 z1 z2, c1: z0 z1 z2.
  EXPECT_EQ(Ifds(*planes), (std::vector<uint64_t>{0, 6, 1, 5, 7, 2}));
}

TEST(MapPlanes, RgbChannelsShareAnIfd) {
  // SizeC 6 = 2 channels of 3 samples: 2 planes per time point, not 6.
  OmeImage image = ParseOne(OmeXml(
      "DimensionOrder=\"XYCZT\" SizeC=\"6\" SizeT=\"2\"",
      "<Channel SamplesPerPixel=\"3\"/><Channel SamplesPerPixel=\"3\"/><TiffData/>"));
  EXPECT_EQ(image.pixels.SamplesPerPixel(), 3u);
  EXPECT_EQ(image.pixels.EffectiveSizeC(), 2u);
  auto planes = MapPlanes(image, Ctx(4));
  ASSERT_TRUE(planes.ok()) << planes.status().ToString();
  ASSERT_EQ(planes->size(), 4u);
  EXPECT_EQ((*planes)[3].t, 1u);
  EXPECT_EQ((*planes)[3].c, 1u);
  EXPECT_EQ((*planes)[3].ifd, 3u);
}

TEST(MapPlanes, ResolvesFilesByUuidAndFileName) {
  OmeImage image = ParseOne(OmeXml(
      "SizeZ=\"3\"",
      "<TiffData FirstZ=\"0\" PlaneCount=\"1\"><UUID FileName=\"a.ome.tif\">urn:uuid:a</UUID>"
      "</TiffData>"
      "<TiffData FirstZ=\"1\" PlaneCount=\"1\"><UUID FileName=\"b.ome.tif\">urn:uuid:b</UUID>"
      "</TiffData>"
      "<TiffData FirstZ=\"2\" IFD=\"1\" PlaneCount=\"1\"><UUID FileName=\"b.ome.tif\">urn:uuid:b"
      "</UUID></TiffData>"));
  auto planes = MapPlanes(image, Ctx(1, "urn:uuid:a", "a.ome.tif"));
  ASSERT_TRUE(planes.ok()) << planes.status().ToString();
  EXPECT_TRUE((*planes)[0].this_file);
  EXPECT_EQ((*planes)[0].file, OmeFileRef{});
  EXPECT_FALSE((*planes)[1].this_file);
  EXPECT_EQ((*planes)[1].file, (OmeFileRef{"urn:uuid:b", "b.ome.tif"}));
  EXPECT_EQ((*planes)[1].ifd, 0u);
  EXPECT_EQ((*planes)[2].ifd, 1u);
}

TEST(MapPlanes, WithoutRootUuidTheOwnFileNameIdentifiesThisFile) {
  // Micro-Manager: no UUID on <OME>, TiffData name this file by UUID + FileName.
  OmeImage image = ParseOne(OmeXml(
      "SizeT=\"2\"",
      "<TiffData FirstT=\"0\" IFD=\"0\" PlaneCount=\"1\"><UUID FileName=\"MM.ome.tif\">urn:uuid:m"
      "</UUID></TiffData><TiffData FirstT=\"1\" IFD=\"2\" PlaneCount=\"1\"><UUID "
      "FileName=\"MM.ome.tif\">urn:uuid:m</UUID></TiffData>"));
  auto planes = MapPlanes(image, Ctx(3, "", "mm.OME.tif"));
  ASSERT_TRUE(planes.ok()) << planes.status().ToString();
  EXPECT_TRUE((*planes)[0].this_file);
  EXPECT_TRUE((*planes)[1].this_file);
  EXPECT_EQ(Ifds(*planes), (std::vector<uint64_t>{0, 2}));
}

TEST(MapPlanes, FillIntoAnotherFileIsNotBoundedByThisFile) {
  OmeImage image = ParseOne(OmeXml(
      "SizeZ=\"4\"", "<TiffData><UUID FileName=\"other.tif\">urn:uuid:o</UUID></TiffData>"));
  auto planes = MapPlanes(image, Ctx(1, "urn:uuid:self"));
  ASSERT_TRUE(planes.ok()) << planes.status().ToString();
  EXPECT_EQ(Ifds(*planes), (std::vector<uint64_t>{0, 1, 2, 3}));
  for (const PlaneRef& p : *planes) EXPECT_FALSE(p.this_file);
}

// ---- Contradictions: each is an error naming the image and the problem ----

struct Contradiction {
  std::string name;
  std::string pixels_attrs;
  std::string body;
  uint64_t ifds;
  std::string expected;
};

class MapPlanesContradiction : public ::testing::TestWithParam<Contradiction> {};

TEST_P(MapPlanesContradiction, IsAnErrorNamingImageAndProblem) {
  const Contradiction& c = GetParam();
  OmeImage image = ParseOne(OmeXml(c.pixels_attrs, c.body));
  auto planes = MapPlanes(image, Ctx(c.ifds, "urn:uuid:self"));
  ASSERT_FALSE(planes.ok());
  EXPECT_EQ(planes.status().code(), StatusCode::kCorrupt);
  const std::string m = planes.status().message();
  EXPECT_NE(m.find("image Image:0 (img)"), std::string::npos) << m;
  EXPECT_NE(m.find(c.expected), std::string::npos) << m << " lacks " << c.expected;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, MapPlanesContradiction,
    ::testing::Values(
        Contradiction{"MorePlanesThanIfdsWithoutTiffData", "SizeZ=\"5\"", "", 4,
                      "has 5 planes and no TiffData, but the file has only 4 IFDs"},
        Contradiction{"PlaneCountPastTheIfds", "SizeZ=\"5\"", "<TiffData PlaneCount=\"5\"/>", 3,
                      "is in IFD 3, but the file has only 3 IFDs"},
        Contradiction{"ExplicitIfdBeyondTheFile", "SizeZ=\"2\"",
                      "<TiffData IFD=\"0\" PlaneCount=\"1\"/><TiffData IFD=\"9\" FirstZ=\"1\" "
                      "PlaneCount=\"1\"/>",
                      4, "is in IFD 9, but the file has only 4 IFDs"},
        Contradiction{"FillRunsOutOfIfds", "SizeZ=\"5\"", "<TiffData/>", 3,
                      "2 of 5 planes have no TiffData, the first is (t=0, c=0, z=3)"},
        Contradiction{"PlaneCountPastTheImage", "SizeZ=\"3\"",
                      "<TiffData FirstZ=\"1\" PlaneCount=\"3\"/>", 10,
                      "PlaneCount 3 from plane (t=0, c=0, z=1) runs past the last of the image's 3"},
        Contradiction{"FirstOutsideTheImage", "SizeT=\"2\"", "<TiffData FirstT=\"2\"/>", 10,
                      "TiffData 0: first plane (t=2, c=0, z=0) is outside the image"},
        Contradiction{"DuplicatePlane", "SizeZ=\"2\"",
                      "<TiffData IFD=\"0\" PlaneCount=\"2\"/><TiffData IFD=\"5\" FirstZ=\"1\"/>", 10,
                      "TiffData 1: plane (t=0, c=0, z=1) is already placed by TiffData 0"},
        Contradiction{"SameIfdTwice", "SizeZ=\"2\"",
                      "<TiffData IFD=\"1\" FirstZ=\"0\" PlaneCount=\"1\"/>"
                      "<TiffData IFD=\"1\" FirstZ=\"1\" PlaneCount=\"1\"/>",
                      10, "IFD 1 of this file holds two planes"},
        Contradiction{"MissingPlanes", "SizeZ=\"4\"",
                      "<TiffData IFD=\"0\" PlaneCount=\"1\"/><TiffData IFD=\"1\" FirstZ=\"2\" "
                      "PlaneCount=\"1\"/>",
                      10, "2 of 4 planes have no TiffData, the first is (t=0, c=0, z=1)"},
        Contradiction{"PlaneCountLeavesPlanesUncovered", "SizeZ=\"4\" SizeT=\"3\" SizeC=\"2\"",
                      "<TiffData PlaneCount=\"10\"/>", 24, "14 of 24 planes have no TiffData"}),
    [](const ::testing::TestParamInfo<Contradiction>& info) { return info.param.name; });

TEST(MapAllPlanes, RejectsAnIfdClaimedByTwoImages) {
  std::string xml =
      "<OME xmlns=\"http://www.openmicroscopy.org/Schemas/OME/2016-06\">"
      "<Image ID=\"Image:0\"><Pixels Type=\"uint8\" SizeX=\"1\" SizeY=\"1\" SizeT=\"2\">"
      "<TiffData IFD=\"0\" PlaneCount=\"2\"/></Pixels></Image>"
      "<Image ID=\"Image:1\"><Pixels Type=\"uint8\" SizeX=\"1\" SizeY=\"1\" SizeT=\"2\">"
      "<TiffData IFD=\"1\" PlaneCount=\"2\"/></Pixels></Image></OME>";
  Result<OmeDocument> doc = ParseOmeXml(xml);
  ASSERT_TRUE(doc.ok());
  auto all = MapAllPlanes(*doc, Ctx(3));
  ASSERT_FALSE(all.ok());
  EXPECT_NE(all.status().message().find("image Image:1: IFD 1 of this file is also a plane of "
                                        "image Image:0"),
            std::string::npos)
      << all.status().message();
}

TEST(MapAllPlanes, MapsInterleavedImages) {
  std::string xml =
      "<OME xmlns=\"http://www.openmicroscopy.org/Schemas/OME/2016-06\">"
      "<Image ID=\"Image:0\"><Pixels Type=\"uint8\" SizeX=\"1\" SizeY=\"1\" SizeT=\"2\">"
      "<TiffData IFD=\"0\" PlaneCount=\"1\"/><TiffData IFD=\"2\" FirstT=\"1\" PlaneCount=\"1\"/>"
      "</Pixels></Image>"
      "<Image ID=\"Image:1\"><Pixels Type=\"uint8\" SizeX=\"1\" SizeY=\"1\" SizeT=\"2\">"
      "<TiffData IFD=\"1\" PlaneCount=\"1\"/><TiffData IFD=\"3\" FirstT=\"1\" PlaneCount=\"1\"/>"
      "</Pixels></Image></OME>";
  Result<OmeDocument> doc = ParseOmeXml(xml);
  ASSERT_TRUE(doc.ok());
  auto all = MapAllPlanes(*doc, Ctx(4));
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ(Ifds((*all)[0]), (std::vector<uint64_t>{0, 2}));
  EXPECT_EQ(Ifds((*all)[1]), (std::vector<uint64_t>{1, 3}));
}

}  // namespace
}  // namespace refzarr
