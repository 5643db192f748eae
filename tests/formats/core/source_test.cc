// The source model: URIs, generations, and the ByteSource contract every implementation meets.
#include "formats/core/source.h"

#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <functional>

namespace refzarr {
namespace {

namespace fs = std::filesystem;

class TempFolder {
 public:
  TempFolder() {
    path_ = fs::temp_directory_path() /
            ("refzarr_source_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempFolder() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::vector<std::byte> Bytes(size_t n) {
  std::vector<std::byte> b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<std::byte>((i * 7 + 3) & 0xff);
  return b;
}

void Write(const fs::path& p, const std::vector<std::byte>& b) {
  std::ofstream(p, std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

TEST(SourceUri, LocalPathsRoundTripThroughFileUris) {
  for (const char* p : {"/data/a.tif", "/data/with space/#1%?.tif", "/d/\xc3\xa9t\xc3\xa9.h5",
                        "/a/./b/../c.tif"}) {
    const std::string uri = FileUri(p);
    EXPECT_TRUE(uri.starts_with("file:///")) << uri;
    EXPECT_EQ(uri.find(' '), std::string::npos) << uri;
    EXPECT_EQ(uri.find('#'), std::string::npos) << uri;
    auto back = LocalPathOfUri(uri);
    ASSERT_TRUE(back.ok()) << back.status().message();
    EXPECT_EQ(*back, fs::path(p).lexically_normal()) << uri;
    EXPECT_EQ(UriScheme(uri), "file");
    EXPECT_EQ(DisplaySource(uri), fs::path(p).lexically_normal().string());
  }
  EXPECT_EQ(FileUri("/data/with space/x.tif"), "file:///data/with%20space/x.tif");
  EXPECT_FALSE(LocalPathOfUri("https://host/a.tif").ok());
  EXPECT_FALSE(LocalPathOfUri("file:///bad%2").ok());
  EXPECT_FALSE(LocalPathOfUri("file://relative").ok());
  EXPECT_EQ(UriScheme("s3://bucket/key"), "s3");
  EXPECT_EQ(UriScheme("/no/scheme"), "");
}

TEST(SourceUri, SiblingsResolveAgainstTheSourcesFolder) {
  EXPECT_EQ(SiblingUri("file:///data/set/a.ome.tif", "b.ome.tif"), "file:///data/set/b.ome.tif");
  EXPECT_EQ(SiblingUri("file:///data/set/a.ome.tif", "../other/c.tif"), "file:///data/other/c.tif");
  EXPECT_EQ(SiblingUri("https://host/x/y/a.h5", "./ext/raw.bin"), "https://host/x/y/ext/raw.bin");
  EXPECT_EQ(SiblingUri("s3://bucket/p/a.tif", "/q/b.tif"), "s3://bucket/q/b.tif");
}

TEST(SourceUri, FileNamesAreTheLastPathSegmentDecoded) {
  EXPECT_EQ(UriFileName("file:///data/with%20space/a%25b.ome.tif"), "a%b.ome.tif");
  EXPECT_EQ(UriFileName(FileUri("/d/\xc3\xa9t\xc3\xa9.h5")), "\xc3\xa9t\xc3\xa9.h5");
  EXPECT_EQ(UriFileName("s3://bucket/p/q/a.tif"), "a.tif");
  EXPECT_EQ(UriFileName("https://host"), "");
  EXPECT_EQ(UriFileName("https://host/dir/"), "");
  EXPECT_EQ(UriFileName(""), "");
  EXPECT_EQ(UriFileName("mem://b/bad%2"), "bad%2");
}

TEST(SourceOpeners, AnUnknownSchemeIsAnErrorNamingTheUri) {
  auto r = LocalSourceOpeners().Open("ftp://host/a.tif");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(r.status().message().find("ftp://host/a.tif"), std::string::npos);
  EXPECT_NE(r.status().message().find("'ftp'"), std::string::npos);
}

// The generation of a local file changes with every way of changing it, including those that
// keep its size and set its mtime back.
TEST(LocalGeneration, EveryChangeIsANewGeneration) {
  TempFolder dir;
  const fs::path f = dir.path() / "a.bin";
  Write(f, Bytes(1000));
  const std::string uri = FileUri(f);
  auto stat_now = [&] {
    auto s = LocalSourceOpeners().Stat(uri);
    EXPECT_TRUE(s.ok()) << s.status().message();
    return s.ok() ? s->generation : Generation{};
  };
  const Generation g0 = stat_now();
  EXPECT_FALSE(g0.unknown());
  EXPECT_EQ(stat_now(), g0) << "unchanged file, same generation";
  struct stat before {};
  ASSERT_EQ(::stat(f.c_str(), &before), 0);
  const timespec times[2] = {before.st_atim, before.st_mtim};
  auto restore_mtime = [&] { ASSERT_EQ(::utimensat(AT_FDCWD, f.c_str(), times, 0), 0); };

  auto other = Bytes(1000);
  other[500] ^= std::byte{1};
  Write(f, other);  // in place, same size
  restore_mtime();
  const Generation g1 = stat_now();
  EXPECT_NE(g1, g0) << "rewritten in place with the mtime restored (cp -p)";

  const fs::path tmp = dir.path() / "tmp.bin";
  Write(tmp, Bytes(1000));
  fs::rename(tmp, f);  // replaced by another inode (rsync -a)
  restore_mtime();
  EXPECT_NE(stat_now(), g1) << "replaced by rename with the mtime restored";

  // An open handle describes its own file, not what the path names later.
  auto open = LocalSourceOpeners().Open(uri);
  ASSERT_TRUE(open.ok());
  auto held = (*open)->Stat();
  ASSERT_TRUE(held.ok());
  const fs::path tmp2 = dir.path() / "tmp2.bin";
  Write(tmp2, Bytes(500));
  fs::rename(tmp2, f);
  auto held_again = (*open)->Stat();
  ASSERT_TRUE(held_again.ok());
  EXPECT_EQ(held_again->size, 1000u);
  EXPECT_NE(stat_now(), held->generation);
  auto read = ReadRange(**open, {999, 1});
  ASSERT_TRUE(read.ok());
  EXPECT_EQ((*read)[0], Bytes(1000)[999]);
}

// What every ByteSource does, whatever it reads from (HTTP and S3 sources join this list).
struct SourceCase {
  const char* name;
  std::function<std::unique_ptr<ByteSource>(const fs::path& folder, std::vector<std::byte>)> make;
};

class ByteSourceContract : public ::testing::TestWithParam<SourceCase> {};

TEST_P(ByteSourceContract, ReadsExactRangesAndRefusesPastTheEnd) {
  TempFolder dir;
  const auto bytes = Bytes(200000);
  auto source = GetParam().make(dir.path(), bytes);
  ASSERT_TRUE(source);
  auto st = source->Stat();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->size, bytes.size());
  EXPECT_FALSE(st->generation.unknown());
  EXPECT_EQ(*source->Size(), bytes.size());
  for (ByteRange r : {ByteRange{0, 1}, ByteRange{0, 200000}, ByteRange{65535, 2},
                      ByteRange{199999, 1}, ByteRange{1234, 0}}) {
    auto got = ReadRange(*source, r);
    ASSERT_TRUE(got.ok()) << r.offset << "+" << r.length << ": " << got.status().message();
    EXPECT_TRUE(std::equal(got->begin(), got->end(), bytes.begin() + static_cast<ptrdiff_t>(r.offset)));
  }
  for (ByteRange r : {ByteRange{199999, 2}, ByteRange{200000, 1}, ByteRange{1u << 30, 10}}) {
    auto got = ReadRange(*source, r);
    ASSERT_FALSE(got.ok()) << r.offset << "+" << r.length;
    EXPECT_EQ(got.status().code(), StatusCode::kCorrupt);
    EXPECT_NE(got.status().message().find(source->Describe()), std::string::npos)
        << got.status().message();
  }
  // The fingerprint reads through the same interface and gives the first bytes for sniffing.
  std::vector<std::byte> head;
  auto fp = ContentFingerprint(*source, st->size, &head, 16);
  ASSERT_TRUE(fp.ok());
  EXPECT_EQ(fp->size(), 16u);
  EXPECT_TRUE(std::equal(head.begin(), head.end(), bytes.begin()));
  EXPECT_EQ(head.size(), 16u);
}

INSTANTIATE_TEST_SUITE_P(
    Sources, ByteSourceContract,
    ::testing::Values(
        SourceCase{"local_file",
                   [](const fs::path& folder, std::vector<std::byte> b) {
                     Write(folder / "s.bin", b);
                     auto s = LocalSourceOpeners().Open(FileUri(folder / "s.bin"));
                     return s.ok() ? std::move(*s) : nullptr;
                   }},
        SourceCase{"memory",
                   [](const fs::path&, std::vector<std::byte> b) {
                     return MakeMemorySource(std::move(b), "contract");
                   }}),
    [](const auto& info) { return std::string(info.param.name); });

// The fingerprint of two sources holding the same bytes is the same, whatever reads them, and it
// sees a change in the last 64 KiB.
TEST(ContentFingerprint, DependsOnTheBytesNotTheSource) {
  TempFolder dir;
  auto bytes = Bytes(300000);
  Write(dir.path() / "f.bin", bytes);
  auto local = OpenLocalFile(dir.path() / "f.bin");
  ASSERT_TRUE(local.ok());
  auto memory = MakeMemorySource(bytes, "m");
  auto a = ContentFingerprint(**local, bytes.size());
  auto b = ContentFingerprint(*memory, bytes.size());
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);
  bytes[299000] ^= std::byte{0x10};
  auto changed = MakeMemorySource(bytes, "m2");
  EXPECT_NE(*ContentFingerprint(*changed, bytes.size()), *a);
}

TEST(SourceTest, PercentDecodeDecodesEscapesAndKeepsMalformedOnes) {
  EXPECT_EQ(PercentDecode("a%20b%2Fc"), "a b/c");
  EXPECT_EQ(PercentDecode("%E2%82%AC"), "\xe2\x82\xac");
  EXPECT_EQ(PercentDecode("100%"), "100%");
  EXPECT_EQ(PercentDecode("%zz%4"), "%zz%4");
  EXPECT_EQ(PercentDecode(PercentEncodePath("/x y/\xc3\xa9~%.tif")), "/x y/\xc3\xa9~%.tif");
}

}  // namespace
}  // namespace refzarr
