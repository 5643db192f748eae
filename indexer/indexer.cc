#include "indexer/indexer.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "formats/core/byte_source.h"
#include "formats/core/recording_sink.h"
#include "indexer/registry.h"
#include "store/ref_store.h"

namespace refzarr {
namespace {

namespace fs = std::filesystem;

struct Job {
  fs::path path;
  std::string group;
};

// What a worker hands to the committing thread.
struct Scanned {
  size_t job = 0;
  SourceInfo source;
  std::string scanner;
  std::optional<ScannedFile> scan;  // empty: failed, unchanged or skipped
  std::vector<SourceInfo> companions;
  std::string outcome;
  std::string error;
};

std::string GenericPath(const fs::path& p) { return p.generic_string(); }

Result<std::vector<Job>> CollectJobs(const std::vector<fs::path>& inputs, const fs::path& index) {
  std::vector<Job> jobs;
  std::error_code ec;
  fs::path index_abs = fs::absolute(index, ec).lexically_normal();
  for (const fs::path& input : inputs) {
    fs::path abs = fs::absolute(input, ec).lexically_normal();
    if (!fs::exists(abs, ec)) return NotFoundError(input.string() + ": no such file or folder");
    std::string prefix = inputs.size() > 1 ? GenericPath(abs.filename()) : "";
    if (!fs::is_directory(abs, ec)) {
      jobs.push_back({abs, prefix});
      continue;
    }
    std::vector<Job> found;
    for (fs::recursive_directory_iterator it(abs, fs::directory_options::skip_permission_denied, ec), end;
         it != end; it.increment(ec)) {
      if (ec) break;
      if (!it->is_regular_file(ec)) continue;
      fs::path p = it->path();
      std::string name = p.filename().string();
      if (p == index_abs || name.ends_with(".refs.db-wal") || name.ends_with(".refs.db-shm")) continue;
      std::string rel = GenericPath(p.lexically_relative(abs));
      found.push_back({p, prefix.empty() ? rel : prefix + "/" + rel});
    }
    if (ec) return IoError(input.string() + ": " + ec.message());
    std::sort(found.begin(), found.end(), [](const Job& a, const Job& b) { return a.group < b.group; });
    jobs.insert(jobs.end(), found.begin(), found.end());
  }
  return jobs;
}

constexpr size_t kSniffBytes = 4096;

Scanned ScanOne(const Job& job, size_t n, RefStore& store,
                const std::vector<std::unique_ptr<Scanner>>& scanners, bool force,
                uint64_t refs_in_memory) {
  Scanned r;
  r.job = n;
  auto fail = [&](const Status& st) {
    r.outcome = "failed";
    r.error = st.message();
    r.scan.reset();
    return std::move(r);
  };
  auto probed = ProbeSource(job.path);
  if (!probed.ok()) return fail(probed.status());
  r.source = *probed;
  auto source = OpenLocalFile(job.path);
  if (!source.ok()) return fail(source.status());
  std::vector<std::byte> head(std::min<uint64_t>(kSniffBytes, r.source.size));
  Status st = (*source)->ReadInto({0, head.size()}, head);
  if (!st.ok()) return fail(st);
  const Scanner* scanner = nullptr;
  for (const auto& s : scanners) {
    if (s->Sniff(head)) {
      scanner = s.get();
      break;
    }
  }
  if (!scanner) {
    r.outcome = "skipped";
    return r;
  }
  r.scanner = std::string(scanner->Name());
  if (!force) {
    auto old = store.FindSource(r.source.path);
    if (old.ok() && *old && (*old)->status == "ok" && (*old)->group == job.group &&
        DescribeChange(**old, r.source).empty()) {
      r.outcome = "unchanged";
      return r;
    }
  }
  RecordingSink sink(refs_in_memory);
  ScanContext context{job.path};
  st = scanner->Scan(**source, context, sink);
  if (st.ok()) st = sink.Finish();
  if (!st.ok()) return fail(st);
  r.scan = std::move(sink).result();
  for (const fs::path& c : r.scan->companions) {
    auto info = ProbeSource(c);
    if (!info.ok()) return fail(info.status().WithContext("companion file"));
    info->status = "companion";
    r.companions.push_back(*info);
  }
  r.outcome = "indexed";
  return r;
}

// A bounded queue: workers block when the committing thread falls behind, so memory holds at
// most capacity scanned files whatever the archive size.
class ResultQueue {
 public:
  explicit ResultQueue(size_t capacity) : capacity_(capacity) {}
  void Push(Scanned s) {
    std::unique_lock lock(mu_);
    not_full_.wait(lock, [&] { return items_.size() < capacity_; });
    items_.push_back(std::move(s));
    not_empty_.notify_one();
  }
  Scanned Pop() {
    std::unique_lock lock(mu_);
    not_empty_.wait(lock, [&] { return !items_.empty(); });
    Scanned s = std::move(items_.front());
    items_.pop_front();
    not_full_.notify_one();
    return s;
  }

 private:
  size_t capacity_;
  std::mutex mu_;
  std::condition_variable not_full_, not_empty_;
  std::deque<Scanned> items_;
};

// Files indexed earlier under an input folder that the walk no longer finds are removed, so the
// index mirrors the folder.
Status PruneVanished(const std::vector<fs::path>& inputs, const std::vector<Job>& jobs,
                     RefStore& store, IndexReport& report, std::ostream& log) {
  std::set<std::string> seen;
  for (const Job& j : jobs) seen.insert(j.path.string());
  for (const fs::path& input : inputs) {
    std::error_code ec;
    fs::path abs = fs::absolute(input, ec).lexically_normal();
    if (!fs::is_directory(abs, ec)) continue;
    std::string prefix = abs.string();
    if (!prefix.ends_with('/')) prefix += '/';
    ASSIGN_OR_RETURN(auto indexed, store.SourcesUnder(prefix));
    for (const std::string& path : indexed) {
      if (seen.count(path) || fs::exists(path, ec)) continue;
      RETURN_IF_ERROR(store.RemoveSource(path));
      log << "refzarr: removed " << path << " from the index (no longer on disk)\n";
      ++report.removed;
    }
  }
  return OkStatus();
}

}  // namespace

Result<IndexReport> IndexPaths(const std::vector<fs::path>& inputs, const fs::path& index,
                               const IndexOptions& options, std::ostream& log) {
  auto start = std::chrono::steady_clock::now();
  if (inputs.empty()) return InvalidArgumentError("nothing to index: give files or folders");
  ASSIGN_OR_RETURN(std::vector<Job> jobs, CollectJobs(inputs, index));
  ASSIGN_OR_RETURN(auto store, OpenRefStore(index, OpenMode::kReadWrite));
  std::vector<std::unique_ptr<Scanner>> defaults;
  if (!options.scanners) defaults = DefaultScanners();
  const auto& scanners = options.scanners ? *options.scanners : defaults;

  unsigned threads = options.threads ? options.threads : std::max(1u, std::thread::hardware_concurrency());
  threads = static_cast<unsigned>(std::min<size_t>(threads, std::max<size_t>(jobs.size(), 1)));
  ResultQueue queue(2 * threads);
  std::atomic<size_t> next{0};
  std::vector<std::thread> workers;
  for (unsigned t = 0; t < threads; ++t) {
    workers.emplace_back([&] {
      for (size_t n = next++; n < jobs.size(); n = next++) {
        queue.Push(ScanOne(jobs[n], n, *store, scanners, options.force, options.refs_in_memory));
      }
    });
  }

  IndexReport report;
  report.files.resize(jobs.size());
  Status fatal;
  for (size_t done = 0; done < jobs.size(); ++done) {
    Scanned s = queue.Pop();
    const Job& job = jobs[s.job];
    IndexedFile& f = report.files[s.job];
    f.path = job.path.string();
    f.group = job.group;
    f.scanner = s.scanner;
    f.outcome = s.outcome;
    f.error = s.error;
    if (!fatal.ok()) continue;  // drain the workers, commit nothing more
    if (s.outcome == "indexed") {
      for (const std::string& w : s.scan->warnings) {
        report.warnings.push_back(w);
        log << "refzarr: warning: " << job.path.string() << ": " << w << "\n";
      }
      Status st = store->PutFile(s.source, job.group, s.scanner, *s.scan, s.companions);
      if (st.code() == StatusCode::kInvalidArgument) {
        // A conflict of this file with the tree (two files mapping to one path): this file fails.
        f.outcome = "failed";
        f.error = st.message();
      } else if (!st.ok()) {
        fatal = st.WithContext("index " + index.string());
        continue;
      } else {
        f.chunks = s.scan->ChunkCount();
        f.arrays = s.scan->arrays.size();
        report.chunks += f.chunks;
        report.arrays += f.arrays;
      }
    }
    if (f.outcome == "failed") {
      log << "refzarr: index " << job.path.string() << ": " << f.error << "\n";
      if (s.source.path.empty()) s.source.path = job.path.string();
      Status st = store->PutFailure(s.source, job.group, f.error);
      if (!st.ok()) fatal = st.WithContext("index " + index.string());
    }
    if (f.outcome == "indexed") ++report.indexed;
    if (f.outcome == "unchanged") ++report.unchanged;
    if (f.outcome == "failed") ++report.failed;
    if (f.outcome == "skipped") ++report.skipped;
    if (options.progress) {
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      log << "\r" << (done + 1) << "/" << jobs.size() << " files, " << report.chunks
          << " chunks, " << static_cast<uint64_t>((done + 1) / std::max(secs, 1e-3)) << " files/s"
          << std::flush;
    }
  }
  for (auto& w : workers) w.join();
  if (options.progress) log << "\n";
  if (!fatal.ok()) return fatal;
  RETURN_IF_ERROR(PruneVanished(inputs, jobs, *store, report, log));
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

}  // namespace refzarr
