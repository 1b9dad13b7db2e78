// LockProvider for threads of one process: a FifoTable. Waiters queue per key in arrival order
// and the release wakes exactly the next one (no thundering herd on a hot tier, and nobody who
// arrives later can pass a waiter). Waits are also timed by the holder's TTL, so a lease
// abandoned without release frees its keys when it expires.
#include <booking/lock_provider.hpp>

#include "locks/fifo_table.hpp"
#include "locks/lock_util.hpp"

namespace booking {

namespace {

class MemoryLockProvider final : public LockProvider {
 public:
  result<LeaseInfo> acquire(std::span<const std::string> keys, std::chrono::milliseconds ttl,
                            std::chrono::steady_clock::time_point deadline) override {
    LeaseInfo lease{detail::sorted_unique(keys), random_token(), {}};
    BOOKING_TRY(table_.acquire(lease, ttl, deadline, "memory"));
    return lease;
  }

  result<ReleaseOutcome> release(const LeaseInfo& lease) override {
    const bool expired = lease.valid_until <= std::chrono::steady_clock::now();
    const std::size_t owned = table_.release(lease);
    if (owned == lease.keys.size() && !expired) return ReleaseOutcome::released;
    if (owned == 0 && !expired) return ReleaseOutcome::not_owner;
    return ReleaseOutcome::expired;
  }

  result<void> extend(LeaseInfo& lease, std::chrono::milliseconds ttl) override {
    return table_.extend(lease, ttl);
  }

  std::string describe() const override { return "memory"; }

 private:
  detail::FifoTable table_;
};

}  // namespace

std::unique_ptr<LockProvider> make_memory_lock_provider() {
  return std::make_unique<MemoryLockProvider>();
}

}  // namespace booking
