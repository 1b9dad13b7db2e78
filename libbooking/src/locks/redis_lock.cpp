// LockProvider for processes on many hosts, on one Redis server.
//
// Each key is a lock (SET token PX ttl) with a queue of waiters in front of it: a list in
// arrival order and a sorted set of each waiter's liveness deadline (Redis's clock). One Lua
// script takes the lock when it is free and the caller heads the queue (or the queue is
// empty), and otherwise enqueues the caller or refreshes its liveness, answering its position.
// Waiters poll that script: the head often (50 us growing to 1 ms), the others less the further
// back they are. A waiter that stops polling (its process died) is dropped from the head once
// its liveness passes, so a crash costs the queue at most kWaiterLiveness. Keys are taken one at
// a time in sorted order, holding the earlier ones. The threads of one process queue in front of
// that, in-process (a FifoTable), so at most one of them per key polls the server. This is the
// queue Redisson keeps for its fair lock, polled rather than subscribed: hiredis 0.14's blocking
// reads die on the command timeout. Release and extend are Lua scripts that act only where the key
// still holds our token.
//
// Handing a lease on within the process: when a holder releases while another thread of this
// process waits for the same keys, the Redis keys are kept and the next local holder takes them
// over (the same token) instead of releasing and taking them again on the server, which costs
// each hold two round trips and, when processes alternate, a poll interval. A process keeps a
// lease this way for at most kMaxHandOvers holders in a row and only while more than half of its
// TTL is left; then it releases on the server and the other processes' waiters, queued there in
// arrival order, go first. So a waiter of another process is passed by at most kMaxHandOvers
// local holders, never starved. Single server by design: with asynchronous replication a failover
// can hand a lock to two holders, which is why the stock take is also conditional in storage.
#include <hiredis/hiredis.h>

#include <algorithm>
#include <booking/lock_provider.hpp>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include "locks/fifo_table.hpp"
#include "locks/lock_util.hpp"
#include "locks/redis_client.hpp"

namespace booking {

namespace {

using SteadyTime = std::chrono::steady_clock::time_point;

// Returns {released, gone}: keys deleted because they held our token, keys that no longer exist.
constexpr const char* kReleaseScript = R"lua(
local released, gone = 0, 0
for _, k in ipairs(KEYS) do
  local v = redis.call('GET', k)
  if v == ARGV[1] then
    redis.call('DEL', k)
    released = released + 1
  elseif not v then
    gone = gone + 1
  end
end
return {released, gone}
)lua";

// 1 when every key still held our token and had its expiry pushed; 0 (nothing changed) if not.
constexpr const char* kExtendScript = R"lua(
for _, k in ipairs(KEYS) do
  if redis.call('GET', k) ~= ARGV[1] then return 0 end
end
for _, k in ipairs(KEYS) do redis.call('PEXPIRE', k, ARGV[2]) end
return 1
)lua";

// KEYS: lock, queue list, liveness zset. ARGV: token, ttl ms, liveness ms.
// Returns -1 when the lock was taken, else the caller's 0-based place in the queue.
constexpr const char* kAcquireScript = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
while true do
  local head = redis.call('LINDEX', KEYS[2], 0)
  if not head then break end
  local alive = tonumber(redis.call('ZSCORE', KEYS[3], head))
  if alive and alive > now then break end
  redis.call('LPOP', KEYS[2])
  redis.call('ZREM', KEYS[3], head)
end
local head = redis.call('LINDEX', KEYS[2], 0)
if redis.call('EXISTS', KEYS[1]) == 0 and (not head or head == ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  if head then
    redis.call('LPOP', KEYS[2])
    redis.call('ZREM', KEYS[3], ARGV[1])
  end
  return -1
end
if not redis.call('ZSCORE', KEYS[3], ARGV[1]) then redis.call('RPUSH', KEYS[2], ARGV[1]) end
local liveness = tonumber(ARGV[3])
redis.call('ZADD', KEYS[3], now + liveness, ARGV[1])
redis.call('PEXPIRE', KEYS[2], liveness * 2)
redis.call('PEXPIRE', KEYS[3], liveness * 2)
return redis.call('LPOS', KEYS[2], ARGV[1])
)lua";

// KEYS: queue list, liveness zset. ARGV: token. A waiter giving up leaves the queue.
constexpr const char* kLeaveScript = R"lua(
redis.call('LREM', KEYS[1], 0, ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
)lua";

// How long a waiter stays queued without polling: a waiter polls at least every
// kMaxPollInterval, so only a dead (or frozen) process misses this.
constexpr std::chrono::milliseconds kWaiterLiveness{1000};
constexpr std::chrono::microseconds kMaxPollInterval{10000};
// Local holders that may take a lease over before it goes back to the server.
constexpr int kMaxHandOvers = 16;

std::string joined(const std::vector<std::string>& keys) {
  std::string out;
  for (const auto& k : keys) out += k + '\x1f';
  return out;
}

class RedisLockProvider final : public LockProvider {
 public:
  explicit RedisLockProvider(RedisLockOptions options)
      : options_(options), client_(std::move(options)) {}
  ~RedisLockProvider() override {
    for (const auto& [keys, k] : kept_) (void)release_token(k.token, k.keys);
  }

  result<void> ping() {
    BOOKING_TRY(client_.command({"PING"}));
    return boost::outcome_v2::success();
  }

  result<LeaseInfo> acquire(std::span<const std::string> keys, std::chrono::milliseconds ttl,
                            SteadyTime deadline) override {
    LeaseInfo lease{detail::sorted_unique(keys), random_token(), {}};
    // The threads of this process first queue here, in arrival order, and hand the key to each
    // other without Redis: only one waiter per process and key polls the server's queue.
    if (auto local = local_.acquire(lease, ttl, deadline, "redis"); !local) {
      // Nobody here will take over a lease kept for these keys: give it back to the server.
      if (!local_.waited_for(lease.keys, true)) release_kept(lease.keys, true);
      return local.error();
    }
    const SteadyTime local_until = lease.valid_until;
    if (auto kept = take_kept(lease.keys)) {
      local_.retoken(lease, kept->token);
      lease.valid_until = std::min(local_until, kept->remote_until);
      return lease;
    }
    if (auto remote = acquire_remote(lease, ttl, deadline); !remote) {
      local_.release(lease);
      return remote.error();
    }
    {
      std::lock_guard lock(mu_);
      held_[lease.token] = Held{lease.valid_until, lease.valid_until - ttl / 2, 0};
    }
    lease.valid_until = std::min(local_until, lease.valid_until);
    return lease;
  }

  result<ReleaseOutcome> release(const LeaseInfo& lease) override {
    const auto now = std::chrono::steady_clock::now();
    {
      std::unique_lock lock(mu_);
      auto it = held_.find(lease.token);
      if (it != held_.end()) {
        Held h = it->second;
        held_.erase(it);
        lock.unlock();
        // Another thread here waits for these keys: it takes the Redis keys over.
        if (h.passes < kMaxHandOvers && now < h.hand_over_until && lease.valid_until > now &&
            local_.waited_for(lease.keys)) {
          lock.lock();
          kept_[joined(lease.keys)] =
              Kept{lease.token, lease.keys, h.remote_until, h.hand_over_until, h.passes + 1};
          lock.unlock();
          local_.release(lease);
          // The waiter may have given up meanwhile: if nobody here holds or waits for these
          // keys now, nobody will take the lease over.
          if (!local_.waited_for(lease.keys, true)) release_kept(lease.keys, false);
          return ReleaseOutcome::released;
        }
      }
    }
    auto remote = release_remote(lease);
    local_.release(lease);  // whatever Redis said: this process's next waiter may go on
    return remote;
  }

  result<void> extend(LeaseInfo& lease, std::chrono::milliseconds ttl) override {
    BOOKING_TRY(local_.extend(lease, ttl));
    const SteadyTime local_until = lease.valid_until;
    BOOKING_TRY(extend_remote(lease, ttl));
    {
      std::lock_guard lock(mu_);
      if (auto it = held_.find(lease.token); it != held_.end()) {
        it->second.remote_until = lease.valid_until;
      }
    }
    lease.valid_until = std::min(local_until, lease.valid_until);
    return boost::outcome_v2::success();
  }

  std::string describe() const override { return "redis://" + client_.endpoint(); }

 private:
  // A lease this process holds on the server: until when, until when it may be handed on, and
  // how many local holders it was handed to so far.
  struct Held {
    SteadyTime remote_until;
    SteadyTime hand_over_until;
    int passes = 0;
  };
  // A lease released by its holder and kept for the next local holder of the same keys.
  struct Kept {
    std::string token;
    std::vector<std::string> keys;
    SteadyTime remote_until;
    SteadyTime hand_over_until;
    int passes = 0;
  };

  // The lease kept for exactly `keys`, now owned by the caller (who holds them locally); a kept
  // lease on other keys that overlap is released on the server (its keys are the caller's now).
  std::optional<Kept> take_kept(const std::vector<std::string>& keys) {
    std::optional<Kept> taken;
    std::vector<Kept> stale;
    {
      std::lock_guard lock(mu_);
      const std::string mine = joined(keys);
      for (auto it = kept_.begin(); it != kept_.end();) {
        if (it->first == mine) {
          taken = it->second;
        } else if (!overlaps(it->first, keys)) {
          ++it;
          continue;
        } else {
          stale.push_back(it->second);
        }
        it = kept_.erase(it);
      }
      if (taken && std::chrono::steady_clock::now() < taken->hand_over_until) {
        held_[taken->token] = Held{taken->remote_until, taken->hand_over_until, taken->passes};
      } else if (taken) {
        stale.push_back(*taken);
        taken.reset();
      }
    }
    for (const Kept& k : stale) (void)release_token(k.token, k.keys);
    return taken;
  }

  // Releases on the server a lease kept for `keys` (or, with `overlapping`, for keys among them).
  void release_kept(const std::vector<std::string>& keys, bool overlapping) {
    std::vector<Kept> stale;
    {
      std::lock_guard lock(mu_);
      const std::string mine = joined(keys);
      for (auto it = kept_.begin(); it != kept_.end();) {
        if (it->first == mine || (overlapping && overlaps(it->first, keys))) {
          stale.push_back(it->second);
          it = kept_.erase(it);
        } else {
          ++it;
        }
      }
    }
    for (const Kept& k : stale) (void)release_token(k.token, k.keys);
  }

  // Whether a joined key set names one of `keys` (sorted).
  static bool overlaps(const std::string& joined_keys, const std::vector<std::string>& keys) {
    std::size_t start = 0;
    while (start < joined_keys.size()) {
      const std::size_t end = joined_keys.find('\x1f', start);
      if (std::binary_search(keys.begin(), keys.end(), joined_keys.substr(start, end - start))) {
        return true;
      }
      start = end + 1;
    }
    return false;
  }

  // Releases `token`'s keys on the server. The script deletes a key only where it holds the
  // token, so naming more keys than the token holds is harmless.
  result<void> release_token(const std::string& token, const std::vector<std::string>& keys) {
    std::vector<std::string> all;
    for (const auto& k : keys) all.push_back(options_.key_prefix + k);
    BOOKING_TRY(client_.eval(kReleaseScript, all, {token}));
    return boost::outcome_v2::success();
  }

  // Takes `lease`'s keys on the server, queueing in its waiter lists; sets lease.valid_until.
  result<void> acquire_remote(LeaseInfo& lease, std::chrono::milliseconds ttl,
                              SteadyTime deadline) {
    const std::string ttl_ms = std::to_string(ttl.count());
    const std::string liveness_ms = std::to_string(kWaiterLiveness.count());
    std::vector<std::string> taken;  // full lock keys already ours
    std::optional<SteadyTime> first_taken;
    for (const auto& k : lease.keys) {
      const std::string lock_key = options_.key_prefix + k;
      // The queue's keys stay inside the prefix (ACLs are often written as prefix patterns) and
      // end in a unit separator no tier key contains.
      const std::string queue = lock_key +
                                "\x1f"
                                "queue";
      const std::string alive = lock_key +
                                "\x1f"
                                "alive";
      detail::Backoff head_backoff(std::chrono::microseconds(50), std::chrono::microseconds(1000));
      std::optional<error> backend_error;
      bool queued = false;
      while (true) {
        const auto start = std::chrono::steady_clock::now();
        auto r = client_.eval(kAcquireScript, {lock_key, queue, alive},
                              {lease.token, ttl_ms, liveness_ms});
        long long place = 0;
        if (!r) {
          backend_error = r.error();
        } else {
          backend_error.reset();
          place = r.value()->type == REDIS_REPLY_INTEGER ? r.value()->integer : 0;
          if (place < 0) {
            if (!first_taken) first_taken = start;
            taken.push_back(lock_key);
            break;
          }
          queued = true;
        }
        const auto now = std::chrono::steady_clock::now();
        if (now >= deadline) {
          if (queued) (void)client_.eval(kLeaveScript, {queue, alive}, {lease.token});
          if (!taken.empty()) (void)client_.eval(kReleaseScript, taken, {lease.token});
          if (backend_error) return *backend_error;
          return detail::lock_timeout_error("redis", lease.keys);
        }
        // The head is next: poll it often. The others have at least `place` holds before them.
        auto pause = place == 0 ? head_backoff.next(deadline)
                                : std::min(kMaxPollInterval,
                                           std::chrono::microseconds(500 * std::min(place, 100LL)));
        if (backend_error) pause = head_backoff.next(deadline);
        std::this_thread::sleep_for(
            std::min(pause, std::chrono::duration_cast<std::chrono::microseconds>(deadline - now)));
      }
    }
    // Every key's TTL ran from its own SET; the earliest bounds the lease.
    lease.valid_until = first_taken.value_or(std::chrono::steady_clock::now()) + ttl;
    return boost::outcome_v2::success();
  }

  result<ReleaseOutcome> release_remote(const LeaseInfo& lease) {
    BOOKING_TRY(auto reply, client_.eval(kReleaseScript, prefixed(lease), {lease.token}));
    long long released = 0;
    long long gone = 0;
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2) {
      released = reply->element[0]->integer;
      gone = reply->element[1]->integer;
    }
    bool expired = lease.valid_until <= std::chrono::steady_clock::now();
    if (released == static_cast<long long>(lease.keys.size())) {
      return expired ? ReleaseOutcome::expired : ReleaseOutcome::released;
    }
    if (released == 0 && gone == 0 && !expired) return ReleaseOutcome::not_owner;
    return ReleaseOutcome::expired;
  }

  result<void> extend_remote(LeaseInfo& lease, std::chrono::milliseconds ttl) {
    const auto start = std::chrono::steady_clock::now();
    BOOKING_TRY(auto reply, client_.eval(kExtendScript, prefixed(lease),
                                         {lease.token, std::to_string(ttl.count())}));
    if (reply->type != REDIS_REPLY_INTEGER || reply->integer != 1) {
      return make_error(errc::invalid_state, "lease is no longer held");
    }
    lease.valid_until = start + ttl;
    return boost::outcome_v2::success();
  }

  std::vector<std::string> prefixed(const LeaseInfo& lease) const {
    std::vector<std::string> out;
    for (const auto& k : lease.keys) out.push_back(options_.key_prefix + k);
    return out;
  }

  RedisLockOptions options_;
  detail::RedisClient client_;
  detail::FifoTable local_;
  std::mutex mu_;                               // guards held_ and kept_
  std::unordered_map<std::string, Held> held_;  // by token
  std::unordered_map<std::string, Kept> kept_;  // by joined keys
};

}  // namespace

result<std::unique_ptr<LockProvider>> make_redis_lock_provider(RedisLockOptions options) {
  auto p = std::make_unique<RedisLockProvider>(std::move(options));
  BOOKING_TRY(p->ping());
  return std::unique_ptr<LockProvider>(std::move(p));
}

}  // namespace booking
