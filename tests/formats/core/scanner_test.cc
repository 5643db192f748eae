// ScanContext: how a scanner names and opens the sources next to the one it scans, local or not.
#include "formats/core/scanner.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <map>

namespace refzarr {
namespace {

namespace fs = std::filesystem;

// "mem" sources: bytes held by URI, standing in for a remote store.
class MemoryOpener final : public SourceOpener {
 public:
  std::map<std::string, std::string, std::less<>> files;
  std::string_view Scheme() const override { return "mem"; }
  Result<SourceStat> Stat(std::string_view uri) const override {
    ASSIGN_OR_RETURN(auto source, Open(uri));
    return source->Stat();
  }
  Result<std::unique_ptr<ByteSource>> Open(std::string_view uri) const override {
    auto it = files.find(uri);
    if (it == files.end()) return NotFoundError(std::string(uri) + ": no such object");
    const auto* b = reinterpret_cast<const std::byte*>(it->second.data());
    return MakeMemorySource(std::vector<std::byte>(b, b + it->second.size()), std::string(uri));
  }
};

std::string ReadAll(ByteSource& source) {
  auto bytes = ReadRange(source, {0, *source.Size()});
  if (!bytes.ok()) return "<" + bytes.status().message() + ">";
  return std::string(reinterpret_cast<const char*>(bytes->data()), bytes->size());
}

TEST(ScanContext, LocalSiblingsAreFileUrisEncodedAndAbsoluteNamesStayLocal) {
  const fs::path dir = fs::temp_directory_path() / ("refzarr_scanctx_" + std::to_string(::getpid()));
  fs::create_directories(dir / "sub dir");
  std::ofstream(dir / "sub dir" / "m 1%.tif") << "member";
  const ScanContext context(dir / "sub dir" / "a.ome.tif");
  EXPECT_EQ(context.uri(), FileUri(dir / "sub dir" / "a.ome.tif"));
  EXPECT_EQ(context.FileName(), "a.ome.tif");
  EXPECT_EQ(*context.LocalPath("test"), dir / "sub dir" / "a.ome.tif");
  EXPECT_EQ(context.SiblingUri("m 1%.tif"), FileUri(dir / "sub dir" / "m 1%.tif"));
  EXPECT_EQ(context.SiblingUri("../x/y.raw"), FileUri(dir / "x" / "y.raw"));
  EXPECT_EQ(context.SiblingUri("/abs/e.raw"), "file:///abs/e.raw");

  auto member = context.OpenSibling("m 1%.tif");
  ASSERT_TRUE(member.ok()) << member.status().message();
  EXPECT_EQ(ReadAll(**member), "member");
  auto missing = context.OpenSibling("gone.tif");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find((dir / "sub dir" / "gone.tif").string()),
            std::string::npos)
      << missing.status().message();
  fs::remove_all(dir);
}

TEST(ScanContext, RemoteSiblingsOpenThroughTheirSchemesOpenerAndHaveNoLocalPath) {
  auto owned = std::make_unique<MemoryOpener>();
  owned->files["mem://bucket/p/b%20c.tif"] = "sibling";
  std::vector<std::unique_ptr<SourceOpener>> list;
  list.push_back(std::move(owned));
  const SourceOpeners openers(std::move(list));
  const ScanContext context("mem://bucket/p/a%20x.tif", openers);
  EXPECT_EQ(context.FileName(), "a x.tif");
  EXPECT_EQ(context.SiblingUri("b c.tif"), "mem://bucket/p/b%20c.tif");
  // An absolute name in a remote file stays on its host: never a local file.
  EXPECT_EQ(context.SiblingUri("/etc/passwd"), "mem://bucket/etc/passwd");

  auto sibling = context.OpenSibling("b c.tif");
  ASSERT_TRUE(sibling.ok()) << sibling.status().message();
  EXPECT_EQ(ReadAll(**sibling), "sibling");
  auto missing = context.OpenSibling("d.tif");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("mem://bucket/p/d.tif"), std::string::npos);

  auto path = context.LocalPath("the HDF5 library");
  ASSERT_FALSE(path.ok());
  EXPECT_EQ(path.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(path.status().message().find("the HDF5 library needs a local file"), std::string::npos)
      << path.status().message();
  EXPECT_NE(path.status().message().find("mem://"), std::string::npos);
}

TEST(ScanContext, WithoutAUriNothingResolves) {
  const ScanContext none;
  EXPECT_EQ(none.FileName(), "");
  EXPECT_EQ(none.SiblingUri("b.tif"), "");
  EXPECT_EQ(none.OpenSibling("b.tif").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(none.LocalPath("x").status().code(), StatusCode::kUnsupported);
  // A scheme without an opener is the openers' kUnsupported, naming the URI.
  const ScanContext ftp("ftp://host/a.tif", LocalSourceOpeners());
  auto r = ftp.OpenSibling("b.tif");
  EXPECT_EQ(r.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(r.status().message().find("ftp://host/b.tif"), std::string::npos);
}

}  // namespace
}  // namespace refzarr
