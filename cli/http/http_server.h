// The HTTP front end: a ZarrView served as a read-only Zarr store over HTTP (libmicrohttpd).
//
// One server serves one view (one Zarr format), so the v2 and v3 trees never share a URL. GET and HEAD
// of keys, single byte ranges, CORS, an HTML listing of directories; pass-through chunks go out with
// sendfile straight from their source file. Beyond loopback: an access policy (tokens, signed
// URLs), TLS, per-client connection and rate limits, an access log. See docs/frontends.md and
// docs/security.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <ostream>
#include <span>
#include <string>

#include "cli/access/access_log.h"
#include "cli/access/access_policy.h"
#include "cli/access/rate_limiter.h"
#include "cli/http/web/web_assets.h"
#include "formats/core/status.h"
#include "store/zarr_view.h"

namespace refzarr {

/// How to serve a view.
struct ServeOptions {
  /// Address to bind: a numeric IPv4/IPv6 address or a host name. Loopback unless told otherwise.
  /// Any other address needs `access_policy` or `public_archive`.
  std::string host = "127.0.0.1";
  /// Who may read what (not owned; must outlive the server). When set, every request but a CORS
  /// preflight and the browser pages' own files is checked: 401 without a known credential, 403
  /// for a bad or expired signed URL, 404 for a key outside a token's prefixes. When null, every
  /// key is readable by anyone who reaches the server.
  const AccessPolicy* access_policy = nullptr;
  /// Serving without an access policy on an address other than loopback is refused unless this
  /// says the archive is meant to be world-readable (`serve --public`).
  bool public_archive = false;
  /// PEM certificate (chain) and private key: when both are set, HTTPS through libmicrohttpd's
  /// GnuTLS support (kUnsupported when libmicrohttpd was built without it).
  std::string tls_cert_pem;
  std::string tls_key_pem;
  /// TCP port; 0 picks a free one (read it back with HttpServer::Port()).
  uint16_t port = 8000;
  /// Worker threads, each polling its own share of the connections; 0: one per hardware thread (at
  /// least 2).
  unsigned threads = 0;
  /// Connections open at once; further ones are refused until some close. With the per-connection
  /// memory limit this bounds the server's memory. Each needs a file descriptor: keep it below
  /// RLIMIT_NOFILE (the serve command raises that limit and sizes this from it).
  unsigned max_connections = 1024;
  /// Connections open at once from one client address (0: no limit), so that one address cannot
  /// take them all.
  unsigned max_connections_per_client = 128;
  /// Seconds of inactivity after which a connection is closed (slow or idle clients).
  unsigned connection_timeout_seconds = 30;
  /// Bytes of request/header buffer per connection: a request line and headers longer than this
  /// are refused by libmicrohttpd (414 / 431).
  size_t connection_memory_limit_bytes = 32 * 1024;
  /// Longest request path accepted (bytes, query string excluded); longer ones get 414.
  size_t max_url_bytes = 8 * 1024;
  /// When set, requests each client address may make (not owned; must outlive the server);
  /// refused ones get 429 with Retry-After.
  RateLimiter* rate_limiter = nullptr;
  /// When set, one record per request answered (not owned; must outlive the server).
  AccessLog* access_log = nullptr;
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
/// kInvalidArgument for a host that does not resolve, or that is not loopback while there is
/// neither an access policy nor `public_archive`; kUnsupported for TLS without libmicrohttpd's TLS
/// support; kIo when the port cannot be bound (or the certificate is refused).
Result<std::unique_ptr<HttpServer>> StartHttpServer(ZarrView& view, const ServeOptions& options);

/// Starts a server, writes "serving ... on http(s)://HOST:PORT/" to `log`, blocks in
/// options.wait_for_shutdown, then stops cleanly. kInvalidArgument when wait_for_shutdown is empty.
Status Serve(ZarrView& view, const ServeOptions& options, std::ostream& log);

}  // namespace refzarr
