// The kerchunk export of a small index: references of the right shape, an interleaved array's
// filter named (an object) and reported with its library, a plain file that is not UTF-8 written
// as base64.
#include "store/kerchunk_export.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "formats/core/base64.h"
#include "store/ref_store.h"
#include "tests/store/document_shapes.h"

namespace refzarr {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

TEST(KerchunkExport, NamesAndReportsTheInterleavedFilterAndKeepsBinaryFilesIntact) {
  fs::path dir = fs::temp_directory_path() / ("refzarr_export_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  fs::path data = dir / "rgb.bin";
  std::ofstream(data, std::ios::binary) << std::string(96, '\x7f');
  const fs::path index = dir / "e.refs.db";
  {
    auto store = OpenRefStore(index, OpenMode::kReadWrite);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    ScannedFile f;
    f.groups.push_back({"", json::object(), std::nullopt});
    ScannedFile::Array a;
    a.path = "rgb";
    a.desc.shape = {1, 3, 1, 4, 8};
    a.desc.chunks = {1, 3, 1, 4, 8};
    a.desc.dtype = DType::Make('u', 1);
    a.desc.encoding.stored_order = {0, 2, 3, 4, 1};
    a.chunks.emplace_back(0, ChunkRef{0, 0, 96, 0});
    f.arrays.push_back(a);
    f.files.push_back({"blob.bin", std::string("\xff\xfe\x00\x01", 4)});
    auto src = ProbeSource(FileUri(data));
    ASSERT_TRUE(src.ok());
    ASSERT_TRUE((*store)->PutFile(*src, "", "test", f, {}).ok());
  }
  std::ostringstream out;
  auto report = ExportKerchunk(index, out);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  json refs = json::parse(out.str());
  EXPECT_EQ(testing::KerchunkProblems(refs), testing::Problems{});
  json zarray = json::parse(refs["refs"]["rgb/.zarray"].get<std::string>());
  EXPECT_EQ(zarray["filters"], json::parse(R"([{"id":"refzarr_transpose","order":[0,2,3,4,1]}])"));
  ASSERT_EQ(report->foreign_codecs.size(), 1u);
  EXPECT_EQ(report->foreign_codecs[0].array, "rgb");
  EXPECT_EQ(report->foreign_codecs[0].codec, "refzarr_transpose");
  EXPECT_EQ(report->foreign_codecs[0].library, "none");
  EXPECT_EQ(refs["refs"]["blob.bin"], "base64:" + EncodeBase64(std::string("\xff\xfe\x00\x01", 4)));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace refzarr
