// LockProvider for processes on many hosts, on one Redis server.
//
// Acquire: SET key token NX PX ttl for each key in sorted order; if one is taken, the keys
// already set are released (compare-and-delete) and the attempt is retried with jittered backoff
// until the deadline. Release and extend are Lua scripts that act only where the key still holds
// our token. Single server by design: with asynchronous replication a failover can hand a lock
// to two holders, which is why the stock take is also conditional in storage.
#include <booking/lock_provider.hpp>

#include <hiredis/hiredis.h>

#include <optional>
#include <thread>

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

class RedisLockProvider final : public LockProvider {
 public:
  explicit RedisLockProvider(RedisLockOptions options)
      : options_(options), client_(std::move(options)) {}

  result<void> ping() {
    BOOKING_TRY(client_.command({"PING"}));
    return boost::outcome_v2::success();
  }

  result<LeaseInfo> acquire(std::span<const std::string> keys, std::chrono::milliseconds ttl,
                            SteadyTime deadline) override {
    LeaseInfo lease{detail::sorted_unique(keys), random_token(), {}};
    std::vector<std::string> full;
    for (const auto& k : lease.keys) full.push_back(options_.key_prefix + k);
    detail::Backoff backoff;
    const std::string ttl_ms = std::to_string(ttl.count());
    std::optional<error> backend_error;
    while (true) {
      const auto start = std::chrono::steady_clock::now();
      std::size_t taken = 0;
      for (; taken < full.size(); ++taken) {
        auto r = client_.command({"SET", full[taken], lease.token, "NX", "PX", ttl_ms});
        if (!r) {
          backend_error = r.error();
          break;
        }
        if (r.value()->type != REDIS_REPLY_STATUS) break;  // nil: someone else holds it
        backend_error.reset();
      }
      if (taken == full.size()) {
        lease.valid_until = start + ttl;
        return lease;
      }
      if (taken > 0) {
        (void)client_.eval(kReleaseScript, {full.begin(), full.begin() + static_cast<long>(taken)},
                           {lease.token});
      }
      if (std::chrono::steady_clock::now() >= deadline) {
        if (backend_error) return *backend_error;
        return detail::lock_timeout_error("redis", lease.keys);
      }
      std::this_thread::sleep_for(backoff.next(deadline));
    }
  }

  result<ReleaseOutcome> release(const LeaseInfo& lease) override {
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

  result<void> extend(LeaseInfo& lease, std::chrono::milliseconds ttl) override {
    const auto start = std::chrono::steady_clock::now();
    BOOKING_TRY(auto reply, client_.eval(kExtendScript, prefixed(lease),
                                         {lease.token, std::to_string(ttl.count())}));
    if (reply->type != REDIS_REPLY_INTEGER || reply->integer != 1) {
      return make_error(errc::invalid_state, "lease is no longer held");
    }
    lease.valid_until = start + ttl;
    return boost::outcome_v2::success();
  }

  std::string describe() const override { return "redis://" + client_.endpoint(); }

 private:
  std::vector<std::string> prefixed(const LeaseInfo& lease) const {
    std::vector<std::string> out;
    for (const auto& k : lease.keys) out.push_back(options_.key_prefix + k);
    return out;
  }

  RedisLockOptions options_;
  detail::RedisClient client_;
};

}  // namespace

result<std::unique_ptr<LockProvider>> make_redis_lock_provider(RedisLockOptions options) {
  auto p = std::make_unique<RedisLockProvider>(std::move(options));
  BOOKING_TRY(p->ping());
  return std::unique_ptr<LockProvider>(std::move(p));
}

}  // namespace booking
