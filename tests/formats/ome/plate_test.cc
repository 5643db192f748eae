#include "formats/ome/plate.h"

#include <string>

#include <gtest/gtest.h>

namespace refzarr {
namespace {

using nlohmann::json;

std::string Image(int i) {
  return "<Image ID=\"Image:" + std::to_string(i) + "\"><Pixels ID=\"Pixels:" + std::to_string(i) +
         "\" DimensionOrder=\"XYZCT\" Type=\"uint8\" SizeX=\"4\" SizeY=\"3\" SizeZ=\"1\" "
         "SizeC=\"1\" SizeT=\"1\"><TiffData IFD=\"" + std::to_string(i) +
         "\" PlaneCount=\"1\"/></Pixels></Image>";
}

std::string Doc(const std::string& plate_attrs, const std::string& plate_body, int images,
                const std::string& extra = "") {
  std::string xml = "<OME xmlns=\"http://www.openmicroscopy.org/Schemas/OME/2016-06\"><Plate ID=\"Plate:0\" " +
                    plate_attrs + ">" + plate_body + "</Plate>";
  for (int i = 0; i < images; ++i) xml += Image(i);
  return xml + extra + "</OME>";
}

std::string Well(int id, int row, int col, const std::string& samples) {
  return "<Well ID=\"Well:" + std::to_string(id) + "\" Row=\"" + std::to_string(row) +
         "\" Column=\"" + std::to_string(col) + "\">" + samples + "</Well>";
}

std::string Sample(const std::string& id, int index, int image) {
  return "<WellSample ID=\"" + id + "\" Index=\"" + std::to_string(index) +
         "\"><ImageRef ID=\"Image:" + std::to_string(image) + "\"/></WellSample>";
}

TEST(OmeXmlPlate, ReadsPlatesWellsSamplesAcquisitionsAndRois) {
  const std::string xml = Doc(
      "Name=\"p\" Rows=\"8\" Columns=\"12\" RowNamingConvention=\"letter\" "
      "ColumnNamingConvention=\"number\"",
      Well(0, 1, 2, Sample("WS:0", 0, 0) + Sample("WS:1", 1, 1)) +
          "<PlateAcquisition ID=\"PA:0\" Name=\"run\" MaximumFieldCount=\"2\" "
          "StartTime=\"2024-05-01T10:00:00\"><WellSampleRef ID=\"WS:1\"/></PlateAcquisition>",
      2,
      "<ROI ID=\"ROI:0\" Name=\"n\"><Union><Rectangle ID=\"S:0\"/><Polygon ID=\"S:1\"/></Union>"
      "</ROI>");
  auto doc = ParseOmeXml(xml);
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  ASSERT_EQ(doc->plates.size(), 1u);
  const OmePlate& p = doc->plates[0];
  EXPECT_EQ(p.name, "p");
  EXPECT_EQ(p.rows, 8u);
  EXPECT_EQ(p.columns, 12u);
  ASSERT_EQ(p.wells.size(), 1u);
  EXPECT_EQ(p.wells[0].row, 1u);
  EXPECT_EQ(p.wells[0].column, 2u);
  ASSERT_EQ(p.wells[0].samples.size(), 2u);
  EXPECT_EQ(p.wells[0].samples[1].image_ref, "Image:1");
  ASSERT_EQ(p.acquisitions.size(), 1u);
  EXPECT_EQ(p.acquisitions[0].maximum_field_count, 2u);
  EXPECT_EQ(p.acquisitions[0].well_sample_refs, std::vector<std::string>{"WS:1"});
  ASSERT_EQ(doc->rois.size(), 1u);
  EXPECT_EQ(doc->rois[0].shapes, (std::vector<std::string>{"Rectangle", "Polygon"}));
}

TEST(OmeXmlPlate, RefusesNonNumericWellPositions) {
  auto doc = ParseOmeXml(Doc("", "<Well ID=\"W\" Row=\"x\" Column=\"0\"/>", 1));
  ASSERT_FALSE(doc.ok());
  EXPECT_NE(doc.status().message().find("Row=\"x\""), std::string::npos) << doc.status().message();
}

TEST(PlanPlate, WellsFieldsAndAcquisitionsAsNgff) {
  auto doc = ParseOmeXml(Doc(
      "Name=\"p\" Rows=\"2\" Columns=\"3\"",
      Well(0, 0, 0, Sample("WS:0", 1, 1) + Sample("WS:1", 0, 0)) + Well(1, 1, 2, Sample("WS:2", 2, 2)) +
          "<PlateAcquisition ID=\"PA:0\" StartTime=\"2024-05-01T10:00:00Z\"><WellSampleRef "
          "ID=\"WS:0\"/><WellSampleRef ID=\"WS:1\"/></PlateAcquisition>",
      3));
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  std::vector<std::string> warnings;
  std::vector<std::string> reserved = {"0", "1", "2", "OME"};
  auto layout = PlanPlate(*doc, {true, true, true}, reserved, warnings);
  ASSERT_TRUE(layout.ok()) << layout.status().ToString();
  ASSERT_TRUE(*layout);
  const json& p = (*layout)->attributes["plate"];
  EXPECT_EQ(p["rows"], json::parse(R"([{"name":"A"},{"name":"B"}])"));
  EXPECT_EQ(p["columns"], json::parse(R"([{"name":"1"},{"name":"2"},{"name":"3"}])"));
  EXPECT_EQ(p["wells"], json::parse(R"([{"path":"A/1","rowIndex":0,"columnIndex":0},
                                         {"path":"B/3","rowIndex":1,"columnIndex":2}])"));
  EXPECT_EQ(p["field_count"], 2);
  EXPECT_EQ(p["acquisitions"], json::parse(R"([{"id":0,"name":"PA:0","maximumfieldcount":2,
                                                "starttime":1714557600}])"));
  ASSERT_EQ((*layout)->wells.size(), 2u);
  // Fields in Index order: WS:1 (image 0) first.
  EXPECT_EQ((*layout)->wells[0].attributes,
            json::parse(R"({"well":{"images":[{"path":"0","acquisition":0},
                                              {"path":"1","acquisition":0}]}})"));
  ASSERT_EQ((*layout)->fields.size(), 3u);
  EXPECT_EQ((*layout)->fields[0].path, "A/1/0");
  EXPECT_EQ((*layout)->fields[0].image, 0u);
  EXPECT_EQ((*layout)->fields[1].image, 1u);
  EXPECT_EQ((*layout)->fields[2].path, "B/3/0");
  EXPECT_TRUE(warnings.empty());
}

TEST(PlanPlate, LeavesOutFieldsWithoutAnIndexedImageAndSays) {
  auto doc = ParseOmeXml(Doc("", Well(0, 0, 0, Sample("WS:0", 0, 0)) +
                                     Well(1, 0, 1, Sample("WS:1", 1, 1) + Sample("WS:2", 2, 7)),
                             2));
  ASSERT_TRUE(doc.ok());
  std::vector<std::string> warnings;
  auto layout = PlanPlate(*doc, {true, false}, {}, warnings);
  ASSERT_TRUE(layout.ok() && *layout);
  EXPECT_EQ((*layout)->wells.size(), 1u);
  ASSERT_EQ(warnings.size(), 2u);
  EXPECT_NE(warnings[0].find("was not indexed"), std::string::npos) << warnings[0];
  EXPECT_NE(warnings[1].find("names no image"), std::string::npos) << warnings[1];
}

TEST(PlanPlate, RefusesWellsOutsideThePlateAndTwoWellsInOnePlace) {
  std::vector<std::string> warnings;
  auto outside = ParseOmeXml(Doc("Rows=\"2\" Columns=\"2\"", Well(0, 2, 0, Sample("WS:0", 0, 0)), 1));
  ASSERT_TRUE(outside.ok());
  auto a = PlanPlate(*outside, {true}, {}, warnings);
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.status().message().find("outside the plate"), std::string::npos);
  auto twice = ParseOmeXml(
      Doc("", Well(0, 0, 0, Sample("WS:0", 0, 0)) + Well(1, 0, 0, Sample("WS:1", 1, 1)), 2));
  ASSERT_TRUE(twice.ok());
  auto b = PlanPlate(*twice, {true, true}, {}, warnings);
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.status().message().find("two wells"), std::string::npos);
}

TEST(PlanPlate, NumberedRowsThatWouldTakeASeriesNameAreLettered) {
  auto doc = ParseOmeXml(
      Doc("RowNamingConvention=\"number\"", Well(0, 0, 0, Sample("WS:0", 0, 0)), 1));
  ASSERT_TRUE(doc.ok());
  std::vector<std::string> warnings;
  std::vector<std::string> reserved = {"0", "1", "OME"};
  auto layout = PlanPlate(*doc, {true}, reserved, warnings);
  ASSERT_TRUE(layout.ok() && *layout);
  EXPECT_EQ((*layout)->fields[0].path, "A/1/0");
  ASSERT_EQ(warnings.size(), 1u);
  auto free = PlanPlate(*doc, {true}, {}, warnings);
  ASSERT_TRUE(free.ok() && *free);
  EXPECT_EQ((*free)->fields[0].path, "1/1/0");
}

TEST(PlanPlate, AxisNamesAndTimestamps) {
  EXPECT_EQ(PlateAxisName(0, "letter"), "A");
  EXPECT_EQ(PlateAxisName(25, "letter"), "Z");
  EXPECT_EQ(PlateAxisName(26, "letter"), "AA");
  EXPECT_EQ(PlateAxisName(31, "letter"), "AF");
  EXPECT_EQ(PlateAxisName(47, "number"), "48");
  EXPECT_EQ(EpochSeconds("1970-01-01T00:00:10"), 10);
  EXPECT_EQ(EpochSeconds("2023-01-02T03:04:05.250+01:00"), 1672625045);
  EXPECT_EQ(EpochSeconds("2023-01-02"), std::nullopt);
  EXPECT_EQ(EpochSeconds("1960-01-01T00:00:00"), std::nullopt);
}

}  // namespace
}  // namespace refzarr
