#include "indexer/labels.h"

#include <gtest/gtest.h>

namespace refzarr {
namespace {

TEST(LabelRules, NamesComeFromThePatternAndDefaultExpands) {
  auto rules = ParseLabelRules({"default", "seg/{name}-cells.tiff"});
  ASSERT_TRUE(rules.ok()) << rules.status().ToString();
  ASSERT_EQ(rules->size(), 4u);
  EXPECT_EQ((*rules)[0].label, "mask");
  EXPECT_EQ((*rules)[1].label, "labels");
  EXPECT_EQ((*rules)[2].label, "masks");
  EXPECT_EQ((*rules)[3].label, "seg_-cells");
}

TEST(LabelRules, RefusesPatternsThatNameNoLabel) {
  for (const char* bad : {"{name}.tif", "mask.tif", "{name}_{name}.tif", "/abs/{name}_m.tif"}) {
    auto rules = ParseLabelRules({bad});
    EXPECT_FALSE(rules.ok()) << bad;
    if (!rules.ok()) EXPECT_NE(rules.status().message().find(bad), std::string::npos);
  }
  EXPECT_FALSE(ParseLabelRules({"{name}_mask.tif", "{name}_mask.tiff"}).ok());
  auto h5 = ParseLabelRules({"h5:/raw=/segmentation"});
  ASSERT_FALSE(h5.ok());
  EXPECT_EQ(h5.status().code(), StatusCode::kUnsupported);
}

TEST(LabelRules, StemDropsTheExtensionAndOme) {
  EXPECT_EQ(LabelStem("a.tif"), "a");
  EXPECT_EQ(LabelStem("a.ome.tiff"), "a");
  EXPECT_EQ(LabelStem("a.OME.tif"), "a");
  EXPECT_EQ(LabelStem("a.b.tif"), "a.b");
  EXPECT_EQ(LabelStem("noext"), "noext");
}

// One image at "0" with one (t, c, z, y, x) level of `shape` and dtype `dtype`, one chunk.
ScannedFile OneImage(std::vector<uint64_t> shape, DType dtype, uint64_t offset) {
  ScannedFile f;
  ImageDesc image;
  image.axes = {{"t", "time", ""}, {"c", "channel", ""}, {"z", "space", ""}, {"y", "space", ""},
                {"x", "space", ""}};
  image.levels = {"0"};
  image.scales = {{1, 1, 1, 0.5, 0.5}};
  f.groups.push_back({"", {{"bioformats2raw.layout", 3}}, std::nullopt});
  f.groups.push_back({"0", nlohmann::json::object(), image});
  ScannedFile::Array a;
  a.path = "0/0";
  a.desc.shape = shape;
  a.desc.chunks = shape;
  a.desc.dtype = dtype;
  a.chunks.push_back({0, ChunkRef{0, offset, 100, 0}});
  f.arrays.push_back(std::move(a));
  return f;
}

TEST(GraftLabels, PutsTheLabelImageUnderTheImageWithItsSource) {
  ScannedFile image = OneImage({1, 2, 3, 40, 60}, DType::Make('u', 2), 8);
  const ScannedFile label = OneImage({1, 1, 3, 40, 60}, DType::Make('u', 4), 1000);
  ASSERT_TRUE(GraftLabels(image, "file:///d/a.tif", label, "file:///d/a_mask.tif", "mask").ok());
  EXPECT_EQ(image.companions, std::vector<std::string>{"file:///d/a_mask.tif"});
  const auto* labels = image.FindGroup("0/labels");
  ASSERT_NE(labels, nullptr);
  EXPECT_EQ(labels->attributes["labels"], nlohmann::json::array({"mask"}));
  const auto* mask = image.FindGroup("0/labels/mask");
  ASSERT_NE(mask, nullptr);
  ASSERT_TRUE(mask->image);
  EXPECT_EQ(mask->image->scales[0], (std::vector<double>{1, 1, 1, 0.5, 0.5}));
  EXPECT_EQ(mask->attributes["image-label"]["source"]["image"], "../../");
  EXPECT_EQ(mask->attributes["image-label"]["colors"][0]["rgba"], nlohmann::json({0, 0, 0, 0}));
  const auto* level = image.FindArray("0/labels/mask/0");
  ASSERT_NE(level, nullptr);
  ASSERT_EQ(level->chunks.size(), 1u);
  EXPECT_EQ(level->chunks[0].second.source, 1u);  // the label file
  EXPECT_EQ(level->chunks[0].second.offset, 1000u);
}

TEST(GraftLabels, RefusesFloatsAndOtherShapesNamingBothFiles) {
  ScannedFile image = OneImage({1, 1, 1, 40, 60}, DType::Make('u', 2), 8);
  auto floats = GraftLabels(image, "file:///d/a.tif",
                            OneImage({1, 1, 1, 40, 60}, DType::Make('f', 4), 0),
                            "file:///d/a_mask.tif", "mask");
  ASSERT_FALSE(floats.ok());
  EXPECT_NE(floats.message().find("/d/a_mask.tif of /d/a.tif"), std::string::npos);
  EXPECT_NE(floats.message().find("integers"), std::string::npos);
  auto shape = GraftLabels(image, "file:///d/a.tif",
                           OneImage({1, 1, 1, 41, 60}, DType::Make('u', 1), 0),
                           "file:///d/a_mask.tif", "mask");
  ASSERT_FALSE(shape.ok());
  EXPECT_NE(shape.message().find("1 x 1 x 1 x 41 x 60"), std::string::npos) << shape.message();
  EXPECT_NE(shape.message().find("1 x 1 x 1 x 40 x 60"), std::string::npos) << shape.message();
  EXPECT_EQ(image.FindGroup("0/labels"), nullptr);  // nothing half-grafted
  EXPECT_TRUE(image.companions.empty());
}

}  // namespace
}  // namespace refzarr
