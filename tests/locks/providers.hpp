// The lock providers under test, each a type that owns one provider (and its backing store).
#pragma once

#include "process.hpp"
#include "support.hpp"

namespace booking::test {

struct MemoryLocks {
  static constexpr auto kShortTtl = std::chrono::milliseconds(60);
  static constexpr int kRounds = 2000;
  std::unique_ptr<LockProvider> locks = make_memory_lock_provider();
};

struct FileLocks {
  static constexpr auto kShortTtl = std::chrono::milliseconds(60);
  static constexpr int kRounds = 2000;
  TempDir dir;
  std::unique_ptr<LockProvider> locks = make_file_lock_provider(dir.file("locks")).value();
};

struct RedisLocks {
  static constexpr auto kShortTtl = std::chrono::milliseconds(60);
  static constexpr int kRounds = 500;
  std::unique_ptr<LockProvider> locks;
  RedisLocks() {
    RedisLockOptions o;
    o.port = shared_redis().port();
    o.key_prefix = "test:" + random_token() + ":";  // isolates each test on the shared server
    auto p = make_redis_lock_provider(o);
    REQUIRE(p);
    locks = std::move(p).value();
  }
};

}  // namespace booking::test
