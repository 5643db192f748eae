// HttpClient: every request refzarr makes to a web server or an object store, through libcurl: one
// pool of connections (a share handle: connections, DNS, TLS sessions) used by every thread,
// keep-alive, HTTP/2 where the server offers it, concurrent requests on one multi handle,
// redirects followed, connect and low-speed timeouts, and bounded retries with exponential
// backoff and jitter. Bodies go straight into the caller's buffer.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "formats/core/byte_source.h"
#include "formats/core/status.h"

namespace refzarr {

/// When a failed request is tried again: transport failures (refused or reset connections,
/// timeouts, bodies cut short), 5xx other than 501, and 429. The n-th retry waits a random time
/// up to min(max_delay, base_delay * 2^n) (full jitter), or the server's Retry-After when it is
/// shorter than max_delay; retries stop after `attempts` tries or once `budget` has passed.
struct RetryPolicy {
  int attempts = 5;
  std::chrono::milliseconds base_delay{100};
  std::chrono::milliseconds max_delay{4000};
  std::chrono::milliseconds budget{30000};
};

struct HttpClientOptions {
  RetryPolicy retry;
  std::chrono::milliseconds connect_timeout{10000};
  /// A transfer slower than 1 byte/s for this long is abandoned (and retried).
  std::chrono::milliseconds stall_timeout{30000};
  /// Certificates to trust instead of the system's (curl's CURLOPT_CAINFO); empty: the system's.
  std::string ca_file;
  /// Requests in flight at once in PerformAll (on the shared connections).
  int max_parallel = 16;
};

/// One request. `url` is what goes on the wire (it may carry a signed query); messages name
/// `display` (the source's URI) instead, so nothing secret reaches a message.
struct HttpRequest {
  std::string method = "GET";  ///< "GET" or "HEAD".
  std::string url;
  std::string display;
  std::vector<std::string> headers;  ///< "Name: value" lines.
  /// Bytes asked for (Range: bytes=a-b). With `into`, the body must be exactly these bytes: a
  /// shorter one is retried; of a whole-file answer (the range ignored), or one whose
  /// Content-Range holds more than the range, only the range is kept. A whole-file answer that
  /// came complete but holds less than the range (the object is shorter) is not retried: its
  /// body_bytes says how much of `into` it filled. A 206 whose Content-Range says the object
  /// ends before the range starts is answered as the 416 it means.
  std::optional<ByteRange> range;
  /// Where a ranged body goes (range->length bytes); without it the body is kept in the response.
  std::span<std::byte> into;
  /// AWS signature version 4 by libcurl (CURLOPT_AWS_SIGV4 "aws:amz:REGION:s3") with `userpwd`
  /// ("KEY:SECRET"); empty: unsigned.
  std::string aws_sigv4;
  std::string userpwd;
  /// Read ~/.netrc for credentials of the host (plain HTTP(S) sources).
  bool netrc = false;
};

struct HttpResponse {
  long status = 0;
  /// Header fields of the final response (after redirects), names lower-case.
  std::map<std::string, std::string> headers;
  std::string body;         ///< Without HttpRequest::into.
  uint64_t body_bytes = 0;  ///< Bytes of the body received (into `into` or `body`).
  int attempts = 0;         ///< Tries it took.

  /// The header's value, or empty.
  std::string Header(const std::string& lower_name) const;
};

/// Counters of a client (a snapshot).
struct HttpClientStats {
  uint64_t requests = 0;  ///< Requests sent, retries included.
  uint64_t retries = 0;
  uint64_t bytes = 0;     ///< Body bytes received.
};

class HttpClient {
 public:
  virtual ~HttpClient() = default;
  /// Sends `request`, retrying per the policy. A response of any status is OK (the caller judges
  /// 404 or 412); an error only when no response came: kIo naming request.display and what
  /// happened on the last try (FromCurl), or the last retried status.
  virtual Result<HttpResponse> Perform(const HttpRequest& request) = 0;
  /// The requests at once (up to max_parallel in flight), each retried on its own.
  virtual std::vector<Result<HttpResponse>> PerformAll(std::span<const HttpRequest> requests) = 0;
  virtual HttpClientStats Stats() const = 0;
};

/// A client with its own connection pool. Calls curl_global_init once per process.
std::unique_ptr<HttpClient> MakeHttpClient(HttpClientOptions options);

/// The one translator of libcurl's results into a Status: kIo "<display>: <what curl says>"
/// (with its error buffer's detail when there is one).
Status FromCurl(int curl_code, const std::string& display, const char* error_buffer = nullptr);

/// A message for an HTTP status that is not what the request expected: "HTTP 403 Forbidden"
/// (the number alone for a status without a common name), with the S3 error code and message of
/// an XML error body when there is one ("HTTP 404 Not Found, NoSuchKey: The specified key does
/// not exist."), entities decoded, the message cut at ~200 bytes; nothing else of the body.
std::string DescribeHttpStatus(const HttpResponse& response);

}  // namespace refzarr
