// Runs one refzarr command in this process, as the binary would, and captures what it printed:
// the one command runner of the CLI tests. Needs REFZARR_BIN (the scan worker's command).
#pragma once

#include <algorithm>
#include <sstream>
#include <string>
#include <vector>

#include "cli/commands.h"

namespace refzarr::testing {

struct CommandRun {
  int exit_code = 0;
  std::string out, err;
};

/// `args` as after `refzarr` on a command line ({"index", "-o", "x.db", "dir"}). A usage error
/// is exit code 2, as the binary's.
inline CommandRun RunCommand(std::vector<std::string> args) {
  std::ostringstream out, err;
  CommandContext ctx{out, err, 0, {REFZARR_BIN, "scan-worker"}};
  CLI::App app;
  app.require_subcommand(1);
  AddIndexCommand(app, ctx);
  AddLsCommand(app, ctx);
  AddCatCommand(app, ctx);
  AddInfoCommand(app, ctx);
  AddRefsCommand(app, ctx);
  AddExportCommand(app, ctx);
  AddRmCommand(app, ctx);
  AddRelocateCommand(app, ctx);
  AddMergeCommand(app, ctx);
  std::reverse(args.begin(), args.end());  // CLI11 parses a reversed vector
  CommandRun r;
  try {
    app.parse(args);
    r.exit_code = ctx.exit_code;
  } catch (const CLI::ParseError&) {
    r.exit_code = 2;
  }
  r.out = out.str();
  r.err = err.str();
  return r;
}

}  // namespace refzarr::testing
