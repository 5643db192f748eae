// Requests per second per client address (`serve --rate-limit`): a token bucket per address.
#pragma once

#include <functional>
#include <memory>
#include <string_view>

namespace refzarr {

/// Admits or refuses requests, per client. Thread-safe.
class RateLimiter {
 public:
  virtual ~RateLimiter() = default;
  /// Whether `client` may make a request now (then it is counted); false: answer 429.
  virtual bool Admit(std::string_view client) = 0;
};

/// Monotonic seconds; injected so tests can move time.
using SecondsClock = std::function<double()>;

/// A token bucket per client: `per_second` requests a second on average, bursts of up to `burst`.
/// Memory stays proportional to the clients seen in the last burst/per_second seconds: a full
/// bucket is dropped (it is the same as a new one).
std::unique_ptr<RateLimiter> MakeRateLimiter(double per_second, double burst, SecondsClock now);

/// std::chrono::steady_clock in seconds.
double SteadySeconds();

}  // namespace refzarr
