// What only the PostgreSQL repository has to get right: instances migrating the same database
// at once, several repositories sharing one database, and a server that goes away and returns.
// (The repository suite, the model test and the races run on it through ALL_BACKENDS.)
#include <atomic>
#include <thread>

#include "process.hpp"
#include "support.hpp"

using namespace booking;
using namespace booking::test;
using namespace std::chrono_literals;

namespace {
HoldPlan one_ticket(const std::string& event, const std::string& tier) {
  HoldPlan p;
  p.booking.id = random_token();
  p.booking.event_key = event;
  p.booking.total = Money{100, "IDR"};
  p.booking.created_at = kT0;
  p.booking.expires_at = kT0 + 10min;
  p.booking.lines = {{tier, 1, 100}};
  p.max_per_user = {std::nullopt};
  return p;
}
}  // namespace

TEST_CASE("a database URL's password never reaches the logs", "[postgres]") {
  CHECK(printable_db("booking.db") == "booking.db");
  CHECK(printable_db("/var/lib/x:y@z.db") == "/var/lib/x:y@z.db");
  CHECK(printable_db("postgresql://u@h:5432/db") == "postgresql://u@h:5432/db");
  CHECK(printable_db("postgresql://u:s3cr:et@h:5432/db") == "postgresql://u:***@h:5432/db");
  CHECK(printable_db("postgres://u:p%40ss@h/db?sslmode=require") ==
        "postgres://u:***@h/db?sslmode=require");
  CHECK(printable_db("postgresql://h/db?options=a@b") == "postgresql://h/db?options=a@b");
}

TEST_CASE("eight instances opening one new database at once migrate it once", "[postgres]") {
  const std::string url = shared_postgres().create_database();
  std::atomic<int> failures{0};
  std::vector<std::unique_ptr<EventRepository>> repos(8);
  std::vector<std::thread> starters;
  for (std::size_t i = 0; i < repos.size(); ++i) {
    starters.emplace_back([&, i] {
      auto r = make_postgres_repository(url);
      if (r) {
        repos[i] = std::move(r).value();
      } else {
        ++failures;
      }
    });
  }
  for (auto& t : starters) t.join();
  REQUIRE(failures == 0);
  // Every instance sees the same schema: what one stores, the others read.
  REQUIRE(repos[0]->create_event(sample_event("Mig", {{"gold", 3}})));
  for (auto& r : repos) CHECK(r->get_event("Mig").value().tiers[0].stock.available == 3);
  auto versions = run_command({pg_program("psql"), "-XtAq", url, "-c",
                               "SELECT COUNT(*), MAX(version) FROM booking_schema"});
  CHECK(versions.out == "7|7\n");
}

TEST_CASE("two repositories on one database sell a tier exactly once and expire each hold once",
          "[postgres][race]") {
  const std::string url = shared_postgres().create_database();
  auto a = make_postgres_repository(url).value();
  auto b = make_postgres_repository(url).value();
  REQUIRE(a->create_event(sample_event("Two", {{"gold", 150}})));
  std::atomic<int> sold{0};
  std::atomic<int> refused{0};
  std::atomic<int> unexpected{0};
  std::vector<std::thread> buyers;
  for (int t = 0; t < 8; ++t) {
    buyers.emplace_back([&, t] {
      EventRepository& repo = t % 2 ? *a : *b;
      for (int i = 0; i < 40; ++i) {
        auto r = repo.insert_hold(one_ticket("Two", "gold-Two"));
        if (r) {
          ++sold;
        } else if (r.error().code == errc::insufficient_stock) {
          ++refused;
        } else {
          ++unexpected;
        }
      }
    });
  }
  for (auto& t : buyers) t.join();
  CHECK(unexpected == 0);
  CHECK(sold == 150);
  CHECK(refused == 8 * 40 - 150);
  require_conserved(*a, "Two");

  std::atomic<std::size_t> expired{0};
  std::vector<std::thread> sweepers;
  for (int t = 0; t < 4; ++t) {
    sweepers.emplace_back([&, t] {
      EventRepository& repo = t % 2 ? *a : *b;
      for (int round = 0; round < 10; ++round) {
        if (auto n = repo.expire_due(kT0 + 11min, 20)) {
          expired += n.value();
        } else {
          ++unexpected;
        }
      }
    });
  }
  for (auto& t : sweepers) t.join();
  CHECK(unexpected == 0);
  CHECK(expired == 150);
  CHECK(b->get_event("Two").value().tiers[0].stock == TierStock{150, 150, 0, 0});
}

// Plain holds (nothing but stock to judge) of two tiers, some taking both, from two instances:
// their batches take the tiers' rows only with their closing UPDATEs, in key order, so neither
// waits for the other in a cycle; a batch that finds less stock than it judged is judged again.
TEST_CASE("two repositories' batches of plain holds on two tiers sell each exactly once",
          "[postgres][race]") {
  const std::string url = shared_postgres().create_database();
  auto a = make_postgres_repository(url).value();
  auto b = make_postgres_repository(url).value();
  REQUIRE(a->create_event(sample_event("Duo", {{"x", 120}, {"y", 120}})));
  std::atomic<std::int64_t> answered_x{0};
  std::atomic<std::int64_t> answered_y{0};
  std::atomic<int> unexpected{0};
  std::vector<std::thread> buyers;
  for (int t = 0; t < 12; ++t) {
    buyers.emplace_back([&, t] {
      EventRepository& repo = t % 2 ? *a : *b;
      for (int i = 0; i < 30; ++i) {
        HoldPlan p = one_ticket("Duo", (t + i) % 2 ? "x-Duo" : "y-Duo");
        if ((t + i) % 3 == 0) {  // both tiers in one hold
          p.booking.lines = {{"x-Duo", 1, 100}, {"y-Duo", 1, 100}};
          p.max_per_user = {std::nullopt, std::nullopt};
        }
        auto r = repo.insert_hold(p);
        if (r) {
          for (const BookingLine& l : r.value().lines) {
            (l.tier_key == "x-Duo" ? answered_x : answered_y).fetch_add(l.qty);
          }
        } else if (r.error().code != errc::insufficient_stock) {
          UNSCOPED_INFO(r.error().message);
          ++unexpected;
        }
      }
    });
  }
  for (auto& t : buyers) t.join();
  CHECK(unexpected == 0);
  const Event e = a->get_event("Duo").value();
  CHECK(e.tiers[0].stock.held == answered_x.load());
  CHECK(e.tiers[1].stock.held == answered_y.load());
  CHECK(answered_x.load() + answered_y.load() > 120);
  require_conserved(*a, "Duo");
}

TEST_CASE("a PostgreSQL server that goes away gives lock_timeout, and it reconnects after",
          "[postgres][faults]") {
  PostgresServer server;  // its own, so stopping it disturbs no other test
  const std::string url = server.create_database();
  auto repo = make_postgres_repository(url).value();
  REQUIRE(repo->create_event(sample_event("Gone", {{"gold", 10}})));
  REQUIRE(repo->insert_hold(one_ticket("Gone", "gold-Gone")));

  server.stop();
  const auto start = std::chrono::steady_clock::now();
  auto read = repo->get_event("Gone");
  REQUIRE_FALSE(read);
  CHECK(read.error().code == errc::lock_timeout);
  CHECK(read.error().message.find("storage unavailable") != std::string::npos);
  auto hold = repo->insert_hold(one_ticket("Gone", "gold-Gone"));
  REQUIRE_FALSE(hold);
  CHECK(hold.error().code == errc::lock_timeout);
  CHECK(repo->expire_due(kT0, 100).error().code == errc::lock_timeout);
  CHECK(std::chrono::steady_clock::now() - start < 5s);  // refused fast, no hang
  // A repository cannot even be opened while the server is away: the same error.
  CHECK(make_postgres_repository(url).error().code == errc::lock_timeout);

  server.start();
  // The pool's old connections are dead; the next calls open new ones.
  REQUIRE(repo->insert_hold(one_ticket("Gone", "gold-Gone")));
  auto back = repo->get_event("Gone");
  REQUIRE(back);
  CHECK(back.value().tiers[0].stock == TierStock{10, 8, 2, 0});
}

TEST_CASE("a row lock held by a stuck transaction gives lock_timeout after lock_wait",
          "[postgres][faults]") {
  const std::string url = shared_postgres().create_database();
  PostgresOptions options;
  options.lock_wait = 200ms;
  auto repo = make_postgres_repository(url, options).value();
  REQUIRE(repo->create_event(sample_event("Stuck", {{"gold", 10}})));
  auto psql = [&](const std::string& sql) {
    return run_command({pg_program("psql"), "-XqAt", url, "-c", sql}).out;
  };
  // Another session locks the tier's row and stalls inside its transaction, as a paused
  // instance would.
  Child holder({pg_program("psql"), "-XqAt", url, "-c",
                "BEGIN; SELECT 1 FROM tiers WHERE key = 'gold-Stuck' FOR UPDATE; "
                "SELECT pg_sleep(20); COMMIT;"});
  const std::string sleeping =
      "SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep' AND datname = "
      "current_database()";
  for (int i = 0; i < 500 && psql(sleeping) != "1\n"; ++i) std::this_thread::sleep_for(10ms);
  REQUIRE(psql(sleeping) == "1\n");

  const auto start = std::chrono::steady_clock::now();
  auto blocked = repo->insert_hold(one_ticket("Stuck", "gold-Stuck"));
  REQUIRE_FALSE(blocked);
  CHECK(blocked.error().code == errc::lock_timeout);
  CHECK(blocked.error().message.find("storage contention") != std::string::npos);
  CHECK(std::chrono::steady_clock::now() - start < 3s);

  // The stuck session ends (its row lock with it): holds go through again.
  psql(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE wait_event = 'PgSleep' "
      "AND datname = current_database()");
  holder.wait();
  REQUIRE(repo->insert_hold(one_ticket("Stuck", "gold-Stuck")));
  CHECK(repo->get_event("Stuck").value().tiers[0].stock == TierStock{10, 9, 1, 0});
}

TEST_CASE("a PostgreSQL database a newer libbooking migrated is used when it only added",
          "[postgres]") {
  const std::string url = shared_postgres().create_database();
  REQUIRE(make_postgres_repository(url));
  auto psql = [&](const std::string& sql) {
    return run_command({pg_program("psql"), "-XtAq", url, "-c", sql}).code;
  };
  REQUIRE(psql("INSERT INTO booking_schema VALUES (99)") == 0);  // additive: readable_by 1
  auto used = make_postgres_repository(url);
  REQUIRE(used);
  CHECK(used.value()->create_event(sample_event("PgNew", {{"gold", 3}})));
  REQUIRE(psql("UPDATE booking_meta SET value = 99 WHERE name = 'readable_by'") == 0);
  auto r = make_postgres_repository(url);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == errc::internal);
  CHECK_THAT(r.error().message, Catch::Contains("schema version 99 is newer"));
}

TEST_CASE(
    "a batch judged in memory gives back refused lines, counts a user's earlier holds of "
    "the batch, and stores every booking it answered",
    "[postgres][race]") {
  PostgresBackend b;
  Fixture f(b.repo);
  Event e = sample_event("Bat", {{"a", 40}, {"b", 25}});
  e.tiers[0].max_per_user = 3;
  REQUIRE(f.service.create_event(e));
  std::atomic<int> held{0};
  std::atomic<int> unexpected{0};
  std::vector<std::thread> buyers;
  for (int t = 0; t < 32; ++t) {
    buyers.emplace_back([&, t] {
      for (int i = 0; i < 12; ++i) {
        HoldRequest r;
        r.event_key = "Bat";
        r.user_id = "u" + std::to_string(t % 8);
        r.lines = {{"a-Bat", 1 + (t + i) % 2}, {"b-Bat", 1 + i % 2}};
        auto h = f.service.hold(r);
        if (h) {
          ++held;
        } else if (h.error().code != errc::insufficient_stock &&
                   h.error().code != errc::per_user_limit) {
          ++unexpected;
        }
      }
    });
  }
  for (auto& t : buyers) t.join();
  CHECK(unexpected == 0);
  CHECK(held > 0);
  require_conserved(*b.repo, "Bat");
  // What the tiers say is held is exactly what the stored bookings hold, line by line.
  const Event now = b.repo->get_event("Bat").value();
  auto sums = run_command({pg_program("psql"), "-XtAq", b.url, "-c",
                           "SELECT l.tier_key, SUM(l.qty), COUNT(DISTINCT b.id) FROM bookings b "
                           "JOIN booking_lines l ON l.booking_id = b.id GROUP BY 1 ORDER BY 1"});
  CHECK(sums.out == "a-Bat|" + std::to_string(now.tiers[0].stock.held) + "|" +
                        std::to_string(held.load()) + "\nb-Bat|" +
                        std::to_string(now.tiers[1].stock.held) + "|" +
                        std::to_string(held.load()) + "\n");
  // No user holds more than maxPerUser of `a`, though their holds shared batches.
  auto over = run_command({pg_program("psql"), "-XtAq", b.url, "-c",
                           "SELECT b.user_id FROM bookings b JOIN booking_lines l ON "
                           "l.booking_id = b.id WHERE l.tier_key = 'a-Bat' GROUP BY 1 "
                           "HAVING SUM(l.qty) > 3"});
  CHECK(over.out.empty());
  // Eight users of at most 3 each: `a` kept what they could not hold.
  CHECK(now.tiers[0].stock.held <= 24);
}
