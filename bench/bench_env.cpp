#include "bench_env.hpp"

#include <map>
#include <mutex>
#include <random>
#include <stdexcept>

namespace booking::bench {

namespace {
std::vector<std::string>& dirs() {
  static std::vector<std::string> d;
  return d;
}
// Statics are destroyed in the reverse order their construction completed: the list is made
// in the constructor, so it outlives the destructor that reads it. (It used to be made at the
// first temp_dir, after this object, and was gone when the destructor walked it: a rare abort
// at exit, std::bad_alloc from a path built out of freed memory.)
struct Cleanup {
  Cleanup() { dirs(); }
  ~Cleanup() {
    for (const auto& d : dirs()) std::filesystem::remove_all(d);
  }
} cleanup;
}  // namespace

std::string temp_dir(const std::string& name) {
  std::random_device rd;
  auto dir = std::filesystem::temp_directory_path() /
             ("booking-bench-" + name + "-" + std::to_string(rd()));
  std::filesystem::create_directories(dir);
  dirs().push_back(dir.string());
  return dir.string();
}

Event hot_event(Instant now, std::int64_t capacity) {
  Event e;
  e.key = "Hot";
  e.name = "Hot sale";
  e.type = "Concert";
  e.date = now + std::chrono::days(30);
  Tier t;
  t.key = "hot";
  t.category = "Hot";
  t.price = Money{10000, "USD"};
  t.capacity = capacity;
  t.start = now - std::chrono::days(1);
  t.end = now + std::chrono::days(29);
  e.tiers.push_back(t);
  return e;
}

HoldRequest hot_hold(std::int64_t qty) {
  HoldRequest r;
  r.event_key = "Hot";
  r.lines = {{"hot", qty}};
  return r;
}

Env& env(const std::string& repo, const std::string& lock, Durability durability) {
  static std::mutex mu;
  static std::map<std::string, std::unique_ptr<Env>> envs;
  std::lock_guard guard(mu);
  const std::string name =
      repo + "-" + lock + "-" + (durability == Durability::full ? "full" : "normal");
  auto& slot = envs[name];
  if (slot) return *slot;
  slot = std::make_unique<Env>();
  const std::string dir = temp_dir(name);
  if (repo == "sqlite") {
    SqliteOptions o;
    o.durability = durability;
    slot->repo = make_sqlite_repository(dir + "/bench.db", o).value();
  } else {
    slot->repo = make_memory_repository();
  }
  slot->locks = lock == "file" ? make_file_lock_provider(dir + "/locks").value()
                               : make_memory_lock_provider();
  slot->service = std::make_unique<BookingService>(*slot->repo, *slot->locks, slot->clock);
  if (!slot->service->create_event(hot_event(slot->clock.now(), 100'000'000))) {
    throw std::runtime_error("cannot create the bench event");
  }
  return *slot;
}

}  // namespace booking::bench
