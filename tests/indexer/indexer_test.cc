#include "indexer/indexer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "store/ref_store.h"
#include "store/zarr_view.h"
#include "tests/indexer/test_support.h"
#include "tests/support/view_keys.h"

namespace refzarr {
namespace {

namespace fs = std::filesystem;

class IndexerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    samples_ = dir_.path() / "samples";
    testing::WriteSamples(samples_);
  }
  Result<IndexReport> Index(const std::vector<fs::path>& inputs, const fs::path& index) {
    log_.str("");
    return IndexPaths(inputs, index, {}, log_);
  }
  testing::TempDir dir_{"indexer"};
  fs::path samples_;
  std::ostringstream log_;
};

TEST_F(IndexerTest, DamagedFilesFailAloneAndAreNamed) {
  fs::path index = dir_.path() / "a.refs.db";
  auto report = Index({samples_}, index);
  ASSERT_TRUE(report.ok()) << report.status().message();
  EXPECT_EQ(report->failed, 2u);
  EXPECT_GT(report->indexed, 40u);
  EXPECT_NE(log_.str().find("bad/truncated_half.tif"), std::string::npos) << log_.str();
  EXPECT_NE(log_.str().find("bad/next_ifd_past_eof.tif"), std::string::npos) << log_.str();
  auto store = OpenRefStore(index, OpenMode::kReadOnly);
  ASSERT_TRUE(store.ok());
  auto stats = (*store)->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->failed_sources, 2u);
  auto bad = (*store)->GetNode("bad/truncated_half.tif");
  ASSERT_TRUE(bad.ok());
  EXPECT_FALSE(bad->has_value()) << "a failed file must leave no nodes";
}

// With a tiny in-memory bound every file's references go through temporary files and are merged
// back; the index must serve exactly what the all-in-memory index serves, key for key.
TEST_F(IndexerTest, SpilledReferencesIndexLikeInMemoryOnes) {
  fs::path in_memory = dir_.path() / "memory.refs.db", spilled = dir_.path() / "spilled.refs.db";
  ASSERT_TRUE(Index({samples_}, in_memory).ok());
  IndexOptions options;
  options.refs_in_memory = 3;
  log_.str("");
  auto report = IndexPaths({samples_}, spilled, options, log_);
  ASSERT_TRUE(report.ok()) << report.status().message();
  EXPECT_EQ(report->failed, 2u) << log_.str();
  ViewOptions passthrough;
  passthrough.codecs = CodecPolicy::kPassthrough;
  auto a = OpenZarrView(in_memory, passthrough);
  auto b = OpenZarrView(spilled, passthrough);
  ASSERT_TRUE(a.ok() && b.ok());
  size_t chunks = 0;
  std::vector<std::string> pending = {""};
  while (!pending.empty()) {
    std::string prefix = pending.back();
    pending.pop_back();
    auto la = (*a)->List(prefix), lb = (*b)->List(prefix);
    ASSERT_TRUE(la.ok() && lb.ok() && la->has_value() && lb->has_value()) << prefix;
    ASSERT_EQ((*la)->size(), (*lb)->size()) << prefix;
    for (size_t i = 0; i < (*la)->size(); ++i) {
      const DirEntry& e = (**la)[i];
      ASSERT_EQ(e.name, (**lb)[i].name) << prefix;
      std::string key = prefix.empty() ? e.name : prefix + "/" + e.name;
      if (e.is_directory) {
        pending.push_back(key);
        continue;
      }
      auto va = (*a)->Get(key), vb = (*b)->Get(key);
      ASSERT_TRUE(va.ok() && vb.ok() && va->has_value() && vb->has_value()) << key;
      const Value &x = **va, &y = **vb;
      ASSERT_EQ(x.slice.has_value(), y.slice.has_value()) << key;
      if (x.slice) {
        EXPECT_EQ(x.slice->source->Describe(), y.slice->source->Describe()) << key;
        EXPECT_EQ(x.slice->offset, y.slice->offset) << key;
        EXPECT_EQ(x.slice->length, y.slice->length) << key;
        ++chunks;
      } else {
        EXPECT_EQ(x.bytes, y.bytes) << key;
      }
    }
  }
  EXPECT_GT(chunks, 500u);
}

TEST_F(IndexerTest, WithoutAFileListOnlyCountsAreKept) {
  IndexOptions options;
  options.file_list = false;
  auto report = IndexPaths({samples_}, dir_.path() / "counts.refs.db", options, log_);
  ASSERT_TRUE(report.ok()) << report.status().message();
  EXPECT_TRUE(report->files.empty());
  EXPECT_GT(report->indexed, 40u);
  EXPECT_EQ(report->failed, 2u);
  EXPECT_GT(report->chunks, 500u);
  EXPECT_NE(log_.str().find("bad/truncated_half.tif"), std::string::npos) << "failures still named";
}

// A ProgressSink that records what it was given and, from the `stop_after`th file on, asks the
// run to stop (as the CLI's SIGINT handler does).
class RecordingProgress : public ProgressSink {
 public:
  explicit RecordingProgress(uint64_t stop_after = 0) : stop_after_(stop_after) {}
  void Update(const IndexProgress& p) override {
    EXPECT_FALSE(done_) << "Update after Done";
    EXPECT_EQ(p.files_done, updates.size() + 1) << "one Update per file";
    EXPECT_GE(p.elapsed_seconds, last.elapsed_seconds);
    updates.push_back(p);
    last = p;
    if (stop_after_ && p.files_done >= stop_after_) stop.store(true);
  }
  void Done(const IndexProgress& p) override {
    EXPECT_FALSE(done_) << "Done twice";
    done_ = true;
    last = p;
  }
  std::atomic<bool> stop{false};
  std::vector<IndexProgress> updates;
  IndexProgress last;

 private:
  uint64_t stop_after_;
  bool done_ = false;
};

TEST_F(IndexerTest, ProgressCountsEveryFileAgainstAWalkedTotal) {
  RecordingProgress progress;
  IndexOptions options;
  options.progress = &progress;
  auto report = IndexPaths({samples_}, dir_.path() / "p.refs.db", options, log_);
  ASSERT_TRUE(report.ok()) << report.status().message();
  const uint64_t looked_at = report->indexed + report->failed + report->unchanged;
  // Every file handed to the scans is counted (the ones the sniff skips too); the ones the walk
  // passes over (hidden, excluded) are not.
  EXPECT_GE(progress.last.files_done, looked_at);
  EXPECT_LE(progress.last.files_done, looked_at + report->skipped);
  EXPECT_EQ(progress.updates.size(), progress.last.files_done);
  EXPECT_TRUE(progress.last.total_known);
  EXPECT_EQ(progress.last.files_total, progress.last.files_done);
  EXPECT_EQ(progress.last.indexed, report->indexed);
  EXPECT_EQ(progress.last.failed, report->failed);
  EXPECT_EQ(progress.last.chunks, report->chunks);
  EXPECT_GT(progress.last.bytes_done, 0u);
  EXPECT_EQ(log_.str().find('\r'), std::string::npos) << "the library drew progress itself";
}

TEST_F(IndexerTest, ProgressCountsAListReadASecondTime) {
  const fs::path list = dir_.path() / "files.list";
  {
    std::ofstream out(list);
    for (const auto& e : fs::recursive_directory_iterator(samples_)) {
      if (e.is_regular_file()) out << e.path().string() << "\n";
    }
  }
  for (bool again : {false, true}) {
    std::ifstream first(list), second(list);
    RecordingProgress progress;
    IndexOptions options;
    options.progress = &progress;
    options.files_from = &first;
    options.files_from_again = again ? &second : nullptr;
    options.root = samples_;
    const fs::path index = dir_.path() / (again ? "again.refs.db" : "once.refs.db");
    auto report = IndexPaths({}, index, options, log_);
    ASSERT_TRUE(report.ok()) << report.status().message();
    EXPECT_EQ(progress.last.total_known, again);
    if (again) EXPECT_EQ(progress.last.files_total, progress.last.files_done);
    EXPECT_EQ(report->indexed + report->failed, progress.last.indexed + progress.last.failed);
  }
}

// Stopped at a file boundary, the index holds exactly the files committed; re-running the same
// call goes on from there and ends with the index one uninterrupted run makes.
TEST_F(IndexerTest, AStoppedRunKeepsItsFilesAndTheNextRunGoesOn) {
  const fs::path index = dir_.path() / "stopped.refs.db";
  RecordingProgress progress(/*stop_after=*/5);
  IndexOptions options;
  options.threads = 2;
  options.progress = &progress;
  options.stop = &progress.stop;
  auto stopped = IndexPaths({samples_}, index, options, log_);
  ASSERT_TRUE(stopped.ok()) << stopped.status().message();
  EXPECT_TRUE(stopped->stopped);
  EXPECT_EQ(progress.last.files_done, 5u) << "files committed after the stop";
  EXPECT_GT(stopped->indexed, 0u);
  EXPECT_LE(stopped->indexed + stopped->failed, 5u);
  auto store = OpenRefStore(index, OpenMode::kReadOnly);
  ASSERT_TRUE(store.ok());
  auto sources = (*store)->Sources();
  ASSERT_TRUE(sources.ok());
  uint64_t scanned = 0;
  for (const SourceInfo& s : *sources) scanned += s.status != "companion";
  EXPECT_EQ(scanned, stopped->indexed + stopped->failed);
  store->reset();

  auto resumed = IndexPaths({samples_}, index, {}, log_);
  ASSERT_TRUE(resumed.ok()) << resumed.status().message();
  EXPECT_FALSE(resumed->stopped);
  EXPECT_EQ(resumed->unchanged, stopped->indexed);
  auto whole = Index({samples_}, dir_.path() / "whole.refs.db");
  ASSERT_TRUE(whole.ok());
  EXPECT_EQ(resumed->indexed + resumed->unchanged, whole->indexed);
  EXPECT_TRUE(testing::ReadAllKeys(index) == testing::ReadAllKeys(dir_.path() / "whole.refs.db"));
}

TEST_F(IndexerTest, UnchangedFilesAreNotScannedAgain) {
  fs::path index = dir_.path() / "b.refs.db";
  auto first = Index({samples_}, index);
  ASSERT_TRUE(first.ok());
  auto second = Index({samples_}, index);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->indexed, 0u);
  EXPECT_EQ(second->unchanged, first->indexed);
}

TEST_F(IndexerTest, SingleFileIsTheRootGroup) {
  fs::path index = dir_.path() / "c.refs.db";
  auto report = Index({samples_ / "tiled" / "u16_edge_tiles_deflate.tif"}, index);
  ASSERT_TRUE(report.ok());
  auto view = OpenZarrView(index, {});
  ASSERT_TRUE(view.ok());
  auto attrs = (*view)->Get(".zattrs");
  ASSERT_TRUE(attrs.ok() && *attrs);
  EXPECT_NE((*attrs)->bytes.find("bioformats2raw.layout"), std::string::npos);
  auto zarray = (*view)->Get("0/0/.zarray");
  ASSERT_TRUE(zarray.ok() && *zarray);
}

TEST_F(IndexerTest, SeveralInputsArePrefixedByTheirNames) {
  fs::path index = dir_.path() / "d.refs.db";
  auto report = Index({samples_ / "tiled", samples_ / "stacks"}, index);
  ASSERT_TRUE(report.ok());
  auto view = OpenZarrView(index, {});
  ASSERT_TRUE(view.ok());
  auto root = (*view)->List("");
  ASSERT_TRUE(root.ok() && *root);
  std::vector<std::string> names;
  for (const auto& e : **root) names.push_back(e.name);
  EXPECT_NE(std::find(names.begin(), names.end(), "tiled"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "stacks"), names.end());
}

TEST_F(IndexerTest, ChangedSourceIsDetectedAndNeverServed) {
  fs::path file = dir_.path() / "one.tif";
  fs::copy_file(samples_ / "tiled" / "u32_none.tif", file);
  fs::path index = dir_.path() / "e.refs.db";
  ASSERT_TRUE(Index({file}, index).ok());
  ViewOptions options;
  options.codecs = CodecPolicy::kPassthrough;
  {
    auto view = OpenZarrView(index, options);
    ASSERT_TRUE(view.ok());
    auto chunk = (*view)->Get("0/0/0/0/0/0/0");
    ASSERT_TRUE(chunk.ok() && *chunk) << chunk.status().message();
  }
  // Same size, other bytes, later mtime: a rewrite in place.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  {
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(200);
    f.write("XXXXXXXX", 8);
  }
  auto view = OpenZarrView(index, options);
  ASSERT_TRUE(view.ok());
  auto chunk = (*view)->Get("0/0/0/0/0/0/0");
  ASSERT_FALSE(chunk.ok());
  EXPECT_EQ(chunk.status().code(), StatusCode::kStale);
  EXPECT_NE(chunk.status().message().find(file.string()), std::string::npos)
      << chunk.status().message();
  // Re-indexing makes it servable again.
  ASSERT_TRUE(Index({file}, index).ok());
  auto fresh = OpenZarrView(index, options);
  ASSERT_TRUE(fresh.ok());
  auto again = (*fresh)->Get("0/0/0/0/0/0/0");
  EXPECT_TRUE(again.ok() && *again) << again.status().message();
}

TEST_F(IndexerTest, FilesGoneFromAFolderAreRemovedOnReindex) {
  fs::path index = dir_.path() / "g.refs.db";
  ASSERT_TRUE(Index({samples_}, index).ok());
  fs::remove(samples_ / "tiled" / "u32_none.tif");
  fs::remove_all(samples_ / "pyramids");
  auto report = Index({samples_}, index);
  ASSERT_TRUE(report.ok()) << report.status().message();
  EXPECT_EQ(report->removed, 3u);
  EXPECT_NE(log_.str().find("u32_none.tif"), std::string::npos) << log_.str();
  auto store = OpenRefStore(index, OpenMode::kReadOnly);
  ASSERT_TRUE(store.ok());
  for (const char* gone : {"tiled/u32_none.tif", "tiled/u32_none.tif/0/0", "pyramids"}) {
    auto n = (*store)->GetNode(gone);
    ASSERT_TRUE(n.ok());
    EXPECT_FALSE(n->has_value()) << gone;
  }
  auto kept = (*store)->GetNode("tiled/u8_packbits.tif/0/0");
  ASSERT_TRUE(kept.ok() && *kept);
}

// The file:// opener, recording every URI it is asked to stat or open.
class RecordingFileOpener final : public SourceOpener {
 public:
  std::string_view Scheme() const override { return "file"; }
  Result<SourceStat> Stat(std::string_view uri) const override {
    Note(uri);
    return local_->Stat(uri);
  }
  Result<std::unique_ptr<ByteSource>> Open(std::string_view uri) const override {
    Note(uri);
    return local_->Open(uri);
  }
  std::vector<std::string> Seen() const {
    std::lock_guard lock(mu_);
    return seen_;
  }

 private:
  void Note(std::string_view uri) const {
    std::lock_guard lock(mu_);
    seen_.emplace_back(uri);
  }
  std::unique_ptr<SourceOpener> local_ = MakeLocalFileOpener();
  mutable std::mutex mu_;
  mutable std::vector<std::string> seen_;
};

// Sources, the members a scan resolves and the companions probed afterwards all go through the
// openers the indexer is given.
TEST_F(IndexerTest, SourcesAndCompanionsOpenThroughTheGivenOpeners) {
  auto owned = std::make_unique<RecordingFileOpener>();
  const RecordingFileOpener& recording = *owned;
  std::vector<std::unique_ptr<SourceOpener>> list;
  list.push_back(std::move(owned));
  const SourceOpeners openers(std::move(list));
  IndexOptions options;
  options.openers = &openers;
  const fs::path set = samples_ / "ome" / "multifile";
  auto report = IndexPaths({set / "multifile_z0.ome.tif"}, dir_.path() / "o.refs.db", options, log_);
  ASSERT_TRUE(report.ok()) << report.status().message();
  ASSERT_EQ(report->indexed, 1u) << log_.str();
  const std::vector<std::string> seen = recording.Seen();
  auto count = [&](const fs::path& p) { return std::count(seen.begin(), seen.end(), FileUri(p)); };
  EXPECT_GE(count(set / "multifile_z0.ome.tif"), 1);
  // Opened by the scan (OpenSibling), then probed for the index (ProbeSource).
  EXPECT_GE(count(set / "multifile_z1.ome.tif"), 2);
  EXPECT_GE(count(set / "multifile_z2.ome.tif"), 2);
  auto store = OpenRefStore(dir_.path() / "o.refs.db", OpenMode::kReadOnly);
  ASSERT_TRUE(store.ok());
  auto sources = (*store)->Sources();
  ASSERT_TRUE(sources.ok());
  std::vector<std::string> companions;
  for (const SourceInfo& info : *sources) {
    if (info.status == "companion") companions.push_back(info.uri);
  }
  std::sort(companions.begin(), companions.end());
  EXPECT_EQ(companions, (std::vector<std::string>{FileUri(set / "multifile_z1.ome.tif"),
                                                  FileUri(set / "multifile_z2.ome.tif")}));
}

TEST_F(IndexerTest, MissingInputIsAnError) {
  auto report = Index({dir_.path() / "nope"}, dir_.path() / "f.refs.db");
  EXPECT_EQ(report.status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace refzarr

namespace refzarr {
namespace {

TEST_F(IndexerTest, OmeCompanionFileIndexesTheWholeMultiFileSet) {
  fs::path set = samples_ / "ome" / "multifile";
  fs::path first = dir_.path() / "first.refs.db";
  ASSERT_TRUE(Index({set}, first).ok());
  ViewOptions options;
  options.codecs = CodecPolicy::kPassthrough;
  std::string xml;
  {
    auto view = OpenZarrView(first, options);
    ASSERT_TRUE(view.ok());
    auto v = (*view)->Get("multifile_z0.ome.tif/OME/METADATA.ome.xml");
    ASSERT_TRUE(v.ok() && *v);
    xml = (*v)->bytes;
  }
  // A companion carries the set's XML under a UUID of its own; every plane is in a member TIFF.
  size_t root = xml.find("<OME");
  size_t uuid = xml.find("UUID=\"", root);
  ASSERT_NE(uuid, std::string::npos);
  size_t end = xml.find('"', uuid + 6);
  xml.replace(uuid + 6, end - uuid - 6, "urn:uuid:00000000-0000-4000-8000-000000000001");
  std::ofstream(set / "set.companion.ome") << xml;

  fs::path index = dir_.path() / "companion.refs.db";
  auto report = Index({set}, index);
  ASSERT_TRUE(report.ok()) << report.status().message();
  bool found = false;
  for (const IndexedFile& f : report->files) {
    if (f.group != "set.companion.ome") continue;
    found = true;
    EXPECT_EQ(f.outcome, "indexed") << f.error;
    EXPECT_EQ(f.scanner, "ome-companion");
  }
  ASSERT_TRUE(found) << log_.str();
  auto view = OpenZarrView(index, options);
  ASSERT_TRUE(view.ok());
  auto a = (*view)->Get("set.companion.ome/0/0/.zarray");
  auto b = (*view)->Get("multifile_z0.ome.tif/0/0/.zarray");
  ASSERT_TRUE(a.ok() && *a && b.ok() && *b);
  EXPECT_EQ((*a)->bytes, (*b)->bytes);
  // The same chunks, from the same member files, in the same places.
  auto zarray = nlohmann::json::parse((*b)->bytes);
  auto shape = zarray["shape"].get<std::vector<uint64_t>>();
  auto chunks = zarray["chunks"].get<std::vector<uint64_t>>();
  int compared = 0;
  for (uint64_t z = 0; z < shape[2]; ++z) {
    for (uint64_t c = 0; c < shape[1]; ++c) {
      std::string key = "/0/0/0/" + std::to_string(c / chunks[1]) + "/" + std::to_string(z) + "/0/0";
      auto x = (*view)->Get("set.companion.ome" + key);
      auto y = (*view)->Get("multifile_z0.ome.tif" + key);
      ASSERT_TRUE(x.ok() && *x && y.ok() && *y) << key;
      ASSERT_TRUE((*x)->slice && (*y)->slice);
      EXPECT_EQ((*x)->slice->source->Describe(), (*y)->slice->source->Describe()) << key;
      EXPECT_EQ((*x)->slice->offset, (*y)->slice->offset) << key;
      ++compared;
    }
  }
  EXPECT_GE(compared, 3);
}

TEST_F(IndexerTest, OmeCompanionWithAMissingMemberFailsNamingIt) {
  fs::path set = dir_.path() / "broken";
  fs::create_directories(set);
  std::ofstream(set / "x.companion.ome")
      << "<?xml version=\"1.0\"?><OME xmlns=\"http://www.openmicroscopy.org/Schemas/OME/2016-06\" "
         "UUID=\"urn:uuid:1\"><Image ID=\"Image:0\"><Pixels ID=\"Pixels:0\" DimensionOrder=\"XYZCT\" "
         "Type=\"uint8\" SizeX=\"4\" SizeY=\"4\" SizeZ=\"1\" SizeC=\"1\" SizeT=\"1\">"
         "<Channel ID=\"Channel:0:0\" SamplesPerPixel=\"1\"/><TiffData IFD=\"0\" PlaneCount=\"1\">"
         "<UUID FileName=\"gone.ome.tif\">urn:uuid:2</UUID></TiffData></Pixels></Image></OME>";
  auto report = Index({set}, dir_.path() / "broken.refs.db");
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->failed, 1u);
  EXPECT_NE(log_.str().find("gone.ome.tif"), std::string::npos) << log_.str();
}

}  // namespace
}  // namespace refzarr
