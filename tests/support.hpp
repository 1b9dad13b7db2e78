// Helpers shared by the tests: sample events, temp directories, one factory per backend.
#pragma once

#include <booking/booking_service.hpp>
#include <booking/event_repository.hpp>
#include <booking/lock_provider.hpp>

#include <catch2/catch.hpp>

#include <filesystem>
#include <memory>
#include <string>

namespace booking::test {

inline const Instant kT0 = Instant(std::chrono::milliseconds(1'800'000'000'000));  // 2027-01-15

// A temp directory removed at the end of the test.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// An event `key` with one tier per (suffix, capacity), on sale over [kT0 - 1 day, kT0 + 30 days).
Event sample_event(const std::string& key, std::vector<std::pair<std::string, std::int64_t>> tiers,
                   const std::string& currency = "IDR", std::int64_t price_minor = 500'000'000);

// Conservation for every tier of `event_key`: capacity == available + held + sold, available >= 0.
void require_conserved(EventRepository& repo, const std::string& event_key);

// Repositories under test, by name.
struct MemoryBackend {
  static constexpr const char* name = "memory";
  std::unique_ptr<EventRepository> repo = make_memory_repository();
};
struct SqliteBackend {
  static constexpr const char* name = "sqlite";
  TempDir dir;
  std::unique_ptr<EventRepository> repo;
  SqliteBackend();
};

// A service on a repository with the memory lock and a manual clock at kT0.
struct Fixture {
  std::unique_ptr<EventRepository>& repo;
  std::unique_ptr<LockProvider> locks = make_memory_lock_provider();
  ManualClock clock{kT0};
  BookingService service;
  explicit Fixture(std::unique_ptr<EventRepository>& r, ServiceOptions options = {})
      : repo(r), service(*r, *locks, clock, options) {}
};

}  // namespace booking::test
