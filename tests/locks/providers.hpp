// The lock providers under test, each a type that owns one provider (and its backing store).
#pragma once

#include "support.hpp"

namespace booking::test {

struct MemoryLocks {
  static constexpr auto kShortTtl = std::chrono::milliseconds(60);
  static constexpr int kRounds = 2000;
  std::unique_ptr<LockProvider> locks = make_memory_lock_provider();
};

}  // namespace booking::test
