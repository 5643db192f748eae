// Property test of keeping an index in step with its archive (issue 11): from a fixed list of
// seeds, random sequences of operations on a small archive of generated TIFFs, each followed by
// the commands that bring the index up to date (index, rm, relocate, merge of shard indexes).
// After the sequence the index must equal a fresh index of what is on disk: the same keys with the
// same bytes through the view (Zarr v2 pass-through, Zarr v3 compat), and the same `info`.
//
// A failure names the seed and every operation with the commands it ran; replay one seed with
// --gtest_filter='*seed7', and REFZARR_PROPERTY_CHECK_EACH=1 compares after every operation to
// find the first that breaks the property.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "formats/core/source.h"
#include "samples/pixel_pattern.h"
#include "samples/tiff_sample_writer.h"
#include "tests/cli/run_command.h"
#include "tests/indexer/test_support.h"
#include "tests/support/view_keys.h"

namespace refzarr {
namespace {

namespace fs = std::filesystem;

using testing::CommandRun;
using testing::KeyBytes;
using testing::RunCommand;

constexpr int kSeeds = 20;

// Deterministic on every platform (std distributions are not): mt19937_64 is specified.
class Rng {
 public:
  explicit Rng(uint64_t seed) : g_(seed) {}
  uint64_t Below(uint64_t n) { return g_() % n; }
  bool OneIn(uint64_t n) { return Below(n) == 0; }
  template <typename T>
  const T& Pick(const std::vector<T>& v) {
    return v[Below(v.size())];
  }

 private:
  std::mt19937_64 g_;
};

// A random small TIFF: one or two IFDs of 32-80 pixels a side, tiled or in strips, in one of four
// compressions; the pixels follow `pixel_seed`.
samples::TiffFileSpec RandomSpec(Rng& rng, uint64_t pixel_seed, std::string& described) {
  samples::TiffFileSpec spec;
  spec.bigtiff = rng.OneIn(4);
  static const std::vector<samples::SampleType> kTypes = {
      samples::SampleType::kU8, samples::SampleType::kU16, samples::SampleType::kF32};
  static const std::vector<uint16_t> kCompressions = {1, 5, 8, 32773};
  const samples::SampleType type = rng.Pick(kTypes);
  const size_t ifds = 1 + rng.Below(2);
  std::ostringstream d;
  d << (spec.bigtiff ? "bigtiff " : "") << samples::ShortName(type) << " pixels " << pixel_seed;
  for (size_t i = 0; i < ifds; ++i) {
    samples::IfdSpec ifd;
    const uint32_t w = 16 * static_cast<uint32_t>(2 + rng.Below(4));
    const uint32_t h = 16 * static_cast<uint32_t>(2 + rng.Below(4));
    ifd.plane = samples::MakePlane(w, h, type, 1, false, pixel_seed, static_cast<uint32_t>(i));
    ifd.tiled = rng.OneIn(2);
    if (ifd.tiled) {
      ifd.tile_width = ifd.tile_length = rng.OneIn(2) ? 16 : 32;
    } else {
      ifd.rows_per_strip = 8 * static_cast<uint32_t>(1 + rng.Below(3));
    }
    ifd.compression = rng.Pick(kCompressions);
    d << ", " << w << "x" << h << " "
      << (ifd.tiled ? "tiles " + std::to_string(ifd.tile_width)
                    : "strips " + std::to_string(ifd.rows_per_strip))
      << " compression " << ifd.compression;
    spec.ifds.push_back(std::move(ifd));
  }
  described = d.str();
  return spec;
}

// `info --json` without what names the index file itself or measures it on disk.
nlohmann::json Info(const fs::path& index) {
  CommandRun r = RunCommand({"info", "--json", index.string()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  if (r.exit_code != 0) return nullptr;
  nlohmann::json j = nlohmann::json::parse(r.out);
  j.erase("index");
  j.erase("index_bytes");
  return j;
}

std::string Shorten(const std::string& bytes) {
  std::string s = bytes.substr(0, 160);
  for (char& c : s) {
    if (static_cast<unsigned char>(c) < 32 || static_cast<unsigned char>(c) > 126) c = '.';
  }
  return s + (bytes.size() > 160 ? "..." : "");
}

// What differs between two walks (up to `limit` keys), empty when they are equal.
std::string KeyDifferences(const KeyBytes& want, const KeyBytes& got, size_t limit = 12) {
  std::ostringstream out;
  size_t n = 0;
  for (const auto& [key, bytes] : want) {
    if (n >= limit) break;
    auto it = got.find(key);
    if (it == got.end()) {
      out << "  " << key << ": missing from the index\n";
      ++n;
    } else if (it->second != bytes) {
      out << "  " << key << ": other bytes (" << it->second.size() << " bytes, fresh "
          << bytes.size() << ")\n    index: " << Shorten(it->second)
          << "\n    fresh: " << Shorten(bytes) << "\n";
      ++n;
    }
  }
  for (const auto& [key, bytes] : got) {
    if (n >= limit) break;
    if (!want.count(key)) {
      out << "  " << key << ": in the index, not in a fresh index\n";
      ++n;
    }
  }
  if (n >= limit) out << "  ...\n";
  return out.str();
}

// One seed's sequence: the archive on disk (its files, by path relative to the archive folder),
// the index kept in step with it, and the log of what was done, for the failure message.
class Sequence {
 public:
  Sequence(uint64_t seed, const fs::path& base) : seed_(seed), rng_(seed * 7919 + 17), base_(base) {
    root_ = base_ / "archive0";
    state_ = base_ / "state0.refs.db";
  }

  // Runs the first operation (a new archive, indexed) and `ops` random ones, comparing after
  // each when `check_each`, else at the end. Stops at the first failure.
  void Run(int ops, bool check_each) {
    Initial();
    if (Failed()) return;
    for (int i = 0; i < ops; ++i) {
      RandomOperation();
      if (Failed()) return;
      if (check_each && (CompareWithFreshIndex(), Failed())) return;
    }
    if (!check_each) CompareWithFreshIndex();
  }

 private:
  static bool Failed() { return ::testing::Test::HasFailure(); }

  // The seed and every operation so far, with its commands.
  std::string Replay() const {
    std::ostringstream out;
    out << "seed " << seed_ << " (replay: --gtest_filter='*seed" << seed_
        << "'; REFZARR_PROPERTY_CHECK_EACH=1 checks after every operation), T = " << base_.string()
        << ":\n";
    for (size_t i = 0; i < log_.size(); ++i) out << "  " << i + 1 << ". " << log_[i] << "\n";
    return out.str();
  }
  void Begin(const std::string& what) { log_.push_back(what); }
  void Note(const std::string& what) { log_.back() += "\n       " + what; }
  // `p` with the test's temporary folder shown as T.
  std::string Show(const std::string& p) const {
    std::string s = p;
    const std::string base = base_.string();
    for (size_t at; (at = s.find(base)) != std::string::npos;) s.replace(at, base.size(), "T");
    return s;
  }

  // Runs one refzarr command, logged; any exit code but 0 fails the test with the replay.
  CommandRun Command(std::vector<std::string> args) {
    std::string line = "$ refzarr";
    for (const std::string& a : args) line += " " + Show(a);
    Note(line);
    CommandRun r = RunCommand(args);
    if (r.exit_code != 0) {
      ADD_FAILURE() << "exit code " << r.exit_code << " from: " << Show(line.substr(2))
                    << "\nstderr:\n" << r.err << "stdout:\n" << r.out << Replay();
    }
    return r;
  }
  // `index -o DB` of `inputs` (absolute paths), named on the command line or in a list (unless
  // `prune`: only folders named on the command line drop the files gone from them); with --root
  // now and then, always on a new index and with a list.
  void Index(const fs::path& db, const std::vector<std::string>& inputs, bool new_index = false,
             bool prune = false) {
    const bool as_list = rng_.OneIn(3) && !prune;
    const bool with_root = rng_.OneIn(2) || new_index || as_list;
    std::vector<std::string> args = {"index", "--in-process", "-j", "1", "-o", db.string()};
    if (with_root) args.insert(args.end(), {"--root", root_.string()});
    if (as_list) {
      const fs::path list = base_ / ("list" + std::to_string(lists_++) + ".txt");
      std::ofstream out(list);
      for (const std::string& in : inputs) out << in << "\n";
      args.insert(args.end(), {"--files-from", list.string()});
    } else {
      args.insert(args.end(), inputs.begin(), inputs.end());
    }
    Command(args);
  }
  // Brings the state index up to date after `changed` files (relative paths) were written: names
  // the files, their folders or the whole archive.
  void IndexChanged(const std::vector<std::string>& changed) {
    switch (rng_.Below(3)) {
      case 0: {
        std::vector<std::string> inputs;
        for (const std::string& rel : changed) inputs.push_back((root_ / rel).string());
        Index(state_, inputs);
        break;
      }
      case 1: {
        std::set<std::string> folders;
        for (const std::string& rel : changed) folders.insert((root_ / rel).parent_path().string());
        Index(state_, {folders.begin(), folders.end()});
        break;
      }
      default:
        Index(state_, {root_.string()});
    }
  }

  // Writes a new random TIFF at `rel` (replacing what is there, in place).
  void WriteFile(const std::string& rel) {
    std::string described;
    const samples::TiffFileSpec spec = RandomSpec(rng_, rng_.Below(1u << 20), described);
    fs::create_directories((root_ / rel).parent_path());
    Status st = samples::WriteTiffFile(root_ / rel, spec);
    ASSERT_TRUE(st.ok()) << st.message() << Replay();
    specs_[rel] = spec;
    files_.insert(rel);
    Note("wrote " + rel + ": " + described);
  }
  // A path for a new file: in the archive folder or one of a few folders, some nested.
  std::string NewFilePath() {
    static const std::vector<std::string> kFolders = {"", "a", "b", "a/deep", "c", "c/x/y"};
    const std::string folder = rng_.Pick(kFolders);
    const std::string name = "f" + std::to_string(next_file_++) + ".tif";
    return folder.empty() ? name : folder + "/" + name;
  }
  std::vector<std::string> NewFiles(size_t n) {
    std::vector<std::string> out;
    for (size_t i = 0; i < n; ++i) {
      out.push_back(NewFilePath());
      WriteFile(out.back());
      if (Failed()) break;
    }
    return out;
  }
  // The folders of the archive that hold files (relative; not the archive folder itself).
  std::vector<std::string> Folders() const {
    std::set<std::string> out;
    for (const std::string& rel : files_) {
      for (fs::path p = fs::path(rel).parent_path(); !p.empty(); p = p.parent_path()) {
        out.insert(p.string());
      }
    }
    return {out.begin(), out.end()};
  }
  size_t FilesUnder(const std::string& folder) const {
    size_t n = 0;
    for (const std::string& rel : files_) n += rel.rfind(folder + "/", 0) == 0;
    return n;
  }
  std::vector<std::string> FileList() const { return {files_.begin(), files_.end()}; }
  fs::path NextDb(const std::string& tag) {
    return base_ / (tag + std::to_string(dbs_++) + ".refs.db");
  }

  // 1: a new archive of 3-6 files, indexed into a new index (its folder, or --root and the files).
  void Initial() {
    Begin("new archive");
    const std::vector<std::string> added = NewFiles(3 + rng_.Below(4));
    if (Failed()) return;
    if (rng_.OneIn(2)) {
      Command({"index", "--in-process", "-j", "1", "-o", state_.string(), root_.string()});
    } else {
      std::vector<std::string> inputs;
      for (const std::string& rel : added) inputs.push_back((root_ / rel).string());
      Index(state_, inputs, /*new_index=*/true);
    }
  }

  void RandomOperation() {
    // Weights: adding and modifying most, the rest evenly.
    switch (rng_.Below(12)) {
      case 0: case 1: return AddFiles();
      case 2: case 3: case 4: return ModifyFile();
      case 5: return DeleteFiles();
      case 6: return DeleteFolder();
      case 7: return MoveArchive();
      case 8: return MoveWithinArchive();
      case 9: return MergeNewFiles();
      case 10: return RebuildFromShards();
      default: return IndexUnchanged();
    }
  }

  void AddFiles() {
    Begin("add files");
    const std::vector<std::string> added = NewFiles(1 + rng_.Below(3));
    if (!Failed()) IndexChanged(added);
  }

  // Rewrites a file: other pixels in the same layout (in place: same inode, and the same size
  // when uncompressed), or a new random layout, in place or written beside and renamed over it.
  void ModifyFile() {
    const std::string rel = rng_.Pick(FileList());
    const fs::path path = root_ / rel;
    switch (rng_.Below(3)) {
      case 0: {
        Begin("modify " + rel + " in place, same layout, other pixels");
        samples::TiffFileSpec spec = specs_.at(rel);
        const uint64_t pixels = rng_.Below(1u << 20);
        for (size_t i = 0; i < spec.ifds.size(); ++i) {
          const samples::Plane& p = spec.ifds[i].plane;
          spec.ifds[i].plane = samples::MakePlane(p.width, p.height, p.type, p.samples, p.planar,
                                                  pixels, static_cast<uint32_t>(i));
        }
        const uintmax_t before = fs::file_size(path);
        struct stat old_stat {};
        ASSERT_EQ(::stat(path.c_str(), &old_stat), 0);
        Status st = samples::WriteTiffFile(path, spec);
        ASSERT_TRUE(st.ok()) << st.message() << Replay();
        // A kernel with coarse timestamps (one tick, ~4 ms) can give a rewrite within the tick
        // of the index's stat the same mtime and ctime; the index then takes the file as
        // unchanged (docs/refusals.md). That is not what this test is about: move the mtime on.
        struct stat new_stat {};
        ASSERT_EQ(::stat(path.c_str(), &new_stat), 0);
        if (new_stat.st_mtim.tv_sec == old_stat.st_mtim.tv_sec &&
            new_stat.st_mtim.tv_nsec == old_stat.st_mtim.tv_nsec) {
          timespec times[2] = {new_stat.st_atim, new_stat.st_mtim};
          times[1].tv_sec += 1;
          ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
        }
        specs_[rel] = spec;
        Note("pixels " + std::to_string(pixels) + ", size " + std::to_string(before) + " -> " +
             std::to_string(fs::file_size(path)));
        break;
      }
      case 1:
        Begin("modify " + rel + " in place, new layout");
        WriteFile(rel);
        break;
      default: {
        Begin("replace " + rel + " by a new file renamed over it");
        const std::string tmp = rel + ".new";
        WriteFile(tmp);
        files_.erase(tmp);
        specs_[rel] = specs_.at(tmp);
        specs_.erase(tmp);
        fs::rename(root_ / tmp, path);
      }
    }
    if (!Failed()) IndexChanged({rel});
  }

  // Deletes one or two files and removes them from the index: `rm` of their tree paths, or
  // re-indexing the archive folder, which drops files gone from it. A folder left empty is
  // removed from disk or kept, at random.
  void DeleteFiles() {
    if (files_.size() <= 2) return IndexUnchanged();
    const size_t n = std::min<size_t>(1 + rng_.Below(2), files_.size() - 2);
    std::vector<std::string> gone;
    for (size_t i = 0; i < n; ++i) {
      gone.push_back(rng_.Pick(FileList()));
      files_.erase(gone.back());
      specs_.erase(gone.back());
      fs::remove(root_ / gone.back());
    }
    std::string what = "delete";
    for (const std::string& rel : gone) what += " " + rel;
    Begin(what);
    if (rng_.OneIn(2)) {
      for (const std::string& rel : gone) {
        const fs::path parent = (root_ / rel).parent_path();
        if (parent != root_ && fs::is_empty(parent) && rng_.OneIn(2)) {
          fs::remove(parent);
          Note("removed the empty folder " + Show(parent.string()));
        }
      }
    }
    if (rng_.OneIn(4)) {
      Index(state_, {root_.string()}, /*new_index=*/false, /*prune=*/true);
      return;
    }
    std::vector<std::string> args = {"rm", state_.string()};
    args.insert(args.end(), gone.begin(), gone.end());
    Command(args);
  }

  // Deletes a folder (its subfolders with it) and `rm`s it.
  void DeleteFolder() {
    std::vector<std::string> candidates;
    for (const std::string& f : Folders()) {
      if (files_.size() - FilesUnder(f) >= 2) candidates.push_back(f);
    }
    if (candidates.empty()) return IndexUnchanged();
    const std::string folder = rng_.Pick(candidates);
    Begin("delete the folder " + folder + " (" + std::to_string(FilesUnder(folder)) + " files)");
    fs::remove_all(root_ / folder);
    for (auto it = files_.begin(); it != files_.end();) {
      if (it->rfind(folder + "/", 0) == 0) {
        specs_.erase(*it);
        it = files_.erase(it);
      } else {
        ++it;
      }
    }
    Command({"rm", state_.string(), folder});
  }

  // Moves the whole archive folder and `relocate`s the index (OLD and NEW as paths or URIs).
  void MoveArchive() {
    const fs::path to = base_ / ("archive" + std::to_string(++moves_));
    Begin("move the archive " + Show(root_.string()) + " -> " + Show(to.string()));
    fs::rename(root_, to);
    std::string old_arg = root_.string(), new_arg = to.string();
    if (rng_.OneIn(3)) old_arg = FileUri(root_);
    if (rng_.OneIn(3)) new_arg = FileUri(to) + "/";
    root_ = to;
    Command({"relocate", state_.string(), old_arg, new_arg});
  }

  // Moves a file or a folder inside the archive: the index follows by `rm` of the old tree path
  // and indexing the new location (relocate keeps tree paths, so it is not the tool here).
  void MoveWithinArchive() {
    std::vector<std::string> folders = Folders();
    const bool folder = !folders.empty() && rng_.OneIn(2);
    const std::string from = folder ? rng_.Pick(folders) : rng_.Pick(FileList());
    const std::string to = (folder ? "moved" : "moved_f") + std::to_string(next_file_++) +
                           (folder ? "" : ".tif");
    Begin("move " + from + " -> " + to);
    fs::rename(root_ / from, root_ / to);
    std::set<std::string> moved;
    for (auto it = files_.begin(); it != files_.end();) {
      const std::string rel = *it;
      const bool under = rel == from || rel.rfind(from + "/", 0) == 0;
      if (!under) {
        ++it;
        continue;
      }
      const std::string now = to + rel.substr(from.size());
      specs_[now] = specs_.at(rel);
      specs_.erase(rel);
      it = files_.erase(it);
      moved.insert(now);
    }
    files_.insert(moved.begin(), moved.end());
    Command({"rm", state_.string(), from});
    if (Failed()) return;
    Index(state_, {(root_ / to).string()});
  }

  // Indexes `files` into a new shard index with the archive as its root (as a list or as paths).
  fs::path Shard(const std::vector<std::string>& files) {
    const fs::path db = NextDb("shard");
    std::vector<std::string> inputs;
    for (const std::string& rel : files) inputs.push_back((root_ / rel).string());
    Index(db, inputs, /*new_index=*/true);
    return db;
  }
  // Merges `inputs` in a random order into a new index, which becomes the state.
  void MergeIntoState(std::vector<fs::path> inputs) {
    for (size_t i = inputs.size(); i > 1; --i) std::swap(inputs[i - 1], inputs[rng_.Below(i)]);
    const fs::path out = NextDb("state");
    std::vector<std::string> args = {"merge", "-o", out.string()};
    for (const fs::path& in : inputs) args.push_back(in.string());
    Command(args);
    state_ = out;
  }

  // New files indexed into two shards of disjoint files, merged with the state index.
  void MergeNewFiles() {
    Begin("add files in two shards, merged with the index");
    const std::vector<std::string> added = NewFiles(2 + rng_.Below(4));
    if (Failed()) return;
    std::vector<std::string> one, two;
    for (size_t i = 0; i < added.size(); ++i) (i == 0 || (i > 1 && rng_.OneIn(2)) ? one : two).push_back(added[i]);
    const fs::path a = Shard(one);
    if (Failed()) return;
    const fs::path b = Shard(two);
    if (Failed()) return;
    MergeIntoState({state_, a, b});
  }

  // The whole archive dealt at random into two or three shard indexes of disjoint files, merged:
  // the merged index replaces the state.
  void RebuildFromShards() {
    const size_t n = std::min<size_t>(2 + rng_.Below(2), files_.size());
    Begin("index the archive again as " + std::to_string(n) + " shards, merged");
    std::vector<std::vector<std::string>> shards(n);
    std::vector<std::string> all = FileList();
    for (size_t i = 0; i < all.size(); ++i) {
      // Each shard gets one file first, so none is empty.
      shards[i < n ? i : rng_.Below(n)].push_back(all[i]);
    }
    std::vector<fs::path> dbs;
    for (const auto& files : shards) {
      dbs.push_back(Shard(files));
      if (Failed()) return;
    }
    MergeIntoState(dbs);
  }

  // Nothing changed on disk: index the archive (or a folder) again, sometimes with --force.
  void IndexUnchanged() {
    Begin("index again, nothing changed");
    std::vector<std::string> folders = Folders();
    const std::string input =
        folders.empty() || rng_.OneIn(2) ? root_.string() : (root_ / rng_.Pick(folders)).string();
    if (rng_.OneIn(3)) {
      Command({"index", "--in-process", "-j", "1", "--force", "-o", state_.string(), input});
    } else {
      Index(state_, {input});
    }
  }

  // The state index against a fresh index of the archive as it is on disk.
  void CompareWithFreshIndex() {
    const fs::path fresh = NextDb("fresh");
    CommandRun r = RunCommand({"index", "--in-process", "-j", "1", "-o", fresh.string(), "--root",
                               root_.string(), root_.string()});
    ASSERT_EQ(r.exit_code, 0) << "a fresh index failed:\n" << r.err << Replay();
    // As the CLI opens views (its decoders transcode what compat cannot pass through).
    ViewFlags v2, v3;
    v2.codecs = "passthrough";
    v3.zarr_format = 3;
    for (const ViewFlags& flags : {v2, v3}) {
      const std::string view = flags.zarr_format == 2 ? "zarr v2 pass-through" : "zarr v3 compat";
      auto options = flags.ToOptions();
      ASSERT_TRUE(options.ok()) << options.status().message();
      const KeyBytes want = testing::ReadAllKeys(fresh, *options);
      const KeyBytes got = testing::ReadAllKeys(state_, *options);
      ASSERT_EQ(testing::FailedKeys(want), std::vector<std::string>{}) << view << "\n" << Replay();
      ASSERT_GT(want.size(), 4u) << view << "\n" << Replay();
      const std::string diff = KeyDifferences(want, got);
      ASSERT_TRUE(diff.empty()) << view << ": the index (" << got.size()
                                << " keys) differs from a fresh index (" << want.size()
                                << " keys):\n" << diff << Replay();
    }
    const nlohmann::json want = Info(fresh), got = Info(state_);
    ASSERT_EQ(got, want) << "info --json differs from a fresh index's:\nindex: " << got.dump(1)
                         << "\nfresh: " << want.dump(1) << "\n" << Replay();
  }

  const uint64_t seed_;
  Rng rng_;
  const fs::path base_;
  fs::path root_;   // the archive folder as it is now
  fs::path state_;  // the index kept in step with it
  std::set<std::string> files_;
  std::map<std::string, samples::TiffFileSpec> specs_;
  std::vector<std::string> log_;
  int next_file_ = 0, moves_ = 0, dbs_ = 1, lists_ = 0;
};

class IndexProperty : public ::testing::TestWithParam<int> {};

TEST_P(IndexProperty, RandomOperationsLeaveTheIndexOfAFreshRun) {
  const uint64_t seed = static_cast<uint64_t>(GetParam());
  testing::TempDir dir("property_seed" + std::to_string(seed));
  const char* each = std::getenv("REFZARR_PROPERTY_CHECK_EACH");
  Sequence sequence(seed, dir.path());
  // 8-15 operations, the first creating the archive.
  sequence.Run(7 + static_cast<int>(Rng(seed).Below(8)), each && *each && *each != '0');
}

INSTANTIATE_TEST_SUITE_P(Seeds, IndexProperty, ::testing::Range(1, kSeeds + 1),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return "seed" + std::to_string(info.param);
                         });

}  // namespace
}  // namespace refzarr
