#include "store/kerchunk_import.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>

#include <unistd.h>

#include <nlohmann/json.hpp>

namespace refzarr {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// A folder with a data file and a symlink out of it, removed at the end.
class KerchunkImport : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("refzarr_import_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "data");
    std::ofstream(dir_ / "data" / "a.bin") << std::string(100, 'x');
    fs::create_symlink("/etc", dir_ / "data" / "etc");
    policy_.roots = {dir_ / "data"};
    policy_.base = dir_ / "data";
    policy_.url_prefixes = {"https://Example.org/bucket/"};
  }
  void TearDown() override { fs::remove_all(dir_); }

  static std::string Zarray(std::vector<int> shape, std::vector<int> chunks,
                            std::string sep = ".") {
    return json{{"zarr_format", 2}, {"shape", shape}, {"chunks", chunks}, {"dtype", "<u2"},
                {"compressor", {{"id", "zlib"}, {"level", 1}}}, {"filters", nullptr},
                {"fill_value", 0}, {"order", "C"}, {"dimension_separator", sep}}
        .dump();
  }

  Status Parse(const json& doc, RecordingSink& sink) {
    Status st = ParseKerchunk(doc.dump(), policy_, sizer_, sink);
    if (!st.ok()) return st;
    return sink.Finish();
  }

  Status Refusal(const json& reference) {
    json doc = {{"version", 1},
                {"refs", {{".zgroup", R"({"zarr_format":2})"}, {"a/.zarray", Zarray({4}, {4})},
                          {"a/0", reference}}}};
    RecordingSink sink;
    return Parse(doc, sink);
  }

  fs::path dir_;
  ImportPolicy policy_;
  SourceSizer sizer_ = [](const std::string&) -> Result<uint64_t> { return uint64_t{100}; };
};

TEST_F(KerchunkImport, ReadsVersionOneWithTemplatesInlineDataAndWholeFiles) {
  json doc = {{"version", 1},
              {"templates", {{"u", (dir_ / "data").string()}}},
              {"refs",
               {{".zgroup", R"({"zarr_format":2})"},
                {".zattrs", R"({"title":"t"})"},
                {"g/a/.zarray", Zarray({4, 6}, {2, 3})},
                {"g/a/.zattrs", R"({"_ARRAY_DIMENSIONS":["y","x"],"k":1})"},
                {"g/a/0.0", json::array({"{{u}}/a.bin", 10, 20})},
                {"g/a/0.1", json::array({"{{ u }}/a.bin", 30, 5})},
                {"g/a/1.0", "base64:AAEC"},
                {"g/a/1.1", json::array({"a.bin"})},
                {"notes.txt", "plain"}}}};
  RecordingSink sink;
  ASSERT_TRUE(Parse(doc, sink).ok()) << Parse(doc, sink).message();
  const ScannedFile& f = sink.result();
  ASSERT_EQ(f.companions.size(), 1u);
  EXPECT_EQ(f.companions[0], FileUri(fs::canonical(dir_ / "data" / "a.bin")));
  const ScannedFile::Array* a = f.FindArray("g/a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->desc.dimension_names, (std::vector<std::string>{"y", "x"}));
  EXPECT_EQ(a->desc.attributes, json({{"k", 1}}));
  EXPECT_EQ(a->desc.encoding.compressor["id"], "zlib");
  EXPECT_TRUE(a->desc.encoding.native);
  std::map<uint64_t, ChunkRef> chunks(a->chunks.begin(), a->chunks.end());
  EXPECT_EQ(chunks.at(0), (ChunkRef{1, 10, 20, 0}));
  EXPECT_EQ(chunks.at(1), (ChunkRef{1, 30, 5, 0}));
  EXPECT_EQ(chunks.at(3), (ChunkRef{1, 0, 100, 0}));  // [url]: the whole file
  ASSERT_EQ(a->inline_chunks.size(), 1u);
  EXPECT_EQ(a->inline_chunks[0].first, 2u);
  EXPECT_EQ(a->inline_chunks[0].second,
            (std::vector<std::byte>{std::byte{0}, std::byte{1}, std::byte{2}}));
  ASSERT_NE(f.FindGroup(""), nullptr);
  EXPECT_EQ(f.FindGroup("")->attributes, json({{"title", "t"}}));
  ASSERT_EQ(f.files.size(), 1u);
  EXPECT_EQ(f.files[0].path, "notes.txt");
  EXPECT_EQ(f.files[0].bytes, "plain");
}

TEST_F(KerchunkImport, ReadsVersionZeroSlashSeparatedAndRootArrays) {
  json doc = {{".zarray", Zarray({4, 4}, {2, 2}, "/")},
              {"1/1", json::array({"a.bin", 0, 8})}};
  RecordingSink sink;
  ASSERT_TRUE(Parse(doc, sink).ok());
  const ScannedFile::Array* a = sink.result().FindArray("0");
  ASSERT_NE(a, nullptr);
  ASSERT_EQ(a->chunks.size(), 1u);
  EXPECT_EQ(a->chunks[0].first, 3u);
  EXPECT_FALSE(sink.result().warnings.empty());
}

TEST_F(KerchunkImport, RefusesReferencesOutsideTheRootNamingTheKey) {
  for (const std::string& path :
       {std::string("/etc/shadow"), std::string("../../../../../../etc/shadow"),
        std::string("etc/shadow"), (dir_ / "data" / ".." / "x").string(),
        std::string("file:///etc/shadow")}) {
    Status st = Refusal(json::array({path, 0, 4}));
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << path;
    EXPECT_NE(st.message().find("'a/0'"), std::string::npos) << st.message();
    EXPECT_NE(st.message().find("outside the allowed roots"), std::string::npos) << st.message();
  }
}

TEST_F(KerchunkImport, RefusesUrlsOutsideThePrefixesAndHidesCredentials) {
  EXPECT_TRUE(Refusal(json::array({"https://example.ORG/bucket/x.tif", 0, 4})).ok());
  for (const std::string& url :
       {"http://169.254.169.254/latest/meta-data", "https://example.org/bucketx/y",
        "https://example.org/bucket/%2E%2E/private", "https://example.org/bucket/../private",
        "https://example.org/bucket/a%2fb", "https://user:s3cr3t@example.org/bucket/x",
        "https://example.org/bucket/x\\y"}) {
    Status st = Refusal(json::array({url, 0, 4}));
    EXPECT_FALSE(st.ok()) << url;
    EXPECT_NE(st.message().find("'a/0'"), std::string::npos) << st.message();
    EXPECT_EQ(st.message().find("s3cr3t"), std::string::npos) << st.message();
  }
  EXPECT_EQ(Refusal(json::array({"gs://bucket/x", 0, 4})).code(), StatusCode::kUnsupported);
}

TEST_F(KerchunkImport, RefusesMalformedDocuments) {
  RecordingSink s1;
  EXPECT_FALSE(ParseKerchunk("{not json", policy_, sizer_, s1).ok());
  RecordingSink s2;
  EXPECT_EQ(ParseKerchunk(R"({"version": 1, "refs": {}, "gen": [{"key": "x"}]})", policy_,
                          sizer_, s2).code(),
            StatusCode::kUnsupported);
  RecordingSink s3;
  EXPECT_FALSE(ParseKerchunk(R"({"version": 2, "refs": {}})", policy_, sizer_, s3).ok());
  EXPECT_FALSE(Refusal(json::array({"a.bin", -1, 4})).ok());
  EXPECT_FALSE(Refusal(json::array({"a.bin", 0})).ok());
  EXPECT_FALSE(Refusal(json::array({"{{nope}}/a.bin", 0, 4})).ok());
  json outside = {{"a/.zarray", Zarray({4}, {4})}, {"a/1", json::array({"a.bin", 0, 4})}};
  RecordingSink s4;
  Status st = Parse(outside, s4);
  EXPECT_NE(st.message().find("outside the array's grid"), std::string::npos) << st.message();
  json bad_key = {{"a/.zarray", Zarray({4}, {4})}, {"a/x", json::array({"a.bin", 0, 4})}};
  RecordingSink s5;
  EXPECT_FALSE(Parse(bad_key, s5).ok());
  json f_order = json::parse(Zarray({4}, {4}));
  f_order["order"] = "F";
  json fortran = {{"a/.zarray", f_order.dump()}};
  RecordingSink s6;
  EXPECT_FALSE(Parse(fortran, s6).ok());
}

}  // namespace
}  // namespace refzarr
