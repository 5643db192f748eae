#include "tests/formats/hdf5/hdf5_test_util.h"

#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <random>

#include <gtest/gtest.h>

#include "formats/hdf5/hdf5_scanner.h"

namespace refzarr::testing_hdf5 {

TempDir::TempDir() {
  std::random_device rd;
  path_ = std::filesystem::temp_directory_path() /
          ("refzarr-hdf5-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
  std::filesystem::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::filesystem::path RealDataHdf5Dir() {
  const char* dir = std::getenv("REFZARR_SHARED_DIR");
  if (!dir) return {};
  return std::filesystem::path(dir) / "realdata" / "hdf5";
}

std::vector<std::filesystem::path> RealDataHdf5Files() {
  std::vector<std::filesystem::path> out;
  auto root = RealDataHdf5Dir();
  if (root.empty() || !std::filesystem::exists(root)) return out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(root)) {
    if (!e.is_regular_file()) continue;
    if (H5Fis_hdf5(e.path().c_str()) > 0) out.push_back(e.path());
  }
  H5Eclear2(H5E_DEFAULT);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> DatasetPaths(hid_t file) {
  std::vector<std::string> out;
  H5Ovisit2(
      file, H5_INDEX_NAME, H5_ITER_INC,
      [](hid_t, const char* name, const H5O_info_t* info, void* data) -> herr_t {
        if (info->type == H5O_TYPE_DATASET) {
          static_cast<std::vector<std::string>*>(data)->push_back(std::string("/") + name);
        }
        return 0;
      },
      &out, H5O_INFO_BASIC);
  H5Eclear2(H5E_DEFAULT);
  return out;
}

Result<ScannedFile> ScanHdf5File(const std::filesystem::path& path, uint64_t max_refs_in_memory) {
  ASSIGN_OR_RETURN(auto source, OpenLocalFile(path));
  RecordingSink sink(max_refs_in_memory);
  RETURN_IF_ERROR(MakeHdf5Scanner()->Scan(*source, ScanContext{path}, sink));
  RETURN_IF_ERROR(sink.Finish());
  ScannedFile scan = std::move(sink).result();
  for (const ScannedFile::Array& a : scan.arrays) {
    auto back = ArrayDesc::FromJson(a.desc.ToJson());
    EXPECT_TRUE(back.ok()) << a.path << ": " << back.status().message();
  }
  return scan;
}

RecordedChunks ChunksOf(const ScannedFile::Array& array) {
  RecordedChunks out;
  Status s = VisitChunksInOrder(array, [&](uint64_t index, const ChunkRef* stored, const std::vector<std::byte>* bytes) {
    if (stored) {
      out.stored.emplace(index, *stored);
    } else {
      out.inlined.emplace(index, *bytes);
    }
    return OkStatus();
  });
  EXPECT_TRUE(s.ok()) << array.path << ": " << s.message();
  return out;
}

const ScannedFile::Refusal* FindRefusal(const ScannedFile& scan, std::string_view path) {
  for (const ScannedFile::Refusal& r : scan.refused) {
    if (r.path == path) return &r;
  }
  return nullptr;
}

namespace {

std::string OneLine(std::string s) {
  std::replace(s.begin(), s.end(), '\n', ' ');
  std::replace(s.begin(), s.end(), '\t', ' ');
  return s;
}

}  // namespace

ChildScan ScanInChild(const std::filesystem::path& path, std::chrono::seconds limit, uint64_t max_memory) {
  ChildScan out;
  int fds[2];
  if (pipe(fds) != 0) {
    out.exit = 1;
    out.error = "pipe failed";
    return out;
  }
  const auto start = std::chrono::steady_clock::now();
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
#if !defined(__SANITIZE_ADDRESS__)
    if (max_memory != 0) {
      rlimit rl{max_memory, max_memory};
      setrlimit(RLIMIT_AS, &rl);
    }
#endif
    // Results go to the parent one line each: "E\t<error>", "R\t<array>\t<reason>", "A\t<array>".
    std::string report;
    auto scan = ScanHdf5File(path);
    if (!scan.ok()) {
      report = "E\t" + OneLine(scan.status().message()) + "\n";
    } else {
      for (const auto& r : scan->refused) report += "R\t" + OneLine(r.path) + "\t" + OneLine(r.reason) + "\n";
      for (const auto& a : scan->arrays) report += "A\t" + OneLine(a.path) + "\n";
    }
    for (size_t done = 0; done < report.size();) {
      const ssize_t n = write(fds[1], report.data() + done, report.size() - done);
      if (n <= 0) break;
      done += static_cast<size_t>(n);
    }
    _exit(scan.ok() ? 0 : 1);
  }
  close(fds[1]);
  std::string text;
  const auto deadline = start + limit;
  bool timed_out = false;
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 1000))) <= 0) continue;
    char buf[4096];
    const ssize_t n = read(fds[0], buf, sizeof buf);
    if (n <= 0) break;  // the child closed the pipe: it ended
    text.append(buf, static_cast<size_t>(n));
  }
  close(fds[0]);
  int status = 0;
  if (timed_out) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    out.exit = kChildTimedOut;
  } else {
    waitpid(pid, &status, 0);
    out.exit = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
  }
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    if (line.size() < 2) continue;
    const std::string rest = line.substr(2);
    if (line[0] == 'E') {
      out.error = rest;
    } else if (line[0] == 'A') {
      out.arrays.push_back(rest);
    } else if (line[0] == 'R') {
      const size_t tab = rest.find('\t');
      out.refused.push_back({rest.substr(0, tab), tab == std::string::npos ? "" : rest.substr(tab + 1)});
    }
  }
  return out;
}

}  // namespace refzarr::testing_hdf5
