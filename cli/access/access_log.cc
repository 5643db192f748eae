#include "cli/access/access_log.h"

#include <cstdio>
#include <mutex>

namespace refzarr {
namespace {

class StreamAccessLog final : public AccessLog {
 public:
  explicit StreamAccessLog(std::ostream& out) : out_(out) {}
  void Record(const AccessRecord& record) override {
    std::string line = CommonLogLine(record);
    std::lock_guard<std::mutex> lock(mutex_);
    out_ << line << std::flush;
  }

 private:
  std::ostream& out_;
  std::mutex mutex_;
};

}  // namespace

std::string CommonLogLine(const AccessRecord& record) {
  std::tm tm{};
  gmtime_r(&record.when, &tm);
  char when[64];
  std::strftime(when, sizeof when, "%d/%b/%Y:%H:%M:%S +0000", &tm);
  char seconds[32];
  std::snprintf(seconds, sizeof seconds, "%.6f", record.seconds);
  return record.client + " - " + (record.principal.empty() ? "-" : record.principal) + " [" +
         when + "] \"" + record.method + " " + record.path + " " + record.version + "\" " +
         std::to_string(record.status) + " " +
         (record.bytes ? std::to_string(*record.bytes) : "-") + " " + seconds + "\n";
}

std::unique_ptr<AccessLog> MakeStreamAccessLog(std::ostream& out) {
  return std::make_unique<StreamAccessLog>(out);
}

}  // namespace refzarr
