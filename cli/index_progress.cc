#include "cli/index_progress.h"

#include <cmath>
#include <cstdio>

#include <nlohmann/json.hpp>

namespace refzarr {
namespace {

// 1234567 -> "1,234,567".
std::string Grouped(uint64_t n) {
  std::string digits = std::to_string(n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

// Bytes in decimal units, three significant digits: "512 B", "1.23 MB", "45.6 GB".
std::string Bytes(double b) {
  static const char* kUnits[] = {"B", "kB", "MB", "GB", "TB", "PB"};
  int u = 0;
  while (b >= 1000 && u < 5) {
    b /= 1000;
    ++u;
  }
  char buf[32];
  if (u == 0) {
    std::snprintf(buf, sizeof buf, "%.0f B", b);
  } else {
    std::snprintf(buf, sizeof buf, b < 10 ? "%.2f %s" : b < 100 ? "%.1f %s" : "%.0f %s", b,
                  kUnits[u]);
  }
  return buf;
}

// Seconds as "m:ss" or "h:mm:ss".
std::string Clock(double seconds) {
  const auto s = static_cast<uint64_t>(std::max(0.0, seconds));
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof buf, "%llu:%02llu:%02llu", static_cast<unsigned long long>(s / 3600),
                  static_cast<unsigned long long>(s / 60 % 60), static_cast<unsigned long long>(s % 60));
  } else {
    std::snprintf(buf, sizeof buf, "%llu:%02llu", static_cast<unsigned long long>(s / 60),
                  static_cast<unsigned long long>(s % 60));
  }
  return buf;
}

// Rates over the whole run so far (steady enough for a long run, and what an ETA needs).
double FilesPerSecond(const IndexProgress& p) {
  return p.elapsed_seconds > 0 ? p.files_done / p.elapsed_seconds : 0;
}

// Seconds left, or a negative number while it cannot be known (no total, no rate yet).
double Eta(const IndexProgress& p) {
  const double rate = FilesPerSecond(p);
  if (!p.total_known || rate <= 0 || p.files_done == 0) return -1;
  return p.files_total > p.files_done ? (p.files_total - p.files_done) / rate : 0;
}

class TerminalProgress : public ProgressSink {
 public:
  explicit TerminalProgress(std::ostream& out) : out_(out) {}
  void Update(const IndexProgress& p) override {
    if (drawn_ && p.elapsed_seconds - last_ < 0.1) return;
    Draw(p);
  }
  void Done(const IndexProgress& p) override {
    Draw(p);
    out_ << "\n" << std::flush;
  }

 private:
  void Draw(const IndexProgress& p) {
    last_ = p.elapsed_seconds;
    drawn_ = true;
    out_ << "\r" << ProgressLine(p) << "\x1b[K" << std::flush;
  }
  std::ostream& out_;
  double last_ = 0;
  bool drawn_ = false;
};

class JsonProgress : public ProgressSink {
 public:
  explicit JsonProgress(std::ostream& out) : out_(out) {}
  void Update(const IndexProgress& p) override {
    if (written_ && p.elapsed_seconds - last_ < 1.0) return;
    Write(p, false);
  }
  void Done(const IndexProgress& p) override { Write(p, true); }

 private:
  void Write(const IndexProgress& p, bool done) {
    last_ = p.elapsed_seconds;
    written_ = true;
    const double eta = Eta(p);
    nlohmann::json j = {
        {"files_done", p.files_done},
        {"files_total", p.total_known ? nlohmann::json(p.files_total) : nlohmann::json()},
        {"indexed", p.indexed}, {"unchanged", p.unchanged}, {"failed", p.failed},
        {"bytes", p.bytes_done}, {"chunks", p.chunks},
        {"elapsed_s", std::round(p.elapsed_seconds * 1000) / 1000},
        {"files_per_s", std::round(FilesPerSecond(p) * 10) / 10},
        {"bytes_per_s", p.elapsed_seconds > 0 ? std::round(p.bytes_done / p.elapsed_seconds) : 0.0},
        {"eta_s", eta >= 0 ? nlohmann::json(std::round(eta * 10) / 10) : nlohmann::json()},
        {"done", done}};
    out_ << j.dump() << "\n" << std::flush;
  }
  std::ostream& out_;
  double last_ = 0;
  bool written_ = false;
};

}  // namespace

std::string ProgressLine(const IndexProgress& p) {
  std::string line = Grouped(p.files_done);
  if (p.total_known) {
    line += "/" + Grouped(p.files_total) + " files";
    if (p.files_total > 0) {
      line += " (" + std::to_string(std::min<uint64_t>(100, p.files_done * 100 / p.files_total)) + "%)";
    }
  } else {
    line += " files";
  }
  line += ", " + Bytes(static_cast<double>(p.bytes_done));
  if (p.failed) line += ", " + Grouped(p.failed) + " failed";
  line += ", " + Grouped(static_cast<uint64_t>(FilesPerSecond(p))) + " files/s";
  if (p.elapsed_seconds > 0) line += ", " + Bytes(p.bytes_done / p.elapsed_seconds) + "/s";
  line += ", " + Clock(p.elapsed_seconds) + " elapsed";
  const double eta = Eta(p);
  if (eta >= 0) line += ", ETA " + Clock(eta);
  return line;
}

std::unique_ptr<ProgressSink> MakeTerminalProgress(std::ostream& out) {
  return std::make_unique<TerminalProgress>(out);
}

std::unique_ptr<ProgressSink> MakeJsonProgress(std::ostream& out) {
  return std::make_unique<JsonProgress>(out);
}

}  // namespace refzarr
