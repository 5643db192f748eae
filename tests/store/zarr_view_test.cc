#include "store/zarr_view.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include "store/ref_store.h"

namespace refzarr {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// An index over one data file: group "img" (an OME image) with a uint16 array "img/0" of shape
// (4, 6) in (2, 3) chunks, whose chunk (1, 1) is missing; and a plain file "OME/notes.xml".
class ZarrViewTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("refzarr_view_" + std::to_string(getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    data_ = dir_ / "data.bin";
    std::string bytes;
    for (int i = 0; i < 64; ++i) bytes += static_cast<char>(i);
    std::ofstream(data_, std::ios::binary) << bytes;
    index_ = dir_ / "v.refs.db";
    auto store = OpenRefStore(index_, OpenMode::kReadWrite);
    ASSERT_TRUE(store.ok());
    ScannedFile f;
    ImageDesc image;
    image.axes = {{"y", "space", "micrometer"}, {"x", "space", "micrometer"}};
    image.levels = {"0"};
    image.scales = {{0.5, 0.25}};
    f.groups.push_back({"", {{"bioformats2raw.layout", 3}}, std::nullopt});
    f.groups.push_back({"img", json::object(), image});
    ScannedFile::Array a;
    a.path = "img/0";
    a.desc.shape = {4, 6};
    a.desc.chunks = {2, 3};
    a.desc.dtype = DType::Make('u', 2, '<');
    a.desc.dimension_names = {"y", "x"};
    for (uint64_t i : {0, 1, 2}) a.chunks.emplace_back(i, ChunkRef{0, 4 + i * 12, 12, 0});
    f.arrays.push_back(a);
    f.files.push_back({"OME/notes.xml", "<x/>"});
    auto src = ProbeSource(data_);
    ASSERT_TRUE(src.ok());
    ASSERT_TRUE((*store)->PutFile(*src, "", "test", f, {}).ok());
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::unique_ptr<ZarrView> Open(int format) {
    ViewOptions o;
    o.zarr_format = format;
    auto v = OpenZarrView(index_, o);
    EXPECT_TRUE(v.ok()) << v.status().message();
    return v.ok() ? std::move(*v) : nullptr;
  }
  static json Json(ZarrView& v, const std::string& key) {
    auto value = v.Get(key);
    EXPECT_TRUE(value.ok() && *value) << key;
    if (!value.ok() || !*value) return nullptr;
    EXPECT_TRUE((*value)->is_metadata) << key;
    return json::parse((*value)->bytes);
  }
  static std::vector<std::string> Names(ZarrView& v, const std::string& prefix) {
    auto list = v.List(prefix);
    std::vector<std::string> out;
    if (!list.ok() || !*list) return out;
    for (const auto& e : **list) out.push_back(e.name + (e.is_directory ? "/" : ""));
    return out;
  }

  fs::path dir_, data_, index_;
};

TEST_F(ZarrViewTest, RendersZarrV2AndOmeNgff04Metadata) {
  auto v = Open(2);
  json zarray = Json(*v, "img/0/.zarray");
  EXPECT_EQ(zarray["shape"], json({4, 6}));
  EXPECT_EQ(zarray["chunks"], json({2, 3}));
  EXPECT_EQ(zarray["dtype"], "<u2");
  EXPECT_EQ(zarray["dimension_separator"], "/");
  EXPECT_TRUE(zarray["compressor"].is_null());
  EXPECT_EQ(Json(*v, "img/0/.zattrs")["_ARRAY_DIMENSIONS"], json({"y", "x"}));
  json attrs = Json(*v, "img/.zattrs");
  ASSERT_TRUE(attrs.contains("multiscales"));
  EXPECT_EQ(attrs["multiscales"][0]["version"], "0.4");
  EXPECT_EQ(attrs["multiscales"][0]["datasets"][0]["coordinateTransformations"][0]["scale"],
            json({0.5, 0.25}));
  EXPECT_EQ(Json(*v, ".zattrs")["bioformats2raw.layout"], 3);
  EXPECT_EQ(Json(*v, "img/.zgroup")["zarr_format"], 2);
  json consolidated = Json(*v, ".zmetadata");
  EXPECT_EQ(consolidated["metadata"]["img/0/.zarray"], zarray);
  EXPECT_FALSE(v->Get("img/.zmetadata")->has_value()) << "only file groups are consolidated";
}

TEST_F(ZarrViewTest, RendersZarrV3AndOmeNgff05Metadata) {
  auto v = Open(3);
  json arr = Json(*v, "img/0/zarr.json");
  EXPECT_EQ(arr["node_type"], "array");
  EXPECT_EQ(arr["data_type"], "uint16");
  EXPECT_EQ(arr["codecs"][0]["name"], "bytes");
  EXPECT_EQ(arr["codecs"][0]["configuration"]["endian"], "little");
  EXPECT_EQ(arr["dimension_names"], json({"y", "x"}));
  json group = Json(*v, "img/zarr.json");
  EXPECT_EQ(group["attributes"]["ome"]["version"], "0.5");
  EXPECT_FALSE(group["attributes"]["ome"]["multiscales"][0].contains("version"));
  EXPECT_EQ(Json(*v, "zarr.json")["attributes"]["ome"]["bioformats2raw.layout"], 3);
  EXPECT_FALSE(v->Get("img/0/.zarray")->has_value()) << "v2 keys never answer in a v3 view";
}

TEST_F(ZarrViewTest, ChunksAreSlicesOfTheSourceAndMissingOnesAreNotFound) {
  for (int format : {2, 3}) {
    auto v = Open(format);
    std::string prefix = format == 2 ? "img/0/" : "img/0/c/";
    auto c = v->Get(prefix + "1/0");
    ASSERT_TRUE(c.ok() && *c) << c.status().message();
    ASSERT_TRUE((*c)->slice);
    EXPECT_EQ((*c)->slice->offset, 4u + 2 * 12);
    auto bytes = v->Materialize(**c);
    ASSERT_TRUE(bytes.ok());
    EXPECT_EQ((*bytes)[0], static_cast<char>(28));
    EXPECT_FALSE(v->Get(prefix + "1/1")->has_value()) << "missing chunk";
    EXPECT_FALSE(v->Get(prefix + "2/0")->has_value()) << "outside the grid";
    EXPECT_FALSE(v->Get(prefix + "0/2")->has_value()) << "outside the grid";
    EXPECT_FALSE(v->Get(prefix + "0")->has_value()) << "too few coordinates";
    EXPECT_FALSE(v->Get(prefix + "0/01")->has_value()) << "not a canonical index";
  }
}

TEST_F(ZarrViewTest, MalformedKeysAreNotFound) {
  auto v = Open(2);
  for (const char* key : {"../data.bin", "img/../img/0/.zarray", "img//0/.zarray", "/img/.zattrs",
                          "img/0/.zarray/", ""}) {
    auto r = v->Get(key);
    ASSERT_TRUE(r.ok()) << key;
    EXPECT_FALSE(r->has_value()) << key;
  }
}

TEST_F(ZarrViewTest, ListsGroupsArraysAndOnlyPresentChunks) {
  auto v = Open(2);
  EXPECT_EQ(Names(*v, ""), (std::vector<std::string>{".zattrs", ".zgroup", ".zmetadata", "OME/", "img/"}));
  EXPECT_EQ(Names(*v, "img/0"), (std::vector<std::string>{".zarray", ".zattrs", "0/", "1/"}));
  EXPECT_EQ(Names(*v, "img/0/1"), (std::vector<std::string>{"0"}));
  EXPECT_EQ(Names(*v, "OME"), (std::vector<std::string>{".zattrs", ".zgroup", "notes.xml"}));
  auto v3 = Open(3);
  EXPECT_EQ(Names(*v3, "img/0"), (std::vector<std::string>{"c/", "zarr.json"}));
  EXPECT_EQ(Names(*v3, "img/0/c"), (std::vector<std::string>{"0/", "1/"}));
  EXPECT_FALSE(v->List("img/0/.zarray")->has_value());
}

TEST_F(ZarrViewTest, StatGivesKindsAndExactSizes) {
  auto v = Open(2);
  auto dir = v->Stat("img");
  ASSERT_TRUE(dir.ok());
  EXPECT_EQ(dir->first, EntryKind::kDirectory);
  auto chunk_dir = v->Stat("img/0/1");
  ASSERT_TRUE(chunk_dir.ok());
  EXPECT_EQ(chunk_dir->first, EntryKind::kDirectory);
  auto chunk = v->Stat("img/0/1/0");
  ASSERT_TRUE(chunk.ok());
  EXPECT_EQ(chunk->first, EntryKind::kFile);
  EXPECT_EQ(chunk->second, 12u);
  auto file = v->Stat("OME/notes.xml");
  ASSERT_TRUE(file.ok());
  EXPECT_EQ(file->second, 4u);
  auto meta = v->Stat("img/0/.zarray");
  ASSERT_TRUE(meta.ok());
  EXPECT_EQ(meta->second, (*v->Get("img/0/.zarray"))->bytes.size());
  EXPECT_EQ(v->Stat("img/0/1/1")->first, EntryKind::kMissing);
}

TEST_F(ZarrViewTest, AChangedSourceIsStaleAndNamed) {
  auto v = Open(2);
  ASSERT_TRUE(v->Get("img/0/0/0")->has_value());
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  { std::ofstream(data_, std::ios::app) << "grown"; }
  auto r = v->Get("img/0/0/0");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kStale);
  EXPECT_NE(r.status().message().find(data_.string()), std::string::npos);
  // Metadata does not depend on the source and stays readable.
  EXPECT_TRUE(v->Get("img/0/.zarray").ok());
}

TEST_F(ZarrViewTest, AMissingSourceIsStale) {
  auto v = Open(2);
  fs::remove(data_);
  EXPECT_EQ(v->Get("img/0/0/0").status().code(), StatusCode::kStale);
}

}  // namespace
}  // namespace refzarr
