#include "formats/remote/http_client.h"

#include <curl/curl.h>

#include <pugixml.hpp>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <random>
#include <thread>

namespace refzarr {
namespace {

using Clock = std::chrono::steady_clock;

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string Trim(std::string_view s) {
  size_t a = 0, b = s.size();
  while (a < b && std::isspace(static_cast<unsigned char>(s[a]))) ++a;
  while (b > a && std::isspace(static_cast<unsigned char>(s[b - 1]))) --b;
  return std::string(s.substr(a, b - a));
}

// curl failures worth another try: the connection, not the request, went wrong.
bool TransientCurl(CURLcode code) {
  switch (code) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      return true;
    default:
      return false;
  }
}

bool TransientStatus(long status) { return status == 429 || (status >= 500 && status != 501); }

// The state of one request on its way; reused across its tries.
struct Transfer {
  const HttpRequest* request = nullptr;
  HttpResponse response;
  CURL* easy = nullptr;
  curl_slist* headers = nullptr;
  char error[CURL_ERROR_SIZE] = {};
  uint64_t written = 0;     // bytes of the asked range received
  uint64_t position = 0;    // body bytes seen (to skip up to the range when it was ignored)
  bool body_started = false;
  bool mismatch = false;    // the answer's Content-Range does not hold the range asked for
  bool complete_early = false;  // an answer larger than the range read as far as it: stopped on purpose
  bool unsatisfiable = false;   // a 206 for a range wholly past the end: stopped at its headers
  Clock::time_point started;
  Status outcome;          // of the last try
  bool retry = false;      // the last try failed in a way worth another
  std::chrono::milliseconds retry_after{-1};

  void ResetForTry() {
    response.headers.clear();
    response.body.clear();
    response.body_bytes = 0;
    response.status = 0;
    written = position = 0;
    body_started = mismatch = complete_early = unsatisfiable = false;
    error[0] = 0;
    outcome = OkStatus();
    retry = false;
    retry_after = std::chrono::milliseconds(-1);
  }
};

size_t OnHeader(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t n = size * count;
  std::string_view line(data, n);
  if (line.starts_with("HTTP/")) {
    // A new response (after a redirect or a 100 Continue): only the last one's fields count.
    t->response.headers.clear();
    const size_t sp = line.find(' ');
    if (sp != std::string_view::npos) t->response.status = std::atol(std::string(line.substr(sp + 1, 3)).c_str());
    return n;
  }
  if (line == "\r\n" || line == "\n") {
    // The end of a response's header block. A 206 whose Content-Range says the object ends
    // before the range starts ("bytes 0-0/0": s3rver's answer for an empty object, with a
    // Content-Length of 1 it never sends) is the 416 it means: its body is not waited for.
    const HttpRequest& r = *t->request;
    if (t->response.status == 206 && r.range) {
      unsigned long long a = 0, b = 0, total = 0;
      const std::string cr = t->response.Header("content-range");
      if (std::sscanf(cr.c_str(), "bytes %llu-%llu/%llu", &a, &b, &total) == 3 &&
          r.range->offset >= total) {
        t->unsatisfiable = true;
        return 0;  // stops the transfer
      }
    }
    return n;
  }
  const size_t colon = line.find(':');
  if (colon != std::string_view::npos) {
    t->response.headers[Lower(Trim(line.substr(0, colon)))] = Trim(line.substr(colon + 1));
  }
  return n;
}

size_t OnBody(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t n = size * count;
  const HttpRequest& r = *t->request;
  const long status = t->response.status;
  if (r.into.empty() || (status != 206 && status != 200)) {
    // A body kept whole (listings), or an error body (kept in part, for the message).
    if (r.into.empty() || t->response.body.size() < 65536) t->response.body.append(data, n);
    t->response.body_bytes += n;
    return n;
  }
  if (!t->body_started) {
    t->body_started = true;
    // Where the body starts in the file: 0 for a whole-file answer (the server ignored the
    // range), else the first byte of its Content-Range, which may start before the range asked
    // for and end after it (some servers round ranges): the bytes around it are passed over.
    t->position = 0;
    if (status == 206) {
      unsigned long long a = 0, b = 0;
      const std::string cr = t->response.Header("content-range");
      if (std::sscanf(cr.c_str(), "bytes %llu-%llu", &a, &b) != 2 || a > r.range->offset ||
          b + 1 < r.range->offset + r.range->length) {
        t->mismatch = true;
        return 0;
      }
      t->position = a;
    }
  }
  const uint64_t skip = r.range->offset > t->position ? r.range->offset - t->position : 0;
  const size_t taken = static_cast<size_t>(std::min<uint64_t>(skip, n));
  t->position += taken;
  const size_t rest = n - taken;
  const uint64_t room = r.into.size() - t->written;
  const size_t copy = static_cast<size_t>(std::min<uint64_t>(room, rest));
  std::memcpy(r.into.data() + t->written, data + taken, copy);
  t->written += copy;
  t->position += copy;
  t->response.body_bytes += copy;
  if (copy < rest) {
    t->complete_early = true;  // the range is read; what follows is not wanted
    return 0;                  // stops the transfer
  }
  return n;
}

class CurlHttpClient final : public HttpClient {
 public:
  explicit CurlHttpClient(HttpClientOptions options) : options_(std::move(options)) {
    static const CURLcode init = curl_global_init(CURL_GLOBAL_DEFAULT);
    (void)init;
    share_ = curl_share_init();
    curl_share_setopt(share_, CURLSHOPT_LOCKFUNC, &Lock);
    curl_share_setopt(share_, CURLSHOPT_UNLOCKFUNC, &Unlock);
    curl_share_setopt(share_, CURLSHOPT_USERDATA, this);
    curl_share_setopt(share_, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
    curl_share_setopt(share_, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(share_, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
  }

  ~CurlHttpClient() override {
    for (CURL* e : idle_) curl_easy_cleanup(e);
    curl_share_cleanup(share_);
  }

  Result<HttpResponse> Perform(const HttpRequest& request) override {
    std::vector<Result<HttpResponse>> out = PerformAll(std::span<const HttpRequest>(&request, 1));
    return std::move(out[0]);
  }

  std::vector<Result<HttpResponse>> PerformAll(std::span<const HttpRequest> requests) override {
    std::vector<Transfer> transfers(requests.size());
    std::vector<size_t> pending;
    const Clock::time_point start = Clock::now();
    for (size_t i = 0; i < requests.size(); ++i) {
      transfers[i].request = &requests[i];
      transfers[i].started = start;
      pending.push_back(i);
    }
    std::mt19937_64 rng(std::random_device{}());
    for (int attempt = 0; !pending.empty(); ++attempt) {
      RunRound(transfers, pending);
      std::vector<size_t> again;
      std::chrono::milliseconds wait{0};
      for (size_t i : pending) {
        Transfer& t = transfers[i];
        const auto elapsed =
            std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t.started);
        if (!t.retry || t.response.attempts >= options_.retry.attempts ||
            elapsed >= options_.retry.budget) {
          continue;
        }
        const int64_t cap = std::min<int64_t>(options_.retry.max_delay.count(),
                                              options_.retry.base_delay.count() << std::min(attempt, 20));
        std::chrono::milliseconds delay(
            std::uniform_int_distribution<int64_t>(0, std::max<int64_t>(cap, 1))(rng));
        if (t.retry_after.count() >= 0 && t.retry_after <= options_.retry.max_delay) {
          delay = t.retry_after;
        }
        delay = std::min(delay, options_.retry.budget - elapsed);
        wait = std::max(wait, delay);
        again.push_back(i);
      }
      if (!again.empty() && wait.count() > 0) std::this_thread::sleep_for(wait);
      retries_ += again.size();
      pending = std::move(again);
    }
    std::vector<Result<HttpResponse>> out;
    out.reserve(transfers.size());
    for (Transfer& t : transfers) {
      if (t.outcome.ok()) {
        out.emplace_back(std::move(t.response));
      } else {
        const int tries = t.response.attempts;
        out.emplace_back(tries > 1 ? IoError(t.outcome.message() + " (after " +
                                             std::to_string(tries) + " tries)")
                                   : t.outcome);
      }
    }
    return out;
  }

  HttpClientStats Stats() const override { return {requests_.load(), retries_.load(), bytes_.load()}; }

 private:
  static void Lock(CURL*, curl_lock_data data, curl_lock_access, void* user) {
    static_cast<CurlHttpClient*>(user)->locks_[static_cast<size_t>(data) % kLocks].lock();
  }
  static void Unlock(CURL*, curl_lock_data data, void* user) {
    static_cast<CurlHttpClient*>(user)->locks_[static_cast<size_t>(data) % kLocks].unlock();
  }

  CURL* Acquire() {
    {
      std::lock_guard lock(idle_mu_);
      if (!idle_.empty()) {
        CURL* e = idle_.back();
        idle_.pop_back();
        curl_easy_reset(e);
        return e;
      }
    }
    return curl_easy_init();
  }

  void Release(CURL* e) {
    std::lock_guard lock(idle_mu_);
    if (idle_.size() < 64) {
      idle_.push_back(e);
    } else {
      curl_easy_cleanup(e);
    }
  }

  void Configure(Transfer& t) {
    const HttpRequest& r = *t.request;
    CURL* e = t.easy;
    curl_easy_setopt(e, CURLOPT_SHARE, share_);
    curl_easy_setopt(e, CURLOPT_URL, r.url.c_str());
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, 8L);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_2TLS));
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options_.connect_timeout.count()));
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME,
                     std::max(1L, static_cast<long>(options_.stall_timeout.count() / 1000)));
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t.error);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &OnHeader);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, &t);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &OnBody);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, nullptr);  // ranges are of the stored bytes
    curl_easy_setopt(e, CURLOPT_USERAGENT, "refzarr");
    if (!options_.ca_file.empty()) curl_easy_setopt(e, CURLOPT_CAINFO, options_.ca_file.c_str());
    if (r.method == "HEAD") curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    std::string range;
    if (r.range) {
      range = std::to_string(r.range->offset) + "-" +
              std::to_string(r.range->offset + std::max<uint64_t>(r.range->length, 1) - 1);
      curl_easy_setopt(e, CURLOPT_RANGE, range.c_str());  // copied by libcurl
    }
    if (r.netrc) curl_easy_setopt(e, CURLOPT_NETRC, static_cast<long>(CURL_NETRC_OPTIONAL));
    if (!r.aws_sigv4.empty()) {
      curl_easy_setopt(e, CURLOPT_AWS_SIGV4, r.aws_sigv4.c_str());
      curl_easy_setopt(e, CURLOPT_USERPWD, r.userpwd.c_str());
    }
    if (t.headers) curl_slist_free_all(t.headers);
    t.headers = nullptr;
    for (const std::string& h : r.headers) t.headers = curl_slist_append(t.headers, h.c_str());
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, t.headers);
  }

  // One try of every pending transfer, concurrently on one multi handle.
  void RunRound(std::vector<Transfer>& transfers, const std::vector<size_t>& pending) {
    CURLM* multi = curl_multi_init();
    curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, static_cast<long>(options_.max_parallel));
    size_t next = 0;
    int running = 0;
    auto add = [&] {
      while (next < pending.size() && running < options_.max_parallel) {
        Transfer& t = transfers[pending[next++]];
        t.ResetForTry();
        t.easy = Acquire();
        Configure(t);
        curl_easy_setopt(t.easy, CURLOPT_PRIVATE, &t);
        ++t.response.attempts;
        ++requests_;
        curl_multi_add_handle(multi, t.easy);
        ++running;
      }
    };
    add();
    while (running > 0) {
      int still = 0;
      curl_multi_perform(multi, &still);
      int queued = 0;
      while (CURLMsg* msg = curl_multi_info_read(multi, &queued)) {
        if (msg->msg != CURLMSG_DONE) continue;
        Transfer* t = nullptr;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, reinterpret_cast<char**>(&t));
        Finish(*t, msg->data.result);
        curl_multi_remove_handle(multi, t->easy);
        Release(t->easy);
        t->easy = nullptr;
        --running;
      }
      add();
      if (running > 0) curl_multi_poll(multi, nullptr, 0, 100, nullptr);
    }
    curl_multi_cleanup(multi);
    for (size_t i : pending) {
      if (transfers[i].headers) curl_slist_free_all(transfers[i].headers);
      transfers[i].headers = nullptr;
    }
  }

  void Finish(Transfer& t, CURLcode code) {
    const HttpRequest& r = *t.request;
    bytes_ += t.response.body_bytes;
    long status = 0;
    curl_easy_getinfo(t.easy, CURLINFO_RESPONSE_CODE, &status);
    if (status) t.response.status = status;
    if (code == CURLE_WRITE_ERROR && t.complete_early) code = CURLE_OK;
    if (code == CURLE_WRITE_ERROR && t.unsatisfiable) {
      code = CURLE_OK;
      t.response.status = 416;
      t.response.body.clear();
      return;
    }
    if (t.mismatch) {
      t.outcome = IoError(r.display + ": asked for bytes " + std::to_string(r.range->offset) + "-" +
                          std::to_string(r.range->offset + r.range->length - 1) +
                          ", the server answered with '" + t.response.Header("content-range") + "'");
      t.retry = true;
      return;
    }
    if (code != CURLE_OK) {
      t.outcome = FromCurl(code, r.display, t.error);
      t.retry = TransientCurl(code);
      return;
    }
    if (TransientStatus(t.response.status)) {
      t.outcome = IoError(r.display + ": " + DescribeHttpStatus(t.response));
      t.retry = true;
      const std::string after = t.response.Header("retry-after");
      if (!after.empty() && std::all_of(after.begin(), after.end(), ::isdigit)) {
        t.retry_after = std::chrono::milliseconds(std::atoll(after.c_str()) * 1000);
      }
      return;
    }
    if (r.range && !r.into.empty() && (t.response.status == 206 || t.response.status == 200)) {
      // A whole-object answer (200) that came complete but ends before the range does: the
      // object is shorter than the range (an empty one, for a probe of its first byte). Trying
      // again gives the same; the caller judges body_bytes.
      if (t.response.status == 200 && t.written < r.into.size()) return;
      if (t.written != r.into.size()) {
        t.outcome = IoError(r.display + ": the body was cut short (" + std::to_string(t.written) +
                            " of " + std::to_string(r.into.size()) + " bytes)");
        t.retry = true;
        return;
      }
    }
  }

  static constexpr size_t kLocks = 8;
  HttpClientOptions options_;
  CURLSH* share_ = nullptr;
  std::mutex locks_[kLocks];
  std::mutex idle_mu_;
  std::vector<CURL*> idle_;
  std::atomic<uint64_t> requests_{0}, retries_{0}, bytes_{0};
};

// The text of an element of an S3 error body (<Error><Code>, <Message>), decoded by pugixml, at
// most ~200 bytes, or empty. A body cut short still gives the elements it holds (pugixml keeps
// what it parsed before the error).
std::string ErrorElement(const pugi::xml_document& doc, const char* name) {
  std::string text = doc.child("Error").child_value(name);
  if (text.size() > 200) text = text.substr(0, 200) + "...";
  return text;
}

// The reason phrase of an HTTP status (RFC 9110), or empty.
std::string_view ReasonPhrase(long status) {
  switch (status) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 416: return "Range Not Satisfiable";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return {};
  }
}

}  // namespace

std::string HttpResponse::Header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? std::string() : it->second;
}

std::unique_ptr<HttpClient> MakeHttpClient(HttpClientOptions options) {
  return std::make_unique<CurlHttpClient>(std::move(options));
}

Status FromCurl(int curl_code, const std::string& display, const char* error_buffer) {
  std::string what = curl_easy_strerror(static_cast<CURLcode>(curl_code));
  if (error_buffer && *error_buffer && what != error_buffer) what += " (" + std::string(error_buffer) + ")";
  return IoError(display + ": " + what);
}

std::string DescribeHttpStatus(const HttpResponse& response) {
  std::string out = "HTTP " + std::to_string(response.status);
  const std::string_view reason = ReasonPhrase(response.status);
  if (!reason.empty()) out += " " + std::string(reason);
  pugi::xml_document doc;
  doc.load_buffer(response.body.data(), response.body.size());
  const std::string code = ErrorElement(doc, "Code");
  const std::string message = ErrorElement(doc, "Message");
  if (!code.empty()) out += ", " + code;
  if (!message.empty()) out += (code.empty() ? ", " : ": ") + message;
  return out;
}

}  // namespace refzarr
