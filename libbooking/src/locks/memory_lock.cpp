// LockProvider for threads of one process. One mutex guards the table of held keys; waiters
// sleep on a condition variable and are woken by every release (and re-check expiry on a timed
// wake so that a lease abandoned without release frees its keys at its TTL).
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
    while (true) {
      auto now = std::chrono::steady_clock::now();
      SteadyTime earliest_expiry = SteadyTime::max();
      bool all_free = true;
      for (const auto& k : lease.keys) {
        auto it = held_.find(k);
        if (it != held_.end() && it->second.valid_until > now) {
          all_free = false;
          earliest_expiry = std::min(earliest_expiry, it->second.valid_until);
        }
      }
      if (all_free) {
        lease.valid_until = now + ttl;
        for (const auto& k : lease.keys) held_[k] = Holder{lease.token, lease.valid_until};
        return lease;
      }
      if (now >= deadline) return detail::lock_timeout_error("memory", lease.keys);
      cv_.wait_until(lock, std::min(deadline, earliest_expiry));
    }
  }

  result<ReleaseOutcome> release(const LeaseInfo& lease) override {
    std::size_t owned = 0;
    {
      std::lock_guard lock(mu_);
      auto now = std::chrono::steady_clock::now();
      bool expired = lease.valid_until <= now;
      for (const auto& k : lease.keys) {
        auto it = held_.find(k);
        if (it != held_.end() && it->second.token == lease.token) {
          held_.erase(it);
          ++owned;
        }
      }
      if (owned == 0) return expired ? ReleaseOutcome::expired : ReleaseOutcome::not_owner;
      if (expired || owned < lease.keys.size()) {
        cv_.notify_all();
        return ReleaseOutcome::expired;
      }
    }
    cv_.notify_all();
    return ReleaseOutcome::released;
  }

  result<void> extend(LeaseInfo& lease, std::chrono::milliseconds ttl) override {
    std::lock_guard lock(mu_);
    auto now = std::chrono::steady_clock::now();
    for (const auto& k : lease.keys) {
      auto it = held_.find(k);
      if (it == held_.end() || it->second.token != lease.token || it->second.valid_until <= now) {
        return make_error(errc::invalid_state, "lease on '" + k + "' is no longer held");
      }
    }
    lease.valid_until = now + ttl;
    for (const auto& k : lease.keys) held_[k].valid_until = lease.valid_until;
    return boost::outcome_v2::success();
  }

  std::string describe() const override { return "memory"; }

 private:
  struct Holder {
    std::string token;
    SteadyTime valid_until;
  };
  std::mutex mu_;
  std::condition_variable cv_;
  std::unordered_map<std::string, Holder> held_;
};

}  // namespace

std::unique_ptr<LockProvider> make_memory_lock_provider() {
  return std::make_unique<MemoryLockProvider>();
}

}  // namespace booking
