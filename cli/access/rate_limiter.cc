#include "cli/access/rate_limiter.h"

#include <algorithm>
#include <chrono>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>

namespace refzarr {
namespace {

class TokenBucketLimiter final : public RateLimiter {
 public:
  TokenBucketLimiter(double per_second, double burst, SecondsClock now)
      : per_second_(per_second), burst_(std::max(1.0, burst)), now_(std::move(now)) {}

  bool Admit(std::string_view client) override {
    const double now = now_();
    std::lock_guard<std::mutex> lock(mutex_);
    if (buckets_.size() >= sweep_at_) Sweep(now);
    auto [it, added] = buckets_.try_emplace(std::string(client), Bucket{burst_, now});
    Bucket& bucket = it->second;
    if (!added) {
      bucket.tokens = std::min(burst_, bucket.tokens + (now - bucket.updated) * per_second_);
      bucket.updated = now;
    }
    if (bucket.tokens < 1.0) return false;
    bucket.tokens -= 1.0;
    return true;
  }

 private:
  struct Bucket {
    double tokens;
    double updated;
  };

  // Drops the buckets that have refilled; the next sweep waits until the map doubles again.
  void Sweep(double now) {
    for (auto it = buckets_.begin(); it != buckets_.end();) {
      double tokens = it->second.tokens + (now - it->second.updated) * per_second_;
      it = tokens >= burst_ ? buckets_.erase(it) : std::next(it);
    }
    sweep_at_ = std::max<size_t>(1024, 2 * buckets_.size());
  }

  const double per_second_;
  const double burst_;
  const SecondsClock now_;
  std::mutex mutex_;
  std::unordered_map<std::string, Bucket> buckets_;
  size_t sweep_at_ = 1024;
};

}  // namespace

std::unique_ptr<RateLimiter> MakeRateLimiter(double per_second, double burst, SecondsClock now) {
  return std::make_unique<TokenBucketLimiter>(per_second, burst, std::move(now));
}

double SteadySeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace refzarr
