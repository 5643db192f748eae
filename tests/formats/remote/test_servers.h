// Real loopback servers for the remote-source tests (tests/support/remote/remote_servers.py):
// nginx (http, https + HTTP/2), s3rver behind a SigV4-checking front, and the fault proxy. Each is
// a child process started on first use and stopped (stdin closed, waited for) when the binary's
// tests end; a server that cannot start fails the test that wanted it, with the reason.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "formats/core/status.h"
#include "formats/remote/remote.h"

namespace refzarr::testing {

/// The credentials the tests configure; no message may hold any of them.
inline constexpr const char* kAccessKey = "AKIAREFZARRKEYID7777";
inline constexpr const char* kSecretKey = "sEcReT/refzarr+test-key-0123456789abcd";
inline constexpr const char* kWrongSecret = "wRoNg/refzarr+test-key-9876543210zyxw";
inline constexpr const char* kRegion = "eu-test-1";
inline constexpr const char* kPassword = "hunter2-pa55";
inline constexpr const char* kBearer = "bearer-token-xyz-31337";
inline constexpr const char* kSessionToken = "FwoGZXIvYXdzEREFZARRsessiontoken/+=";

/// One `remote_servers.py KIND ...` child: its stdin (EOF stops it) and the JSON line it printed.
class ServerProcess {
 public:
  ServerProcess() = default;
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;
  ~ServerProcess() { Stop(); }

  /// Starts /usr/bin/python3 remote_servers.py `args` and waits up to `timeout_s` for its line.
  Status Start(const std::vector<std::string>& args, int timeout_s);
  void Stop();
  /// A string field of the JSON line ("" for null or missing).
  std::string Field(const std::string& name) const;

 private:
  pid_t pid_ = -1;
  int stdin_fd_ = -1;
  std::string line_;
  std::string stderr_path_;
};

/// A flat JSON object's string field, or a number's text; "" when missing or null.
std::string JsonField(const std::string& json, const std::string& name);

/// The files every server serves (created once per process in a temporary folder).
struct TestFiles {
  std::string root;                 // the folder
  std::vector<std::byte> data;      // data.bin: a few hundred KiB of random bytes
  std::vector<std::byte> small;     // small.txt
  // many/ holds these keys (relative paths, sorted) and sizes: the listing test's objects.
  std::vector<std::pair<std::string, uint64_t>> many;
};
const TestFiles& Files();

struct S3Info {
  std::string endpoint, bucket, access_key, secret_key, region;
};

/// The servers, each started once per process on first use. Each getter returns an error
/// (the server's own message) when it could not start.
Result<std::string> NginxUrl();           // "http://127.0.0.1:PORT/"
Result<std::string> NginxHttpsUrl();      // "https://127.0.0.1:PORT/"
std::string NginxCaFile();                // PEM of the https server (after NginxHttpsUrl)
Result<S3Info> S3Server();                // signed access only
Result<S3Info> S3AnonymousServer();       // --anonymous-read
Result<S3Info> S3TokenServer();           // --session-token kSessionToken
Result<std::string> ProxyUrl();           // fault proxy in front of NginxUrl()

/// Options for the servers: fast retries (1 ms base delay).
RemoteOptions TestOptions();
/// Points `o.s3` at `s3` with its keys.
void UseS3(RemoteOptions& o, const S3Info& s3);

/// The opener of `scheme` from `openers` (MakeRemoteOpeners).
const SourceOpener* OpenerOf(const std::vector<std::unique_ptr<SourceOpener>>& openers,
                             std::string_view scheme);

/// Fault proxy control (POST /__proxy__/faults with `json`) and its request counter.
Status ProxyControl(const std::string& json);
Result<uint64_t> ProxyRequests();
/// A counter of the proxy's stats: "requests", "peak_in_flight", "waves" (requests that found
/// none in flight: round trips one after the other), "bytes_sent".
Result<uint64_t> ProxyCounter(const std::string& name);
/// The whole stats document.
Result<std::string> ProxyStats();

/// Creates or replaces an S3 object with a signed PUT through the front.
Status S3Put(const S3Info& s3, const std::string& key, const std::vector<std::byte>& data);

/// Random bytes from a seed.
std::vector<std::byte> RandomBytes(size_t n, uint64_t seed);

/// Fails (gtest) when `message` holds any credential the tests configure.
void ExpectNoSecrets(const std::string& message);

}  // namespace refzarr::testing
