// The `index` command's progress displays (cli/index_progress.h), and Ctrl-C: a real SIGINT (or
// SIGTERM) to the binary stops it at a file boundary with exit code 128 + the signal and says how
// to resume; re-running the same command completes the index.
#include "cli/index_progress.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "tests/cli/run_command.h"
#include "tests/cli/same_index.h"

namespace refzarr {
namespace {

namespace fs = std::filesystem;

IndexProgress At(double seconds, uint64_t done, uint64_t total = 0) {
  IndexProgress p;
  p.elapsed_seconds = seconds;
  p.files_done = done;
  p.indexed = done;
  p.bytes_done = done * 1'500'000;
  p.files_total = total;
  p.total_known = total > 0;
  return p;
}

TEST(ProgressLine, ShowsFilesTotalBytesRateElapsedAndEta) {
  EXPECT_EQ(ProgressLine(At(4, 1200, 4800)),
            "1,200/4,800 files (25%), 1.80 GB, 300 files/s, 450 MB/s, 0:04 elapsed, ETA 0:12");
  // No total: no percentage and no ETA.
  EXPECT_EQ(ProgressLine(At(3725, 10)), "10 files, 15.0 MB, 0 files/s, 4.03 kB/s, 1:02:05 elapsed");
}

TEST(TerminalProgress, RedrawsOneLineAtMostTenTimesASecond) {
  std::ostringstream out;
  auto sink = MakeTerminalProgress(out);
  for (int i = 1; i <= 3000; ++i) sink->Update(At(i * 0.001, i, 3000));  // 3 s, 1,000 files/s
  sink->Done(At(3.0, 3000, 3000));
  const std::string s = out.str();
  const auto redraws = std::count(s.begin(), s.end(), '\r');
  EXPECT_GE(redraws, 30);
  EXPECT_LE(redraws, 32);
  EXPECT_EQ(std::count(s.begin(), s.end(), '\n'), 1) << "one line, ended by Done";
  EXPECT_TRUE(s.ends_with("3,000/3,000 files (100%), 4.50 GB, 1,000 files/s, 1.50 GB/s, 0:03 "
                          "elapsed, ETA 0:00\x1b[K\n"))
      << s.substr(s.size() - 120);
}

TEST(JsonProgress, WritesOneObjectASecondAndALastOne) {
  std::ostringstream out;
  auto sink = MakeJsonProgress(out);
  for (int i = 1; i <= 3500; ++i) sink->Update(At(i * 0.001, i));
  sink->Done(At(3.5, 3500, 3500));
  std::istringstream lines(out.str());
  std::vector<nlohmann::json> objects;
  for (std::string line; std::getline(lines, line);) objects.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(objects.size(), 5u) << out.str();  // at 0.001, 1.001, 2.001, 3.001 s, and Done
  EXPECT_TRUE(objects[1]["files_total"].is_null());
  EXPECT_TRUE(objects[1]["eta_s"].is_null());
  EXPECT_GE(objects[1]["files_done"].get<int>(), 1001);  // a second after the first, in run time
  EXPECT_LE(objects[1]["files_done"].get<int>(), 1002);
  EXPECT_EQ(objects[1]["done"], false);
  EXPECT_EQ(objects.back()["done"], true);
  EXPECT_EQ(objects.back()["files_total"], 3500);
  EXPECT_EQ(objects.back()["files_per_s"], 1000.0);
  EXPECT_EQ(objects.back()["eta_s"], 0.0);
}

// An archive of `n` hard links to one small TIFF (one sample of the generator), in folders.
fs::path LinkArchive(const fs::path& dir, int n) {
  const fs::path samples = dir / "samples";
  std::string cmd = std::string(REFZARR_SAMPLES_BIN) + " " + samples.string() + " -q >/dev/null";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  fs::path one;
  for (const auto& e : fs::recursive_directory_iterator(samples)) {
    if (e.path().extension() == ".tif" && e.path().string().find("/bad/") == std::string::npos &&
        (one.empty() || e.path() < one)) {
      one = e.path();
    }
  }
  const fs::path archive = dir / "archive";
  for (int i = 0; i < n; ++i) {
    const fs::path sub = archive / ("d" + std::to_string(i / 250));
    fs::create_directories(sub);
    fs::create_hard_link(one, sub / ("f" + std::to_string(i) + ".tif"));
  }
  return archive;
}

// Sends `sig` to a running `index` once it has committed files; checks the clean stop and that
// the same command then completes the index.
void StopAndGoOn(int sig, const std::string& name) {
  const fs::path dir = fs::temp_directory_path() /
                       ("refzarr_interrupt_" + name + "_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const fs::path archive = LinkArchive(dir, 600);
  const std::string index = (dir / "a.refs.db").string();
  // The binary, its progress as JSON on a pipe; SIGINT once it has committed files.
  int err[2];
  ASSERT_EQ(::pipe(err), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::dup2(err[1], 2);
    ::close(err[0]);
    int devnull = ::open("/dev/null", O_WRONLY);
    ::dup2(devnull, 1);
    ::execl(REFZARR_BIN, REFZARR_BIN, "index", "-j", "1", "--progress=json", "-o", index.c_str(),
            archive.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(err[1]);
  FILE* from = ::fdopen(err[0], "r");
  std::string all;
  char line[4096];
  bool signalled = false;
  while (std::fgets(line, sizeof line, from)) {
    all += line;
    if (!signalled && std::string(line).starts_with("{")) {
      ASSERT_EQ(::kill(pid, sig), 0);
      signalled = true;
    }
  }
  std::fclose(from);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(signalled) << all;
  ASSERT_TRUE(WIFEXITED(status)) << "killed by the signal instead of stopping: " << all;
  EXPECT_EQ(WEXITSTATUS(status), 128 + sig) << all;
  EXPECT_NE(all.find("stopped by " + name + ": "), std::string::npos) << all;
  EXPECT_NE(all.find("files done are kept in " + index + "; re-run the same command"),
            std::string::npos)
      << all;
  // The last progress line is Done's: what was committed.
  const size_t last = all.rfind("{\"bytes\"");
  ASSERT_NE(last, std::string::npos) << all;
  const nlohmann::json done = nlohmann::json::parse(all.substr(last, all.find('\n', last) - last));
  EXPECT_EQ(done["done"], true);
  const uint64_t kept = done["indexed"];
  EXPECT_GT(kept, 0u);
  EXPECT_LT(kept, 600u) << "the run ended before the signal: the test proves nothing";
  EXPECT_EQ(done["failed"], 0) << "a scan in flight failed: " << all;

  testing::CommandRun again = testing::RunCommand({"index", "--json", "-o", index, archive.string()});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  const nlohmann::json report = nlohmann::json::parse(again.out);
  EXPECT_EQ(report["unchanged"], kept);
  EXPECT_EQ(report["indexed"].get<uint64_t>() + kept, 600u);
  testing::CommandRun whole = testing::RunCommand({"index", "-o", (dir / "whole.refs.db").string(),
                                                   archive.string()});
  ASSERT_EQ(whole.exit_code, 0) << whole.err;
  testing::ExpectSameIndex(dir / "whole.refs.db", index);
  fs::remove_all(dir);
}

TEST(IndexInterrupt, CtrlCStopsAtAFileBoundaryAndTheSameCommandGoesOn) { StopAndGoOn(SIGINT, "SIGINT"); }

// What `kill`, `scancel` and a SLURM time limit send first.
TEST(IndexInterrupt, SigtermStopsAtAFileBoundaryToo) { StopAndGoOn(SIGTERM, "SIGTERM"); }

}  // namespace
}  // namespace refzarr
