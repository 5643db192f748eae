#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <thread>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/index_progress.h"
#include "indexer/indexer.h"
#include "formats/registry/registry.h"
#include "indexer/scan_worker.h"

namespace refzarr {

namespace {

// The signal (SIGINT, SIGTERM) that asked a running `index` to stop, 0 if none: the indexer stops
// at the next file boundary. A signal handler has no context to reach, so this one flag is the
// command's, not the library's.
std::atomic<int> stop_signal{0};
std::atomic<bool> stop_requested{false};
static_assert(std::atomic<int>::is_always_lock_free && std::atomic<bool>::is_always_lock_free);

extern "C" void OnStopSignal(int sig) {
  stop_signal.store(sig);
  stop_requested.store(true);
}

// While this lives, Ctrl-C (SIGINT) and SIGTERM (what `kill`, `scancel` and a SLURM time limit
// send first) stop the run cleanly; a second one (the action resets itself) ends the process at
// once, as without it.
class StopSignalGuard {
 public:
  StopSignalGuard() {
    stop_signal.store(0);
    stop_requested.store(false);
    struct sigaction sa = {};
    sa.sa_handler = OnStopSignal;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < 2; ++i) installed_[i] = ::sigaction(kSignals[i], &sa, &old_[i]) == 0;
  }
  ~StopSignalGuard() {
    for (size_t i = 0; i < 2; ++i) {
      if (installed_[i]) ::sigaction(kSignals[i], &old_[i], nullptr);
    }
  }
  StopSignalGuard(const StopSignalGuard&) = delete;
  StopSignalGuard& operator=(const StopSignalGuard&) = delete;

 private:
  static constexpr int kSignals[2] = {SIGINT, SIGTERM};
  struct sigaction old_[2] = {};
  bool installed_[2] = {false, false};
};

// "K/N" with 1 <= K <= N: the task's shard. SLURM numbers array tasks as its --array range says,
// so a script gives `--array=1-N` and `--shard "$SLURM_ARRAY_TASK_ID/N"` (docs/cluster.md).
ShardSpec ParseShard(const std::string& text) {
  const size_t slash = text.find('/');
  auto number = [](std::string_view digits, uint64_t& out) {
    if (digits.empty() || digits.size() > 9) return false;
    out = 0;
    for (char c : digits) {
      if (c < '0' || c > '9') return false;
      out = out * 10 + static_cast<uint64_t>(c - '0');
    }
    return true;
  };
  uint64_t k = 0, n = 0;
  if (slash == std::string::npos ||
      !number(std::string_view(text).substr(0, slash), k) ||
      !number(std::string_view(text).substr(slash + 1), n)) {
    throw CLI::ValidationError("--shard", "'" + text + "' is not K/N (task K of N, e.g. 3/16)");
  }
  if (n == 0 || k == 0 || k > n) {
    throw CLI::ValidationError(
        "--shard", "'" + text + "': K counts from 1 to N" +
                       (k == 0 && n > 0 ? std::string(" (a 0-based task id, as SLURM's with "
                                                      "--array=0-M, is K-1: give id+1)")
                                        : std::string()));
  }
  return ShardSpec{static_cast<uint32_t>(k - 1), static_cast<uint32_t>(n)};
}

}  // namespace

void AddIndexCommand(CLI::App& app, CommandContext& ctx) {
  struct Args {
    std::string output;
    std::vector<std::string> inputs;
    unsigned threads = 0;
    bool force = false;
    bool checksums = false;
    bool json = false;
    uint64_t refs_in_memory = IndexOptions().refs_in_memory;
    uint64_t scan_memory = 4ull << 30;
    double scan_timeout = 600;
    bool in_process = false;
    std::string files_from;
    bool null = false;
    std::vector<std::string> exclude;
    std::vector<std::string> stacks;
    bool no_data_windows = false;
    bool hidden = false;
    std::string root;
    std::string as;
    std::string shard;
    std::string progress = "auto";
    std::vector<std::string> labels;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("index", "Index TIFF and HDF5 files and folders into an index");
  cmd->add_option("-o,--output", args->output, "The index file (created if missing)")->required();
  cmd->add_option("paths", args->inputs,
                  "Files and folders (recursively), or URIs: https://host/a.tif, s3://bucket/key, "
                  "s3://bucket/prefix/ (every object under it); may be left out with --files-from");
  AddRemoteFlags(cmd);
  CLI::Option* files_from =
      cmd->add_option("--files-from", args->files_from,
                      "Also index the files and folders listed in FILE ('-': standard input), one "
                      "a line, read as the walk goes, placed under the root like given paths (a new "
                      "index given only a list needs --root)")
          ->type_name("FILE");
  cmd->add_flag("-0,--null", args->null, "The --files-from list is NUL-separated (find -print0)")
      ->needs(files_from);
  cmd->add_option("--exclude", args->exclude,
                  "Skip files and folders (an excluded folder is not read) whose base name, or "
                  "for a GLOB with a '/' whose path relative to its input, matches GLOB "
                  "(fnmatch); repeatable")
      ->type_name("GLOB")
      ->allow_extra_args(false);
  cmd->add_option("--stack", args->stacks,
                  "Index the files of a folder that PATTERN matches as one image (one file per "
                  "plane or time point): literal text and fields {t}, {c}, {z} standing for "
                  "numbers, e.g. 'scan_t{t}_c{c}_z{z}.tif'; NAME=PATTERN names the image; "
                  "'auto' finds the numbered files of each folder (docs/stacks.md); repeatable")
      ->type_name("PATTERN")
      ->allow_extra_args(false)
      ->each([](const std::string& text) {
        Result<StackRule> rule = ParseStackRule(text);
        if (!rule.ok()) throw CLI::ValidationError("--stack", rule.status().message());
      });
  cmd->add_flag("--no-data-windows", args->no_data_windows,
                "Use only the display windows files state (OME SignificantBits, TIFF "
                "SMin/SMaxSampleValue, ImageJ, Imaris); never read pixels at index time to give "
                "the other channels percentile windows (they get the dtype's range)");
  cmd->add_flag("--hidden", args->hidden,
                "Also index hidden files and folders (names starting with '.': .snapshot, "
                ".DS_Store, ._x.tif) found in folders; named inputs are always indexed");
  cmd->add_option("--root", args->root,
                  "The folder tree paths are relative to, fixed by the index's first run "
                  "(default: the single folder given, the single file given as the root, else "
                  "the deepest folder holding every input)")
      ->type_name("DIR");
  cmd->add_option("--as", args->as,
                  "Place the one input given at this tree path (for files outside the root)")
      ->type_name("PATH");
  CLI::Option* shard = cmd->add_option("--shard", args->shard,
                  "Index only shard K of N (K = 1..N; a file's shard is a hash of its tree path, "
                  "so N tasks given the same inputs split them without talking); each writes its "
                  "own index, `refzarr merge` combines them (docs/cluster.md)")
      ->type_name("K/N");
  cmd->add_option("-j,--threads", args->threads, "Scanner threads (default: one per core)");
  cmd->add_option("--progress", args->progress,
                  "auto: a status line on a terminal (standard error), nothing otherwise; line: "
                  "the status line always; json: one JSON object a second on standard error "
                  "(for schedulers and dashboards); none")
      ->check(CLI::IsMember({"auto", "line", "json", "none"}))
      ->type_name("MODE")
      ->capture_default_str();
  cmd->add_option("--labels", args->labels,
                  "Pair label images with the images they segment: PATTERN names the label file "
                  "next to an image, {name} standing for its name without extension "
                  "('{name}_mask.tif', 'masks/{name}.tif'); 'default' is {name}_mask.tif, "
                  "{name}_labels.tif and masks/{name}.tif (repeatable; docs/ome.md)")
      ->type_name("PATTERN")
      ->allow_extra_args(false);
  cmd->add_flag("--force", args->force, "Re-scan files even if unchanged since the last run");
  cmd->add_flag("--checksums", args->checksums,
                "Verified mode: read every referenced chunk once and record its CRC-32C; every "
                "read then checks it before a byte is served (docs/verified.md). Files found "
                "unchanged keep what they were indexed with: add --force to checksum them too");
  cmd->add_flag("--json", args->json, "Print the report as JSON");
  cmd->add_option("--refs-in-memory", args->refs_in_memory,
                  "Chunk references a file may hold in memory while scanned (32 bytes each); "
                  "the rest wait in a temporary file")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--scan-memory", args->scan_memory,
                  "Bytes of address space one file's scan may use (its worker process's limit); "
                  "0: no limit")
      ->capture_default_str();
  cmd->add_option("--scan-timeout", args->scan_timeout,
                  "Seconds of wall-clock and CPU time one file's scan may take; 0: no limit")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_flag("--in-process", args->in_process,
                "Scan in this process instead of crash-isolated worker processes (for debugging: "
                "a file that crashes a library then ends the run)");
  cmd->callback([&ctx, args, shard] {
    if (args->inputs.empty() && args->files_from.empty()) {
      throw CLI::RequiredError("paths or --files-from");
    }
    IndexOptions options;
    // The list is read as a stream while the walk runs, never loaded whole.
    std::ifstream list_file, list_again;
    if (args->files_from == "-") {
      options.files_from = &std::cin;
    } else if (!args->files_from.empty()) {
      list_file.open(args->files_from, std::ios::binary);
      if (!list_file) {
        ctx.err << "refzarr: index: cannot read the list " << args->files_from << ": "
                << std::strerror(errno) << "\n";
        ctx.exit_code = 1;
        return;
      }
      options.files_from = &list_file;
      // A second reading for the progress total (the counting walk): only of a regular file,
      // since a second open of a pipe (`--files-from <(find ...)`) would take lines from the run.
      std::error_code ec;
      if (std::filesystem::is_regular_file(args->files_from, ec)) {
        list_again.open(args->files_from, std::ios::binary);
        if (list_again) options.files_from_again = &list_again;
      }
    }
    if (!args->labels.empty()) {
      auto rules = ParseLabelRules(args->labels);
      if (!rules.ok()) {
        ctx.err << "refzarr: index: " << rules.status().message() << "\n";
        ctx.exit_code = 2;
        return;
      }
      options.labels = std::move(*rules);
    }
    options.files_from_null = args->null;
    options.exclude = args->exclude;
    options.scan.data_windows = !args->no_data_windows;
    for (const std::string& text : args->stacks) options.stacks.push_back(*ParseStackRule(text));
    options.hidden = args->hidden;
    options.root = args->root;
    options.as = args->as;
    if (shard->count()) options.shard = ParseShard(args->shard);
    options.threads = args->threads;
    options.openers = &DefaultSourceOpeners();
    const unsigned threads =
        args->threads ? args->threads : std::max(1u, std::thread::hardware_concurrency());
    std::unique_ptr<ScanRunner> runner;
    if (!args->in_process) {
      if (ctx.scan_worker.empty()) {
        ctx.err << "refzarr: index: no scan worker command is configured (use --in-process)\n";
        ctx.exit_code = 1;
        return;
      }
      // Each scan runs in a worker: this same binary, started with the hidden scan-worker command.
      IsolationOptions isolation;
      isolation.command = ctx.scan_worker;
      if (args->no_data_windows) isolation.command.push_back("--no-data-windows");
      isolation.workers = threads;
      isolation.memory_bytes = args->scan_memory;
      isolation.timeout_seconds = args->scan_timeout;
      auto made = MakeIsolatedScanRunner(std::move(isolation));
      if (!made.ok()) {
        ctx.err << "refzarr: " << made.status().message() << "\n";
        ctx.exit_code = 1;
        return;
      }
      runner = std::move(*made);
      options.runner = runner.get();
    }
    options.force = args->force;
    options.checksums = args->checksums;
    options.refs_in_memory = args->refs_in_memory;
    options.file_list = args->json;  // Only the JSON report lists every file.
    std::unique_ptr<ProgressSink> progress;
    if (args->progress == "json") {
      progress = MakeJsonProgress(ctx.err);
    } else if (args->progress == "line" ||
               (args->progress == "auto" && !args->json && isatty(STDERR_FILENO))) {
      progress = MakeTerminalProgress(ctx.err);
    }
    options.progress = progress.get();
    options.stop = &stop_requested;
    std::vector<std::filesystem::path> inputs(args->inputs.begin(), args->inputs.end());
    Result<IndexReport> report = [&] {
      StopSignalGuard guard;
      return IndexPaths(inputs, args->output, options, ctx.err);
    }();
    if (!report.ok()) {
      ctx.err << "refzarr: " << report.status().message() << "\n";
      ctx.exit_code = 1;
      return;
    }
    if (args->json) {
      nlohmann::json files = nlohmann::json::array();
      for (const IndexedFile& f : report->files) {
        nlohmann::json refused = nlohmann::json::array();
        for (const auto& [path, reason] : f.refused) {
          refused.push_back({{"path", path}, {"reason", reason}});
        }
        files.push_back({{"path", f.path}, {"group", f.group}, {"outcome", f.outcome},
                         {"scanner", f.scanner}, {"error", f.error}, {"chunks", f.chunks},
                         {"arrays", f.arrays}, {"refused", refused}});
      }
      ctx.out << nlohmann::json{{"indexed", report->indexed}, {"unchanged", report->unchanged},
                                {"failed", report->failed}, {"skipped", report->skipped},
                                {"removed", report->removed},
                                {"other_shards", report->other_shards},
                                {"chunks", report->chunks}, {"arrays", report->arrays},
                                {"refused_arrays", report->refused},
                                {"seconds", report->seconds}, {"files", files},
                                {"warnings", report->warnings}}
                     .dump(2)
              << "\n";
    } else {
      ctx.out << "indexed " << report->indexed << " files (" << report->arrays << " arrays, "
              << report->chunks << " chunk references, " << report->refused
              << " arrays refused), " << report->unchanged << " unchanged, "
              << report->skipped << " skipped, " << report->removed << " removed, "
              << report->failed << " failed";
      if (options.shard.count) {
        ctx.out << " (shard " << ShardName(options.shard) << "; " << report->other_shards
                << " files in other shards)";
      }
      ctx.out << " in "
              << report->seconds << " s\n";
    }
    ctx.exit_code = report->failed > 0 ? 1 : 0;
    if (report->stopped) {
      const uint64_t kept = report->indexed + report->unchanged + report->failed;
      const int sig = stop_signal.load();
      ctx.err << "refzarr: index: stopped by " << (sig == SIGTERM ? "SIGTERM" : "SIGINT") << ": "
              << kept << " files done are kept in " << args->output
              << "; re-run the same command to go on (they are found unchanged, not scanned "
                 "again)\n";
      ctx.exit_code = 128 + (sig ? sig : SIGINT);  // as a shell reports a command ended by it
    }
  });
}

void AddScanWorkerCommand(CLI::App& app, CommandContext& ctx) {
  // Not for users: `index` starts it as a crash-isolated scanner talking over stdin.
  CLI::App* cmd = app.add_subcommand("scan-worker", "");
  cmd->group("");
  auto settings = std::make_shared<ScanSettings>();
  cmd->add_flag_callback("--no-data-windows", [settings] { settings->data_windows = false; });
  cmd->callback([&ctx, settings] {
    std::vector<std::unique_ptr<ChunkDecoder>> decoders = DefaultDecoders();
    std::vector<const ChunkDecoder*> raw;
    for (const auto& d : decoders) raw.push_back(d.get());
    int code = RunScanWorker(0, DefaultScanners(), raw, DefaultSourceOpeners(), *settings);
    // Exit at once: library clean-up of a scan that went wrong must not crash or hang the exit.
    ctx.out.flush();
    std::_Exit(code);
  });
}

}  // namespace refzarr
