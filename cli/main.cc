// refzarr: index bioimaging archives and serve them as OME-Zarr without copying. Command table.
#include <cstring>
#include <iostream>
#include <span>
#include <string_view>

#include "cli/commands.h"

namespace {

struct Command {
  std::string_view name;
  void (*add)(CLI::App&, refzarr::CommandContext&);
};

// Every command, in the order `refzarr --help` lists them.
constexpr Command kCommands[] = {
    {"index", refzarr::AddIndexCommand},
    {"scan-worker", refzarr::AddScanWorkerCommand},
    {"ls", refzarr::AddLsCommand},
    {"cat", refzarr::AddCatCommand},
    {"info", refzarr::AddInfoCommand},
    {"refs", refzarr::AddRefsCommand},
    {"export", refzarr::AddExportCommand},
    {"import", refzarr::AddImportCommand},
    {"rm", refzarr::AddRmCommand},
    {"relocate", refzarr::AddRelocateCommand},
    {"merge", refzarr::AddMergeCommand},
    {"thumbnail", refzarr::AddThumbnailCommand},
#ifdef REFZARR_HAVE_serve
    {"serve", refzarr::AddServeCommand},
#endif
    {"sign", refzarr::AddSignCommand},
#ifdef REFZARR_HAVE_mount
    {"mount", refzarr::AddMountCommand},
#endif
};

// The command named on the command line: the first argument that is not an option (the only
// options before it, --help and --version, take no value). Null when there is none or it names
// no command: then every command is built, for the overview or CLI11's error.
const Command* Named(std::span<char*> args) {
  for (const char* arg : args) {
    if (arg[0] == '-') continue;
    for (const Command& c : kCommands) {
      if (c.name == arg) return &c;
    }
    return nullptr;
  }
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  refzarr::CommandContext ctx{std::cout, std::cerr, 0, {"/proc/self/exe", "scan-worker"}};
  CLI::App app{"refzarr: bioimaging archives (TIFF, OME-TIFF, HDF5) as read-only OME-Zarr, "
               "without copying a byte"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "refzarr 0.1.0");
  // Building a command's options costs more than most commands' work (cat of one chunk): only
  // the command that runs is built.
  if (const Command* named = Named(std::span(argv + 1, argc - 1))) {
    named->add(app, ctx);
  } else {
    for (const Command& c : kCommands) c.add(app, ctx);
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  } catch (const std::exception& e) {
    std::cerr << "refzarr: " << e.what() << "\n";
    return 1;
  }
  return ctx.exit_code;
}
