// The commands through their CLI11 definitions, as the binary runs them, with captured streams.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "cli/commands.h"
#include "tests/cli/run_command.h"
#include "store/zarr_view.h"

namespace refzarr {
namespace {

namespace fs = std::filesystem;

using testing::CommandRun;
using testing::RunCommand;

class CliTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(fs::temp_directory_path() / ("refzarr_cli_" + std::to_string(getpid())));
    fs::remove_all(*dir_);
    ASSERT_EQ(std::system((std::string(REFZARR_SAMPLES_BIN) + " " + (*dir_ / "s").string() +
                           " -q").c_str()), 0);
    index_ = new std::string((*dir_ / "s.refs.db").string());
    index_run_ = new CommandRun(RunCommand({"index", "-o", *index_, (*dir_ / "s").string()}));
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
    delete index_;
    delete index_run_;
  }
  static fs::path* dir_;
  static std::string* index_;
  static CommandRun* index_run_;
};
fs::path* CliTest::dir_ = nullptr;
std::string* CliTest::index_ = nullptr;
CommandRun* CliTest::index_run_ = nullptr;

TEST_F(CliTest, IndexExitsOneAndNamesEachFailedFile) {
  EXPECT_EQ(index_run_->exit_code, 1);
  EXPECT_NE(index_run_->err.find("bad/truncated_half.tif"), std::string::npos) << index_run_->err;
  EXPECT_NE(index_run_->out.find("2 failed"), std::string::npos) << index_run_->out;
}

TEST_F(CliTest, IndexOfGoodFilesExitsZero) {
  CommandRun r = RunCommand({"index", "-o", (*dir_ / "good.refs.db").string(), (*dir_ / "s" / "tiled").string()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST_F(CliTest, LsListsTheTreeAndCatPrintsMetadata) {
  CommandRun ls = RunCommand({"ls", *index_, "tiled/u32_none.tif"});
  EXPECT_EQ(ls.exit_code, 0) << ls.err;
  EXPECT_NE(ls.out.find("tiled/u32_none.tif/.zmetadata"), std::string::npos) << ls.out;
  EXPECT_NE(ls.out.find("tiled/u32_none.tif/0/"), std::string::npos) << ls.out;
  CommandRun cat = RunCommand({"cat", *index_, "tiled/u32_none.tif/0/0/.zarray"});
  ASSERT_EQ(cat.exit_code, 0) << cat.err;
  auto zarray = nlohmann::json::parse(cat.out);
  EXPECT_EQ(zarray["dtype"], "<u4");
  CommandRun v3 = RunCommand({"cat", *index_, "tiled/u32_none.tif/0/0/zarr.json", "--zarr-format", "3"});
  ASSERT_EQ(v3.exit_code, 0) << v3.err;
  EXPECT_EQ(nlohmann::json::parse(v3.out)["data_type"], "uint32");
}

// Interleaved RGB: passthrough v3 keeps the stored tiles and says so with a transpose codec;
// compat (v2 and v3) serves it planar, since several v3 clients misread or refuse transpose.
TEST_F(CliTest, ZarrV3PassthroughServesInterleavedRgbZeroCopyWithATransposeCodec) {
  const std::string array = "rgb/rgb_u8_chunky_tiled_none.tif/0/0";
  CommandRun meta = RunCommand({"cat", *index_, array + "/zarr.json", "--zarr-format", "3",
                                "--codecs", "passthrough"});
  ASSERT_EQ(meta.exit_code, 0) << meta.err;
  auto j = nlohmann::json::parse(meta.out);
  ASSERT_GE(j["codecs"].size(), 2u);
  EXPECT_EQ(j["codecs"][0]["name"], "transpose");
  EXPECT_EQ(j["codecs"][0]["configuration"]["order"], nlohmann::json({0, 2, 3, 4, 1}));
  EXPECT_EQ(j["codecs"][1]["name"], "bytes");
  ViewOptions v3;
  v3.zarr_format = 3;
  v3.codecs = CodecPolicy::kPassthrough;
  auto view = OpenZarrView(*index_, v3);
  ASSERT_TRUE(view.ok());
  auto chunk = (*view)->Get(array + "/c/0/0/0/0/0");
  ASSERT_TRUE(chunk.ok() && *chunk) << chunk.status().message();
  EXPECT_TRUE((*chunk)->slice.has_value()) << "served straight from the TIFF, not re-encoded";
  // Compat: planar blosc in both formats.
  CommandRun v2 = RunCommand({"cat", *index_, array + "/.zarray"});
  ASSERT_EQ(v2.exit_code, 0);
  EXPECT_EQ(nlohmann::json::parse(v2.out)["compressor"]["id"], "blosc");
  CommandRun compat3 = RunCommand({"cat", *index_, array + "/zarr.json", "--zarr-format", "3"});
  ASSERT_EQ(compat3.exit_code, 0) << compat3.err;
  auto codecs = nlohmann::json::parse(compat3.out)["codecs"];
  ASSERT_EQ(codecs.size(), 2u) << codecs;
  EXPECT_EQ(codecs[0]["name"], "bytes");
  EXPECT_EQ(codecs[1]["name"], "blosc");
}

TEST_F(CliTest, CatOfAMissingKeyFails) {
  CommandRun r = RunCommand({"cat", *index_, "no/such/key"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("no key 'no/such/key'"), std::string::npos) << r.err;
}

TEST_F(CliTest, RefsPrintsOneLinePerStoredChunk) {
  CommandRun r = RunCommand({"refs", *index_, "tiled/u16_sparse_tiles_deflate.tif/0/0"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  size_t lines = std::count(r.out.begin(), r.out.end(), '\n');
  EXPECT_GT(lines, 0u);
  EXPECT_NE(r.out.find("u16_sparse_tiles_deflate.tif\t"), std::string::npos) << r.out;
}

TEST_F(CliTest, InfoReportsCountsAsJson) {
  CommandRun r = RunCommand({"info", *index_, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["failed_sources"], 2);
  EXPECT_GT(j["chunk_references"].get<uint64_t>(), 500u);
  EXPECT_EQ(j["stale_sources"], 0);
}

// A source rewritten in place with its size and mtime put back is only caught by --verify; a
// touched one by both.
TEST_F(CliTest, InfoFindsSourcesChangedEvenInPlaceWithTheirMtimeRestored) {
  fs::path folder = *dir_ / "changing";
  fs::create_directories(folder);
  fs::copy_file(*dir_ / "s" / "tiled" / "u32_none.tif", folder / "a.tif");
  fs::copy_file(*dir_ / "s" / "tiled" / "u32_none.tif", folder / "b.tif");
  std::string index = (*dir_ / "changing.refs.db").string();
  ASSERT_EQ(RunCommand({"index", "-o", index, folder.string()}).exit_code, 0);
  auto stale = [&](bool verify) {
    std::vector<std::string> args = {"info", index, "--json"};
    if (verify) args.push_back("--verify");
    CommandRun r = RunCommand(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    auto j = nlohmann::json::parse(r.out);
    std::map<std::string, std::string> out;
    for (const auto& f : j["files"]) {
      if (f["status"] == "stale") out[fs::path(f["path"].get<std::string>()).filename()] = f["detail"];
    }
    EXPECT_EQ(j["stale_sources"].get<size_t>(), out.size());
    return out;
  };
  EXPECT_TRUE(stale(false).empty());
  EXPECT_TRUE(stale(true).empty());

  struct stat before {};
  ASSERT_EQ(::stat((folder / "a.tif").c_str(), &before), 0);
  {
    std::fstream f(folder / "a.tif", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f.write("\x55\xAA\x55\xAA", 4);
  }
  const timespec times[2] = {before.st_atim, before.st_mtim};
  ASSERT_EQ(::utimensat(AT_FDCWD, (folder / "a.tif").c_str(), times, 0), 0);
  fs::last_write_time(folder / "b.tif", fs::last_write_time(folder / "b.tif") + std::chrono::seconds(5));

  // a.tif was rewritten in place with its mtime restored (what cp -p and rsync --inplace do): the
  // stat alone sees it, by the change time in its generation.
  auto quick = stale(false);
  EXPECT_EQ(quick.size(), 2u);
  EXPECT_EQ(quick["a.tif"], "modified or replaced");
  EXPECT_EQ(quick["b.tif"], "modified or replaced");
  EXPECT_EQ(stale(true), quick);
}

// Front ends trust a listed size (the FUSE mount hands it to the kernel, which never reads past
// it), so over every key of the samples, in both formats and both codec policies, a listed size
// must be the size of the value Get serves. Transcoded chunks must not claim their stored size.
TEST_F(CliTest, EveryListedSizeIsTheServedSize) {
  for (int format : {2, 3}) {
    for (const char* codecs : {"compat", "passthrough"}) {
      ViewFlags flags;
      flags.zarr_format = format;
      flags.codecs = codecs;
      auto options = flags.ToOptions();
      ASSERT_TRUE(options.ok());
      auto view = OpenZarrView(*index_, *options);
      ASSERT_TRUE(view.ok()) << view.status().message();
      size_t sized = 0, unsized_chunks = 0;
      std::vector<std::string> pending = {""};
      while (!pending.empty()) {
        std::string prefix = pending.back();
        pending.pop_back();
        auto list = (*view)->List(prefix);
        ASSERT_TRUE(list.ok() && list->has_value()) << prefix;
        for (const DirEntry& e : **list) {
          std::string key = prefix.empty() ? e.name : prefix + "/" + e.name;
          if (e.is_directory) {
            pending.push_back(key);
            continue;
          }
          if (!e.size) {
            if (e.name.front() != '.' && e.name != "zarr.json") ++unsized_chunks;
            continue;
          }
          ++sized;
          auto value = (*view)->Get(key);
          ASSERT_TRUE(value.ok()) << key << ": " << value.status().message();
          ASSERT_TRUE(value->has_value()) << key;
          EXPECT_EQ((*value)->size(), *e.size) << key << " (v" << format << ", " << codecs << ")";
        }
      }
      // Compat v3 re-frames deflate chunks as gzip: their sizes are known once served.
      const bool v3_compat = format == 3 && std::string(codecs) == "compat";
      EXPECT_GT(sized, v3_compat ? 100u : 400u) << "v" << format << " " << codecs;
      // compat transcodes some arrays, whose chunk sizes are unknown until served.
      if (std::string(codecs) == "compat") EXPECT_GT(unsized_chunks, 0u);
      if (std::string(codecs) == "passthrough") EXPECT_EQ(unsized_chunks, 0u);
    }
  }
}

TEST_F(CliTest, ExportWritesKerchunkVersion1) {
  std::string out = (*dir_ / "refs.json").string();
  CommandRun r = RunCommand({"export", *index_, "-o", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::ifstream in(out);
  auto j = nlohmann::json::parse(in);
  EXPECT_EQ(j["version"], 1);
  EXPECT_TRUE(j["refs"].contains("tiled/u32_none.tif/0/0/.zarray"));
  auto ref = j["refs"]["tiled/u32_none.tif/0/0/0/0/0/0/0"];
  ASSERT_TRUE(ref.is_array());
  EXPECT_EQ(ref.size(), 3u);
  EXPECT_TRUE(ref[0].get<std::string>().ends_with("tiled/u32_none.tif"));
}

TEST_F(CliTest, UsageErrorsExitTwo) {
  EXPECT_EQ(RunCommand({"ls"}).exit_code, 2);
  EXPECT_EQ(RunCommand({"cat", *index_, "x", "--zarr-format", "4"}).exit_code, 2);
}

TEST_F(CliTest, ApiExampleReadsKeysOfAnIndex) {
  std::string out = (*dir_ / "example.txt").string();
  std::string cmd = std::string(REFZARR_READ_KEY_BIN) + " " + *index_ +
                    " tiled/u32_none.tif/0/0/.zarray tiled/u32_none.tif/0/0/0/0/0/0/0 nope > " + out;
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  std::ifstream in(out);
  std::string text((std::istreambuf_iterator<char>(in)), {});
  EXPECT_NE(text.find("tiled/u32_none.tif/0/0/0/0/0/0/0: "), std::string::npos) << text;
  EXPECT_NE(text.find("nope: not found"), std::string::npos) << text;
}

// A file no scanner recognises must not vanish: named on the command line, or named like an image
// in a folder, it fails with what it starts with; anything else found in a folder is skipped.
TEST_F(CliTest, FilesNoScannerKnowsFailWhenNamedOrNamedLikeImages) {
  const fs::path in = *dir_ / "unknown";
  fs::create_directories(in);
  std::ofstream(in / "notes.tif") << "Lorem ipsum dolor sit amet";
  std::ofstream(in / "fake.h5", std::ios::binary) << std::string("\x01\x02\x03\x04\xff\xfe", 6);
  std::ofstream(in / "notes.txt") << "not an image";

  CommandRun named = RunCommand({"index", "-o", (*dir_ / "u1.refs.db").string(),
                                 (in / "notes.txt").string()});
  EXPECT_EQ(named.exit_code, 1);
  EXPECT_NE(named.err.find("notes.txt: not a TIFF or HDF5 file (starts with \"not an image\")"),
            std::string::npos) << named.err;
  EXPECT_NE(named.out.find("1 failed"), std::string::npos) << named.out;

  CommandRun walked = RunCommand({"index", "--json", "-o", (*dir_ / "u2.refs.db").string(),
                                  in.string()});
  EXPECT_EQ(walked.exit_code, 1);
  EXPECT_NE(walked.err.find("notes.tif: not a TIFF or HDF5 file (starts with \"Lorem ipsum dolo...\")"),
            std::string::npos) << walked.err;
  EXPECT_NE(walked.err.find("fake.h5: not a TIFF or HDF5 file (starts with 01 02 03 04 ff fe)"),
            std::string::npos) << walked.err;
  EXPECT_EQ(walked.err.find("notes.txt"), std::string::npos) << walked.err;
  auto report = nlohmann::json::parse(walked.out);
  EXPECT_EQ(report["failed"], 2);
  EXPECT_EQ(report["skipped"], 1);
  std::map<std::string, std::string> outcome;
  for (const auto& f : report["files"]) outcome[f["group"]] = f["outcome"];
  EXPECT_EQ(outcome["notes.txt"], "skipped");
  EXPECT_EQ(outcome["notes.tif"], "failed");
  EXPECT_EQ(outcome["fake.h5"], "failed");
}

// Arrays that cannot be served are refused at index time, named, counted and listed by info.
TEST_F(CliTest, ArraysThatCannotBeServedAreRefusedAndListed) {
  const fs::path udf = fs::path(REFZARR_SHARED_DIR) / "realdata" / "hdf5" / "vchoi-hdfgroup+hdf5" /
                       "tools" / "test" / "h5dump" / "testfiles" / "tudfilter.h5";
  const std::string index = (*dir_ / "refused.refs.db").string();
  CommandRun run = RunCommand({"index", "--json", "-o", index, udf.string()});
  ASSERT_NE(run.exit_code, 2) << run.err;
  auto report = nlohmann::json::parse(run.out);
  EXPECT_EQ(report["refused_arrays"], 1) << run.out;
  EXPECT_NE(run.err.find("array dynlibud refused: "), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("filter 300"), std::string::npos) << run.err;
  CommandRun info = RunCommand({"info", index});
  EXPECT_NE(info.out.find("(1 arrays refused)"), std::string::npos) << info.out;
  EXPECT_NE(info.out.find("refused: dynlibud: "), std::string::npos) << info.out;
  CommandRun info_json = RunCommand({"info", "--json", index});
  auto j = nlohmann::json::parse(info_json.out);
  ASSERT_EQ(j["refused"].size(), 1u);
  EXPECT_EQ(j["refused"][0]["path"], "dynlibud");
  CommandRun ls = RunCommand({"ls", "-r", index});
  EXPECT_EQ(ls.out.find("dynlibud"), std::string::npos) << "a refused array is not listed\n" << ls.out;
}

// Runs `body` in a child process limited to `extra_bytes` of address space beyond this process's
// and to `seconds`: success when it returns true in time. A listing that grows with its grid
// instead of its stored chunks dies of std::bad_alloc here instead of eating the machine.
::testing::AssertionResult RunBounded(const std::function<bool()>& body, double seconds,
                                      uint64_t extra_bytes) {
  uint64_t pages = 0;
  std::ifstream("/proc/self/statm") >> pages;
  const rlim_t limit = pages * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE)) + extra_bytes;
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    rlimit r{limit, limit};
    ::setrlimit(RLIMIT_AS, &r);
    bool ok = false;
    try {
      ok = body();
    } catch (...) {
    }
    std::fflush(nullptr);
    ::_exit(ok ? 0 : 1);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  int status = 0;
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return ::testing::AssertionFailure() << "took longer than " << seconds << " s";
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "failed within " << (extra_bytes >> 20) << " MiB (status " << status << ")";
}

// tlayouto.h5 has a chunk grid of 2^33 x 257 positions and nothing stored; tbigdims.h5 4 194 305
// positions and 2 chunks stored (h5py: get_chunk_info gives offsets 4294966272 and 4294967296).
// Listing them must cost what is stored, not the grid: `ls -r` and the API, in little time and
// memory.
TEST_F(CliTest, HugeSparseHdf5GridsAreListedInBoundedTimeAndMemory) {
  const fs::path realdata = fs::path(REFZARR_SHARED_DIR) / "realdata/hdf5/vchoi-hdfgroup+hdf5";
  const fs::path tlayouto = realdata / "test/testfiles/tlayouto.h5";
  const fs::path tbigdims = realdata / "tools/test/h5dump/testfiles/tbigdims.h5";
  if (!fs::exists(tlayouto) || !fs::exists(tbigdims)) GTEST_SKIP() << "no " << realdata;
  struct Case {
    fs::path file;
    std::string listing;  // `ls -r`, v2
  };
  const std::vector<Case> cases = {
      {tlayouto, ".zattrs\n.zgroup\n.zmetadata\nDataset/\nDataset/.zarray\nDataset/.zattrs\n"},
      {tbigdims,
       ".zattrs\n.zgroup\n.zmetadata\ndset4gb/\ndset4gb/.zarray\ndset4gb/.zattrs\n"
       "dset4gb/4194303\ndset4gb/4194304\n"}};
  for (const Case& c : cases) {
    const std::string index = (*dir_ / (c.file.stem().string() + ".refs.db")).string();
    CommandRun indexed = RunCommand({"index", "-o", index, c.file.string()});
    ASSERT_EQ(indexed.exit_code, 0) << indexed.err;
    EXPECT_TRUE(RunBounded(
        [&] {
          CommandRun ls = RunCommand({"ls", "-r", index});
          if (ls.exit_code != 0 || ls.out != c.listing) {
            std::fprintf(stderr, "ls -r %s: exit %d\n%s%s", index.c_str(), ls.exit_code,
                         ls.out.substr(0, 2000).c_str(), ls.err.c_str());
            return false;
          }
          return true;
        },
        20, 256ull << 20))
        << "ls -r " << c.file;
    EXPECT_TRUE(RunBounded(
        [&] {
          ViewOptions v3;
          v3.zarr_format = 3;
          auto view = OpenZarrView(index, v3);
          if (!view.ok()) return false;
          const std::string array = c.file == tlayouto ? "Dataset" : "dset4gb";
          auto top = (*view)->List(array);
          auto chunks = (*view)->List(array + "/c");
          const size_t stored = c.file == tlayouto ? 0 : 2;
          return top.ok() && *top && (*top)->size() == (stored ? 2u : 1u) && chunks.ok() &&
                 (stored ? *chunks && (*chunks)->size() == stored : !*chunks);
        },
        20, 256ull << 20))
        << "ZarrView::List, v3, of " << c.file;
  }
}

}  // namespace
}  // namespace refzarr
