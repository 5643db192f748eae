// `refzarr serve INDEX`: the index as a Zarr store over HTTP until SIGINT/SIGTERM.
#include <pthread.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstring>
#include <fstream>
#include <string>

#include "cli/commands.h"
#include "cli/http/http_module.h"
#include "formats/core/module_loader.h"
#include "store/zarr_view.h"

namespace refzarr {
namespace {

struct ServeArgs {
  std::string index;
  std::string host = "127.0.0.1";
  uint16_t port = 8000;
  ViewFlags view;
  unsigned threads = 0;
  std::string access_log;
};

// Blocks SIGINT and SIGTERM in the calling thread for its lifetime. Created before the view and the
// server start any thread, so every thread inherits the mask and the signals wait, pending, for
// Wait() instead of killing the process mid-response.
class ShutdownSignals {
 public:
  ShutdownSignals() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set_, &previous_);
  }
  ~ShutdownSignals() { pthread_sigmask(SIG_SETMASK, &previous_, nullptr); }
  ShutdownSignals(const ShutdownSignals&) = delete;
  ShutdownSignals& operator=(const ShutdownSignals&) = delete;

  /// Returns the signal that arrived.
  int Wait() {
    int signal = 0;
    sigwait(&set_, &signal);
    return signal;
  }

 private:
  sigset_t set_;
  sigset_t previous_;
};

Status RunServe(const ServeArgs& args, CommandContext& ctx) {
  // libmicrohttpd comes with the HTTP module, loaded only by this command.
  ASSIGN_OR_RETURN(const HttpModule* http, LoadModule<HttpModule>(kHttpModuleFile, kHttpModuleSymbol));
  ShutdownSignals signals;
  ASSIGN_OR_RETURN(ViewOptions view_options, args.view.ToOptions());
  ASSIGN_OR_RETURN(std::unique_ptr<ZarrView> view, OpenZarrView(args.index, view_options));

  ServeOptions options;
  options.host = args.host;
  options.port = args.port;
  options.threads = args.threads;
  options.error_log = &ctx.err;
  std::ofstream access_log;
  if (!args.access_log.empty()) {
    access_log.open(args.access_log, std::ios::app);
    if (!access_log) {
      return IoError("open access log " + args.access_log + ": " + std::strerror(errno));
    }
    options.access_log = &access_log;
  }
  options.wait_for_shutdown = [&] {
    int signal = signals.Wait();
    ctx.err << "refzarr: " << strsignal(signal) << '\n';
  };
  return http->serve(*view, options, ctx.err);
}

}  // namespace

void AddServeCommand(CLI::App& app, CommandContext& ctx) {
  auto args = std::make_shared<ServeArgs>();
  CLI::App* cmd = app.add_subcommand(
      "serve", "Serve an index as a read-only OME-Zarr over HTTP (until Ctrl-C / SIGTERM)");
  cmd->add_option("INDEX", args->index, "Index file (.refs.db)")->required();
  cmd->add_option("--host", args->host, "Address to bind (loopback by default)")
      ->capture_default_str();
  cmd->add_option("--port", args->port, "TCP port (0: any free port)")->capture_default_str();
  args->view.AddTo(cmd);
  AddRemoteFlags(cmd);
  args->view.AddRevalidateTo(cmd);
  cmd->add_option("--threads", args->threads, "Worker threads (0: one per CPU)")
      ->capture_default_str();
  cmd->add_option("--access-log", args->access_log, "Append one Common Log Format line per request");
  cmd->callback([args, &ctx] {
    Status status = RunServe(*args, ctx);
    if (!status.ok()) {
      ctx.err << "refzarr serve: " << status.message() << '\n';
      ctx.exit_code = 1;
    }
  });
}

}  // namespace refzarr
