// Shared setup for the engine benchmarks: temp directories and ready-made services.
#pragma once

#include <booking/booking_service.hpp>

#include <filesystem>
#include <memory>
#include <string>

namespace booking::bench {

// A directory under /tmp removed at exit.
std::string temp_dir(const std::string& name);

// A service on one backend with an event "Hot" whose tier "hot" has a huge capacity.
struct Env {
  std::unique_ptr<EventRepository> repo;
  std::unique_ptr<LockProvider> locks;
  ManualClock clock{Instant(std::chrono::milliseconds(1'800'000'000'000))};
  std::unique_ptr<BookingService> service;
};

// repo: "sqlite" or "memory"; lock: "memory" or "file"; durability for SQLite.
Env& env(const std::string& repo, const std::string& lock, Durability durability);

Event hot_event(Instant now, std::int64_t capacity);
HoldRequest hot_hold(std::int64_t qty = 1);

}  // namespace booking::bench
