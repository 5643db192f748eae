#include "cli/commands.h"
#include "formats/registry/registry.h"
#include "store/kerchunk_import.h"

namespace refzarr {

void AddImportCommand(CLI::App& app, CommandContext& ctx) {
  struct Args {
    std::string index, refs;
    std::vector<std::string> roots, prefixes;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "import", "Turn a kerchunk reference file (version 0 or 1) into an index (docs/kerchunk.md)");
  cmd->add_option("refs", args->refs, "The kerchunk JSON file")->required();
  cmd->add_option("-o,--output", args->index, "The index to write (created if missing)")->required();
  cmd->add_option("--root", args->roots,
                  "A folder local references may point under (repeatable; symlinks resolved). "
                  "Default, with no --allow-prefix either: the reference file's folder");
  cmd->add_option("--allow-prefix", args->prefixes,
                  "A URL prefix (http://, https://, s3://) remote references may start with "
                  "(repeatable)");
  AddRemoteFlags(cmd);
  cmd->callback([&ctx, args] {
    ImportPolicy policy;
    for (const std::string& r : args->roots) policy.roots.emplace_back(r);
    policy.url_prefixes = args->prefixes;
    auto report = ImportKerchunk(args->refs, args->index, policy, DefaultSourceOpeners());
    if (!report.ok()) {
      ctx.err << "refzarr: " << report.status().message() << "\n";
      ctx.exit_code = 1;
      return;
    }
    for (const std::string& w : report->warnings) ctx.err << "refzarr: warning: " << w << "\n";
    ctx.err << "imported " << report->arrays << " arrays, " << report->groups << " groups, "
            << report->files << " files, " << report->chunk_refs << " chunk references and "
            << report->inline_chunks << " inline chunks from " << report->sources << " sources\n";
  });
}

}  // namespace refzarr
