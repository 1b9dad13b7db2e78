// Mutual exclusion on string keys, with owner tokens and a TTL.
#pragma once

#include <booking/error.hpp>

#include <chrono>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace booking {

// What a holder owns: the keys (sorted, unique), a random 128-bit owner token and the
// steady-clock instant until which the lease is guaranteed (acquire time + TTL).
struct LeaseInfo {
  std::vector<std::string> keys;
  std::string token;
  std::chrono::steady_clock::time_point valid_until;
};

enum class ReleaseOutcome {
  released,     // the caller owned every key and they are free now
  expired,      // the lease had expired (some key was free or already taken by another owner)
  not_owner,    // the token did not match any key: nothing changed
};

// A lock backend. Implementations are thread-safe.
class LockProvider {
 public:
  virtual ~LockProvider() = default;

  // Acquires every key (deduplicated and taken in sorted order, so overlapping callers cannot
  // deadlock) or none of them, waiting until `deadline`. Keys are free again after `ttl` if the
  // holder vanishes. lock_timeout when the deadline passes, or when the backend is unreachable
  // (the message says which).
  virtual result<LeaseInfo> acquire(std::span<const std::string> keys,
                                    std::chrono::milliseconds ttl,
                                    std::chrono::steady_clock::time_point deadline) = 0;

  // Releases what `lease` owns and only that. Never throws.
  virtual result<ReleaseOutcome> release(const LeaseInfo& lease) = 0;

  // Pushes the lease's expiry to now + ttl if it still owns every key; invalid_state if the
  // lease expired or was taken over (it is never re-created).
  virtual result<void> extend(LeaseInfo& lease, std::chrono::milliseconds ttl) = 0;

  // A short description for logs ("memory", "file:/run/booking", "redis://127.0.0.1:6379").
  virtual std::string describe() const = 0;
};

// Move-only RAII guard: releases its lease on destruction; the destructor never throws.
class Lease {
 public:
  Lease() = default;
  Lease(LockProvider& provider, LeaseInfo info) : provider_(&provider), info_(std::move(info)) {}
  Lease(Lease&& other) noexcept : provider_(other.provider_), info_(std::move(other.info_)) {
    other.provider_ = nullptr;
  }
  Lease& operator=(Lease&& other) noexcept {
    if (this != &other) {
      reset();
      provider_ = other.provider_;
      info_ = std::move(other.info_);
      other.provider_ = nullptr;
    }
    return *this;
  }
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;
  ~Lease() { reset(); }

  const LeaseInfo& info() const noexcept { return info_; }
  explicit operator bool() const noexcept { return provider_ != nullptr; }

  // Releases now and reports how it went; the guard is empty afterwards.
  result<ReleaseOutcome> release() noexcept;

 private:
  void reset() noexcept;
  LockProvider* provider_ = nullptr;
  LeaseInfo info_;
};

// Acquires and wraps the lease in a guard.
result<Lease> acquire_guard(LockProvider& provider, std::span<const std::string> keys,
                            std::chrono::milliseconds ttl,
                            std::chrono::steady_clock::time_point deadline);

// Threads of one process. Waiters sleep on a condition variable and wake on release.
std::unique_ptr<LockProvider> make_memory_lock_provider();

// Processes on one host: one lock file per key in `dir` (created if missing), held with flock
// on its own open file description; the kernel frees it when the holder dies. Not for network
// file systems (refused when statfs reports NFS/CIFS/SMB).
result<std::unique_ptr<LockProvider>> make_file_lock_provider(const std::string& dir);

struct RedisLockOptions {
  std::string host = "127.0.0.1";
  int port = 6379;
  int db = 0;
  std::string user;  // Redis 6 ACL user; empty for the default user
  std::string password;
  std::chrono::milliseconds connect_timeout{200};
  std::chrono::milliseconds command_timeout{200};
  std::string key_prefix = "booking:lock:";
};

// Processes on many hosts: SET NX PX with Lua compare-and-delete / compare-and-pexpire on one
// Redis server. A pool of connections, each used by one thread at a time; a broken connection
// is replaced on next use.
result<std::unique_ptr<LockProvider>> make_redis_lock_provider(RedisLockOptions options);

// Creates a provider from a spec: "memory", "file:DIR", "redis://[:PASSWORD@]HOST:PORT[/DB]".
// validation_failed for a malformed spec; lock_timeout when the backend cannot be reached.
result<std::unique_ptr<LockProvider>> make_lock_provider(std::string_view spec);

// Parses a Redis spec into options without connecting.
result<RedisLockOptions> parse_redis_spec(std::string_view spec);

// A new random token: 32 hex characters from the OS CSPRNG.
std::string random_token();

}  // namespace booking
