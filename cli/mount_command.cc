// `refzarr mount INDEX MOUNTPOINT`: the index as a read-only file system (FUSE).
#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "cli/commands.h"
#include "cli/fuse/fuse_module.h"
#include "formats/core/module_loader.h"
#include "store/zarr_view.h"

namespace refzarr {
namespace {

struct MountArgs {
  std::string index;
  std::string mountpoint;
  ViewFlags view;
  bool foreground = false;
  bool allow_other = false;
  bool debug = false;
  double revalidate_seconds = MountOptions().revalidate_seconds;
  std::string log;
};

Status RunMount(const MountArgs& args, CommandContext& ctx) {
  // libfuse3 comes with the FUSE module, loaded only by this command (before any thread starts).
  ASSIGN_OR_RETURN(const FuseModule* fuse, LoadModule<FuseModule>(kFuseModuleFile, kFuseModuleSymbol));
  ASSIGN_OR_RETURN(ViewOptions view_options, args.view.ToOptions());
  // Absolute paths: detaching changes the working directory to "/", and the view may open the
  // index again later (a connection per thread).
  std::error_code ec;
  std::filesystem::path index = std::filesystem::absolute(args.index, ec);
  ASSIGN_OR_RETURN(std::unique_ptr<ZarrView> view, OpenZarrView(index, view_options));
  MountOptions options;
  options.mountpoint = std::filesystem::absolute(args.mountpoint, ec);
  options.foreground = args.foreground;
  options.allow_other = args.allow_other;
  options.debug = args.debug;
  options.revalidate_seconds = args.revalidate_seconds;
  options.error_log = &ctx.err;
  // Opened before detaching, by absolute path: a background mount's stderr is /dev/null.
  std::ofstream log;
  if (!args.log.empty()) {
    std::filesystem::path path = std::filesystem::absolute(args.log, ec);
    log.open(path, std::ios::app);
    if (!log) return IoError("open log " + path.string() + ": " + std::strerror(errno));
    options.error_log = &log;
  }
  return fuse->mount(*view, options, ctx.err);
}

}  // namespace

void AddMountCommand(CLI::App& app, CommandContext& ctx) {
  auto args = std::make_shared<MountArgs>();
  CLI::App* cmd = app.add_subcommand(
      "mount", "Mount an index as a read-only OME-Zarr directory (unmount: fusermount3 -u)");
  cmd->add_option("INDEX", args->index, "Index file (.refs.db)")->required();
  cmd->add_option("MOUNTPOINT", args->mountpoint, "Existing directory to mount on")->required();
  args->view.AddTo(cmd);
  AddRemoteFlags(cmd);
  cmd->add_flag("-f,--foreground", args->foreground,
                "Stay in the foreground until unmounted or Ctrl-C");
  cmd->add_flag("--allow-other", args->allow_other, "Let other users read the mount");
  cmd->add_option("--revalidate", args->revalidate_seconds,
                  "Seconds the kernel may cache names, sizes and pages before a file's source is "
                  "checked again")
      ->check(CLI::Range(0.0, 86400.0))
      ->capture_default_str();
  cmd->add_option("--log", args->log,
                  "Append what the mount reports (mounted, unmounted, every failed request with "
                  "its key and reason) to this file; without it a background mount reports "
                  "nothing once detached");
  cmd->add_flag("--debug", args->debug, "libfuse debug output (implies nothing else)");
  cmd->callback([args, &ctx] {
    Status status = RunMount(*args, ctx);
    if (!status.ok()) {
      ctx.err << "refzarr mount: " << status.message() << '\n';
      ctx.exit_code = 1;
    }
  });
}

}  // namespace refzarr
