// Several processes selling one tier of one SQLite database, guarded by file and Redis locks.
#include <signal.h>

#include <fstream>
#include <sstream>

#include "locks/providers.hpp"

using namespace booking;
using namespace booking::test;
using namespace std::chrono_literals;

namespace {

// An event on sale now (by the wall clock, which the workers use).
void create_live_event(const std::string& db, std::int64_t capacity) {
  auto repo = make_sqlite_repository(db).value();
  Event e = sample_event("Xp", {{"hot", capacity}});
  auto now = system_clock().now();
  e.tiers[0].start = now - std::chrono::hours(1);
  e.tiers[0].end = now + std::chrono::hours(24);
  REQUIRE(repo->create_event(e));
}

// Runs `n` workers booking the hot tier and returns the tickets they report.
std::int64_t run_workers(const std::string& db, const std::string& lock_spec, int n) {
  std::vector<std::unique_ptr<Child>> children;
  for (int i = 0; i < n; ++i) {
    children.push_back(std::make_unique<Child>(
        std::vector<std::string>{worker_path(), "book", db, lock_spec, "Xp", "hot-Xp"}));
  }
  std::int64_t total = 0;
  for (auto& c : children) {
    std::string out = c->read_all();
    INFO("worker output: " << out);
    REQUIRE(c->wait() == 0);
    std::istringstream in(out);
    std::string word;
    std::int64_t booked = -1;
    in >> word >> booked;
    REQUIRE(word == "booked");
    total += booked;
  }
  return total;
}

}  // namespace

TEST_CASE("8 processes with the file lock sell exactly the capacity", "[locks][process]") {
  TempDir dir;
  const std::string db = dir.file("x.db");
  create_live_event(db, 400);
  CHECK(run_workers(db, "file:" + dir.file("locks"), 8) == 400);
  auto repo = make_sqlite_repository(db).value();
  CHECK(repo->get_event("Xp").value().tiers[0].stock == TierStock{400, 0, 400, 0});
  require_conserved(*repo, "Xp");
}

#if BOOKING_TEST_REDIS
TEST_CASE("8 processes with the Redis lock sell exactly the capacity", "[locks][process]") {
  TempDir dir;
  const std::string db = dir.file("x.db");
  create_live_event(db, 400);
  CHECK(run_workers(db, shared_redis().spec(), 8) == 400);
  auto repo = make_sqlite_repository(db).value();
  CHECK(repo->get_event("Xp").value().tiers[0].stock == TierStock{400, 0, 400, 0});
  require_conserved(*repo, "Xp");
}
#endif  // BOOKING_TEST_REDIS

TEST_CASE("file and Redis locks exclude processes: an unsynchronized counter stays exact",
          "[locks][process]") {
  TempDir dir;
#if BOOKING_TEST_REDIS
  const std::string spec = GENERATE(as<std::string>{}, std::string("file:"), std::string("redis"));
#else
  const std::string spec = "file:";
#endif
  const std::string lock_spec =
      spec == "redis" ? shared_redis().spec() + "/1" : "file:" + dir.file("locks");
  const std::string counter = dir.file("counter");
  std::vector<std::unique_ptr<Child>> children;
  for (int i = 0; i < 4; ++i) {
    children.push_back(std::make_unique<Child>(
        std::vector<std::string>{worker_path(), "count", lock_spec, counter, "150"}));
  }
  for (auto& c : children) REQUIRE(c->wait() == 0);
  long n = 0;
  std::ifstream(counter) >> n;
  CHECK(n == 600);
}

TEST_CASE("a file-lock holder killed with SIGKILL frees the lock at once", "[locks][process]") {
  TempDir dir;
  const std::string spec = "file:" + dir.file("locks");
  Child holder({worker_path(), "hold-lock", spec, "tier:hot"});
  REQUIRE(holder.read_line() == "locked");
  auto locks = make_lock_provider(spec).value();
  std::vector<std::string> key{"tier:hot"};
  CHECK_FALSE(locks->acquire(key, 10s, std::chrono::steady_clock::now() + 30ms));
  holder.kill(SIGKILL);
  holder.wait();
  auto start = std::chrono::steady_clock::now();
  auto lease = locks->acquire(key, 10s, start + 1s);
  REQUIRE(lease);
  CHECK(std::chrono::steady_clock::now() - start < 50ms);
}

TEST_CASE("an unrelated open and close of a lock file keeps the lock", "[locks]") {
  TempDir dir;
  auto locks = make_file_lock_provider(dir.file("locks")).value();
  std::vector<std::string> key{"k"};
  auto lease = locks->acquire(key, 10s, std::chrono::steady_clock::now() + 1s);
  REQUIRE(lease);
  for (const auto& entry : std::filesystem::directory_iterator(dir.file("locks"))) {
    FILE* f = std::fopen(entry.path().c_str(), "r");
    REQUIRE(f);
    std::fclose(f);
  }
  Child other({worker_path(), "hold-lock", "file:" + dir.file("locks"), "k", "300"});
  // the other process cannot take it: it gives up after its 300 ms budget, exit code 3
  auto start = std::chrono::steady_clock::now();
  CHECK(other.wait() == 3);
  CHECK(std::chrono::steady_clock::now() - start >= 250ms);
}

TEST_CASE("lock keys cannot escape the lock directory", "[locks]") {
  TempDir dir;
  auto locks = make_file_lock_provider(dir.file("locks")).value();
  std::vector<std::string> key{"../../etc/passwd"};
  auto lease = locks->acquire(key, 10s, std::chrono::steady_clock::now() + 1s);
  REQUIRE(lease);
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    CHECK(entry.path().filename() == "locks");
  }
  std::size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir.file("locks"))) {
    CHECK(entry.path().filename().string().find('/') == std::string::npos);
    ++files;
  }
  CHECK(files == 1);
}

#if BOOKING_TEST_REDIS
TEST_CASE("Redis going away makes holds fail fast, and they resume when it returns",
          "[locks][redis]") {
  RedisServer redis;
  RedisLockOptions o;
  o.port = redis.port();
  auto locks = make_redis_lock_provider(o).value();
  auto repo = make_memory_repository();
  ManualClock clock{kT0};
  ServiceOptions options;
  options.lock_wait.wait = 100ms;
  BookingService service(*repo, *locks, clock, options);
  REQUIRE(service.create_event(sample_event("R", {{"gold", 100}})));
  HoldRequest r;
  r.event_key = "R";
  r.lines = {{"gold-R", 1}};
  REQUIRE(service.hold(r));

  redis.stop();
  auto start = std::chrono::steady_clock::now();
  auto down = service.hold(r);
  auto took = std::chrono::steady_clock::now() - start;
  REQUIRE_FALSE(down);
  CHECK(down.error().code == errc::lock_timeout);
  CHECK(down.error().message.find("127.0.0.1:" + std::to_string(redis.port())) !=
        std::string::npos);
  CHECK(took < 3s);
  CHECK(repo->get_event("R").value().tiers[0].stock.held == 1);

  redis.start();
  auto up = service.hold(r);
  INFO((up ? "" : up.error().message));
  CHECK(up);
  CHECK(repo->get_event("R").value().tiers[0].stock.held == 2);
}
#endif  // BOOKING_TEST_REDIS

#if BOOKING_TEST_REDIS
TEST_CASE("Redis refusing connections errors within the connect timeout", "[locks][redis]") {
  RedisLockOptions o;
  o.port = free_port();
  auto start = std::chrono::steady_clock::now();
  auto p = make_redis_lock_provider(o);
  REQUIRE_FALSE(p);
  CHECK(p.error().code == errc::lock_timeout);
  CHECK(p.error().message.find("127.0.0.1:" + std::to_string(o.port)) != std::string::npos);
  CHECK(std::chrono::steady_clock::now() - start < 1s);
}
#endif  // BOOKING_TEST_REDIS

TEST_CASE("lock specs parse in one place", "[locks]") {
  auto r = parse_redis_spec("redis://:s3cret@cache.local:6380/2").value();
  CHECK(r.host == "cache.local");
  CHECK(r.port == 6380);
  CHECK(r.db == 2);
  CHECK(r.password == "s3cret");
  CHECK(parse_redis_spec("redis://10.0.0.1").value().port == 6379);
  for (const char* bad : {"redis://", "redis://h:0", "redis://h:99999", "redis://h/99",
                          "redis://h:12x", "redis://bad host", "mem", "file:", "zookeeper://x"}) {
    INFO(bad);
    auto p = make_lock_provider(bad);
    REQUIRE_FALSE(p);
    CHECK(p.error().code == errc::validation_failed);
  }
  CHECK(make_lock_provider("memory").value()->describe() == "memory");
  // A malformed spec is named in the error (bookingd logs it) without its password.
  for (const char* secret : {"redis://:s3cret@host:99999", "redis://admin:s3cret@bad host:1",
                             "redis://:s3cret@h/99"}) {
    auto p = make_lock_provider(secret);
    REQUIRE_FALSE(p);
    INFO(p.error().message);
    CHECK(p.error().message.find("s3cret") == std::string::npos);
    CHECK(p.error().message.find(":***@") != std::string::npos);
  }
}
