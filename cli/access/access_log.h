// The access log of `refzarr serve`: one record per answered request, through an interface the
// command implements (a file, or stdout). No record ever holds a token or a signature.
#pragma once

#include <cstdint>
#include <ctime>
#include <memory>
#include <optional>
#include <ostream>
#include <string>

namespace refzarr {

/// One answered request. Strings are printable ASCII (others escaped as \xNN by the front end),
/// so a URL cannot forge log lines.
struct AccessRecord {
  std::string client;      ///< The peer's address ("127.0.0.1", "::1").
  std::string principal;   ///< "-", "token@LINE" or "signed" (AccessDecision::principal).
  std::time_t when = 0;    ///< When the request arrived (Unix seconds).
  std::string method;
  std::string path;        ///< The request path, a signed URL's signature replaced by "-".
  std::string version;     ///< "HTTP/1.1"
  unsigned status = 0;
  std::optional<uint64_t> bytes;  ///< Body bytes; unset when streamed (not known in advance).
  double seconds = 0;      ///< From the request's arrival to the end of its response.
};

/// Receives the records. Called from the server's worker threads at once.
class AccessLog {
 public:
  virtual ~AccessLog() = default;
  virtual void Record(const AccessRecord& record) = 0;
};

/// The record as a Common Log Format line plus the duration in seconds (nginx's $request_time):
/// `CLIENT - PRINCIPAL [02/Dec/2026:01:05:00 +0000] "GET /a HTTP/1.1" 200 1000 0.000214\n`.
std::string CommonLogLine(const AccessRecord& record);

/// An AccessLog writing CommonLogLine to `out` (not owned; must outlive it), flushed line by line
/// so `tail -f` and a crash both see every request answered.
std::unique_ptr<AccessLog> MakeStreamAccessLog(std::ostream& out);

}  // namespace refzarr
