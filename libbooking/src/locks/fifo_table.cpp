#include "locks/fifo_table.hpp"

#include "locks/lock_util.hpp"

namespace booking::detail {

result<void> FifoTable::acquire(LeaseInfo& lease, std::chrono::milliseconds ttl,
                                SteadyTime deadline, std::string_view backend) {
  std::unique_lock lock(mu_);
  std::vector<Entry*> taken;
  taken.reserve(lease.keys.size());
  for (const auto& key : lease.keys) {
    Entry& e = keys_[key];
    auto now = std::chrono::steady_clock::now();
    if (e.queue.empty() && !e.held(now)) {
      e.token = lease.token;
      e.valid_until = now + ttl;
      taken.push_back(&e);
      continue;
    }
    Waiter self;
    auto pos = e.queue.insert(e.queue.end(), &self);
    while (true) {
      now = std::chrono::steady_clock::now();
      const bool head = e.queue.front() == &self;
      if (head && !e.held(now)) break;
      if (now >= deadline) {
        e.queue.erase(pos);
        // Leaving the head: the next waiter now heads the queue (and watches the holder's TTL).
        if (head && !e.queue.empty()) e.queue.front()->cv.notify_one();
        for (std::size_t i = 0; i < taken.size(); ++i) give_back(lease.keys[i], *taken[i]);
        if (e.queue.empty() && !e.held(now)) keys_.erase(key);
        return lock_timeout_error(backend, lease.keys);
      }
      // Only the head watches the holder's TTL; the others wait for their turn.
      self.cv.wait_until(lock, head ? std::min(deadline, e.valid_until) : deadline);
    }
    e.queue.erase(pos);
    e.token = lease.token;
    e.valid_until = now + ttl;
    taken.push_back(&e);
  }
  // The lease is guaranteed from the last key taken: earlier keys got their TTL from earlier
  // instants, so push them all to one expiry.
  lease.valid_until = std::chrono::steady_clock::now() + ttl;
  for (Entry* e : taken) e->valid_until = lease.valid_until;
  return boost::outcome_v2::success();
}

void FifoTable::give_back(const std::string& key, Entry& e) {
  e.token.clear();
  if (!e.queue.empty()) {
    e.queue.front()->cv.notify_one();
  } else {
    keys_.erase(key);  // nobody references a free key without waiters
  }
}

std::size_t FifoTable::release(const LeaseInfo& lease,
                               const std::function<void(const std::string&)>& before) {
  std::lock_guard lock(mu_);
  std::size_t owned = 0;
  for (const auto& k : lease.keys) {
    auto it = keys_.find(k);
    if (it == keys_.end() || it->second.token != lease.token) continue;
    ++owned;
    if (before) before(k);
    give_back(k, it->second);
  }
  return owned;
}

result<void> FifoTable::extend(LeaseInfo& lease, std::chrono::milliseconds ttl) {
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

bool FifoTable::waited_for(const std::vector<std::string>& keys, bool or_held) {
  std::lock_guard lock(mu_);
  const auto now = std::chrono::steady_clock::now();
  for (const auto& k : keys) {
    auto it = keys_.find(k);
    if (it == keys_.end()) continue;
    if (!it->second.queue.empty() || (or_held && it->second.held(now))) return true;
  }
  return false;
}

void FifoTable::retoken(LeaseInfo& lease, const std::string& token) {
  std::lock_guard lock(mu_);
  for (const auto& k : lease.keys) {
    auto it = keys_.find(k);
    if (it != keys_.end() && it->second.token == lease.token) it->second.token = token;
  }
  lease.token = token;
}

}  // namespace booking::detail
