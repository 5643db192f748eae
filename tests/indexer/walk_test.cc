// The index walk's inputs: --files-from lists (lines or NUL-separated, stdin through the binary),
// --exclude globs, and hidden files and folders; checked in the index the run wrote.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "indexer/indexer.h"
#include "store/ref_store.h"
#include "tests/indexer/test_support.h"

namespace refzarr {
namespace {

namespace fs = std::filesystem;

// One indexed source as the index records it.
struct Indexed {
  std::string group, status;
  bool operator==(const Indexed&) const = default;
};
std::ostream& operator<<(std::ostream& os, const Indexed& i) {
  return os << "{" << i.group << ", " << i.status << "}";
}

// Every scanned source of the index: absolute path -> group and status.
std::map<std::string, Indexed> SourcesOf(const fs::path& index) {
  std::map<std::string, Indexed> out;
  auto store = OpenRefStore(index, OpenMode::kReadOnly);
  EXPECT_TRUE(store.ok()) << store.status().message();
  if (!store.ok()) return out;
  const std::string root = FileUri("/");
  auto uris = (*store)->SourcesUnder(root, root, 1u << 20);
  EXPECT_TRUE(uris.ok()) << uris.status().message();
  if (!uris.ok()) return out;
  for (const std::string& uri : *uris) {
    auto found = (*store)->FindSource(uri);
    EXPECT_TRUE(found.ok() && *found) << uri;
    if (found.ok() && *found) out[DisplaySource(uri)] = {(*found)->group, (*found)->status};
  }
  return out;
}

class WalkTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    samples_ = new testing::TempDir("walk_samples");
    testing::WriteSamples(samples_->path());
  }
  static void TearDownTestSuite() {
    delete samples_;
    samples_ = nullptr;
  }

  // Copies a generated TIFF sample to `rel` under the test's folder; returns its absolute path.
  fs::path Tiff(const std::string& rel, const std::string& sample = "tiled/u32_none.tif") {
    fs::path to = dir_.path() / rel;
    fs::create_directories(to.parent_path());
    fs::copy_file(samples_->path() / sample, to, fs::copy_options::overwrite_existing);
    return to;
  }
  // A file no scanner recognises.
  fs::path Junk(const std::string& rel, const std::string& bytes) {
    fs::path to = dir_.path() / rel;
    fs::create_directories(to.parent_path());
    std::ofstream(to, std::ios::binary) << bytes;
    return to;
  }
  Result<IndexReport> Index(const std::vector<fs::path>& inputs, const IndexOptions& options) {
    log_.str("");
    return IndexPaths(inputs, index_, options, log_);
  }
  static std::string Abs(const fs::path& p) { return fs::absolute(p).lexically_normal().string(); }

  static testing::TempDir* samples_;
  testing::TempDir dir_{"walk"};
  fs::path index_ = dir_.path() / "w.refs.db";
  std::ostringstream log_;
};
testing::TempDir* WalkTest::samples_ = nullptr;

// A list on a new index needs the root its paths are placed under.
TEST_F(WalkTest, ListOfThreeFilesAndAFolderPlacesEachAtItsPathUnderTheRoot) {
  const fs::path a = Tiff("x/a.tif"), b = Tiff("y/b.tif", "tiled/u16_zstd.tif"),
                 c = Tiff("c.tif", "tiled/u8_packbits.tif");
  const fs::path f1 = Tiff("folder/f1.tif"), f2 = Tiff("folder/sub/f2.tif", "tiled/u16_zstd.tif");
  // Blank lines are ignored, a "\r\n" line ending is stripped, "folder/" names the folder.
  std::istringstream list(a.string() + "\n\n" + b.string() + "\r\n" + c.string() + "\n" +
                          (dir_.path() / "folder/").string() + "\n");
  IndexOptions options;
  options.files_from = &list;
  {
    auto refused = Index({}, options);
    ASSERT_FALSE(refused.ok());
    EXPECT_NE(refused.status().message().find("--root"), std::string::npos);
  }
  list.clear();
  list.seekg(0);
  options.root = dir_.path();
  auto report = Index({}, options);
  ASSERT_TRUE(report.ok()) << report.status().message();
  EXPECT_EQ(report->indexed, 5u) << log_.str();
  EXPECT_EQ(report->failed, 0u) << log_.str();
  EXPECT_EQ(SourcesOf(index_), (std::map<std::string, Indexed>{
                                   {Abs(a), {"x/a.tif", "ok"}},
                                   {Abs(b), {"y/b.tif", "ok"}},
                                   {Abs(c), {"c.tif", "ok"}},
                                   {Abs(f1), {"folder/f1.tif", "ok"}},
                                   {Abs(f2), {"folder/sub/f2.tif", "ok"}},
                               }));
}

// A single given file maps to the root; with a list, it is one of several inputs.
TEST_F(WalkTest, GivenPathsAndAListCombineEachUnderItsBaseName) {
  const fs::path given = Tiff("given.tif"), listed = Tiff("listed.tif", "tiled/u16_zstd.tif");
  std::istringstream list(listed.string() + "\n");
  IndexOptions options;
  options.files_from = &list;
  auto report = Index({given}, options);
  ASSERT_TRUE(report.ok()) << report.status().message();
  EXPECT_EQ(SourcesOf(index_), (std::map<std::string, Indexed>{
                                   {Abs(given), {"given.tif", "ok"}},
                                   {Abs(listed), {"listed.tif", "ok"}},
                               }));
}

TEST_F(WalkTest, NulSeparatedListKeepsANewlineAndACarriageReturnInNames) {
  const fs::path odd = Tiff("new\nline.tif"), cr = Tiff("cr.tif\r", "tiled/u16_zstd.tif");
  const fs::path plain = Tiff("plain.tif", "tiled/u8_packbits.tif");
  std::string bytes = odd.string() + '\0' + cr.string() + '\0' + '\0' + plain.string();
  std::istringstream list(bytes);  // the last entry without a terminating NUL
  IndexOptions options;
  options.files_from = &list;
  options.files_from_null = true;
  options.root = dir_.path();
  auto report = Index({}, options);
  ASSERT_TRUE(report.ok()) << report.status().message();
  EXPECT_EQ(report->failed, 0u) << log_.str();
  EXPECT_EQ(SourcesOf(index_), (std::map<std::string, Indexed>{
                                   {Abs(odd), {"new\nline.tif", "ok"}},
                                   {Abs(cr), {"cr.tif\r", "ok"}},
                                   {Abs(plain), {"plain.tif", "ok"}},
                               }));
}

TEST_F(WalkTest, AListedPathThatIsMissingFailsAloneNamed) {
  const fs::path good = Tiff("good.tif"), gone = dir_.path() / "gone.tif";
  std::istringstream list(gone.string() + "\n" + good.string() + "\n");
  IndexOptions options;
  options.files_from = &list;
  options.root = dir_.path();
  auto report = Index({}, options);
  ASSERT_TRUE(report.ok()) << report.status().message();
  EXPECT_EQ(report->indexed, 1u);
  EXPECT_EQ(report->failed, 1u);
  EXPECT_NE(log_.str().find(gone.string()), std::string::npos) << log_.str();
  EXPECT_EQ(SourcesOf(index_)[Abs(good)], (Indexed{"good.tif", "ok"}));
}

TEST_F(WalkTest, NoInputGivenOrListedIsAnErrorAndCreatesNoIndex) {
  std::istringstream list("\n\n\r\n");
  IndexOptions options;
  options.files_from = &list;
  auto report = Index({}, options);
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(report.status().message().find("nothing to index"), std::string::npos)
      << report.status().message();
  EXPECT_FALSE(fs::exists(index_));
  auto none = Index({}, {});
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("nothing to index"), std::string::npos);
}

TEST_F(WalkTest, ExcludeByBaseNameSkipsFilesAtAnyDepthAndFoldersWhole) {
  const fs::path keep = Tiff("d/keep.tif"), deep_keep = Tiff("d/sub/keep2.tif");
  Tiff("d/drop.tif");
  Tiff("d/sub/deeper/drop.tif");
  Tiff("d/scratch/a.tif");
  Tiff("d/scratch/b.tif");
  IndexOptions options;
  options.exclude = {"drop.*", "scratch"};
  auto report = Index({dir_.path() / "d"}, options);
  ASSERT_TRUE(report.ok()) << report.status().message();
  EXPECT_EQ(report->indexed, 2u);
  EXPECT_EQ(report->failed, 0u) << log_.str();
  // The two excluded files are skipped; the excluded folder's files are never seen.
  EXPECT_EQ(report->skipped, 2u);
  EXPECT_EQ(SourcesOf(index_), (std::map<std::string, Indexed>{
                                   {Abs(keep), {"keep.tif", "ok"}},
                                   {Abs(deep_keep), {"sub/keep2.tif", "ok"}},
                               }));
  size_t listed_skipped = 0;
  for (const IndexedFile& f : report->files) {
    if (f.outcome == "skipped") {
      ++listed_skipped;
      EXPECT_TRUE(f.group == "drop.tif" || f.group == "sub/deeper/drop.tif") << f.group;
    }
  }
  EXPECT_EQ(listed_skipped, 2u);
}

// A glob with a '/' matches the path relative to the input, '*' not crossing a '/'.
TEST_F(WalkTest, ExcludeWithASlashMatchesThePathRelativeToTheInput) {
  const fs::path top = Tiff("d/b.tif"), deeper = Tiff("d/raw/deeper/c.tif");
  const fs::path other = Tiff("d/other/raw/e.tif");
  Tiff("d/raw/b.tif");
  Tiff("d/raw/x.tif");
  IndexOptions options;
  options.exclude = {"raw/*.tif"};
  auto report = Index({dir_.path() / "d"}, options);
  ASSERT_TRUE(report.ok()) << report.status().message();
  EXPECT_EQ(report->skipped, 2u);
  EXPECT_EQ(SourcesOf(index_), (std::map<std::string, Indexed>{
                                   {Abs(top), {"b.tif", "ok"}},
                                   {Abs(deeper), {"raw/deeper/c.tif", "ok"}},
                                   {Abs(other), {"other/raw/e.tif", "ok"}},
                               }));
  // A folder by its relative path.
  fs::remove(index_);
  options.exclude = {"raw/deeper"};
  report = Index({dir_.path() / "d"}, options);
  ASSERT_TRUE(report.ok()) << report.status().message();
  EXPECT_EQ(report->skipped, 0u);
  EXPECT_EQ(report->indexed, 4u);
  EXPECT_EQ(SourcesOf(index_).count(Abs(deeper)), 0u);
}

// A listed (or given) input is excluded by its base name too.
TEST_F(WalkTest, ExcludeAppliesToListedInputsByBaseName) {
  const fs::path keep = Tiff("keep.tif"), drop = Tiff("drop.tmp.tif");
  std::istringstream list(keep.string() + "\n" + drop.string() + "\n");
  IndexOptions options;
  options.files_from = &list;
  options.root = dir_.path();
  options.exclude = {"*.tmp.*"};
  auto report = Index({}, options);
  ASSERT_TRUE(report.ok()) << report.status().message();
  EXPECT_EQ(report->indexed, 1u);
  EXPECT_EQ(report->skipped, 1u);
  EXPECT_EQ(SourcesOf(index_), (std::map<std::string, Indexed>{{Abs(keep), {"keep.tif", "ok"}}}));
}

TEST_F(WalkTest, AnExcludedFolderIsNeverOpened) {
  const fs::path keep = Tiff("d/keep.tif");
  const fs::path locked_file = Tiff("d/locked/inside.tif");
  const fs::path locked = dir_.path() / "d/locked";
  if (geteuid() == 0) {
    // Root reads a mode-000 folder anyway: without the glob its files are indexed, so their
    // absence below is the glob's doing.
    auto all = Index({dir_.path() / "d"}, {});
    ASSERT_TRUE(all.ok()) << all.status().message();
    ASSERT_EQ(SourcesOf(index_).count(Abs(locked_file)), 1u);
    fs::remove(index_);
  }
  ASSERT_EQ(chmod(locked.c_str(), 0), 0);
  IndexOptions options;
  options.exclude = {"locked"};
  auto report = Index({dir_.path() / "d"}, options);
  chmod(locked.c_str(), 0755);  // so the folder can be removed
  ASSERT_TRUE(report.ok()) << report.status().message();
  EXPECT_EQ(report->failed, 0u) << log_.str();
  EXPECT_EQ(report->skipped, 0u);
  EXPECT_EQ(log_.str().find("locked"), std::string::npos) << log_.str();
  EXPECT_EQ(SourcesOf(index_), (std::map<std::string, Indexed>{{Abs(keep), {"keep.tif", "ok"}}}));
}

class WalkHiddenTest : public WalkTest {
 protected:
  void SetUp() override {
    plain_ = Tiff("d/plain.tif");
    hidden_tiff_ = Tiff("d/.hidden.tif", "tiled/u16_zstd.tif");
    snapshot_ = Tiff("d/.snapshot/hourly.0/plain.tif");
    Junk("d/.DS_Store", std::string("\0\0\0\1Bud1", 8));
    // An AppleDouble file: its .tif name would fail it as an image no scanner reads.
    apple_double_ = Junk("d/._plain.tif", std::string("\0\5\x16\7\0\2\0\0Mac OS X        ", 24));
  }
  fs::path plain_, hidden_tiff_, snapshot_, apple_double_;
};

TEST_F(WalkHiddenTest, HiddenFilesAndFoldersAreSkippedByDefault) {
  auto report = Index({dir_.path() / "d"}, {});
  ASSERT_TRUE(report.ok()) << report.status().message();
  EXPECT_EQ(report->indexed, 1u);
  EXPECT_EQ(report->failed, 0u) << log_.str();
  EXPECT_EQ(report->skipped, 3u);  // .hidden.tif, .DS_Store, ._plain.tif; .snapshot is not read
  EXPECT_EQ(SourcesOf(index_),
            (std::map<std::string, Indexed>{{Abs(plain_), {"plain.tif", "ok"}}}));
}

TEST_F(WalkHiddenTest, HiddenIncludesThem) {
  IndexOptions options;
  options.hidden = true;
  auto report = Index({dir_.path() / "d"}, options);
  ASSERT_TRUE(report.ok()) << report.status().message();
  EXPECT_EQ(report->indexed, 3u);
  EXPECT_EQ(report->failed, 1u) << log_.str();  // the AppleDouble file, named like an image
  EXPECT_EQ(report->skipped, 1u);               // .DS_Store
  EXPECT_EQ(SourcesOf(index_), (std::map<std::string, Indexed>{
                                   {Abs(plain_), {"plain.tif", "ok"}},
                                   {Abs(hidden_tiff_), {".hidden.tif", "ok"}},
                                   {Abs(snapshot_), {".snapshot/hourly.0/plain.tif", "ok"}},
                                   {Abs(apple_double_), {"._plain.tif", "failed"}},
                               }));
}

TEST_F(WalkHiddenTest, AHiddenFileOrFolderNamedExplicitlyIsIndexed) {
  auto alone = Index({hidden_tiff_}, {});
  ASSERT_TRUE(alone.ok()) << alone.status().message();
  EXPECT_EQ(alone->indexed, 1u) << log_.str();
  EXPECT_EQ(SourcesOf(index_), (std::map<std::string, Indexed>{{Abs(hidden_tiff_), {"", "ok"}}}));
  fs::remove(index_);
  std::istringstream list(hidden_tiff_.string() + "\n" + (dir_.path() / "d/.snapshot").string());
  IndexOptions options;
  options.files_from = &list;
  options.root = dir_.path();
  auto listed = Index({}, options);
  ASSERT_TRUE(listed.ok()) << listed.status().message();
  EXPECT_EQ(SourcesOf(index_), (std::map<std::string, Indexed>{
                                   {Abs(hidden_tiff_), {"d/.hidden.tif", "ok"}},
                                   {Abs(snapshot_), {"d/.snapshot/hourly.0/plain.tif", "ok"}},
                               }));
}

// Placement: every source at its path relative to the index's root, whatever the order of the
// arguments and runs.
TEST_F(WalkTest, AFileOfAnIndexedFolderIndexedAgainAloneIsReplacedInPlace) {
  const fs::path a = Tiff("src/a.tif"), b = Tiff("src/sub/b.tif", "tiled/u16_zstd.tif");
  ASSERT_TRUE(Index({dir_.path() / "src"}, {}).ok());
  IndexOptions force;
  force.force = true;
  auto again = Index({a}, force);
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_EQ(again->indexed, 1u) << log_.str();
  EXPECT_EQ(again->failed, 0u) << log_.str();
  EXPECT_EQ(SourcesOf(index_), (std::map<std::string, Indexed>{
                                   {Abs(a), {"a.tif", "ok"}},
                                   {Abs(b), {"sub/b.tif", "ok"}},
                               }));
}

TEST_F(WalkTest, FilesOfTheSameNameInTwoFoldersNeverCollide) {
  const fs::path f0 = Tiff("d0/f.tif"), f1 = Tiff("d1/f.tif", "tiled/u16_zstd.tif");
  auto report = Index({f1, f0}, {});
  ASSERT_TRUE(report.ok()) << report.status().message();
  EXPECT_EQ(report->failed, 0u) << log_.str();
  const auto first = SourcesOf(index_);
  EXPECT_EQ(first, (std::map<std::string, Indexed>{
                       {Abs(f0), {"d0/f.tif", "ok"}},
                       {Abs(f1), {"d1/f.tif", "ok"}},
                   }));
  // The other order, into a new index: the same tree.
  fs::remove(index_);
  ASSERT_TRUE(Index({f0, f1}, {}).ok());
  EXPECT_EQ(SourcesOf(index_), first);
}

TEST_F(WalkTest, AMovedFolderIsRefusedNamingTheRootAndHowToMapIt) {
  Tiff("A/x.tif");
  ASSERT_TRUE(Index({dir_.path() / "A"}, {}).ok());
  fs::rename(dir_.path() / "A", dir_.path() / "B");
  auto moved = Index({dir_.path() / "B"}, {});
  ASSERT_TRUE(moved.ok()) << moved.status().message();
  EXPECT_EQ(moved->failed, 1u) << log_.str();
  EXPECT_NE(log_.str().find("outside the index's root " + Abs(dir_.path() / "A")),
            std::string::npos) << log_.str();
  EXPECT_NE(log_.str().find("--as"), std::string::npos) << log_.str();
  EXPECT_NE(log_.str().find("relocate"), std::string::npos) << log_.str();
  // --as places it explicitly.
  IndexOptions as;
  as.as = "mirror";
  auto placed = Index({dir_.path() / "B"}, as);
  ASSERT_TRUE(placed.ok()) << placed.status().message();
  EXPECT_EQ(placed->failed, 0u) << log_.str();
  EXPECT_EQ(SourcesOf(index_)[Abs(dir_.path() / "B/x.tif")], (Indexed{"mirror/x.tif", "ok"}));
  // Another root than the recorded one is an error before anything is indexed.
  IndexOptions other;
  other.root = dir_.path();
  auto refused = Index({dir_.path() / "B"}, other);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("the index's root is " + Abs(dir_.path() / "A")),
            std::string::npos) << refused.status().message();
}

// Through the binary: the list on standard input, NUL-separated, an --exclude before the paths.
TEST_F(WalkTest, CliReadsTheListFromStandardInput) {
  const fs::path a = Tiff("a.tif"), b = Tiff("in/b.tif", "tiled/u16_zstd.tif");
  const fs::path given = Tiff("given/g.tif", "tiled/u8_packbits.tif");
  Tiff("in/b.tmp.tif");
  Tiff("given/g.tmp.tif");
  const fs::path list = dir_.path() / "list";
  {
    std::ofstream out(list, std::ios::binary);
    out << a.string() << '\0' << (dir_.path() / "in").string() << '\0';
  }
  const fs::path json = dir_.path() / "out.json", err = dir_.path() / "err";
  const std::string cmd = std::string(REFZARR_BIN) + " index -o '" + index_.string() +
                          "' --files-from - -0 --exclude '*.tmp.tif' --json '" +
                          (dir_.path() / "given").string() + "' < '" + list.string() + "' > '" +
                          json.string() + "' 2> '" + err.string() + "'";
  const int status = std::system(cmd.c_str());
  std::ifstream err_in(err);
  const std::string err_text((std::istreambuf_iterator<char>(err_in)), {});
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << cmd << "\n" << err_text;
  std::ifstream json_in(json);
  const nlohmann::json report = nlohmann::json::parse(json_in);
  EXPECT_EQ(report["indexed"], 3);
  EXPECT_EQ(report["skipped"], 2);
  EXPECT_EQ(SourcesOf(index_), (std::map<std::string, Indexed>{
                                   {Abs(a), {"a.tif", "ok"}},
                                   {Abs(b), {"in/b.tif", "ok"}},
                                   {Abs(given), {"given/g.tif", "ok"}},
                               }));
}

TEST_F(WalkTest, CliRequiresPathsOrAList) {
  const std::string cmd = std::string(REFZARR_BIN) + " index -o '" + index_.string() + "' 2> '" +
                          (dir_.path() / "err").string() + "'";
  const int status = std::system(cmd.c_str());
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2) << status;
  std::ifstream err_in(dir_.path() / "err");
  const std::string err((std::istreambuf_iterator<char>(err_in)), {});
  EXPECT_NE(err.find("--files-from"), std::string::npos) << err;
  EXPECT_FALSE(fs::exists(index_));
  const std::string missing = std::string(REFZARR_BIN) + " index -o '" + index_.string() +
                              "' --files-from '" + (dir_.path() / "no-list").string() + "' 2> '" +
                              (dir_.path() / "err").string() + "'";
  const int missing_status = std::system(missing.c_str());
  EXPECT_TRUE(WIFEXITED(missing_status) && WEXITSTATUS(missing_status) == 1) << missing_status;
  std::ifstream err2(dir_.path() / "err");
  const std::string err2_text((std::istreambuf_iterator<char>(err2)), {});
  EXPECT_NE(err2_text.find("cannot read the list"), std::string::npos) << err2_text;
}

}  // namespace
}  // namespace refzarr
