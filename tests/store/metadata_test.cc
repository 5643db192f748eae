// The documents store/metadata.cc renders, checked for their shapes (tests/store/document_shapes)
// and for the codecs each view names: a compat Zarr v3 array names only codecs every v3 client
// implements, whatever the stored encoding.
#include "store/metadata.h"

#include <gtest/gtest.h>

#include "store/transcode/transcode.h"
#include "tests/store/document_shapes.h"

namespace refzarr {
namespace {

using nlohmann::json;
using testing::V3Codecs;

ArrayDesc Tczyx(DType dtype) {
  ArrayDesc a;
  a.shape = {1, 3, 1, 100, 80};
  a.chunks = {1, 3, 1, 64, 64};
  a.dtype = dtype;
  return a;
}

// The encodings the scanners write (TIFF: deflate, zstd, lzma, LZW + predictor, interleaved RGB;
// HDF5: deflate, shuffle + deflate, blosc, zstd, fletcher32, vlen strings).
std::vector<std::pair<std::string, ArrayDesc>> Encodings() {
  std::vector<std::pair<std::string, ArrayDesc>> out;
  auto add = [&](std::string name, json filters, json compressor, bool native = true,
                 std::vector<int> order = {}, DType dtype = DType::Make('u', 2, '<')) {
    ArrayDesc a = Tczyx(dtype);
    a.encoding.filters = filters;
    a.encoding.compressor = compressor;
    a.encoding.native = native;
    a.encoding.decoder = native ? "" : "tiff";
    a.encoding.stored_order = order;
    out.emplace_back(std::move(name), std::move(a));
  };
  const json shuffle = json::array({json::object({{"id", "shuffle"}, {"elementsize", 2}})});
  add("raw", nullptr, nullptr);
  add("raw big-endian", nullptr, nullptr, true, {}, DType::Make('u', 2, '>'));
  add("zlib", nullptr, {{"id", "zlib"}, {"level", 6}});
  add("gzip", nullptr, {{"id", "gzip"}, {"level", 5}});
  add("zstd", nullptr, {{"id", "zstd"}, {"level", 3}});
  add("blosc", nullptr, {{"id", "blosc"}, {"cname", "zstd"}, {"clevel", 5}, {"shuffle", 2}});
  add("shuffle+zlib", shuffle, {{"id", "zlib"}, {"level", 4}});
  add("shuffle", shuffle, nullptr);
  add("lzma", nullptr, {{"id", "lzma"}, {"format", 1}});
  add("tiff zstd", nullptr, {{"id", "zstd"}, {"level", 0}}, false);
  add("lzw+delta", json::array({json::object({{"id", "imagecodecs_delta"}, {"axis", -2}})}),
      {{"id", "imagecodecs_lzw"}}, false);
  add("interleaved zlib", nullptr, {{"id", "zlib"}}, true, {0, 2, 3, 4, 1}, DType::Make('u', 1));
  add("interleaved raw", nullptr, nullptr, true, {0, 2, 3, 4, 1}, DType::Make('u', 1));
  add("fletcher32", json::array({json::object({{"id", "fletcher32"}})}), {{"id", "zlib"}}, false);
  return out;
}

TEST(RenderArrayV3, CompatArraysNameOnlyCodecsEveryV3ClientHas) {
  for (auto& [name, a] : Encodings()) {
    SCOPED_TRACE(name);
    for (bool flagged : {false, true}) {
      bool transcoded = NeedsTranscode(a, CodecPolicy::kCompat, flagged, 3);
      json doc = RenderArrayV3(a, transcoded);
      EXPECT_EQ(testing::ArrayV3Problems(doc, V3Codecs::kCompat), testing::Problems{})
          << doc.dump();
      for (const json& codec : doc["codecs"]) {
        EXPECT_TRUE(IsCompatCodecV3(codec["name"].get<std::string>())) << codec.dump();
      }
    }
    // A passthrough view names what is stored; still one well-formed document.
    json stored = RenderArrayV3(a, NeedsTranscode(a, CodecPolicy::kPassthrough, false, 3));
    EXPECT_EQ(testing::ArrayV3Problems(stored, V3Codecs::kAny), testing::Problems{})
        << stored.dump();
  }
}

TEST(RenderArrayV3, ZlibArraysAreGzipAndInterleavedOnesPlanarInCompat) {
  auto codec_names = [](const json& doc) {
    std::vector<std::string> names;
    for (const json& c : doc["codecs"]) names.push_back(c["name"]);
    return names;
  };
  for (auto& [name, a] : Encodings()) {
    json compat = RenderArrayV3(a, NeedsTranscode(a, CodecPolicy::kCompat, false, 3));
    json passthrough = RenderArrayV3(a, false);
    if (name == "zlib") {
      EXPECT_EQ(codec_names(compat), (std::vector<std::string>{"bytes", "gzip"}));
      EXPECT_EQ(compat["codecs"][1]["configuration"]["level"], 6);
      EXPECT_EQ(codec_names(passthrough), (std::vector<std::string>{"bytes", "numcodecs.zlib"}));
    }
    if (name == "shuffle+zlib") {
      EXPECT_EQ(codec_names(compat), (std::vector<std::string>{"bytes", "blosc"}));
    }
    if (name == "interleaved zlib") {
      EXPECT_EQ(codec_names(compat), (std::vector<std::string>{"bytes", "blosc"})) << "planar";
      EXPECT_EQ(codec_names(passthrough),
                (std::vector<std::string>{"transpose", "bytes", "numcodecs.zlib"}));
      EXPECT_EQ(passthrough["codecs"][0]["configuration"]["order"], json({0, 2, 3, 4, 1}));
    }
    if (name == "gzip" || name == "zstd" || name == "blosc" || name == "raw") {
      EXPECT_EQ(compat, passthrough) << name << ": core codecs are served as stored";
    }
  }
}

// The kerchunk export and a passthrough v2 view name the interleaving as a filter object; a list
// of [key, value] pairs (an initializer list taken for elements) is no codec config at all.
TEST(RenderZarrayV2, InterleavedSamplesAreOneFilterObject) {
  ArrayDesc a = Tczyx(DType::Make('u', 1));
  a.encoding.compressor = {{"id", "zlib"}, {"level", 6}};
  a.encoding.stored_order = {0, 2, 3, 4, 1};
  json doc = RenderZarrayV2(a, false);
  EXPECT_EQ(doc["filters"], json::parse(R"([{"id":"refzarr_transpose","order":[0,2,3,4,1]}])"));
  EXPECT_EQ(testing::ZarrayProblems(doc), testing::Problems{}) << doc.dump();
  a.encoding.filters = json::array({json::object({{"id", "shuffle"}, {"elementsize", 1}})});
  doc = RenderZarrayV2(a, false);
  ASSERT_EQ(doc["filters"].size(), 2u);
  EXPECT_EQ(doc["filters"][0]["id"], "refzarr_transpose");
  EXPECT_EQ(doc["filters"][1]["id"], "shuffle");
  json compat = RenderZarrayV2(a, true);
  EXPECT_EQ(compat["filters"], nullptr);
  EXPECT_EQ(compat["compressor"], CompatCompressorV2());
}

TEST(RenderZarrayV2, EveryEncodingHasTheV2Shape) {
  for (auto& [name, a] : Encodings()) {
    SCOPED_TRACE(name);
    for (bool transcoded : {false, true}) {
      json doc = RenderZarrayV2(a, transcoded);
      EXPECT_EQ(testing::ZarrayProblems(doc), testing::Problems{}) << doc.dump();
    }
  }
  ArrayDesc empty_filters = Tczyx(DType::Make('u', 1));
  empty_filters.encoding.filters = json::array();
  EXPECT_EQ(RenderZarrayV2(empty_filters, false)["filters"], nullptr) << "none is null";
}

// Fill values in the form Zarr v3 gives each data type (v2 writes raw types as base64, integers
// sometimes as 0.0, complex as one number).
TEST(RenderArrayV3, FillValuesHaveTheFormOfTheirDataType) {
  struct Case {
    DType dtype;
    json fill, want;
  };
  DType f128 = DType::Make('f', 16, '<');
  const std::vector<Case> cases = {
      {DType::Make('S', 4), "AQIDBA==", json({1, 2, 3, 4})},
      {DType::Make('S', 2), nullptr, json({0, 0})},
      {DType::Make('V', 3), 0, json({0, 0, 0})},
      {f128, nullptr, json(std::vector<int>(16, 0))},
      {DType::Make('i', 4, '<'), 5.0, 5},
      {DType::Make('u', 2, '<'), nullptr, 0},
      {DType::Make('f', 4, '<'), "NaN", "NaN"},
      {DType::Make('f', 4, '<'), nullptr, "NaN"},
      {DType::Make('b', 1), 1, true},
      {DType::Make('c', 8, '<'), 2.5, json({2.5, 0.0})},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.dtype.ToV2().dump() + " " + c.fill.dump());
    ArrayDesc a = Tczyx(c.dtype);
    a.fill_value = c.fill;
    json doc = RenderArrayV3(a, false);
    EXPECT_EQ(doc["fill_value"], c.want);
    EXPECT_EQ(testing::ArrayV3Problems(doc, V3Codecs::kCompat), testing::Problems{}) << doc.dump();
  }
}

TEST(ShapeChecker, FindsWhatIsMisshapen) {
  json zarray = json::parse(R"({"zarr_format":2,"shape":[4],"chunks":[2],"dtype":"<u2",
      "fill_value":0,"order":"C","compressor":null,
      "filters":[["id","refzarr_transpose"],["order",[0,2,3,4,1]]]})");
  EXPECT_FALSE(testing::ZarrayProblems(zarray).empty()) << "the old interleaved filter";
  zarray["filters"] = nullptr;
  EXPECT_TRUE(testing::ZarrayProblems(zarray).empty());
  zarray["compressor"] = "zlib";
  EXPECT_FALSE(testing::ZarrayProblems(zarray).empty());
  json v3 = json::parse(R"({"zarr_format":3,"node_type":"array","shape":[1,3,1,4,4],
      "data_type":"uint8","chunk_grid":{"name":"regular","configuration":{"chunk_shape":[1,3,1,4,4]}},
      "chunk_key_encoding":{"name":"default","configuration":{"separator":"/"}},"fill_value":0,
      "codecs":[{"name":"transpose","configuration":{"order":[0,2,3,4,1]}},{"name":"bytes"},
                {"name":"numcodecs.zlib","configuration":{"level":6}}]})");
  EXPECT_TRUE(testing::ArrayV3Problems(v3, V3Codecs::kAny).empty());
  EXPECT_EQ(testing::ArrayV3Problems(v3, V3Codecs::kCompat).size(), 2u)
      << "transpose, numcodecs.zlib";
  v3["codecs"] = json::parse(R"([{"name":"gzip","configuration":{"level":1}},{"name":"bytes"}])");
  EXPECT_FALSE(testing::ArrayV3Problems(v3, V3Codecs::kAny).empty()) << "bytes->bytes before bytes";
  v3["codecs"] = json::parse(R"([{"name":"bytes"},{"name":"bytes"}])");
  EXPECT_FALSE(testing::ArrayV3Problems(v3, V3Codecs::kAny).empty()) << "two array->bytes";
  v3["codecs"] = json::parse(R"([{"name":"bytes"}])");
  v3["data_type"] = "r16";
  EXPECT_FALSE(testing::ArrayV3Problems(v3, V3Codecs::kAny).empty()) << "fill 0 of r16";
  v3["fill_value"] = json({0, 0});
  EXPECT_TRUE(testing::ArrayV3Problems(v3, V3Codecs::kAny).empty());
  EXPECT_FALSE(
      testing::KerchunkProblems(json::parse(R"({"version":1,"refs":{"a/0":["f",1]}})")).empty());
}

TEST(RenderGroupAttributes, CollectionsAreVersionedIn04AndUnderOmeIn05) {
  const json stored = {{"bioformats2raw.layout", 3},
                       {"plate", {{"name", "p"}, {"wells", json::array()}}},
                       {"well", {{"images", json::array({{{"path", "0"}}})}}},
                       {"labels", json::array({"mask"})},
                       {"image-label", {{"source", {{"image", "../../"}}}}}};
  const json v2 = RenderGroupAttributes(stored, nullptr, nullptr, 2);
  EXPECT_EQ(v2["plate"]["version"], "0.4");
  EXPECT_EQ(v2["well"]["version"], "0.4");
  EXPECT_EQ(v2["image-label"]["version"], "0.4");
  EXPECT_EQ(v2["labels"], json::array({"mask"}));
  EXPECT_EQ(v2["bioformats2raw.layout"], 3);
  const json v3 = RenderGroupAttributes(stored, nullptr, nullptr, 3);
  ASSERT_EQ(v3.size(), 1u) << v3.dump();
  const json& ome = v3["ome"];
  EXPECT_EQ(ome["version"], "0.5");
  EXPECT_EQ(ome["plate"], stored["plate"]);
  EXPECT_EQ(ome["well"], stored["well"]);
  EXPECT_EQ(ome["labels"], stored["labels"]);
  EXPECT_EQ(ome["image-label"], stored["image-label"]);
  EXPECT_EQ(ome["bioformats2raw.layout"], 3);
}

}  // namespace
}  // namespace refzarr
