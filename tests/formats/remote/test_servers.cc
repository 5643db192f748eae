#include "tests/formats/remote/test_servers.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <thread>

namespace refzarr::testing {
namespace {

namespace fs = std::filesystem;

std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void WriteWholeFile(const fs::path& path, const std::vector<std::byte>& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace

std::string JsonField(const std::string& json, const std::string& name) {
  const std::string needle = "\"" + name + "\":";
  size_t at = json.find(needle);
  if (at == std::string::npos) return {};
  at += needle.size();
  while (at < json.size() && json[at] == ' ') ++at;
  if (at >= json.size()) return {};
  if (json[at] == '"') {
    std::string out;
    for (size_t i = at + 1; i < json.size(); ++i) {
      if (json[i] == '\\' && i + 1 < json.size()) {
        out += json[++i];  // \" \\ \/ (the servers' fields hold no other escapes)
      } else if (json[i] == '"') {
        return out;
      } else {
        out += json[i];
      }
    }
    return {};
  }
  size_t end = at;
  while (end < json.size() && json[end] != ',' && json[end] != '}') ++end;
  std::string v = json.substr(at, end - at);
  return v == "null" ? std::string() : v;
}

Status ServerProcess::Start(const std::vector<std::string>& args, int timeout_s) {
  char tmpl[] = "/tmp/refzarr-remote-test-stderr-XXXXXX";
  const int err_fd = mkstemp(tmpl);
  if (err_fd < 0) return IoError("mkstemp: " + std::string(std::strerror(errno)));
  stderr_path_ = tmpl;
  int in[2], out[2];
  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) {
    return IoError("pipe2: " + std::string(std::strerror(errno)));
  }
  std::vector<std::string> argv_s = {"/usr/bin/python3", REFZARR_REMOTE_SERVERS};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = fork();
  if (pid < 0) return IoError("fork: " + std::string(std::strerror(errno)));
  if (pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(err_fd, 2);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  close(err_fd);
  pid_ = pid;
  stdin_fd_ = in[1];
  const int out_fd = out[0];
  std::string got;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  std::string command;
  for (const std::string& a : argv_s) command += a + " ";
  auto fail = [&](const std::string& why) {
    close(out_fd);
    const std::string err_path = stderr_path_;
    stderr_path_.clear();  // kept until read
    Stop();                // waits for it: its stderr is complete
    const std::string err = ReadWholeFile(err_path);
    std::remove(err_path.c_str());
    return IoError("could not start the test server `" + command + "`: " + why +
                   "; its stderr:\n" + err);
  };
  while (got.find('\n') == std::string::npos) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return fail("no JSON line within " + std::to_string(timeout_s) + " s");
    pollfd p{out_fd, POLLIN, 0};
    const int r = poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 500)));
    if (r < 0 && errno != EINTR) return fail("poll: " + std::string(std::strerror(errno)));
    if (r <= 0) continue;
    char buf[4096];
    const ssize_t n = read(out_fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return fail("it exited before printing its JSON line");
    got.append(buf, static_cast<size_t>(n));
  }
  close(out_fd);  // it prints nothing more
  line_ = got.substr(0, got.find('\n'));
  return OkStatus();
}

void ServerProcess::Stop() {
  if (stdin_fd_ >= 0) close(stdin_fd_);  // EOF: it stops what it started and exits
  stdin_fd_ = -1;
  if (pid_ > 0) {
    int status = 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        kill(pid_, SIGKILL);
        waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    pid_ = -1;
  }
  if (!stderr_path_.empty()) std::remove(stderr_path_.c_str());
  stderr_path_.clear();
}

std::string ServerProcess::Field(const std::string& name) const { return JsonField(line_, name); }

// ---------------------------------------------------------------------------------------------

std::vector<std::byte> RandomBytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::byte> out(n);
  for (size_t i = 0; i < n; i += 8) {
    const uint64_t v = rng();
    for (size_t k = 0; k < 8 && i + k < n; ++k) out[i + k] = static_cast<std::byte>(v >> (8 * k));
  }
  return out;
}

const TestFiles& Files() {
  static const TestFiles files = [] {
    TestFiles f;
    char tmpl[] = "/tmp/refzarr-remote-test-XXXXXX";
    f.root = mkdtemp(tmpl);
    // Not a multiple of the 64 KiB block: the last block is short.
    f.data = RandomBytes(700 * 1024 + 77, 42);
    WriteWholeFile(fs::path(f.root) / "data.bin", f.data);
    const std::string small = "refzarr remote test: a small file\n";
    f.small.resize(small.size());
    std::memcpy(f.small.data(), small.data(), small.size());
    WriteWholeFile(fs::path(f.root) / "small.txt", f.small);
    WriteWholeFile(fs::path(f.root) / "empty.bin", {});
    // Seven objects for the listing (pages of 2), one with a space in its name.
    const char* names[] = {"many/a.bin", "many/b.bin", "many/c d.bin", "many/e.bin",
                           "many/f.bin", "many/g/h.bin", "many/i.bin"};
    uint64_t n = 100;
    for (const char* name : names) {
      WriteWholeFile(fs::path(f.root) / name, RandomBytes(n, n));
      f.many.emplace_back(name, n);
      n += 37;
    }
    // The objects the generation tests replace, one per backend.
    for (const char* name : {"gen-http.bin", "gen-https.bin", "gen-s3.bin"}) {
      WriteWholeFile(fs::path(f.root) / name, RandomBytes(300 * 1024, 7));
    }
    return f;
  }();
  return files;
}

namespace {

// The servers of this process, stopped when the tests end (proxy first: it fronts nginx).
struct Registry {
  std::mutex mu;
  std::map<std::string, std::unique_ptr<ServerProcess>> running;
  std::map<std::string, Status> failed;
  std::vector<std::string> order;

  Result<ServerProcess*> Get(const std::string& name, const std::vector<std::string>& args,
                             int timeout_s) {
    std::lock_guard lock(mu);
    if (auto it = running.find(name); it != running.end()) return it->second.get();
    if (auto it = failed.find(name); it != failed.end()) return it->second;
    auto p = std::make_unique<ServerProcess>();
    Status st = p->Start(args, timeout_s);
    if (!st.ok()) {
      failed.emplace(name, st);
      return st;
    }
    order.push_back(name);
    return running.emplace(name, std::move(p)).first->second.get();
  }

  void StopAll() {
    std::lock_guard lock(mu);
    for (auto it = order.rbegin(); it != order.rend(); ++it) running[*it]->Stop();
    running.clear();
    order.clear();
  }
};

Registry& Servers() {
  static Registry* r = new Registry;
  return *r;
}

class ServersEnvironment : public ::testing::Environment {
 public:
  void TearDown() override {
    Servers().StopAll();
    std::error_code ec;
    fs::remove_all(Files().root, ec);
  }
};

[[maybe_unused]] ::testing::Environment* const kEnvironment =
    ::testing::AddGlobalTestEnvironment(new ServersEnvironment);

Result<S3Info> S3Of(const std::string& name, bool anonymous, const std::string& token = {}) {
  std::vector<std::string> args = {"s3",           "--root",     Files().root, "--js-work",
                                   REFZARR_JS_WORK, "--access-key", kAccessKey, "--secret-key",
                                   kSecretKey,      "--region",     kRegion};
  if (anonymous) args.push_back("--anonymous-read");
  if (!token.empty()) {
    args.push_back("--session-token");
    args.push_back(token);
  }
  // The first start may run `npm ci` (a few minutes on a cold cache).
  ASSIGN_OR_RETURN(ServerProcess * p, Servers().Get(name, args, 300));
  return S3Info{p->Field("endpoint"), p->Field("bucket"), p->Field("access_key"),
                p->Field("secret_key"), p->Field("region")};
}

size_t CollectBody(char* data, size_t size, size_t count, void* user) {
  static_cast<std::string*>(user)->append(data, size * count);
  return size * count;
}

// A request of the tests' own (control API, S3 PUT), with libcurl directly.
Result<std::pair<long, std::string>> Curl(const std::string& method, const std::string& url,
                                          const std::string& body,
                                          const std::vector<std::string>& headers,
                                          const std::string& sigv4 = {},
                                          const std::string& userpwd = {}) {
  static const CURLcode init = curl_global_init(CURL_GLOBAL_DEFAULT);
  (void)init;
  std::unique_ptr<CURL, void (*)(CURL*)> e(curl_easy_init(), curl_easy_cleanup);
  std::string out;
  curl_slist* list = nullptr;
  for (const std::string& h : headers) list = curl_slist_append(list, h.c_str());
  curl_easy_setopt(e.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(e.get(), CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e.get(), CURLOPT_TIMEOUT, 30L);
  curl_easy_setopt(e.get(), CURLOPT_CUSTOMREQUEST, method.c_str());
  if (method != "GET") {
    curl_easy_setopt(e.get(), CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(e.get(), CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  }
  curl_easy_setopt(e.get(), CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(e.get(), CURLOPT_WRITEFUNCTION, &CollectBody);
  curl_easy_setopt(e.get(), CURLOPT_WRITEDATA, &out);
  if (!sigv4.empty()) {
    curl_easy_setopt(e.get(), CURLOPT_AWS_SIGV4, sigv4.c_str());
    curl_easy_setopt(e.get(), CURLOPT_USERPWD, userpwd.c_str());
  }
  const CURLcode code = curl_easy_perform(e.get());
  curl_slist_free_all(list);
  if (code != CURLE_OK) return IoError(method + " " + url + ": " + curl_easy_strerror(code));
  long status = 0;
  curl_easy_getinfo(e.get(), CURLINFO_RESPONSE_CODE, &status);
  return std::make_pair(status, out);
}

}  // namespace

Result<std::string> NginxUrl() {
  ASSIGN_OR_RETURN(ServerProcess * p, Servers().Get("nginx", {"nginx", "--root", Files().root}, 60));
  return p->Field("url");
}

Result<std::string> NginxHttpsUrl() {
  ASSIGN_OR_RETURN(ServerProcess * p,
                   Servers().Get("nginx-https", {"nginx", "--root", Files().root, "--https"}, 60));
  return p->Field("url");
}

std::string NginxCaFile() {
  auto p = Servers().Get("nginx-https", {"nginx", "--root", Files().root, "--https"}, 60);
  return p.ok() ? (*p)->Field("ca_file") : std::string();
}

Result<S3Info> S3Server() { return S3Of("s3", false); }
Result<S3Info> S3AnonymousServer() { return S3Of("s3-anonymous", true); }
Result<S3Info> S3TokenServer() { return S3Of("s3-token", false, kSessionToken); }

Result<std::string> ProxyUrl() {
  ASSIGN_OR_RETURN(std::string upstream, NginxUrl());
  ASSIGN_OR_RETURN(ServerProcess * p, Servers().Get("proxy", {"proxy", "--upstream", upstream}, 60));
  return p->Field("url");
}

RemoteOptions TestOptions() {
  RemoteOptions o;
  o.http.retry.attempts = 5;
  o.http.retry.base_delay = std::chrono::milliseconds(1);
  o.http.retry.max_delay = std::chrono::milliseconds(20);
  o.http.connect_timeout = std::chrono::milliseconds(5000);
  return o;
}

void UseS3(RemoteOptions& o, const S3Info& s3) {
  o.s3.endpoint = s3.endpoint;
  o.s3.access_key = s3.access_key;
  o.s3.secret_key = s3.secret_key;
  o.s3.region = s3.region;
}

const SourceOpener* OpenerOf(const std::vector<std::unique_ptr<SourceOpener>>& openers,
                             std::string_view scheme) {
  for (const auto& o : openers) {
    if (o->Scheme() == scheme) return o.get();
  }
  return nullptr;
}

Status ProxyControl(const std::string& json) {
  ASSIGN_OR_RETURN(std::string url, ProxyUrl());
  ASSIGN_OR_RETURN(auto r, Curl("POST", url + "__proxy__/faults", json,
                                {"Content-Type: application/json"}));
  if (r.first != 200) return IoError("proxy control: HTTP " + std::to_string(r.first) + " " + r.second);
  return OkStatus();
}

Result<std::string> ProxyStats() {
  ASSIGN_OR_RETURN(std::string url, ProxyUrl());
  ASSIGN_OR_RETURN(auto r, Curl("GET", url + "__proxy__/stats", "", {}));
  if (r.first != 200) return IoError("proxy stats: HTTP " + std::to_string(r.first));
  return r.second;
}

Result<uint64_t> ProxyCounter(const std::string& name) {
  ASSIGN_OR_RETURN(std::string stats, ProxyStats());
  const std::string n = JsonField(stats, name);
  if (n.empty()) return IoError("proxy stats without " + name + ": " + stats);
  return std::strtoull(n.c_str(), nullptr, 10);
}

Result<uint64_t> ProxyRequests() { return ProxyCounter("requests"); }

Status S3Put(const S3Info& s3, const std::string& key, const std::vector<std::byte>& data) {
  const std::string body(reinterpret_cast<const char*>(data.data()), data.size());
  ASSIGN_OR_RETURN(auto r, Curl("PUT", s3.endpoint + "/" + s3.bucket + "/" + PercentEncodePath(key),
                                body, {"x-amz-content-sha256: UNSIGNED-PAYLOAD",
                                       "Content-Type: application/octet-stream"},
                                "aws:amz:" + s3.region + ":s3", s3.access_key + ":" + s3.secret_key));
  if (r.first != 200) return IoError("S3 PUT " + key + ": HTTP " + std::to_string(r.first) + " " + r.second);
  return OkStatus();
}

void ExpectNoSecrets(const std::string& message) {
  const std::vector<std::string> secrets = {
      "Authorization:", "AWS4-HMAC-SHA256", "Signature=", "Credential=", kAccessKey, kSecretKey,
      kWrongSecret,    kPassword,          kBearer,      kSessionToken};
  for (const std::string& s : secrets) {
    EXPECT_EQ(message.find(s), std::string::npos) << "the message holds '" << s << "': " << message;
  }
}

}  // namespace refzarr::testing
