// Test helpers for the hold paths: a lock provider behind a gate, and a one-line hold.
#pragma once

#include <atomic>
#include <booking/booking_service.hpp>
#include <booking/lock_provider.hpp>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>

namespace booking::test {

// The memory provider, counting acquisitions; while `closed`, an acquisition waits for open()
// (a lock another process holds for a while) or fails at its deadline.
class GateProvider final : public LockProvider {
 public:
  result<LeaseInfo> acquire(std::span<const std::string> keys, std::chrono::milliseconds ttl,
                            std::chrono::steady_clock::time_point deadline) override {
    acquisitions.fetch_add(1);
    {
      std::unique_lock lock(mu_);
      waiting_ += 1;
      cv_.notify_all();
      const bool opened = cv_.wait_until(lock, deadline, [&] { return !closed_; });
      waiting_ -= 1;
      if (!opened) return make_error(errc::lock_timeout, "the gate stayed closed");
    }
    return inner_->acquire(keys, ttl, deadline);
  }
  result<ReleaseOutcome> release(const LeaseInfo& lease) override { return inner_->release(lease); }
  result<void> extend(LeaseInfo& lease, std::chrono::milliseconds ttl) override {
    return inner_->extend(lease, ttl);
  }
  std::string describe() const override { return "gate"; }

  void close() {
    std::lock_guard lock(mu_);
    closed_ = true;
  }
  void open() {
    std::lock_guard lock(mu_);
    closed_ = false;
    cv_.notify_all();
  }
  // Waits until an acquisition waits at the closed gate.
  void await_waiter() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return waiting_ > 0; });
  }

  std::atomic<int> acquisitions{0};

 private:
  std::unique_ptr<LockProvider> inner_ = make_memory_lock_provider();
  std::mutex mu_;
  std::condition_variable cv_;
  bool closed_ = false;
  int waiting_ = 0;
};

inline HoldRequest one(const std::string& event, const std::string& tier, std::int64_t qty = 1) {
  HoldRequest r;
  r.event_key = event;
  r.lines = {{tier, qty}};
  return r;
}

}  // namespace booking::test
