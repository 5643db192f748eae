#include <unistd.h>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "indexer/indexer.h"

namespace refzarr {

void AddIndexCommand(CLI::App& app, CommandContext& ctx) {
  struct Args {
    std::string output;
    std::vector<std::string> inputs;
    unsigned threads = 0;
    bool force = false;
    bool json = false;
    uint64_t refs_in_memory = IndexOptions().refs_in_memory;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("index", "Index TIFF and HDF5 files and folders into an index");
  cmd->add_option("-o,--output", args->output, "The index file (created if missing)")->required();
  cmd->add_option("paths", args->inputs, "Files and folders (recursively)")->required();
  cmd->add_option("-j,--threads", args->threads, "Scanner threads (default: one per core)");
  cmd->add_flag("--force", args->force, "Re-scan files even if unchanged since the last run");
  cmd->add_flag("--json", args->json, "Print the report as JSON");
  cmd->add_option("--refs-in-memory", args->refs_in_memory,
                  "Chunk references a file may hold in memory while scanned (32 bytes each); "
                  "the rest wait in a temporary file")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->callback([&ctx, args] {
    IndexOptions options;
    options.threads = args->threads;
    options.force = args->force;
    options.refs_in_memory = args->refs_in_memory;
    options.file_list = args->json;  // Only the JSON report lists every file.
    options.progress = !args->json && isatty(STDERR_FILENO);
    std::vector<std::filesystem::path> inputs(args->inputs.begin(), args->inputs.end());
    auto report = IndexPaths(inputs, args->output, options, ctx.err);
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
              << report->failed << " failed in "
              << report->seconds << " s\n";
    }
    ctx.exit_code = report->failed > 0 ? 1 : 0;
  });
}

}  // namespace refzarr
