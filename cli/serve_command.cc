// `refzarr serve INDEX`: the index as a Zarr store over HTTP until SIGINT/SIGTERM.
#include <pthread.h>
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <csignal>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

#include "cli/access/access_log.h"
#include "cli/access/access_policy.h"
#include "cli/access/rate_limiter.h"
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
  std::string tokens;
  bool signed_urls = false;
  bool public_archive = false;
  std::string tls_cert;
  std::string tls_key;
  unsigned max_connections = 0;
  unsigned max_connections_per_client = 128;
  double rate_limit = 0;
  double rate_burst = 0;
  unsigned timeout_seconds = 30;
  size_t max_url_bytes = 8 * 1024;
  size_t max_header_bytes = 32 * 1024;
};

Result<std::string> ReadWholeFile(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return IoError(std::string("open ") + what + " " + path + ": " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (text.str().empty()) return InvalidArgumentError(std::string(what) + " " + path + " is empty");
  return text.str();
}

// Each connection is a descriptor: the soft limit goes up to the hard one, and --max-connections
// 0 takes what it allows, keeping some for the sources, the index and the logs.
unsigned ConnectionsTheDescriptorLimitAllows() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 1024;
  if (limit.rlim_cur < limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  constexpr rlim_t kReserved = 512;
  constexpr rlim_t kMost = 65536;
  if (limit.rlim_cur == RLIM_INFINITY) return kMost;
  return static_cast<unsigned>(std::clamp<rlim_t>(
      limit.rlim_cur > kReserved ? limit.rlim_cur - kReserved : 64, 64, kMost));
}

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
  options.public_archive = args.public_archive;
  const unsigned allowed = ConnectionsTheDescriptorLimitAllows();
  options.max_connections = args.max_connections == 0 ? allowed : args.max_connections;
  if (options.max_connections > allowed) {
    return InvalidArgumentError("--max-connections " + std::to_string(args.max_connections) +
                                ": the descriptor limit (ulimit -n) allows " +
                                std::to_string(allowed));
  }
  options.max_connections_per_client = args.max_connections_per_client;
  options.connection_timeout_seconds = args.timeout_seconds;
  options.max_url_bytes = args.max_url_bytes;
  options.connection_memory_limit_bytes = args.max_header_bytes;

  std::unique_ptr<AccessPolicy> policy;
  if (!args.tokens.empty() || args.signed_urls) {
    std::optional<TokenTable> tokens;
    std::optional<UrlSigner> signer;
    if (!args.tokens.empty()) {
      ASSIGN_OR_RETURN(TokenTable table, TokenTable::Load(args.tokens));
      tokens = std::move(table);
    }
    if (args.signed_urls) {
      ASSIGN_OR_RETURN(UrlSigner s, UrlSigner::ForIndex(args.index, /*create=*/false));
      signer = std::move(s);
    }
    policy = MakeAccessPolicy(std::move(tokens), std::move(signer), &SystemUnixTime);
    options.access_policy = policy.get();
  }
  if (policy && args.public_archive) {
    return InvalidArgumentError("--public contradicts --tokens/--signed-urls: choose one");
  }
  if (!args.tls_cert.empty() || !args.tls_key.empty()) {
    if (args.tls_cert.empty() || args.tls_key.empty()) {
      return InvalidArgumentError("--tls-cert and --tls-key go together");
    }
    ASSIGN_OR_RETURN(options.tls_cert_pem, ReadWholeFile(args.tls_cert, "TLS certificate"));
    ASSIGN_OR_RETURN(options.tls_key_pem, ReadWholeFile(args.tls_key, "TLS key"));
  }
  std::unique_ptr<RateLimiter> limiter;
  if (args.rate_limit > 0) {
    limiter = MakeRateLimiter(args.rate_limit,
                              args.rate_burst > 0 ? args.rate_burst : 2 * args.rate_limit,
                              &SteadySeconds);
    options.rate_limiter = limiter.get();
  }
  std::ofstream access_file;
  std::unique_ptr<AccessLog> access_log;
  if (args.access_log == "-") {
    access_log = MakeStreamAccessLog(ctx.out);
  } else if (!args.access_log.empty()) {
    access_file.open(args.access_log, std::ios::app);
    if (!access_file) {
      return IoError("open access log " + args.access_log + ": " + std::strerror(errno));
    }
    access_log = MakeStreamAccessLog(access_file);
  }
  options.access_log = access_log.get();
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
  cmd->add_option("--bind,--host", args->host,
                  "Address to bind (loopback by default; any other needs --tokens, "
                  "--signed-urls or --public)")
      ->capture_default_str();
  cmd->add_option("--port", args->port, "TCP port (0: any free port)")->capture_default_str();
  args->view.AddTo(cmd);
  AddRemoteFlags(cmd);
  args->view.AddRevalidateTo(cmd);
  cmd->add_option("--threads", args->threads, "Worker threads (0: one per CPU)")
      ->capture_default_str();
  cmd->add_option("--access-log", args->access_log,
                  "Append one line per request (Common Log Format + seconds) to FILE, or - for "
                  "stdout");
  cmd->add_option("--tokens", args->tokens,
                  "Bearer tokens file: `TOKEN PREFIX...` per line, mode 600 (docs/security.md)");
  cmd->add_flag("--signed-urls", args->signed_urls,
                "Accept URLs made by `refzarr sign` (key: INDEX.serve-key)");
  cmd->add_flag("--public", args->public_archive,
                "No access policy: the archive is world-readable (allows a non-loopback --bind)");
  cmd->add_option("--tls-cert", args->tls_cert, "PEM certificate (chain): serve HTTPS");
  cmd->add_option("--tls-key", args->tls_key, "PEM private key of --tls-cert");
  cmd->add_option("--max-connections", args->max_connections,
                  "Connections open at once (0: as many as the descriptor limit allows)")
      ->capture_default_str();
  cmd->add_option("--max-connections-per-client", args->max_connections_per_client,
                  "Connections open at once from one address (0: no limit)")
      ->capture_default_str();
  cmd->add_option("--rate-limit", args->rate_limit,
                  "Requests per second per client address, on average (0: no limit)")
      ->capture_default_str();
  cmd->add_option("--rate-burst", args->rate_burst,
                  "Requests a client may make at once beyond the rate (0: twice --rate-limit)");
  cmd->add_option("--timeout", args->timeout_seconds,
                  "Seconds of inactivity after which a connection is closed")
      ->capture_default_str();
  cmd->add_option("--max-url-bytes", args->max_url_bytes, "Longest request path (414 beyond)")
      ->capture_default_str();
  cmd->add_option("--max-header-bytes", args->max_header_bytes,
                  "Buffer for a request's line and headers (431 beyond)")
      ->capture_default_str();
  cmd->callback([args, &ctx] {
    Status status = RunServe(*args, ctx);
    if (!status.ok()) {
      ctx.err << "refzarr serve: " << status.message() << '\n';
      ctx.exit_code = 1;
    }
  });
}

}  // namespace refzarr
