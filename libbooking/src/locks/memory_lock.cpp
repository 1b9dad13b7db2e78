// LockProvider for threads of one process.
//
// One mutex guards a table of keys. Each key has its own condition variable and a waiter count:
// a release wakes one waiter of that key (notify_all would wake every buyer of a hot tier to
// let one in, and the context switches cost more than the bookings). A woken waiter that still
// cannot take all its keys passes the wake-up on, so no wake-up is lost. Waits are timed by the
// holder's TTL, so a lease abandoned without release frees its keys when it expires.
#include <booking/lock_provider.hpp>

#include <condition_variable>
#include <mutex>
#include <unordered_map>

#include "locks/lock_util.hpp"

namespace booking {

namespace {

using SteadyTime = std::chrono::steady_clock::time_point;

class MemoryLockProvider final : public LockProvider {
 public:
  result<LeaseInfo> acquire(std::span<const std::string> keys, std::chrono::milliseconds ttl,
                            SteadyTime deadline) override {
    LeaseInfo lease{detail::sorted_unique(keys), random_token(), {}};
    std::unique_lock lock(mu_);
    Entry* woken_by = nullptr;
    while (true) {
      const auto now = std::chrono::steady_clock::now();
      Entry* busy = nullptr;
      for (const auto& k : lease.keys) {
        auto it = keys_.find(k);
        if (it != keys_.end() && it->second.held(now)) {
          busy = &it->second;
          break;
        }
      }
      if (!busy) {
        lease.valid_until = now + ttl;
        for (const auto& k : lease.keys) {
          Entry& e = keys_[k];
          e.token = lease.token;
          e.valid_until = lease.valid_until;
        }
        return lease;
      }
      // The key we were woken for is free but we cannot use it now: wake its next waiter.
      if (woken_by && woken_by != busy && !woken_by->held(now) && woken_by->waiters > 0) {
        woken_by->cv.notify_one();
      }
      if (now >= deadline) return detail::lock_timeout_error("memory", lease.keys);
      ++busy->waiters;
      busy->cv.wait_until(lock, std::min(deadline, busy->valid_until));
      --busy->waiters;
      woken_by = busy;
    }
  }

  result<ReleaseOutcome> release(const LeaseInfo& lease) override {
    std::lock_guard lock(mu_);
    const auto now = std::chrono::steady_clock::now();
    const bool expired = lease.valid_until <= now;
    std::size_t owned = 0;
    for (const auto& k : lease.keys) {
      auto it = keys_.find(k);
      if (it == keys_.end() || it->second.token != lease.token) continue;
      ++owned;
      Entry& e = it->second;
      e.token.clear();
      if (e.waiters > 0) {
        e.cv.notify_one();
      } else {
        keys_.erase(it);  // nobody references a free key without waiters
      }
    }
    if (owned == lease.keys.size() && !expired) return ReleaseOutcome::released;
    if (owned == 0 && !expired) return ReleaseOutcome::not_owner;
    return ReleaseOutcome::expired;
  }

  result<void> extend(LeaseInfo& lease, std::chrono::milliseconds ttl) override {
    std::lock_guard lock(mu_);
    const auto now = std::chrono::steady_clock::now();
    for (const auto& k : lease.keys) {
      auto it = keys_.find(k);
      if (it == keys_.end() || it->second.token != lease.token || !it->second.held(now)) {
        return make_error(errc::invalid_state, "lease on '" + k + "' is no longer held");
      }
    }
    lease.valid_until = now + ttl;
    for (const auto& k : lease.keys) keys_[k].valid_until = lease.valid_until;
    return boost::outcome_v2::success();
  }

  std::string describe() const override { return "memory"; }

 private:
  struct Entry {
    std::string token;  // empty when free
    SteadyTime valid_until;
    std::condition_variable cv;
    int waiters = 0;
    bool held(SteadyTime now) const { return !token.empty() && valid_until > now; }
  };
  std::mutex mu_;  // guards keys_ and every Entry
  std::unordered_map<std::string, Entry> keys_;  // node-based: Entry& survives rehashing
};

}  // namespace

std::unique_ptr<LockProvider> make_memory_lock_provider() {
  return std::make_unique<MemoryLockProvider>();
}

}  // namespace booking
