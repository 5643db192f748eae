#include <chrono>

#include "cli/commands.h"
#include "store/index_merge.h"

namespace refzarr {

void AddMergeCommand(CLI::App& app, CommandContext& ctx) {
  struct Args {
    std::string out;
    std::vector<std::string> inputs;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "merge", "Combine indexes of different paths into a new one, without rescanning");
  cmd->add_option("-o,--output", args->out, "The merged index (must not exist)")->required();
  cmd->add_option("inputs", args->inputs, "Indexes to merge (read only)")->required();
  cmd->callback([&ctx, args] {
    auto start = std::chrono::steady_clock::now();
    std::vector<std::filesystem::path> inputs(args->inputs.begin(), args->inputs.end());
    Result<MergeReport> r = MergeIndexes(inputs, args->out);
    if (!r.ok()) {
      ctx.err << "refzarr: merge: " << r.status().message() << "\n";
      ctx.exit_code = 1;
      return;
    }
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    ctx.out << "merged " << r->inputs << " indexes into " << args->out << ": " << r->files
            << " files (" << r->failed_files << " failed), " << r->chunk_refs
            << " chunk references, " << r->refusals << " refused arrays in " << s << " s\n";
  });
}

}  // namespace refzarr
