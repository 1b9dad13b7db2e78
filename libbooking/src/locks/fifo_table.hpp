// First come, first served mutual exclusion for the threads of one process.
//
// The memory provider is this table; the file provider puts it in front of its flocks so that
// only one thread per process and key waits at the operating-system level.
#pragma once

#include <booking/lock_provider.hpp>
#include <condition_variable>
#include <functional>
#include <list>
#include <mutex>
#include <string>
#include <unordered_map>

namespace booking::detail {

class FifoTable {
 public:
  using SteadyTime = std::chrono::steady_clock::time_point;

  // Takes `lease.keys` (sorted, unique) one by one in that order, each in arrival order: a
  // waiter queues behind the waiters already there and is woken by the release that makes it
  // the head. A holder's TTL bounds the wait for an abandoned lease. All or nothing: on timeout
  // the keys already taken are given back. Sets lease.valid_until.
  result<void> acquire(LeaseInfo& lease, std::chrono::milliseconds ttl, SteadyTime deadline,
                       std::string_view backend);

  // Gives back the keys `lease` owns; counts them (0 when the token owns none). `before` runs
  // for each owned key while the table is locked, before the next waiter can be woken.
  std::size_t release(const LeaseInfo& lease,
                      const std::function<void(const std::string&)>& before = {});

  result<void> extend(LeaseInfo& lease, std::chrono::milliseconds ttl);

  // Whether a thread waits for one of `keys` (sorted, unique), or one of them is held.
  bool waited_for(const std::vector<std::string>& keys, bool or_held = false);
  // Makes the keys `lease` owns owned by `token` (the lease's new token).
  void retoken(LeaseInfo& lease, const std::string& token);

 private:
  struct Waiter {
    std::condition_variable cv;
  };
  struct Entry {
    std::string token;  // empty when free
    SteadyTime valid_until;
    std::list<Waiter*> queue;  // arrival order; the front is next
    bool held(SteadyTime now) const { return !token.empty() && valid_until > now; }
  };

  // Under mu_: frees `e` and wakes its next waiter, or forgets the key when nobody waits.
  void give_back(const std::string& key, Entry& e);

  std::mutex mu_;                                // guards keys_ and every Entry
  std::unordered_map<std::string, Entry> keys_;  // node-based: Entry& survives rehashing
};

}  // namespace booking::detail
