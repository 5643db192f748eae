#include "store/zarr_view.h"

#include <sys/stat.h>
#include <fcntl.h>
#include <chrono>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <mutex>
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
    PutFixtureFile();
  }
  // Indexes the data file as the fixture describes (again, when called again).
  void PutFixtureFile() {
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
    auto src = ProbeSource(FileUri(data_));
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
}

// zarr-python 2 reads a failed chunk as fill values: if the metadata of a stale file still
// answered, clients would open its arrays and read zeros. Once a source is known stale, every key
// of its file fails alike: metadata, chunks (stored or not), plain files, directories, listings.
TEST_F(ZarrViewTest, OnceASourceIsStaleEveryKeyOfItsFileFailsWithTheSameMessage) {
  auto v = Open(2);
  ASSERT_TRUE(v->Get("img/0/.zarray").ok());
  ASSERT_TRUE(v->List("img/0").ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  { std::ofstream(data_, std::ios::app) << "grown"; }
  auto chunk = v->Get("img/0/0/0");
  ASSERT_EQ(chunk.status().code(), StatusCode::kStale);
  const std::string message = chunk.status().message();
  EXPECT_NE(message.find(data_.string()), std::string::npos) << message;
  for (const char* key :
       {".zattrs", ".zgroup", ".zmetadata", "img/.zattrs", "img/.zgroup", "img/0/.zarray",
        "img/0/.zattrs", "img/0/1/0", "img/0/1/1", "OME/.zattrs", "OME/notes.xml"}) {
    auto r = v->Get(key);
    ASSERT_FALSE(r.ok()) << key;
    EXPECT_EQ(r.status().code(), StatusCode::kStale) << key;
    EXPECT_EQ(r.status().message(), message) << key;
  }
  for (const char* dir : {"", "img", "img/0", "img/0/1", "OME"}) {
    auto r = v->List(dir);
    EXPECT_EQ(r.status().code(), StatusCode::kStale) << "list '" << dir << "'";
    EXPECT_EQ(r.status().message(), message) << dir;
  }
  for (const char* key : {"img", "img/0", "img/0/1", "img/0/.zarray", "OME/notes.xml"}) {
    EXPECT_EQ(v->Stat(key).status().code(), StatusCode::kStale) << "stat " << key;
  }
  EXPECT_EQ(v->Stat("")->first, EntryKind::kDirectory) << "the root itself stays a directory";
}

// Metadata does not wait for a chunk read to find the change: it checks its sources itself.
TEST_F(ZarrViewTest, MetadataOfAChangedSourceFailsBeforeAnyChunkIsRead) {
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  { std::ofstream(data_, std::ios::app) << "grown"; }
  for (int format : {2, 3}) {
    auto v = Open(format);
    for (const char* key : {".zattrs", "img/0/.zarray", "img/0/.zattrs", ".zmetadata", "zarr.json",
                            "img/zarr.json", "img/0/zarr.json"}) {
      bool v3_key = std::string_view(key).ends_with("zarr.json");
      if (v3_key != (format == 3)) continue;
      auto r = v->Get(key);
      ASSERT_FALSE(r.ok()) << key << " (v" << format << ")";
      EXPECT_EQ(r.status().code(), StatusCode::kStale) << key;
      EXPECT_NE(r.status().message().find(data_.string()), std::string::npos) << key;
    }
    EXPECT_EQ(v->List("img").status().code(), StatusCode::kStale);
  }
}

// A server running while sources change: a file replaced by another of the same size, its mtime
// set back (cp -p, rsync -a), is never served, not even for chunks no one read before, and a
// chunk read once is not served from the old descriptor after the replacement.
TEST_F(ZarrViewTest, AFileReplacedBySameSizeBytesWithItsMtimeRestoredIsStale) {
  for (bool by_rename : {false, true}) {
    SCOPED_TRACE(by_rename ? "replaced by rename (rsync -a)" : "rewritten in place (cp -p)");
    SetUp();
    auto view = Open(2);
    auto first = view->Get("img/0/0/0");
    ASSERT_TRUE(first.ok() && *first && (*first)->slice) << first.status().message();
    struct stat before {};
    ASSERT_EQ(::stat(data_.c_str(), &before), 0);
    std::string other(64, '\x7f');
    if (by_rename) {
      const fs::path tmp = dir_ / ".data.bin.tmp";
      std::ofstream(tmp, std::ios::binary) << other;
      fs::rename(tmp, data_);
    } else {
      std::ofstream(data_, std::ios::binary | std::ios::trunc) << other;
    }
    const timespec times[2] = {before.st_atim, before.st_mtim};
    ASSERT_EQ(::utimensat(AT_FDCWD, data_.c_str(), times, 0), 0);
    struct stat after {};
    ASSERT_EQ(::stat(data_.c_str(), &after), 0);
    ASSERT_EQ(after.st_size, before.st_size);
    ASSERT_EQ(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec);
    for (const char* key : {"img/0/0/0", "img/0/0/1", "img/0/.zarray"}) {
      auto v = view->Get(key);
      ASSERT_FALSE(v.ok()) << key << " was served from the replaced file";
      EXPECT_EQ(v.status().code(), StatusCode::kStale) << key;
      EXPECT_NE(v.status().message().find(data_.string()), std::string::npos) << v.status().message();
    }
    // A fresh view, as a restarted server, refuses it too.
    auto fresh = Open(2);
    EXPECT_FALSE(fresh->Get("img/0/1/0").ok());
  }
}

// A view that revalidates on a time bound serves from its validated handle without a stat in
// between, and notices the change once the bound has passed.
TEST_F(ZarrViewTest, RevalidationOnATimeBoundStillNoticesAChange) {
  ViewOptions o;
  o.revalidate_seconds = 0.2;
  auto view = OpenZarrView(index_, o);
  ASSERT_TRUE(view.ok());
  ASSERT_TRUE((*view)->Get("img/0/0/0").ok());
  std::ofstream(data_, std::ios::binary | std::ios::app) << "more";
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  auto v = (*view)->Get("img/0/0/0");
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), StatusCode::kStale);
}

TEST_F(ZarrViewTest, AMissingSourceIsStale) {
  auto v = Open(2);
  fs::remove(data_);
  EXPECT_EQ(v->Get("img/0/0/0").status().code(), StatusCode::kStale);
}

// An index over two files in folders: "a/x.bin" and "b/y.bin", each with a uint8 array "0" of
// shape (8) in chunks of 4, stored; "a/x.bin" also has a companion whose bytes hold chunk 1.
class TwoFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("refzarr_view_two_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    x_ = dir_ / "x.bin";
    companion_ = dir_ / "x.companion";
    y_ = dir_ / "y.bin";
    for (const fs::path& p : {x_, companion_, y_})
      std::ofstream(p, std::ios::binary) << "0123456789";
    index_ = dir_ / "two.refs.db";
    auto store = OpenRefStore(index_, OpenMode::kReadWrite);
    ASSERT_TRUE(store.ok());
    auto put = [&](const fs::path& main, const std::string& group, bool with_companion) {
      ScannedFile f;
      ScannedFile::Array a;
      a.path = "0";
      a.desc.shape = {8};
      a.desc.chunks = {4};
      a.desc.dtype = DType::Make('u', 1, '|');
      a.chunks.emplace_back(0, ChunkRef{0, 0, 4, 0});
      a.chunks.emplace_back(1, ChunkRef{with_companion ? 1u : 0u, 4, 4, 0});
      f.arrays.push_back(a);
      std::vector<SourceInfo> companions;
      if (with_companion) {
        f.companions.push_back(companion_);
        companions.push_back(*ProbeSource(FileUri(companion_)));
      }
      ASSERT_TRUE((*store)->PutFile(*ProbeSource(FileUri(main)), group, "test", f, companions).ok());
    };
    put(x_, "a/x.bin", true);
    put(y_, "b/y.bin", false);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::unique_ptr<ZarrView> Open() {
    auto v = OpenZarrView(index_, ViewOptions{});
    EXPECT_TRUE(v.ok()) << v.status().message();
    return v.ok() ? std::move(*v) : nullptr;
  }
  static void Touch(const fs::path& p) {
    fs::last_write_time(p, fs::last_write_time(p) + std::chrono::seconds(3));
  }

  fs::path dir_, x_, companion_, y_, index_;
};

TEST_F(TwoFilesTest, FolderGroupsTheRootAndOtherFilesStayReadable) {
  auto v = Open();
  Touch(x_);
  EXPECT_EQ(v->Get("a/x.bin/.zattrs").status().code(), StatusCode::kStale);
  EXPECT_EQ(v->Get("a/x.bin/0/1").status().code(), StatusCode::kStale);
  auto root = v->List("");
  ASSERT_TRUE(root.ok()) << root.status().message();
  auto folder = v->List("a");
  ASSERT_TRUE(folder.ok()) << folder.status().message();
  ASSERT_TRUE(folder->has_value());
  EXPECT_EQ((*folder)->back().name, "x.bin") << "the folder still lists the stale file";
  EXPECT_TRUE(v->Get("a/.zattrs").ok());
  EXPECT_TRUE(v->Get(".zgroup").ok());
  EXPECT_TRUE(v->Stat("a").ok());
  EXPECT_TRUE(v->Get("b/y.bin/0/.zarray").ok());
  auto other = v->Get("b/y.bin/0/1");
  ASSERT_TRUE(other.ok()) << other.status().message();
  EXPECT_TRUE(other->has_value());
}

// A multi-file image's metadata describes every member file: a change to any of them makes it
// wrong, not only a change to the file that was scanned.
TEST_F(TwoFilesTest, MetadataFailsWhenACompanionSourceChanges) {
  auto v = Open();
  ASSERT_TRUE(v->Get("a/x.bin/0/.zarray").ok());
  Touch(companion_);
  for (const char* key : {"a/x.bin/0/.zarray", "a/x.bin/.zattrs", "a/x.bin/.zmetadata"}) {
    auto r = v->Get(key);
    ASSERT_EQ(r.status().code(), StatusCode::kStale) << key;
    EXPECT_NE(r.status().message().find(companion_.string()), std::string::npos)
        << key << ": " << r.status().message();
  }
  EXPECT_EQ(v->Get("a/x.bin/0/0").status().code(), StatusCode::kStale)
      << "a chunk of the scanned file itself fails too, once its file is known stale";
}

// An index whose array "big" has the chunk grid of tlayouto.h5 (shape [2^33, 2^28 + 1] in chunks
// of [1, 2^20]: 2^33 x 257 chunk positions) with three chunks stored, and "empty" the same grid
// with none.
class HugeGridTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("refzarr_view_huge_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    fs::path data = dir_ / "data.bin";
    std::ofstream(data, std::ios::binary) << std::string(64, 'x');
    index_ = dir_ / "huge.refs.db";
    auto store = OpenRefStore(index_, OpenMode::kReadWrite);
    ASSERT_TRUE(store.ok());
    ScannedFile f;
    ScannedFile::Array a;
    a.desc.shape = {8589934592ull, 268435457ull};
    a.desc.chunks = {1, 1048576};
    a.desc.dtype = DType::Make('i', 4, '<');
    a.path = "empty";
    f.arrays.push_back(a);
    a.path = "big";
    const std::vector<uint64_t> grid = a.desc.GridShape();
    for (auto [row, col] : std::vector<std::pair<uint64_t, uint64_t>>{
             {0, 0}, {5000000000ull, 3}, {8589934591ull, 256}}) {
      a.chunks.emplace_back(row * grid[1] + col, ChunkRef{0, 0, 16, 0});
    }
    f.arrays.push_back(a);
    ASSERT_TRUE((*store)->PutFile(*ProbeSource(FileUri(data)), "", "test", f, {}).ok());
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path dir_, index_;
};

TEST_F(HugeGridTest, ListingsNameOnlyWhereChunksAreStored) {
  const auto start = std::chrono::steady_clock::now();
  for (int format : {2, 3}) {
    ViewOptions options;
    options.zarr_format = format;
    auto view = OpenZarrView(index_, options);
    ASSERT_TRUE(view.ok());
    ZarrView& v = **view;
    const std::string c = format == 3 ? "c/" : "";
    auto names = [&](const std::string& prefix) {
      auto list = v.List(prefix);
      EXPECT_TRUE(list.ok()) << prefix << ": " << list.status().message();
      std::vector<std::string> out;
      if (list.ok() && *list) {
        for (const auto& e : **list) out.push_back(e.name + (e.is_directory ? "/" : ""));
      }
      return out;
    };
    if (format == 2) {
      EXPECT_EQ(names("empty"), (std::vector<std::string>{".zarray", ".zattrs"}));
      EXPECT_EQ(names("big"), (std::vector<std::string>{".zarray", ".zattrs", "0/", "5000000000/",
                                                        "8589934591/"}));
    } else {
      EXPECT_EQ(names("empty"), (std::vector<std::string>{"zarr.json"}));
      EXPECT_EQ(names("big"), (std::vector<std::string>{"c/", "zarr.json"}));
      EXPECT_EQ(names("big/c"), (std::vector<std::string>{"0/", "5000000000/", "8589934591/"}));
    }
    EXPECT_EQ(names("big/" + c + "5000000000"), (std::vector<std::string>{"3"}));
    EXPECT_EQ(names("big/" + c + "8589934591"), (std::vector<std::string>{"256"}));
    // Where nothing is stored there is no directory, for Stat as for List.
    EXPECT_FALSE(v.List("big/" + c + "1")->has_value());
    EXPECT_EQ(v.Stat("big/" + c + "1")->first, EntryKind::kMissing);
    EXPECT_EQ(v.Stat("big/" + c + "5000000000")->first, EntryKind::kDirectory);
    auto page = v.ListPage(format == 3 ? "big/c" : "big", "0", 1);
    ASSERT_TRUE(page.ok() && *page);
    ASSERT_EQ((*page)->size(), 1u);
    EXPECT_EQ((*page)->front().name, "5000000000") << "a page resumes after the name given";
    EXPECT_EQ((*page)->front().is_directory, true);
  }
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 10.0);
}

// Pages resume after the last name, in listing order: chunk coordinates ascend as numbers.
TEST_F(ZarrViewTest, ListPagesResumeAfterTheLastNameInListingOrder) {
  auto v = Open(2);
  std::vector<std::string> paged;
  std::string after;
  while (true) {
    auto page = v->ListPage("", after, 2);
    ASSERT_TRUE(page.ok() && *page);
    for (const auto& e : **page) paged.push_back(e.name);
    if ((*page)->size() < 2) break;
    after = (*page)->back().name;
  }
  EXPECT_EQ(paged, (std::vector<std::string>{".zattrs", ".zgroup", ".zmetadata", "OME", "img"}));
  auto first = v->ListPage("img/0", "", 3);
  ASSERT_TRUE(first.ok() && *first);
  ASSERT_EQ((*first)->size(), 3u);
  EXPECT_EQ((*first)->back().name, "0");
  auto rest = v->ListPage("img/0", "0", 3);
  ASSERT_TRUE(rest.ok() && *rest);
  ASSERT_EQ((*rest)->size(), 1u);
  EXPECT_EQ((*rest)->front().name, "1");
}

// ---- the index changing under a running view ----

// The fixture's file indexed again as another array: shape (2, 3), one chunk at offset 40.
void ReindexAsOneChunk(const fs::path& index, const fs::path& data) {
  auto store = OpenRefStore(index, OpenMode::kReadWrite);
  ASSERT_TRUE(store.ok());
  ScannedFile f;
  f.groups.push_back({"", json::object(), std::nullopt});
  ScannedFile::Array a;
  a.path = "img/0";
  a.desc.shape = {2, 3};
  a.desc.chunks = {2, 3};
  a.desc.dtype = DType::Make('u', 2, '<');
  a.chunks.emplace_back(0, ChunkRef{0, 40, 12, 0});
  f.arrays.push_back(a);
  auto src = ProbeSource(FileUri(data));
  ASSERT_TRUE(src.ok());
  ASSERT_TRUE((*store)->PutFile(*src, "", "test", f, {}).ok());
}

std::string Bytes(ZarrView& v, const std::string& key) {
  auto value = v.Get(key);
  if (!value.ok()) return "error: " + value.status().message();
  if (!*value) return "missing";
  auto bytes = v.Materialize(**value);
  return bytes.ok() ? *bytes : "error: " + bytes.status().message();
}

std::string Range(uint8_t from, size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) s += static_cast<char>(from + i);
  return s;
}

// A view that is not told to look keeps answering from the state it opened on, whole: a chunk
// never read before comes from the old references of the array whose metadata it served, not
// from the new index (whose node ids and blocks differ), and not as a missing chunk.
TEST_F(ZarrViewTest, AViewNeverMixesTheMetadataOfOneIndexStateWithTheReferencesOfAnother) {
  ViewOptions o;
  o.index_check_seconds = -1;  // never look: the old state only
  auto view = OpenZarrView(index_, o);
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(Json(**view, "img/0/.zarray")["shape"], json({4, 6}));
  ReindexAsOneChunk(index_, data_);
  EXPECT_EQ(Json(**view, "img/0/.zarray")["shape"], json({4, 6}));
  EXPECT_EQ(Bytes(**view, "img/0/0/1"), Range(16, 12));  // the old chunk (0, 1) at offset 16
  EXPECT_EQ(Bytes(**view, "img/0/1/0"), Range(28, 12));
  EXPECT_EQ((*view)->version().serial, 1u);
}

// A running view moves to the new state of a re-indexed index by itself, on its time bound: new
// metadata, new references, keys that went away gone; its version says so.
TEST_F(ZarrViewTest, ARunningViewAnswersFromTheReindexedStateWithoutARestart) {
  ViewOptions o;
  o.index_check_seconds = 0.2;
  auto view = OpenZarrView(index_, o);
  ASSERT_TRUE(view.ok());
  const IndexVersion before = (*view)->version();
  EXPECT_EQ(Bytes(**view, "img/0/0/1"), Range(16, 12));
  ReindexAsOneChunk(index_, data_);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(Json(**view, "img/0/.zarray")["shape"], json({2, 3}));
  EXPECT_EQ(Bytes(**view, "img/0/0/0"), Range(40, 12));
  EXPECT_EQ(Bytes(**view, "img/0/0/1"), "missing");
  EXPECT_EQ(Bytes(**view, "OME/notes.xml"), "missing");
  const IndexVersion after = (*view)->version();
  EXPECT_EQ(after.serial, before.serial + 1);
  EXPECT_GE(after.loaded_ns, before.loaded_ns);
  // Nothing changed since: no new state.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ((*view)->version().serial, after.serial);
}

// Another index moved into the index's place (a merge's output, a copy) is a change too, even
// with the same generation.
TEST_F(ZarrViewTest, AnotherIndexRenamedIntoPlaceIsServed) {
  ViewOptions o;
  o.index_check_seconds = 0;
  auto view = OpenZarrView(index_, o);
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(Json(**view, "img/0/.zarray")["shape"], json({4, 6}));
  const fs::path other = dir_ / "other.refs.db";
  ReindexAsOneChunk(other, data_);  // a fresh index: generation 1, as the fixture's
  fs::rename(other, index_);
  EXPECT_EQ(Json(**view, "img/0/.zarray")["shape"], json({2, 3}));
  EXPECT_EQ(Bytes(**view, "img/0/0/0"), Range(40, 12));
}

// Readers on several threads while the view moves from state to state as the index is re-indexed
// again and again between two layouts: every read is one of the two layouts' bytes for that key,
// never missing, never an error (snapshots opened, shared and dropped under concurrent calls).
// The mixing of two states within one call is pinned down deterministically above
// (AViewNeverMixes...); this race is too narrow to catch it reliably.
TEST_F(ZarrViewTest, ReadsDuringRepeatedReindexingAreEachFromOneState) {
  ViewOptions o;
  o.index_check_seconds = 0;  // look on every call: the most state changes under the readers
  auto view = OpenZarrView(index_, o);
  ASSERT_TRUE(view.ok());
  std::atomic<bool> done{false};
  std::atomic<int> wrong{0}, reads{0};
  std::mutex mu;
  std::string first_wrong;
  std::vector<std::thread> readers;
  for (int t = 0; t < 4; ++t) {
    readers.emplace_back([&] {
      while (!done) {
        // Chunk (0, 0): offset 4 in the fixture's layout, 40 in the other; never missing.
        std::string got = Bytes(**view, "img/0/0/0");
        reads++;
        if (got != Range(4, 12) && got != Range(40, 12)) {
          wrong++;
          std::lock_guard lock(mu);
          if (first_wrong.empty()) first_wrong = got;
        }
      }
    });
  }
  for (int round = 0; round < 40; ++round) {
    if (round % 2 == 0) {
      ReindexAsOneChunk(index_, data_);
    } else {
      PutFixtureFile();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  done = true;
  for (auto& t : readers) t.join();
  EXPECT_GT(reads.load(), 0);
  EXPECT_EQ(wrong.load(), 0) << "first wrong read: " << first_wrong;
}

}  // namespace
}  // namespace refzarr
