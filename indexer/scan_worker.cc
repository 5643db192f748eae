#include "indexer/scan_worker.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bit>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <new>

namespace refzarr {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr uint32_t kProtocolVersion = 2;  // 2: jobs and sources are URIs, not paths
// One record's payload at most: a job or record announcing more is a protocol error, not an
// allocation (AddFile carries whole OME-XML documents, so this is generous).
constexpr uint32_t kMaxRecord = 1u << 30;
constexpr size_t kChunkEntryBytes = 4 + 8 + 4 + 8 + 8 + 4;
constexpr size_t kFlushBytes = 1u << 20;

enum Record : uint8_t {
  kHello = 'H',
  kSource = 'S',
  kGroup = 'G',
  kImage = 'I',
  kArray = 'A',
  kChunks = 'C',
  kInline = 'L',
  kFile = 'F',
  kWarn = 'W',
  kRefuse = 'R',
  kDone = 'D',
};

// ---- little-endian encoding ----

void PutU32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
}
void PutU64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>(v >> (8 * i)));
}
void PutStr(std::string& out, std::string_view s) {
  PutU32(out, static_cast<uint32_t>(s.size()));
  out.append(s);
}

// Reads fields from one record's payload; any read past its end marks it malformed.
class Fields {
 public:
  explicit Fields(std::string_view data) : data_(data) {}
  uint32_t U32() { return static_cast<uint32_t>(Int(4)); }
  uint64_t U64() { return Int(8); }
  uint8_t U8() { return static_cast<uint8_t>(Int(1)); }
  std::string_view Str() {
    uint32_t n = U32();
    if (n > data_.size() - pos_) {
      bad_ = true;
      return {};
    }
    std::string_view s = data_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  std::string_view Rest() {
    std::string_view s = data_.substr(pos_);
    pos_ = data_.size();
    return s;
  }
  double F64() { return std::bit_cast<double>(U64()); }
  std::optional<double> OptF64() {
    if (U8() == 0) return std::nullopt;
    return F64();
  }
  nlohmann::json Json();
  std::vector<uint64_t> U64s() {
    std::vector<uint64_t> v(Count(8));
    for (uint64_t& x : v) x = U64();
    return v;
  }
  std::vector<double> F64s() {
    std::vector<double> v(Count(8));
    for (double& x : v) x = F64();
    return v;
  }
  std::vector<std::string> Strs() {
    std::vector<std::string> v(Count(4));
    for (std::string& x : v) x = Str();
    return v;
  }
  /// A count of items of at least `min_bytes` each, bounded by what is left (so a corrupt count
  /// marks the record malformed instead of allocating).
  size_t Count(size_t min_bytes) {
    uint32_t n = U32();
    if (n > (data_.size() - pos_) / min_bytes) {
      bad_ = true;
      return 0;
    }
    return n;
  }
  bool ok() const { return !bad_; }

 private:
  uint64_t Int(size_t n) {
    if (n > data_.size() - pos_) {
      bad_ = true;
      return 0;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v |= uint64_t{static_cast<uint8_t>(data_[pos_ + i])} << (8 * i);
    pos_ += n;
    return v;
  }
  std::string_view data_;
  size_t pos_ = 0;
  bool bad_ = false;
};

// A JSON value: the common null and {} as one byte, anything else as CBOR.
void PutJson(std::string& out, const nlohmann::json& j) {
  if (j.is_null()) {
    out.push_back(0);
  } else if (j.is_object() && j.empty()) {
    out.push_back(1);
  } else {
    out.push_back(2);
    std::string cbor;
    nlohmann::json::to_cbor(j, cbor);
    PutStr(out, cbor);
  }
}

nlohmann::json Fields::Json() {
  switch (U8()) {
    case 0:
      return nullptr;
    case 1:
      return nlohmann::json::object();
    case 2: {
      nlohmann::json j = nlohmann::json::from_cbor(Str(), /*strict=*/true,
                                                   /*allow_exceptions=*/false);
      if (!j.is_discarded()) return j;
      [[fallthrough]];
    }
    default:
      bad_ = true;
      return nullptr;
  }
}

void PutF64(std::string& out, double v) { PutU64(out, std::bit_cast<uint64_t>(v)); }
void PutOptF64(std::string& out, std::optional<double> v) {
  out.push_back(v ? 1 : 0);
  if (v) PutF64(out, *v);
}
void PutU64s(std::string& out, std::span<const uint64_t> v) {
  PutU32(out, static_cast<uint32_t>(v.size()));
  for (uint64_t x : v) PutU64(out, x);
}
void PutF64s(std::string& out, std::span<const double> v) {
  PutU32(out, static_cast<uint32_t>(v.size()));
  for (double x : v) PutF64(out, x);
}
void PutStrs(std::string& out, std::span<const std::string> v) {
  PutU32(out, static_cast<uint32_t>(v.size()));
  for (const std::string& x : v) PutStr(out, x);
}

// ArrayDesc and ImageDesc field by field: a scan of many small files sends one of each per file,
// and their JSON documents cost more to build and parse than the scan itself. Every field is
// here; ScanWorker.IsolatedScansIndexExactlyLikeInProcessOnes and
// ScanWorker.DescriptionsCrossTheProcessBoundaryWhole hold them to ToJson's view of them.
void PutArray(std::string& out, const ArrayDesc& a) {
  PutU64s(out, a.shape);
  PutU64s(out, a.chunks);
  out.push_back(a.dtype.kind);
  PutU32(out, a.dtype.size);
  out.push_back(a.dtype.byte_order);
  PutJson(out, a.dtype.fields);
  PutJson(out, a.fill_value);
  PutJson(out, a.encoding.filters);
  PutJson(out, a.encoding.compressor);
  out.push_back(a.encoding.native ? 1 : 0);
  PutStr(out, a.encoding.decoder);
  PutJson(out, a.encoding.params);
  PutU32(out, static_cast<uint32_t>(a.encoding.stored_order.size()));
  for (int axis : a.encoding.stored_order) PutU32(out, static_cast<uint32_t>(axis));
  PutStrs(out, a.dimension_names);
  PutJson(out, a.attributes);
}

std::optional<ArrayDesc> ReadArray(Fields& f) {
  ArrayDesc a;
  a.shape = f.U64s();
  a.chunks = f.U64s();
  a.dtype.kind = static_cast<char>(f.U8());
  a.dtype.size = f.U32();
  a.dtype.byte_order = static_cast<char>(f.U8());
  a.dtype.fields = f.Json();
  a.fill_value = f.Json();
  a.encoding.filters = f.Json();
  a.encoding.compressor = f.Json();
  a.encoding.native = f.U8() != 0;
  a.encoding.decoder = f.Str();
  a.encoding.params = f.Json();
  a.encoding.stored_order.resize(f.Count(4));
  for (int& axis : a.encoding.stored_order) axis = static_cast<int>(f.U32());
  a.dimension_names = f.Strs();
  a.attributes = f.Json();
  if (!f.ok() || !f.Rest().empty()) return std::nullopt;
  return a;
}

void PutImage(std::string& out, const ImageDesc& image) {
  PutStr(out, image.name);
  PutU32(out, static_cast<uint32_t>(image.axes.size()));
  for (const Axis& axis : image.axes) {
    PutStr(out, axis.name);
    PutStr(out, axis.type);
    PutStr(out, axis.unit);
  }
  PutStrs(out, image.levels);
  PutU32(out, static_cast<uint32_t>(image.scales.size()));
  for (const auto& v : image.scales) PutF64s(out, v);
  PutU32(out, static_cast<uint32_t>(image.translations.size()));
  for (const auto& v : image.translations) PutF64s(out, v);
  PutU32(out, static_cast<uint32_t>(image.channels.size()));
  for (const ChannelDesc& c : image.channels) {
    PutStr(out, c.label);
    out.push_back(c.color ? 1 : 0);
    if (c.color) PutU32(out, *c.color);
    PutOptF64(out, c.window ? std::optional(c.window->first) : std::nullopt);
    if (c.window) PutF64(out, c.window->second);
    PutStr(out, c.window_source);
  }
}

std::optional<ImageDesc> ReadImage(Fields& f) {
  ImageDesc image;
  image.name = f.Str();
  image.axes.resize(f.Count(12));
  for (Axis& axis : image.axes) {
    axis.name = f.Str();
    axis.type = f.Str();
    axis.unit = f.Str();
  }
  image.levels = f.Strs();
  image.scales.resize(f.Count(4));
  for (auto& v : image.scales) v = f.F64s();
  image.translations.resize(f.Count(4));
  for (auto& v : image.translations) v = f.F64s();
  image.channels.resize(f.Count(7));
  for (ChannelDesc& c : image.channels) {
    c.label = f.Str();
    if (f.U8() != 0) c.color = f.U32();
    if (std::optional<double> lo = f.OptF64()) c.window = std::pair(*lo, f.F64());
    c.window_source = f.Str();
  }
  if (!f.ok() || !f.Rest().empty()) return std::nullopt;
  return image;
}

// Whole writes to a socket; MSG_NOSIGNAL so a dead peer is an error, not a SIGPIPE.
bool SendAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// Buffered reads from a socket with a deadline (none when `deadline` is unset).
class Reader {
 public:
  explicit Reader(int fd) : fd_(fd) {}
  enum class Got { kOk, kEof, kTimeout, kError };

  Got Exact(size_t n, std::string& out, std::optional<Clock::time_point> deadline) {
    out.clear();
    while (out.size() < n) {
      if (pos_ == end_) {
        Got g = Fill(deadline);
        if (g != Got::kOk) return g;
      }
      size_t take = std::min(n - out.size(), end_ - pos_);
      out.append(buf_.get() + pos_, take);
      pos_ += take;
    }
    return Got::kOk;
  }

 private:
  static constexpr size_t kBuffer = 64 * 1024;

  Got Fill(std::optional<Clock::time_point> deadline) {
    if (!buf_) buf_ = std::make_unique_for_overwrite<char[]>(kBuffer);
    pos_ = end_ = 0;
    while (true) {
      int wait_ms = -1;
      if (deadline) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - Clock::now());
        if (left.count() <= 0) return Got::kTimeout;
        wait_ms = static_cast<int>(std::min<int64_t>(left.count() + 1, 1 << 30));
      }
      pollfd p{fd_, POLLIN, 0};
      int r = ::poll(&p, 1, wait_ms);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return Got::kError;
      if (r == 0) return Got::kTimeout;
      ssize_t n = ::read(fd_, buf_.get(), kBuffer);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Got::kError;
      end_ = static_cast<size_t>(n);
      return n == 0 ? Got::kEof : Got::kOk;
    }
  }
  int fd_;
  std::unique_ptr<char[]> buf_;
  size_t pos_ = 0, end_ = 0;
};

// ---- the worker's side ----


// A job: the scanner's name, the source's URI, the CPU seconds the scan may use (0: no limit).
struct Job {
  std::string scanner;
  std::string uri;
  double cpu_seconds = 0;
};

std::string EncodeJob(const Job& job) {
  std::string body;
  PutStr(body, job.scanner);
  PutStr(body, job.uri);
  PutU64(body, static_cast<uint64_t>(std::llround(std::max(0.0, job.cpu_seconds) * 1000)));
  std::string msg;
  PutU32(msg, static_cast<uint32_t>(body.size()));
  return msg + body;
}

std::optional<Job> DecodeJob(std::string_view body) {
  Fields f(body);
  Job job;
  job.scanner = f.Str();
  job.uri = f.Str();
  job.cpu_seconds = static_cast<double>(f.U64()) / 1000;
  if (!f.ok()) return std::nullopt;
  return job;
}

// Turns ScanSink calls into records. Handles and source ids are the worker's own, numbered in
// call order; the indexer maps them to its sink's.
class RecordWriter final : public ScanSink {
 public:
  explicit RecordWriter(int fd) : fd_(fd) {}

  Result<uint32_t> AddSource(std::string_view uri) override {
    auto [it, added] = sources_.emplace(std::string(uri), static_cast<uint32_t>(sources_.size() + 1));
    if (added) {
      std::string p;
      PutStr(p, it->first);
      Emit(kSource, p);
    }
    return it->second;
  }
  Status AddGroup(std::string_view path, const json& attributes) override {
    std::string p;
    PutStr(p, path);
    PutJson(p, attributes);
    Emit(kGroup, p);
    return Check();
  }
  Status AddImage(std::string_view path, const ImageDesc& image) override {
    std::string p;
    PutStr(p, path);
    PutImage(p, image);
    Emit(kImage, p);
    return Check();
  }
  Result<ArrayHandle> AddArray(std::string_view path, const ArrayDesc& array) override {
    std::string p;
    PutStr(p, path);
    PutArray(p, array);
    Emit(kArray, p);
    RETURN_IF_ERROR(Check());
    return next_handle_++;
  }
  Status AddChunk(ArrayHandle array, uint64_t chunk_index, const ChunkRef& ref) override {
    // Consecutive chunks share one record: its length is patched as entries are appended.
    if (open_chunks_ == std::string::npos ||
        buf_.size() - open_chunks_ - 5 + kChunkEntryBytes > (1u << 16)) {
      if (buf_.size() >= kFlushBytes) Flush();
      open_chunks_ = buf_.size();
      buf_.push_back(static_cast<char>(kChunks));
      PutU32(buf_, 0);
    }
    PutU32(buf_, array);
    PutU64(buf_, chunk_index);
    PutU32(buf_, ref.source);
    PutU64(buf_, ref.offset);
    PutU64(buf_, ref.length);
    PutU32(buf_, ref.flags);
    const uint32_t len = static_cast<uint32_t>(buf_.size() - open_chunks_ - 5);
    for (int i = 0; i < 4; ++i) buf_[open_chunks_ + 1 + i] = static_cast<char>(len >> (8 * i));
    if (buf_.size() >= kFlushBytes) Flush();
    return Check();
  }
  Status AddInlineChunk(ArrayHandle array, uint64_t chunk_index,
                        std::span<const std::byte> bytes) override {
    std::string p;
    PutU32(p, array);
    PutU64(p, chunk_index);
    p.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    Emit(kInline, p);
    return Check();
  }
  Status AddFile(std::string_view path, std::string bytes) override {
    std::string p;
    PutStr(p, path);
    p.append(bytes);
    Emit(kFile, p);
    return Check();
  }
  void Warn(std::string message) override { Emit(kWarn, message); }
  Status RefuseArray(std::string_view path, std::string reason) override {
    std::string p;
    PutStr(p, path);
    PutStr(p, reason);
    Emit(kRefuse, p);
    return Check();
  }

  /// Ends the scan's records; `exiting`: the worker ends after this scan. False when the
  /// indexer is gone.
  bool Done(const Status& status, bool exiting) {
    std::string p;
    p.push_back(static_cast<char>(status.code()));
    p.push_back(exiting ? 1 : 0);
    p.append(status.message());
    Emit(kDone, p);
    Flush();
    return !broken_;
  }

 private:
  void Emit(Record type, std::string_view payload) {
    open_chunks_ = std::string::npos;
    buf_.push_back(static_cast<char>(type));
    PutU32(buf_, static_cast<uint32_t>(payload.size()));
    buf_.append(payload);
    if (buf_.size() >= kFlushBytes) Flush();
  }
  void Flush() {
    if (!broken_ && !SendAll(fd_, buf_)) broken_ = true;
    buf_.clear();
    open_chunks_ = std::string::npos;
  }
  Status Check() const {
    return broken_ ? IoError("the indexer closed the connection") : OkStatus();
  }

  int fd_;
  std::string buf_;
  size_t open_chunks_ = std::string::npos;
  ArrayHandle next_handle_ = 0;
  std::map<std::string, uint32_t> sources_;
  bool broken_ = false;
};

// CPU time this process has used, in seconds.
double CpuSecondsUsed() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// ---- the indexer's side ----

// Replays one scan's records into the indexer's sink. The first error the sink returns is kept and
// replay stops (the records are still read to the end of the scan).
class Replayer {
 public:
  explicit Replayer(ScanSink& sink) : sink_(sink) {}

  // Applies one record; false when it is malformed (a protocol error).
  bool Apply(uint8_t type, std::string_view payload) {
    if (!error_.ok()) return true;
    Fields f(payload);
    switch (type) {
      case kSource: {
        std::string_view uri = f.Str();
        if (!f.ok()) return false;
        auto id = sink_.AddSource(uri);
        if (!id.ok()) return Fail(id.status());
        sources_.push_back(*id);
        return true;
      }
      case kGroup: {
        std::string_view path = f.Str();
        json attributes = f.Json();
        if (!f.ok()) return false;
        return Keep(sink_.AddGroup(path, attributes));
      }
      case kImage: {
        std::string_view path = f.Str();
        std::optional<ImageDesc> image = ReadImage(f);
        if (!image) return false;
        return Keep(sink_.AddImage(path, *image));
      }
      case kArray: {
        std::string_view path = f.Str();
        std::optional<ArrayDesc> array = ReadArray(f);
        if (!array) return false;
        auto h = sink_.AddArray(path, *array);
        if (!h.ok()) return Fail(h.status());
        handles_.push_back(*h);
        return true;
      }
      case kChunks: {
        if (payload.size() % kChunkEntryBytes != 0) return false;
        for (size_t n = payload.size() / kChunkEntryBytes; n-- > 0;) {
          uint32_t handle = f.U32();
          uint64_t index = f.U64();
          ChunkRef ref;
          ref.source = f.U32();
          ref.offset = f.U64();
          ref.length = f.U64();
          ref.flags = f.U32();
          if (handle >= handles_.size() || ref.source > sources_.size()) return false;
          if (ref.source > 0) ref.source = sources_[ref.source - 1];
          if (!Keep(sink_.AddChunk(handles_[handle], index, ref))) return true;
        }
        return true;
      }
      case kInline: {
        uint32_t handle = f.U32();
        uint64_t index = f.U64();
        std::string_view bytes = f.Rest();
        if (!f.ok() || handle >= handles_.size()) return false;
        return Keep(sink_.AddInlineChunk(handles_[handle], index, std::as_bytes(std::span(bytes))));
      }
      case kFile: {
        std::string_view path = f.Str();
        std::string bytes(f.Rest());
        if (!f.ok()) return false;
        return Keep(sink_.AddFile(path, std::move(bytes)));
      }
      case kWarn:
        sink_.Warn(std::string(payload));
        return true;
      case kRefuse: {
        std::string_view path = f.Str(), reason = f.Str();
        if (!f.ok()) return false;
        return Keep(sink_.RefuseArray(path, std::string(reason)));
      }
      default:
        return false;
    }
  }
  const Status& error() const { return error_; }

 private:
  bool Keep(const Status& s) {
    if (!s.ok()) error_ = s;
    return true;
  }
  bool Fail(const Status& s) {
    error_ = s;
    return true;
  }

  ScanSink& sink_;
  Status error_;
  std::vector<ArrayHandle> handles_;  // worker handle -> sink handle
  std::vector<uint32_t> sources_;     // worker source id - 1 -> sink source id
};

std::string SignalName(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return abbrev ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

// One worker process and its end of the socket.
struct Worker {
  pid_t pid = -1;
  int fd = -1;
  Reader reader{-1};

  ~Worker() {
    if (fd >= 0) ::close(fd);
    if (pid > 0) {
      // Closing the socket ends a healthy worker; one that is stuck is killed.
      int status = 0;
      for (int i = 0; i < 100 && ::waitpid(pid, &status, WNOHANG) == 0; ++i) ::usleep(1000);
      if (::waitpid(pid, &status, WNOHANG) == 0) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &status, 0);
      }
    }
  }

  // Kills the worker and says how it ended.
  std::string Kill() {
    ::kill(pid, SIGKILL);
    return Reap();
  }

  // Waits for the worker to end (it closed its socket) and describes how.
  std::string Reap() {
    int status = 0;
    pid_t r;
    do {
      r = ::waitpid(pid, &status, 0);
    } while (r < 0 && errno == EINTR);
    pid = -1;
    if (r < 0) return "scan worker lost";
    if (WIFSIGNALED(status)) {
      int sig = WTERMSIG(status);
      std::string why = "scan killed by " + SignalName(sig);
      if (sig == SIGXCPU) why += " (CPU time limit)";
      return why;
    }
    return "scan worker exited with status " + std::to_string(WEXITSTATUS(status));
  }
};

class IsolatedScanRunner final : public ScanRunner {
 public:
  explicit IsolatedScanRunner(IsolationOptions options) : options_(std::move(options)) {
    if (options_.workers == 0) options_.workers = 1;
  }

  Status Start() {
    {
      std::lock_guard lock(mu_);
      ++live_;
    }
    auto w = Spawn();
    if (!w.ok()) {
      Discard();
      return w.status();
    }
    Release(std::move(*w));
    return OkStatus();
  }

  Status Scan(std::string_view scanner, std::string_view uri, ScanSink& sink) override {
    const ScanRequest one{scanner, std::string(uri), &sink};
    return ScanAll(std::span(&one, 1)).front();
  }

  std::vector<Status> ScanAll(std::span<const ScanRequest> requests) override {
    std::vector<Status> out(requests.size());
    size_t next = 0;
    while (next < requests.size()) {
      auto acquired = Acquire();
      if (!acquired.ok()) {
        for (; next < requests.size(); ++next) out[next] = acquired.status();
        break;
      }
      std::unique_ptr<Worker> w = std::move(*acquired);
      // Every job at once: the worker reads the next while the last one's records replay here.
      std::string jobs;
      for (size_t i = next; i < requests.size(); ++i) {
        jobs += EncodeJob({std::string(requests[i].scanner), requests[i].uri,
                           options_.timeout_seconds});
      }
      if (!SendAll(w->fd, jobs)) {
        out[next++] = CorruptError(Lost(std::move(w)));
        continue;
      }
      // Until the worker ends: the jobs it has not scanned go to a fresh one.
      while (w && next < requests.size()) {
        Outcome o = ReadOne(*w, *requests[next].sink);
        out[next++] = std::move(o.status);
        if (o.worker_ends) w.reset();
      }
      if (w) Release(std::move(w));
    }
    return out;
  }

 private:
  struct Outcome {
    Status status;
    bool worker_ends = false;  // The worker is gone (reaped or killed and discarded).
  };

  // Replays one scan's records into `sink`, until its status, the worker's death or the time
  // limit (counted from now: the previous scan's end).
  Outcome ReadOne(Worker& w, ScanSink& sink) {
    std::optional<Clock::time_point> deadline;
    if (options_.timeout_seconds > 0) {
      deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                    std::chrono::duration<double>(options_.timeout_seconds));
    }
    Replayer replay(sink);
    std::string head, payload;
    while (true) {
      Reader::Got g = w.reader.Exact(5, head, deadline);
      if (g == Reader::Got::kOk) {
        Fields f(head);
        const uint8_t type = f.U8();
        const uint32_t len = f.U32();
        if (len > kMaxRecord) return Broken(w, "oversized record");
        g = w.reader.Exact(len, payload, deadline);
        if (g == Reader::Got::kOk) {
          if (type == kDone) {
            if (payload.size() < 2) return Broken(w, "short status");
            Outcome o;
            if (payload[1] != 0) {
              w.Reap();  // It ends after this scan: a fresh one takes its place.
              Discard();
              o.worker_ends = true;
            }
            o.status = !replay.error().ok()
                           ? replay.error()
                           : Status(static_cast<StatusCode>(static_cast<uint8_t>(payload[0])),
                                    payload.substr(2));
            return o;
          }
          if (!replay.Apply(type, payload)) return Broken(w, "malformed record");
          continue;
        }
      }
      if (g == Reader::Got::kTimeout) {
        w.Kill();
        Discard();
        char secs[32];
        std::snprintf(secs, sizeof secs, "%g", options_.timeout_seconds);
        return {CorruptError(std::string("scan timed out after ") + secs + " s (--scan-timeout)"),
                true};
      }
      std::string why = w.Reap();
      Discard();
      return {CorruptError(why), true};
    }
  }

 private:
  Result<std::unique_ptr<Worker>> Spawn() {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
      return InternalError(std::string("scan worker: socketpair: ") + std::strerror(errno));
    }
    // Everything the child needs is prepared before fork: after it, only async-signal-safe calls.
    std::vector<char*> argv;
    for (const std::string& a : options_.command) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    rlimit as{options_.memory_bytes, options_.memory_bytes};
    rlimit no_core{0, 0};
    const bool limit_memory = options_.memory_bytes > 0;
    pid_t pid = ::fork();
    if (pid < 0) {
      ::close(fds[0]);
      ::close(fds[1]);
      return InternalError(std::string("scan worker: fork: ") + std::strerror(errno));
    }
    if (pid == 0) {
      // The socket is stdin; stdout goes to stderr, so a library that prints cannot garble it.
      ::dup2(fds[1], 0);
      ::dup2(2, 1);
      ::close_range(3, ~0u, 0);
      ::setrlimit(RLIMIT_CORE, &no_core);
      if (limit_memory) ::setrlimit(RLIMIT_AS, &as);
      // Ctrl-C reaches the terminal's whole process group: the indexer decides when its
      // workers end (it stops at a file boundary, IndexOptions::stop), so a worker must not die
      // of it mid-scan and fail its file. Ignored stays ignored across exec. (A SIGTERM sent to
      // every process of a job, as SLURM does, still ends a worker: its file is recorded failed
      // only if the indexer commits before it sees the stop, and a re-run scans it again.)
      ::signal(SIGINT, SIG_IGN);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(fds[1]);
    auto w = std::make_unique<Worker>();
    w->pid = pid;
    w->fd = fds[0];
    w->reader = Reader(fds[0]);
    // The worker announces itself, so a command that is not a scan worker fails here.
    std::string head, payload;
    const auto deadline = Clock::now() + std::chrono::seconds(30);
    Reader::Got g = w->reader.Exact(5, head, deadline);
    if (g == Reader::Got::kOk) {
      Fields f(head);
      uint8_t type = f.U8();
      uint32_t len = f.U32();
      if (type == kHello && len == 4 && w->reader.Exact(4, payload, deadline) == Reader::Got::kOk &&
          Fields(payload).U32() == kProtocolVersion) {
        return w;
      }
    }
    std::string why = g == Reader::Got::kTimeout ? w->Kill() : w->Reap();
    std::string cmd;
    for (const std::string& a : options_.command) cmd += (cmd.empty() ? "" : " ") + a;
    return InternalError("cannot start the scan worker '" + cmd + "': " + why);
  }

  Result<std::unique_ptr<Worker>> Acquire() {
    {
      std::unique_lock lock(mu_);
      idle_cv_.wait(lock, [&] { return !idle_.empty() || live_ < options_.workers; });
      if (!idle_.empty()) {
        auto w = std::move(idle_.back());
        idle_.pop_back();
        return w;
      }
      ++live_;
    }
    auto w = Spawn();
    if (!w.ok()) Discard();
    return w;
  }

  void Release(std::unique_ptr<Worker> w) {
    std::lock_guard lock(mu_);
    idle_.push_back(std::move(w));
    idle_cv_.notify_one();
  }

  // A worker that is gone no longer counts against the pool's size.
  void Discard() {
    std::lock_guard lock(mu_);
    --live_;
    idle_cv_.notify_one();
  }

  // The worker closed the connection: it died. Says how, and frees its place in the pool.
  std::string Lost(std::unique_ptr<Worker> w) {
    std::string why = w->Reap();
    w.reset();
    Discard();
    return why;
  }

  Outcome Broken(Worker& w, const char* what) {
    w.Kill();
    Discard();
    return {InternalError(std::string("scan worker protocol error: ") + what), true};
  }

  IsolationOptions options_;
  std::mutex mu_;
  std::condition_variable idle_cv_;
  std::vector<std::unique_ptr<Worker>> idle_;
  unsigned live_ = 0;
};

}  // namespace

Result<std::unique_ptr<ScanRunner>> MakeIsolatedScanRunner(IsolationOptions options) {
  if (options.command.empty()) return InvalidArgumentError("scan worker: no command");
  auto runner = std::make_unique<IsolatedScanRunner>(std::move(options));
  RETURN_IF_ERROR(runner->Start());
  return std::unique_ptr<ScanRunner>(std::move(runner));
}

int RunScanWorker(int fd, const std::vector<std::unique_ptr<Scanner>>& scanners,
                  const std::vector<const ChunkDecoder*>& decoders, const SourceOpeners& openers,
                  ScanSettings settings) {
  {
    std::string hello;
    hello.push_back(static_cast<char>(kHello));
    PutU32(hello, 4);
    PutU32(hello, kProtocolVersion);
    if (!SendAll(fd, hello)) return 1;
  }
  Reader reader(fd);
  std::string head, text;
  rlim_t cpu_limit = 0;  // The soft CPU limit set last (0: none yet).
  while (true) {
    if (reader.Exact(4, head, std::nullopt) != Reader::Got::kOk) return 0;  // the indexer is done
    const uint32_t len = Fields(head).U32();
    if (len > kMaxRecord || reader.Exact(len, text, std::nullopt) != Reader::Got::kOk) return 1;
    std::optional<Job> job = DecodeJob(text);
    if (!job) return 1;
    const std::string& name = job->scanner;
    const double cpu = job->cpu_seconds;
    if (cpu > 0) {
      // SIGXCPU ends a scan that spins: the soft limit leaves each scan between `cpu` and 2 x
      // `cpu` seconds of CPU time, and is moved only when less than `cpu` is left (a few system
      // calls per scan otherwise: these workers run one scan per small file).
      const double used = CpuSecondsUsed();
      if (static_cast<double>(cpu_limit) < used + cpu) {
        cpu_limit = static_cast<rlim_t>(std::ceil(used + 2 * cpu)) + 1;
        rlimit limit{};
        ::getrlimit(RLIMIT_CPU, &limit);
        limit.rlim_cur = limit.rlim_max == RLIM_INFINITY ? cpu_limit
                                                         : std::min(cpu_limit, limit.rlim_max);
        ::setrlimit(RLIMIT_CPU, &limit);
      }
    }
    RecordWriter out(fd);
    Status status;
    bool exhausted = false;
    try {
      const Scanner* scanner = FindScanner(scanners, name);
      status = scanner ? ScanFileInto(*scanner, job->uri, openers, decoders, out, settings)
                       : InternalError("no scanner called '" + name + "'");
    } catch (const std::bad_alloc&) {
      status = CorruptError("scan ran out of memory (the scan's memory limit, --scan-memory)");
      exhausted = true;
    } catch (const std::exception& e) {
      status = InternalError(std::string("scan failed: ") + e.what());
      exhausted = true;
    }
    if (!out.Done(status, exhausted)) return 1;
    if (exhausted) return 1;
  }
}

}  // namespace refzarr
