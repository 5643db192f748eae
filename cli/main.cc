// refzarr: index bioimaging archives and serve them as OME-Zarr without copying. Command table.
#include <iostream>

#include "cli/commands.h"

int main(int argc, char** argv) {
  refzarr::CommandContext ctx{std::cout, std::cerr, 0, {"/proc/self/exe", "scan-worker"}};
  CLI::App app{"refzarr: bioimaging archives (TIFF, OME-TIFF, HDF5) as read-only OME-Zarr, "
               "without copying a byte"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "refzarr 0.1.0");
  refzarr::AddIndexCommand(app, ctx);
  refzarr::AddScanWorkerCommand(app, ctx);
  refzarr::AddLsCommand(app, ctx);
  refzarr::AddCatCommand(app, ctx);
  refzarr::AddInfoCommand(app, ctx);
  refzarr::AddRefsCommand(app, ctx);
  refzarr::AddExportCommand(app, ctx);
  refzarr::AddRmCommand(app, ctx);
  refzarr::AddRelocateCommand(app, ctx);
  refzarr::AddMergeCommand(app, ctx);
  refzarr::AddThumbnailCommand(app, ctx);
#ifdef REFZARR_HAVE_serve
  refzarr::AddServeCommand(app, ctx);
#endif
  refzarr::AddSignCommand(app, ctx);
#ifdef REFZARR_HAVE_mount
  refzarr::AddMountCommand(app, ctx);
#endif
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
