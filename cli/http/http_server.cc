#include "cli/http/http_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <exception>
#include <mutex>
#include <optional>
#include <span>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "cli/http/http_request.h"

namespace refzarr {
namespace {

using internal::AcceptsHtml;
using internal::kBrowserPrefix;
using internal::KeyFromUrlPath;
using internal::ParseRange;
using internal::RangeRequest;

struct ResponseDeleter {
  void operator()(MHD_Response* response) const { MHD_destroy_response(response); }
};
using ResponsePtr = std::unique_ptr<MHD_Response, ResponseDeleter>;

// Owns a file descriptor until it is handed to libmicrohttpd, which closes it with the response.
class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

// A response ready to queue.
struct Reply {
  unsigned status = MHD_HTTP_OK;
  ResponsePtr response;
  std::optional<uint64_t> body_bytes = 0;  // unset: streamed, not known when queued
  std::string error;                       // why, for an error reply (logged when 5xx)
};

// What a request carries from its first callback to its completion: for the access log, and the
// path with a signed URL's signature taken out.
struct RequestState {
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  std::time_t when = std::time(nullptr);
  std::string log_path;  // LogSafe, signature replaced by "-"
  std::string key_url;   // the path to serve: a signed URL's without its first three segments
  std::string principal = "-";
  std::string method;   // LogSafe
  std::string version;  // LogSafe
  unsigned status = 0;  // 0: no response queued (yet)
  std::optional<uint64_t> bytes;
};

// Entries asked of the view per page of a streamed listing.
constexpr size_t kListingPage = 1000;

constexpr char kAllowedMethods[] = "GET, HEAD, OPTIONS";

// Hands `bytes` to libmicrohttpd without copying: the string lives until the response is destroyed.
ResponsePtr BufferResponse(std::string bytes, uint64_t offset, uint64_t length) {
  auto* owned = new std::string(std::move(bytes));
  MHD_Response* response = MHD_create_response_from_buffer_with_free_callback_cls(
      length, owned->data() + offset, [](void* cls) { delete static_cast<std::string*>(cls); },
      owned);
  if (response == nullptr) delete owned;
  return ResponsePtr(response);
}

// Hands a window of shared bytes (a piece of a shard) to libmicrohttpd without copying.
ResponsePtr SharedBufferResponse(const ValuePiece& piece) {
  auto* owned = new std::shared_ptr<const std::string>(piece.bytes);
  MHD_Response* response = MHD_create_response_from_buffer_with_free_callback_cls(
      piece.length, const_cast<char*>(piece.view().data()),
      [](void* cls) { delete static_cast<std::shared_ptr<const std::string>*>(cls); }, owned);
  if (response == nullptr) delete owned;
  return ResponsePtr(response);
}

// Bytes per read of a source while a value of several pieces is sent.
constexpr size_t kPieceBlock = 256 * 1024;

// A value of several pieces (a range of a shard spanning inner chunks) sent as one response:
// libmicrohttpd has no scatter-gather over several descriptors, so each call fills its buffer
// from the pieces in order, pread()ing slices from the view's validated handles of their
// sources. Called from the connection's thread; Free when the response is done.
class PiecesStream {
 public:
  explicit PiecesStream(std::vector<ValuePiece> pieces) : pieces_(std::move(pieces)) {}

  static ssize_t Read(void* cls, uint64_t /*pos*/, char* buf, size_t max) {
    auto* self = static_cast<PiecesStream*>(cls);
    try {
      return self->Fill(buf, max);
    } catch (...) {
      return MHD_CONTENT_READER_END_WITH_ERROR;
    }
  }
  static void Free(void* cls) { delete static_cast<PiecesStream*>(cls); }

 private:
  ssize_t Fill(char* buf, size_t max) {
    size_t filled = 0;
    while (filled < max && next_ < pieces_.size()) {
      const ValuePiece& p = pieces_[next_];
      const uint64_t n = std::min<uint64_t>(max - filled, p.size() - done_);
      if (p.slice) {
        // A source that changed or cannot be read cuts the response short: never wrong bytes.
        Status read = p.slice->source->ReadInto(
            {p.slice->offset + done_, n}, std::as_writable_bytes(std::span(buf + filled, n)));
        if (!read.ok()) return MHD_CONTENT_READER_END_WITH_ERROR;
      } else {
        std::memcpy(buf + filled, p.view().data() + done_, n);
      }
      filled += n;
      done_ += n;
      if (done_ == p.size()) {
        ++next_;
        done_ = 0;
      }
    }
    if (filled == 0) return MHD_CONTENT_READER_END_OF_STREAM;
    return static_cast<ssize_t>(filled);
  }

  std::vector<ValuePiece> pieces_;
  size_t next_ = 0;   // the piece being sent
  uint64_t done_ = 0; // bytes of it sent
};

void AddHeader(MHD_Response* response, const char* name, const std::string& value) {
  MHD_add_response_header(response, name, value.c_str());
}

// Every response carries CORS headers, so browsers (vizarr, neuroglancer, the validator) can read
// values, lengths and ranges from any origin.
void AddCorsHeaders(MHD_Response* response) {
  MHD_add_response_header(response, "Access-Control-Allow-Origin", "*");
  MHD_add_response_header(response, "Access-Control-Expose-Headers",
                          "Content-Length, Content-Range, Accept-Ranges, Content-Type");
}

Reply TextReply(unsigned status, std::string text,
                const char* content_type = "text/plain; charset=utf-8") {
  Reply reply;
  reply.status = status;
  reply.body_bytes = text.size();
  uint64_t size = text.size();
  reply.response = BufferResponse(std::move(text), 0, size);
  if (reply.response) {
    MHD_add_response_header(reply.response.get(), MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    AddCorsHeaders(reply.response.get());
  }
  return reply;
}

Reply ErrorReply(unsigned status, std::string_view message) {
  Reply reply = TextReply(status, "refzarr: " + std::string(message) + "\n");
  reply.error = message;
  return reply;
}

// Keys are not decoded by libmicrohttpd: KeyFromUrlPath decodes them itself so that it sees "%2e%2e"
// and "%00" and can refuse them.
size_t KeepEscapes(void* /*cls*/, MHD_Connection* /*connection*/, char* s) { return std::strlen(s); }

// Printable ASCII for the access log; other bytes as \xNN so a URL cannot forge log lines.
std::string LogSafe(std::string_view text) {
  std::string out;
  for (unsigned char c : text) {
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out += static_cast<char>(c);
    } else {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    }
  }
  return out;
}

std::string ClientAddress(MHD_Connection* connection) {
  const MHD_ConnectionInfo* info =
      MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  if (info == nullptr || info->client_addr == nullptr) return "-";
  char text[INET6_ADDRSTRLEN] = "-";
  const sockaddr* addr = info->client_addr;
  if (addr->sa_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(addr)->sin_addr, text, sizeof text);
  } else if (addr->sa_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(addr)->sin6_addr, text, sizeof text);
  }
  return text;
}

bool IsLoopback(const sockaddr_storage& address) {
  if (address.ss_family == AF_INET) {
    uint32_t ip = ntohl(reinterpret_cast<const sockaddr_in*>(&address)->sin_addr.s_addr);
    return (ip >> 24) == 127;
  }
  if (address.ss_family == AF_INET6) {
    const in6_addr& ip = reinterpret_cast<const sockaddr_in6*>(&address)->sin6_addr;
    if (IN6_IS_ADDR_LOOPBACK(&ip)) return true;
    // ::ffff:127.x.y.z
    return IN6_IS_ADDR_V4MAPPED(&ip) && ip.s6_addr[12] == 127;
  }
  return false;
}

// The token of an "Authorization: Bearer TOKEN" header (scheme case-insensitive, RFC 9110).
std::optional<std::string_view> BearerToken(const char* header) {
  if (header == nullptr) return std::nullopt;
  std::string_view h = header;
  constexpr std::string_view kScheme = "bearer ";
  if (h.size() <= kScheme.size()) return std::nullopt;
  for (size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(h[i])) != kScheme[i]) return std::nullopt;
  }
  h.remove_prefix(kScheme.size());
  while (!h.empty() && h.front() == ' ') h.remove_prefix(1);
  while (!h.empty() && h.back() == ' ') h.remove_suffix(1);
  return h;
}

class MhdServer;

// A directory listing sent while it is read from the view, a page at a time: the first bytes go
// out at once and memory stays one page, however many entries the directory has. libmicrohttpd
// calls Read from the thread serving the connection and Free when the response is done.
class ListingStream {
 public:
  ListingStream(MhdServer& server, std::string key, std::vector<DirEntry> first_page)
      : server_(server), key_(std::move(key)), page_(std::move(first_page)) {
    pending_ = internal::RenderListingHead(key_);
    TakePage();
  }

  static ssize_t Read(void* cls, uint64_t /*pos*/, char* buf, size_t max) {
    auto* self = static_cast<ListingStream*>(cls);
    try {
      return self->Fill(buf, max);
    } catch (const std::exception& e) {
      self->Failed(e.what());
    } catch (...) {
      self->Failed("unknown error");
    }
    return MHD_CONTENT_READER_END_WITH_ERROR;
  }
  static void Free(void* cls) { delete static_cast<ListingStream*>(cls); }

 private:
  ssize_t Fill(char* buf, size_t max) {
    while (sent_ == pending_.size()) {
      if (finished_) return MHD_CONTENT_READER_END_OF_STREAM;
      pending_.clear();
      sent_ = 0;
      Result<std::optional<std::vector<DirEntry>>> next =
          server_view().ListPage(key_, after_, kListingPage);
      if (!next.ok()) {
        // The status line is gone already: all that is left is to cut the response short.
        Failed(next.status().message());
        return MHD_CONTENT_READER_END_WITH_ERROR;
      }
      page_ = next->has_value() ? std::move(**next) : std::vector<DirEntry>();
      TakePage();
    }
    size_t n = std::min(max, pending_.size() - sent_);
    std::memcpy(buf, pending_.data() + sent_, n);
    sent_ += n;
    return static_cast<ssize_t>(n);
  }

  // Renders the page just read; the last one (short) closes the document.
  void TakePage() {
    pending_ += internal::RenderListingEntries(page_);
    listed_ += page_.size();
    if (page_.size() < kListingPage) {
      pending_ += internal::RenderListingTail();
      finished_ = true;
    } else {
      after_ = page_.back().name;
    }
    page_.clear();
  }

  void Failed(std::string_view reason);
  ZarrView& server_view();

  MhdServer& server_;
  const std::string key_;
  std::vector<DirEntry> page_;
  std::string after_;
  std::string pending_;  // rendered bytes not yet handed to libmicrohttpd
  size_t sent_ = 0;
  uint64_t listed_ = 0;
  bool finished_ = false;
};

class MhdServer final : public HttpServer {
 public:
  MhdServer(ZarrView& view, ServeOptions options) : view_(view), options_(std::move(options)) {}
  ~MhdServer() override { Stop(); }

  Status Start() {
    sockaddr_storage address{};
    bool ipv6 = false;
    RETURN_IF_ERROR(Resolve(address, ipv6));
    if (!IsLoopback(address) && options_.access_policy == nullptr && !options_.public_archive) {
      return InvalidArgumentError(
          "refusing to serve on " + options_.host +
          ", which is not a loopback address, without an access policy: anyone who reaches it "
          "could read the whole archive. Give --tokens FILE and/or --signed-urls, or --public if "
          "the archive is meant to be world-readable");
    }
    const bool tls = !options_.tls_cert_pem.empty() || !options_.tls_key_pem.empty();
    if (tls && (options_.tls_cert_pem.empty() || options_.tls_key_pem.empty())) {
      return InvalidArgumentError("TLS needs both a certificate and a private key");
    }
    if (tls && MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
      return UnsupportedError("this libmicrohttpd was built without TLS (GnuTLS) support");
    }

    unsigned threads = options_.threads;
    if (threads == 0) threads = std::max(2u, std::thread::hardware_concurrency());
    std::vector<MHD_OptionItem> items = {
        {MHD_OPTION_EXTERNAL_LOGGER, reinterpret_cast<intptr_t>(&MhdServer::LogError), this},
        {MHD_OPTION_SOCK_ADDR, 0, &address},
        {MHD_OPTION_THREAD_POOL_SIZE, static_cast<intptr_t>(threads), nullptr},
        {MHD_OPTION_CONNECTION_LIMIT, static_cast<intptr_t>(options_.max_connections), nullptr},
        {MHD_OPTION_PER_IP_CONNECTION_LIMIT,
         static_cast<intptr_t>(options_.max_connections_per_client), nullptr},
        {MHD_OPTION_NOTIFY_COMPLETED, reinterpret_cast<intptr_t>(&MhdServer::Completed), this},
        {MHD_OPTION_CONNECTION_TIMEOUT, static_cast<intptr_t>(options_.connection_timeout_seconds),
         nullptr},
        {MHD_OPTION_CONNECTION_MEMORY_LIMIT,
         static_cast<intptr_t>(options_.connection_memory_limit_bytes), nullptr},
        {MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024, nullptr},
        {MHD_OPTION_UNESCAPE_CALLBACK, reinterpret_cast<intptr_t>(&KeepEscapes), nullptr},
    };
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    if (ipv6) flags |= MHD_USE_IPv6;
    if (tls) {
      // libmicrohttpd keeps the pointers: options_ lives as long as the daemon.
      flags |= MHD_USE_TLS;
      items.push_back({MHD_OPTION_HTTPS_MEM_CERT, 0,
                       const_cast<char*>(options_.tls_cert_pem.c_str())});
      items.push_back({MHD_OPTION_HTTPS_MEM_KEY, 0,
                       const_cast<char*>(options_.tls_key_pem.c_str())});
    }
    items.push_back({MHD_OPTION_END, 0, nullptr});
    daemon_ = MHD_start_daemon(flags, options_.port, nullptr, nullptr, &MhdServer::Dispatch, this,
                               MHD_OPTION_ARRAY, items.data(), MHD_OPTION_END);
    if (daemon_ == nullptr) {
      std::lock_guard<std::mutex> lock(log_mutex_);
      return IoError("cannot serve on " + options_.host + ":" + std::to_string(options_.port) +
                     (last_error_.empty() ? "" : ": " + last_error_));
    }
    const MHD_DaemonInfo* info = MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_BIND_PORT);
    port_ = info != nullptr ? info->port : options_.port;
    return OkStatus();
  }

  uint16_t Port() const override { return port_; }

  ZarrView& view() { return view_; }

  // One line on the error log (if any), written at once.
  void LogErrorLine(const std::string& line) {
    if (options_.error_log == nullptr) return;
    std::lock_guard<std::mutex> lock(log_mutex_);
    *options_.error_log << "refzarr serve: " << line << std::endl;
  }

  void Stop() override {
    std::lock_guard<std::mutex> lock(stop_mutex_);
    if (daemon_ == nullptr) return;
    MHD_stop_daemon(daemon_);
    daemon_ = nullptr;
  }

 private:
  Status Resolve(sockaddr_storage& address, bool& ipv6) const {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* found = nullptr;
    std::string port = std::to_string(options_.port);
    int rc = getaddrinfo(options_.host.c_str(), port.c_str(), &hints, &found);
    if (rc != 0 || found == nullptr) {
      return InvalidArgumentError("cannot resolve host '" + options_.host + "': " + gai_strerror(rc));
    }
    std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> owner(found, &freeaddrinfo);
    std::memcpy(&address, found->ai_addr, found->ai_addrlen);
    ipv6 = found->ai_family == AF_INET6;
    return OkStatus();
  }

  static void LogError(void* cls, const char* format, va_list args) {
    auto* self = static_cast<MhdServer*>(cls);
    char text[1024];
    std::vsnprintf(text, sizeof text, format, args);
    std::string message(text);
    while (!message.empty() && message.back() == '\n') message.pop_back();
    std::lock_guard<std::mutex> lock(self->log_mutex_);
    self->last_error_ = message;
    if (self->options_.error_log != nullptr) {
      *self->options_.error_log << "refzarr serve: " << message << std::endl;
    }
  }

  // libmicrohttpd's request callback; no exception may cross it.
  static MHD_Result Dispatch(void* cls, MHD_Connection* connection, const char* url,
                             const char* method, const char* version, const char* /*upload_data*/,
                             size_t* upload_data_size, void** req_cls) {
    auto* self = static_cast<MhdServer*>(cls);
    // libmicrohttpd closes the connection when a response is queued before the request was read to
    // its end, so GET/HEAD/OPTIONS answer on the second call, when it has been. Other methods are
    // refused at once: their bodies are not worth reading, and closing is fine for a 405.
    std::string_view m = method;
    bool readable = m == MHD_HTTP_METHOD_GET || m == MHD_HTTP_METHOD_HEAD ||
                    m == MHD_HTTP_METHOD_OPTIONS;
    if (*req_cls == nullptr) {
      // Freed in Completed, which libmicrohttpd calls for every request it called us for.
      auto* state = new (std::nothrow) RequestState;
      if (state == nullptr) return MHD_NO;
      *req_cls = state;
      if (readable) return MHD_YES;
    }
    auto& state = *static_cast<RequestState*>(*req_cls);
    if (*upload_data_size != 0) {
      *upload_data_size = 0;  // A body on GET is ignored.
      return MHD_YES;
    }
    Reply reply;
    try {
      state.log_path = LogSafe(url);
      std::optional<Reply> refused = self->Admit(connection, url, method, state);
      reply = refused ? std::move(*refused) : self->Handle(connection, state.key_url, method);
    } catch (const std::exception& e) {
      reply = ErrorReply(MHD_HTTP_INTERNAL_SERVER_ERROR, e.what());
    } catch (...) {
      reply = ErrorReply(MHD_HTTP_INTERNAL_SERVER_ERROR, "unknown error");
    }
    if (reply.status >= 500) {
      // Every server error is on the error log with its key and reason: clients such as
      // zarr-python turn a failed chunk into fill values and tell no one.
      self->LogErrorLine(LogSafe(method) + " " + state.log_path + ": " +
                         std::to_string(reply.status) + ": " + LogSafe(reply.error));
    }
    if (!reply.response) return MHD_NO;  // Out of memory: drop the connection.
    MHD_Result queued = MHD_queue_response(connection, reply.status, reply.response.get());
    if (queued == MHD_YES) {
      state.status = reply.status;
      state.bytes = m == MHD_HTTP_METHOD_HEAD ? std::optional<uint64_t>(0) : reply.body_bytes;
      state.method = LogSafe(method);
      state.version = LogSafe(version);
    }
    return queued;
  }

  // The request-admission path, before the view is asked anything: URL size, the client's rate,
  // the access policy. Returns the refusal, or nullopt with state.key_url set to the path to
  // serve (a signed URL's path without its signature) and state.principal to who was let in.
  std::optional<Reply> Admit(MHD_Connection* connection, std::string_view url,
                             std::string_view method, RequestState& state) {
    state.key_url = url;
    if (url.size() > options_.max_url_bytes) {
      state.log_path = LogSafe(url.substr(0, 64)) + "...";
      return ErrorReply(MHD_HTTP_URI_TOO_LONG, "request path of " + std::to_string(url.size()) +
                                                   " bytes; at most " +
                                                   std::to_string(options_.max_url_bytes));
    }
    if (options_.rate_limiter != nullptr && !options_.rate_limiter->Admit(ClientAddress(connection))) {
      Reply reply = ErrorReply(MHD_HTTP_TOO_MANY_REQUESTS, "too many requests from this address");
      if (reply.response) MHD_add_response_header(reply.response.get(), "Retry-After", "1");
      return reply;
    }
    const AccessPolicy* policy = options_.access_policy;
    // A preflight carries no credentials (browsers never send them there).
    if (policy == nullptr || method == MHD_HTTP_METHOD_OPTIONS) return std::nullopt;
    Result<std::optional<SignedUrlPath>> signed_url = SplitSignedPath(url);
    if (!signed_url.ok()) {
      state.log_path = "/" + std::string(kSignedPathSegment) + "/-";
      return ErrorReply(MHD_HTTP_FORBIDDEN, signed_url.status().message());
    }
    if (signed_url->has_value()) {
      const SignedUrlPath& s = **signed_url;
      state.key_url = s.rest;
      // The signature is a credential: it never reaches a log.
      state.log_path = "/" + std::string(kSignedPathSegment) + "/" + std::to_string(s.expires) +
                       "/-" + LogSafe(s.rest);
    }
    Result<internal::RequestKey> key = KeyFromUrlPath(state.key_url);
    if (!key.ok()) return std::nullopt;  // Handle answers 400.
    if (!options_.web_assets.empty() && IsBrowserAsset(key->key)) return std::nullopt;
    AccessRequest request;
    request.key = key->key;
    request.bearer = BearerToken(
        MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION));
    request.signed_url = *signed_url;
    AccessDecision decision = policy->Check(request);
    state.principal = decision.principal;
    switch (decision.verdict) {
      case AccessVerdict::kAllow:
        return std::nullopt;
      case AccessVerdict::kHidden:
        // Word for word what a key or directory that does not exist gets.
        return ErrorReply(MHD_HTTP_NOT_FOUND, key->trailing_slash
                                                  ? "no directory '" + key->key + "'"
                                                  : "no key '" + key->key + "'");
      case AccessVerdict::kForbidden:
        return ErrorReply(MHD_HTTP_FORBIDDEN, decision.reason);
      case AccessVerdict::kUnauthorized:
        break;
    }
    Reply reply = ErrorReply(MHD_HTTP_UNAUTHORIZED, decision.reason);
    if (reply.response) {
      MHD_add_response_header(reply.response.get(), MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                              "Bearer realm=\"refzarr\"");
    }
    return reply;
  }

  static bool IsBrowserAsset(std::string_view key) {
    return key.substr(0, kBrowserPrefix.size()) == kBrowserPrefix &&
           (key.size() == kBrowserPrefix.size() || key[kBrowserPrefix.size()] == '/');
  }

  // libmicrohttpd's completion callback: the response went out (or the connection ended).
  static void Completed(void* cls, MHD_Connection* connection, void** req_cls,
                        MHD_RequestTerminationCode code) {
    auto* self = static_cast<MhdServer*>(cls);
    std::unique_ptr<RequestState> state(static_cast<RequestState*>(*req_cls));
    *req_cls = nullptr;
    if (state == nullptr || state->status == 0 || self->options_.access_log == nullptr) return;
    try {
      AccessRecord record;
      record.client = ClientAddress(connection);
      record.principal = state->principal;
      record.when = state->when;
      record.method = std::move(state->method);
      record.path = std::move(state->log_path);
      record.version = std::move(state->version);
      record.status = state->status;
      // Cut short (client gone, time-out): how much went out is not known.
      if (code == MHD_REQUEST_TERMINATED_COMPLETED_OK) record.bytes = state->bytes;
      record.seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - state->start).count();
      self->options_.access_log->Record(record);
    } catch (...) {
      // No exception crosses libmicrohttpd; a lost log line is all that is lost.
    }
  }

  Reply Handle(MHD_Connection* connection, std::string_view url, std::string_view method) {
    if (method == MHD_HTTP_METHOD_OPTIONS) return Preflight();
    if (method != MHD_HTTP_METHOD_GET && method != MHD_HTTP_METHOD_HEAD) {
      Reply reply = ErrorReply(MHD_HTTP_METHOD_NOT_ALLOWED,
                               "method " + LogSafe(method) + " not allowed: the store is read-only");
      if (reply.response) MHD_add_response_header(reply.response.get(), "Allow", kAllowedMethods);
      return reply;
    }
    Result<internal::RequestKey> key = KeyFromUrlPath(url);
    if (!key.ok()) return ErrorReply(MHD_HTTP_BAD_REQUEST, key.status().message());
    if (!options_.web_assets.empty()) {
      std::string_view k = key->key;
      if (IsBrowserAsset(k)) return Asset(k.substr(std::min(k.size(), kBrowserPrefix.size() + 1)));
      if (key->trailing_slash) {
        const char* accept =
            MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT);
        if (accept != nullptr && AcceptsHtml(accept)) {
          // Only a directory of the view gets the page; anything else answers as a listing
          // would (404, or a stale file's 500 naming the source).
          Result<std::pair<EntryKind, uint64_t>> stat = view_.Stat(key->key);
          if (stat.ok() && stat->first == EntryKind::kDirectory) return BrowserPage(key->key);
        }
      }
    }
    if (key->trailing_slash) return Listing(key->key, method == MHD_HTTP_METHOD_HEAD);

    Result<std::optional<Value>> value = view_.Get(key->key);
    if (!value.ok()) return ViewError(value.status());
    if (!value->has_value()) {
      // A group asked for without its slash: send the browser to the listing, so relative links work.
      Result<std::pair<EntryKind, uint64_t>> stat = view_.Stat(key->key);
      if (stat.ok() && stat->first == EntryKind::kDirectory) {
        Reply reply = TextReply(MHD_HTTP_MOVED_PERMANENTLY, "directory\n");
        if (reply.response) {
          AddHeader(reply.response.get(), MHD_HTTP_HEADER_LOCATION,
                    "/" + internal::EscapeUrlPath(key->key) + "/");
        }
        return reply;
      }
      return ErrorReply(MHD_HTTP_NOT_FOUND, "no key '" + key->key + "'");
    }
    return ServeValue(connection, std::move(**value));
  }

  // A file of the browser pages (name: the path after the prefix).
  Reply Asset(std::string_view name) {
    for (const WebAsset& asset : options_.web_assets) {
      if (asset.name != name) continue;
      Reply reply;
      reply.body_bytes = asset.bytes.size();
      // Static storage: handed over without a copy.
      reply.response.reset(MHD_create_response_from_buffer(
          asset.bytes.size(), const_cast<char*>(asset.bytes.data()), MHD_RESPMEM_PERSISTENT));
      if (!reply.response)
        return ErrorReply(MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot create a response");
      MHD_Response* r = reply.response.get();
      AddHeader(r, MHD_HTTP_HEADER_CONTENT_TYPE, std::string(asset.content_type));
      MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
      // Files change only with the binary; no-cache has the browser check, never use a stale one.
      MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
      AddCorsHeaders(r);
      return reply;
    }
    return ErrorReply(MHD_HTTP_NOT_FOUND, "no browser page file '" + std::string(name) + "'");
  }

  // The page a browser gets for a directory: the bundled script draws it. Its CSP allows nothing
  // from anywhere but this server. 'unsafe-eval' is for numcodecs.js's blosc, zstd and lz4
  // decoders: WebAssembly, whose Emscripten (embind) glue makes functions with the Function
  // constructor; without it every blosc chunk fails to decode.
  Reply BrowserPage(const std::string& key) {
    Reply reply =
        TextReply(MHD_HTTP_OK, internal::RenderBrowserPage(key, view_.options().zarr_format),
                  "text/html; charset=utf-8");
    if (!reply.response) return reply;
    MHD_Response* r = reply.response.get();
    MHD_add_response_header(r, MHD_HTTP_HEADER_VARY, "Accept");
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(r, "Content-Security-Policy",
                            "default-src 'self'; script-src 'self' 'unsafe-eval'; "
                            "img-src 'self' data: blob:; object-src 'none'; base-uri 'none'; "
                            "form-action 'none'; frame-ancestors 'none'");
    return reply;
  }

  Reply Preflight() {
    Reply reply;
    reply.status = MHD_HTTP_NO_CONTENT;
    reply.response = BufferResponse(std::string(), 0, 0);
    if (!reply.response) return reply;
    MHD_Response* r = reply.response.get();
    AddCorsHeaders(r);
    MHD_add_response_header(r, "Access-Control-Allow-Methods", kAllowedMethods);
    MHD_add_response_header(
        r, "Access-Control-Allow-Headers",
        "Range, Content-Type, If-None-Match, If-Modified-Since, Cache-Control, Authorization");
    MHD_add_response_header(r, "Access-Control-Max-Age", "86400");
    MHD_add_response_header(r, "Allow", kAllowedMethods);
    return reply;
  }

  Reply ViewError(const Status& status) {
    return ErrorReply(internal::HttpStatusFor(status), status.message());
  }

  // The first page decides the status (404, a stale source's 500); the rest is streamed.
  Reply Listing(const std::string& key, bool head) {
    Result<std::optional<std::vector<DirEntry>>> first = view_.ListPage(key, "", kListingPage);
    if (!first.ok()) return ViewError(first.status());
    if (!first->has_value()) return ErrorReply(MHD_HTTP_NOT_FOUND, "no directory '" + key + "'");
    auto* stream = new ListingStream(*this, key, std::move(**first));
    Reply reply;
    reply.body_bytes.reset();
    reply.response.reset(MHD_create_response_from_callback(
        MHD_SIZE_UNKNOWN, 32 * 1024, &ListingStream::Read, stream, &ListingStream::Free));
    if (!reply.response) {
      delete stream;
      return ErrorReply(MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot create a response");
    }
    MHD_add_response_header(reply.response.get(), MHD_HTTP_HEADER_CONTENT_TYPE,
                            "text/html; charset=utf-8");
    AddCorsHeaders(reply.response.get());
    // The same URL is a browser page for browsers (Accept: text/html): caches must tell them apart.
    if (!options_.web_assets.empty()) {
      MHD_add_response_header(reply.response.get(), MHD_HTTP_HEADER_VARY, "Accept");
    }
    // libmicrohttpd 0.9.75 sends the last-chunk line ("0\r\n\r\n") of a chunked response even
    // to HEAD, where the next response on the connection is expected: the client reads it as
    // garbage ("HTTP/0.9"). Closing after a HEAD of a listing keeps the stray bytes harmless.
    if (head) MHD_add_response_header(reply.response.get(), MHD_HTTP_HEADER_CONNECTION, "close");
    return reply;
  }

  Reply ServeValue(MHD_Connection* connection, Value value) {
    const uint64_t size = value.size();
    const char* range_header =
        MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_RANGE);
    RangeRequest range = range_header != nullptr ? ParseRange(range_header, size) : RangeRequest{};
    if (range.kind == RangeRequest::kUnsatisfiable) {
      Reply reply = ErrorReply(MHD_HTTP_RANGE_NOT_SATISFIABLE,
                               "range '" + LogSafe(range_header) + "' outside the value's " +
                                   std::to_string(size) + " bytes");
      if (reply.response) {
        AddHeader(reply.response.get(), MHD_HTTP_HEADER_CONTENT_RANGE,
                  "bytes */" + std::to_string(size));
      }
      return reply;
    }
    uint64_t offset = 0;
    uint64_t length = size;
    if (range.kind == RangeRequest::kPartial) {
      offset = range.offset;
      length = range.length;
    }

    Reply reply;
    if (!value.pieces.empty()) {
      // A shard: the pieces behind the range. One piece (an inner chunk, the index) goes out as
      // a plain value does, a local slice zero-copy; several go out as one streamed response.
      std::vector<ValuePiece> parts = ValueRange(value, offset, length);
      if (parts.size() == 1 && parts[0].slice) {
        value.slice = std::move(parts[0].slice);
        offset = 0;
      } else if (parts.size() == 1) {
        reply.response = SharedBufferResponse(parts[0]);
      } else {
        auto* stream = new PiecesStream(std::move(parts));
        reply.response.reset(MHD_create_response_from_callback(
            length, kPieceBlock, &PiecesStream::Read, stream, &PiecesStream::Free));
        if (!reply.response) delete stream;
      }
    }
    if (reply.response) {
      // Made above from the pieces.
    } else if (value.slice) {
      // Zero-copy: libmicrohttpd sendfile()s from the view's own validated descriptor of the
      // source (a duplicate, which the response closes), never from a file opened by name here.
      const FileSlice& slice = *value.slice;
      const int local = slice.source ? slice.source->LocalDescriptor() : -1;
      if (local >= 0) {
        // (For a shard's piece, `offset` is 0: the slice is the range already.)
        FileDescriptor fd(::fcntl(local, F_DUPFD_CLOEXEC, 0));
        if (fd.get() < 0) {
          return ErrorReply(MHD_HTTP_INTERNAL_SERVER_ERROR,
                            "duplicate source descriptor: " + std::string(std::strerror(errno)));
        }
        reply.response.reset(
            MHD_create_response_from_fd_at_offset64(length, fd.get(), slice.offset + offset));
        if (reply.response) fd.release();
      } else {
        Value one;
        one.slice = slice;
        Result<std::string> bytes = view_.Materialize(one);
        if (!bytes.ok()) return ErrorReply(MHD_HTTP_INTERNAL_SERVER_ERROR, bytes.status().message());
        reply.response = BufferResponse(std::move(*bytes), offset, length);
      }
    } else {
      reply.response = BufferResponse(std::move(value.bytes), offset, length);
    }
    if (!reply.response) {
      return ErrorReply(MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot create a response");
    }
    reply.body_bytes = length;
    MHD_Response* r = reply.response.get();
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                            value.is_metadata ? "application/json" : "application/octet-stream");
    MHD_add_response_header(r, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
    AddCorsHeaders(r);
    if (range.kind == RangeRequest::kPartial) {
      reply.status = MHD_HTTP_PARTIAL_CONTENT;
      AddHeader(r, MHD_HTTP_HEADER_CONTENT_RANGE,
                "bytes " + std::to_string(offset) + "-" + std::to_string(offset + length - 1) +
                    "/" + std::to_string(size));
    }
    return reply;
  }

  ZarrView& view_;
  const ServeOptions options_;
  MHD_Daemon* daemon_ = nullptr;
  uint16_t port_ = 0;
  std::mutex stop_mutex_;
  std::mutex log_mutex_;  // Guards the error log and last_error_.
  std::string last_error_;
};

void ListingStream::Failed(std::string_view reason) {
  std::string path = key_.empty() ? "/" : "/" + key_ + "/";
  server_.LogErrorLine("GET " + LogSafe(path) + ": listing cut short after " +
                       std::to_string(listed_) + " entries: " + LogSafe(reason));
}

ZarrView& ListingStream::server_view() { return server_.view(); }

}  // namespace

Result<std::unique_ptr<HttpServer>> StartHttpServer(ZarrView& view, const ServeOptions& options) {
  auto server = std::make_unique<MhdServer>(view, options);
  RETURN_IF_ERROR(server->Start());
  return std::unique_ptr<HttpServer>(std::move(server));
}

Status Serve(ZarrView& view, const ServeOptions& options, std::ostream& log) {
  if (!options.wait_for_shutdown) {
    return InvalidArgumentError("Serve needs ServeOptions::wait_for_shutdown");
  }
  ASSIGN_OR_RETURN(std::unique_ptr<HttpServer> server, StartHttpServer(view, options));
  std::string host = options.host.find(':') != std::string::npos ? "[" + options.host + "]"
                                                                  : options.host;
  const char* scheme = options.tls_cert_pem.empty() ? "http" : "https";
  log << "refzarr: serving Zarr v" << view.options().zarr_format << " on " << scheme << "://"
      << host << ":"
      << server->Port() << "/ (Ctrl-C to stop)" << std::endl;
  options.wait_for_shutdown();
  log << "refzarr: shutting down" << std::endl;
  server->Stop();
  return OkStatus();
}

}  // namespace refzarr
