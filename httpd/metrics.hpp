// Prometheus metrics of bookingd. Thread-safe: counters are guarded by one mutex, histograms
// by their own.
#pragma once

#include <array>
#include <atomic>
#include <booking/booking_service.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <string>

namespace booking::httpd {

// A fixed-bucket latency histogram in seconds.
class Histogram {
 public:
  static constexpr std::array<double, 12> kBounds{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                  0.05,   0.1,   0.25,   0.5,   1.0,  2.5};
  void observe(std::chrono::nanoseconds d);
  void render(std::string& out, const std::string& name, const std::string& help) const;

 private:
  mutable std::mutex mu_;
  std::array<std::uint64_t, kBounds.size() + 1> counts_{};
  double sum_ = 0;
  double max_ = 0;  // the longest observation since start (buckets hide the tail's end)
  std::uint64_t count_ = 0;
};

class Metrics {
 public:
  explicit Metrics(std::size_t tier_limit) : tier_limit_(tier_limit) {}

  void count_request(const std::string& route, const std::string& method, int status);
  // "ok" or the error code of a hold.
  void count_hold(std::string_view outcome, std::chrono::nanoseconds took);
  Histogram& lock_wait() { return lock_wait_; }
  // Holds this instance's sweeper expired.
  void count_expired(std::size_t n) { expired_ += n; }

  // The Prometheus text exposition, with gauges read through `service` now.
  std::string render(BookingService& service) const;
  // More lines for render (e.g. webhook delivery), set before serving.
  void set_extra(std::function<void(std::string&)> extra) { extra_ = std::move(extra); }

 private:
  std::size_t tier_limit_;
  mutable std::mutex mu_;  // guards the two maps
  std::map<std::tuple<std::string, std::string, int>, std::uint64_t> requests_;
  std::map<std::string, std::uint64_t, std::less<>> holds_;
  Histogram hold_latency_;
  Histogram lock_wait_;
  std::atomic<std::uint64_t> expired_{0};
  std::function<void(std::string&)> extra_;
};

}  // namespace booking::httpd
