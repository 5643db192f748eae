// The HTTP front end: a ZarrView served as a read-only Zarr store over HTTP (libmicrohttpd).
//
// One server serves one view (one Zarr format), so the v2 and v3 trees never share a URL. GET and HEAD
// of keys, single byte ranges, CORS, an HTML listing of directories; pass-through chunks go out with
// sendfile straight from their source file. See docs/frontends.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <ostream>
#include <span>
#include <string>

#include "cli/http/web/web_assets.h"
#include "formats/core/status.h"
#include "store/zarr_view.h"

namespace refzarr {

/// How to serve a view.
struct ServeOptions {
  /// Address to bind: a numeric IPv4/IPv6 address or a host name. Loopback unless told otherwise.
  std::string host = "127.0.0.1";
  /// TCP port; 0 picks a free one (read it back with HttpServer::Port()).
  uint16_t port = 8000;
  /// Worker threads, each polling its own share of the connections; 0: one per hardware thread (at
  /// least 2).
  unsigned threads = 0;
  /// Connections open at once; further ones are refused until some close. With the per-connection
  /// memory limit this bounds the server's memory.
  unsigned max_connections = 1024;
  /// Seconds of inactivity after which a connection is closed (slow or idle clients).
  unsigned connection_timeout_seconds = 30;
  /// Bytes of request/header buffer per connection.
  size_t connection_memory_limit_bytes = 32 * 1024;
  /// When set, one Common Log Format line per request (not owned; must outlive the server).
  std::ostream* access_log = nullptr;
  /// The browser pages' files, served under `/__refzarr__/` (not owned; must outlive the server).
  /// When set, a GET of a directory whose Accept header names text/html (a browser opening it)
  /// gets the page that draws the folder or the image's viewer instead of the listing; when
  /// empty (the default) there are no browser pages. The serve command passes
  /// BundledWebAssets(). See docs/frontends.md.
  std::span<const WebAsset> web_assets;
  /// When set, libmicrohttpd's own error messages (not owned; must outlive the server).
  std::ostream* error_log = nullptr;
  /// Serve(): blocks until this returns, then shuts down. The serve command waits for SIGINT or
  /// SIGTERM here; signal handling stays in the command.
  std::function<void()> wait_for_shutdown;
};

/// A running server. Stopping (or destroying) it closes the listening socket and every connection.
class HttpServer {
 public:
  virtual ~HttpServer() = default;
  /// The port the server listens on (the one picked when ServeOptions::port was 0).
  virtual uint16_t Port() const = 0;
  /// Stops accepting, ends all connections and joins the worker threads. Idempotent.
  virtual void Stop() = 0;
};

/// Starts serving `view` (not owned; must outlive the server) on worker threads and returns at once.
/// kInvalidArgument for a host that does not resolve; kIo when the port cannot be bound.
Result<std::unique_ptr<HttpServer>> StartHttpServer(ZarrView& view, const ServeOptions& options);

/// Starts a server, writes "serving ... on http://HOST:PORT/" to `log`, blocks in
/// options.wait_for_shutdown, then stops cleanly. kInvalidArgument when wait_for_shutdown is empty.
Status Serve(ZarrView& view, const ServeOptions& options, std::ostream& log);

}  // namespace refzarr
