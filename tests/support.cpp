#include "support.hpp"

#include <random>

namespace booking::test {

TempDir::TempDir() {
  std::random_device rd;
  path_ = std::filesystem::temp_directory_path() /
          ("booking-test-" + std::to_string(rd()) + std::to_string(rd()));
  std::filesystem::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

Event sample_event(const std::string& key, std::vector<std::pair<std::string, std::int64_t>> tiers,
                   const std::string& currency, std::int64_t price_minor) {
  using namespace std::chrono;
  Event e;
  e.key = key;
  e.name = "Sample " + key;
  e.type = "Concert";
  e.date = kT0 + days(40);
  e.location = {"Stadium", "Main street 1"};
  for (auto& [suffix, capacity] : tiers) {
    Tier t;
    t.key = suffix + "-" + key;
    t.category = suffix;
    t.price = Money{price_minor, currency};
    t.capacity = capacity;
    t.start = kT0 - days(1);
    t.end = kT0 + days(30);
    e.tiers.push_back(std::move(t));
  }
  return e;
}

void require_conserved(EventRepository& repo, const std::string& event_key) {
  auto e = repo.get_event(event_key);
  REQUIRE(e);
  for (const Tier& t : e.value().tiers) {
    INFO("tier " << t.key);
    REQUIRE(t.stock.capacity == t.capacity);
    REQUIRE(t.stock.available >= 0);
    REQUIRE(t.stock.held >= 0);
    REQUIRE(t.stock.sold >= 0);
    REQUIRE(t.stock.capacity == t.stock.available + t.stock.held + t.stock.sold);
  }
}

SqliteBackend::SqliteBackend() {
  auto r = make_sqlite_repository(dir.file("booking.db"));
  REQUIRE(r);
  repo = std::move(r).value();
}

}  // namespace booking::test
