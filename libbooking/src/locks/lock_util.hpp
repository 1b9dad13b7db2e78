// Helpers shared by the lock providers.
#pragma once

#include <booking/error.hpp>

#include <chrono>
#include <random>
#include <span>
#include <string>
#include <vector>

namespace booking::detail {

// Keys deduplicated and sorted: the one global order that makes multi-key acquire
// deadlock-free.
std::vector<std::string> sorted_unique(std::span<const std::string> keys);

// Jittered exponential backoff: the cap doubles from `base` to `max` (2 ms to 50 ms by default),
// each sleep uniform in [cap/4, cap] (never a zero sleep, which would spin).
class Backoff {
 public:
  explicit Backoff(std::chrono::microseconds base = std::chrono::milliseconds(2),
                   std::chrono::microseconds max = std::chrono::milliseconds(50))
      : cap_(base), max_(max) {}
  // The next sleep, never past `deadline`.
  std::chrono::microseconds next(std::chrono::steady_clock::time_point deadline) {
    // One generator per thread, seeded once: std::random_device costs ~10 us to construct.
    thread_local std::minstd_rand rng(std::random_device{}());
    std::uniform_int_distribution<std::int64_t> d(cap_.count() / 4, cap_.count());
    auto sleep = std::chrono::microseconds(d(rng));
    cap_ = std::min(cap_ * 2, max_);
    auto left = std::chrono::duration_cast<std::chrono::microseconds>(
        deadline - std::chrono::steady_clock::now());
    return std::max(std::chrono::microseconds(0), std::min(sleep, left));
  }

 private:
  std::chrono::microseconds cap_;
  std::chrono::microseconds max_;
};

inline error lock_timeout_error(std::string_view backend, std::span<const std::string> keys) {
  std::string k;
  for (const auto& key : keys) k += (k.empty() ? "" : ", ") + key;
  return make_error(errc::lock_timeout, "timed out waiting for " + std::string(backend) +
                                            " lock on " + k);
}

}  // namespace booking::detail
