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
  CHECK(db.execAndGet("PRAGMA user_version").getInt() == 7);
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
  CHECK(r.error().code == errc::not_found);  // CLI exit 3, and the message names the path
  CHECK(r.error().message.find("'/nonexistent-dir/x/y.db'") != std::string::npos);
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
  for (int i = 0; i < 600; ++i) REQUIRE(f.service.hold(r));  // a few WAL pages each
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

// tests/data/schema-v1.db was written by libbooking before migration 2 (lines in their own
// table) with the CLI: the demo event, then alice holds gold 2 + silver 3, bob holds platinum 1
// under an idempotency key and confirms, a gold 4 hold is cancelled, and a silver 1 + gold 1
// hold stays HELD.
TEST_CASE("a database from schema version 1 is migrated with every booking's lines",
          "[sqlite][migration]") {
  TempDir dir;
  const std::string path = dir.file("v1.db");
  std::filesystem::copy_file(std::string(BOOKING_TEST_DATA) + "/schema-v1.db", path);
  {
    SQLite::Database before(path);
    REQUIRE(before.execAndGet("PRAGMA user_version").getInt() == 1);
  }
  auto repo = make_sqlite_repository(path).value();
  auto lines_of = [&](const std::string& id) {
    std::vector<std::pair<std::string, std::int64_t>> out;
    const Booking b = repo->get_booking(id).value();
    for (const BookingLine& l : b.lines) out.emplace_back(l.tier_key, l.qty);
    return out;
  };
  using Lines = std::vector<std::pair<std::string, std::int64_t>>;
  const std::string alice = "c042ecf691004647619616bffab0adaf";
  CHECK(lines_of(alice) == Lines{{"gold-Con10124", 2}, {"sil-Con10124", 3}});
  CHECK(repo->get_booking(alice).value().lines[0].unit_price_minor == 500'000'000);
  CHECK(lines_of("9c7ab05474a3e48637c4e6cb40dd4aaf") ==
        Lines{{"sil-Con10124", 1}, {"gold-Con10124", 1}});
  auto bob = repo->get_booking("9a6321f302f8dcc4abc3fa6c7221a842").value();
  CHECK(bob.status == BookingStatus::confirmed);
  CHECK(bob.lines.size() == 1);
  CHECK(repo->find_idempotency_key("fixture-key-1").value()->booking_id == bob.id);
  CHECK(repo->get_event("Con10124").value().utc_offset_minutes == 0);  // migration 3's default

  // The per-user limit counts the migrated lines.
  auto event = repo->get_event("Con10124").value();
  HoldPlan more;
  more.booking.id = random_token();
  more.booking.event_key = "Con10124";
  more.booking.user_id = "alice";
  more.booking.total = Money{0, "IDR"};
  more.booking.created_at = event.tiers[0].start + std::chrono::hours(1);
  more.booking.expires_at = more.booking.created_at + std::chrono::minutes(10);
  more.booking.lines = {{"gold-Con10124", 2, 500'000'000}};
  more.max_per_user = {3};
  auto refused = repo->insert_hold(more);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == errc::per_user_limit);
  CHECK(refused.error().details.at("alreadyBooked").as_int64() == 2);

  // Expiry returns the migrated lines' stock to each tier.
  CHECK(repo->expire_due(event.date + std::chrono::hours(24 * 365), 100).value() == 2);
  auto after = repo->get_event("Con10124").value();
  CHECK(after.tiers[0].stock == TierStock{100, 100, 0, 0});
  CHECK(after.tiers[1].stock == TierStock{200, 200, 0, 0});
  CHECK(after.tiers[2].stock == TierStock{50, 49, 0, 1});
  SQLite::Database db(path);
  CHECK(db.execAndGet("PRAGMA user_version").getInt() == 7);
  CHECK_FALSE(db.tableExists("booking_lines"));
}

TEST_CASE("a database a newer libbooking migrated is used when it only added, else refused",
          "[sqlite][migration]") {
  TempDir dir;
  const std::string path = dir.file("newer.db");
  {
    auto repo = make_sqlite_repository(path).value();
    REQUIRE(repo->create_event(sample_event("New", {{"gold", 5}})));
  }
  SQLite::Database db(path, SQLite::OPEN_READWRITE);
  CHECK(db.execAndGet("SELECT value FROM booking_meta WHERE name = 'readable_by'").getInt() == 2);

  // A newer version's migrations 8 and 9 only added (a column nobody here reads).
  db.exec("ALTER TABLE tiers ADD COLUMN colour TEXT; PRAGMA user_version = 9");
  {
    auto repo = make_sqlite_repository(path);
    REQUIRE(repo);
    CHECK(repo.value()->get_event("New").value().tiers[0].capacity == 5);
    HoldPlan plan;
    plan.booking.id = std::string(32, 'a');
    plan.booking.event_key = "New";
    plan.booking.lines = {{"gold-New", 2, 1}};
    plan.booking.total = Money{2, "IDR"};
    plan.max_per_user = {std::nullopt};
    CHECK(repo.value()->insert_hold(plan));
  }
  CHECK(db.execAndGet("PRAGMA user_version").getInt() == 9);  // not migrated back

  // One of them changed what exists: only a libbooking that knows it may use the file.
  db.exec("UPDATE booking_meta SET value = 9 WHERE name = 'readable_by'");
  auto r = make_sqlite_repository(path);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == errc::internal);
  CHECK_THAT(r.error().message, Catch::Contains("schema version 9 is newer"));
}
