#include <SQLiteCpp/Database.h>

#include <chrono>
#include <thread>

#include "support.hpp"

using namespace booking;
using namespace booking::test;

TEST_CASE("an SQLite database keeps everything across close and reopen", "[sqlite]") {
  TempDir dir;
  const std::string path = dir.file("durable.db");
  std::string held_id;
  std::string confirmed_id;
  for (auto durability : {Durability::normal, Durability::full}) {
    SqliteOptions options;
    options.durability = durability;
    {
      std::unique_ptr<EventRepository> repo = make_sqlite_repository(path, options).value();
      Fixture f(repo);
      if (held_id.empty()) {
        REQUIRE(f.service.create_event(sample_event("Dur", {{"gold", 10}})));
        HoldRequest r;
        r.event_key = "Dur";
        r.lines = {{"gold-Dur", 2}};
        r.idempotency_key = "idem-1";
        held_id = f.service.hold(r).value().id;
        r.idempotency_key.reset();
        confirmed_id = f.service.hold(r).value().id;
        REQUIRE(f.service.confirm(confirmed_id, {"card", "r1"}));
      }
    }
    std::unique_ptr<EventRepository> repo = make_sqlite_repository(path, options).value();
    CHECK(repo->get_event("Dur").value().tiers[0].stock == TierStock{10, 6, 2, 2});
    CHECK(repo->get_booking(held_id).value().status == BookingStatus::held);
    CHECK(repo->get_booking(confirmed_id).value().payment_reference == "r1");
    CHECK(repo->find_idempotency_key("idem-1").value()->booking_id == held_id);
  }
  SQLite::Database db(path);
  CHECK(db.execAndGet("PRAGMA user_version").getInt() == 1);
  CHECK(db.execAndGet("PRAGMA journal_mode").getString() == "wal");
}

TEST_CASE("the database itself refuses a broken invariant", "[sqlite]") {
  TempDir dir;
  const std::string path = dir.file("check.db");
  {
    auto repo = make_sqlite_repository(path).value();
    REQUIRE(repo->create_event(sample_event("Chk", {{"gold", 10}})));
  }
  SQLite::Database db(path, SQLite::OPEN_READWRITE);
  CHECK_THROWS(db.exec("UPDATE tiers SET available = available - 20"));
  CHECK_THROWS(db.exec("UPDATE tiers SET held = held + 1"));
  CHECK(db.execAndGet("SELECT available FROM tiers").getInt() == 10);
}

TEST_CASE("an unopenable database path is an error value, not an exception", "[sqlite]") {
  auto r = make_sqlite_repository("/nonexistent-dir/x/y.db");
  REQUIRE_FALSE(r);
  CHECK(r.error().code == errc::internal);
}

// The checkpoint runs on a background thread once the WAL passes 1,000 pages, not inside a
// commit (a writer checkpoints itself only past 10,000). Seen from outside: while the
// repository stays open and the WAL stays below 10,000 pages, the holds reach the main
// database file (a copy of it without its WAL has them).
TEST_CASE("WAL pages are checkpointed in the background while the database stays open",
          "[sqlite][group-commit]") {
  TempDir dir;
  const std::string path = dir.file("ckpt.db");
  auto repo = make_sqlite_repository(path).value();
  Fixture f(repo);
  REQUIRE(f.service.create_event(sample_event("Ckpt", {{"gold", 100'000}})));
  HoldRequest r;
  r.event_key = "Ckpt";
  r.lines = {{"gold-Ckpt", 1}};
  for (int i = 0; i < 600; ++i) REQUIRE(f.service.hold(r));  // ~5 WAL pages each
  auto checkpointed = [&] {
    const std::string copy = dir.file("main-only.db");
    std::filesystem::copy_file(path, copy, std::filesystem::copy_options::overwrite_existing);
    try {
      SQLite::Database db(copy, SQLite::OPEN_READONLY);
      return db.tableExists("bookings") &&
             db.execAndGet("SELECT COUNT(*) FROM bookings").getInt() >= 100;
    } catch (const SQLite::Exception&) {
      return false;  // copied in the middle of a checkpoint: look again
    }
  };
  bool seen = false;
  for (int i = 0; i < 500 && !seen; ++i) {  // up to 10 s (slow under the sanitizers)
    seen = checkpointed();
    if (!seen) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  CHECK(seen);
  CHECK(std::filesystem::file_size(path + "-wal") < 10'000 * 4096);
  require_conserved(*repo, "Ckpt");
}
