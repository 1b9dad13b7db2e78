// Faults against the real bookingd: SIGKILL under load, the lock backend going away, the
// storage refusing writes. Every acknowledged booking survives; nothing is oversold.
#include <sys/resource.h>

#include <atomic>
#include <filesystem>
#include <mutex>
#include <random>
#include <thread>

#include "httpd/daemon.hpp"

using namespace booking;
using namespace booking::test;
using namespace std::chrono_literals;
namespace json = boost::json;

namespace {

json::value event_group(httplib::Client& c, const std::string& key) {
  auto r = c.Get(("/v1/api/events/" + key).c_str());
  REQUIRE(r);
  REQUIRE(r->status == 200);
  return json::parse(r->body).at("data").at("eventGroups").at(0);
}

void require_conserved(const json::value& g) {
  CHECK(g.at("capacity").as_int64() ==
        g.at("qty").as_int64() + g.at("held").as_int64() + g.at("sold").as_int64());
  CHECK(g.at("qty").as_int64() >= 0);
}

// Clients booking one ticket at a time until told to stop or the daemon goes away.
struct Load {
  std::atomic<bool> go{true};
  std::mutex mu;
  std::vector<std::string> acknowledged;
  std::map<int, long> statuses;
  std::vector<std::thread> threads;

  Load(const Daemon& d, const std::string& key, int clients) {
    for (int t = 0; t < clients; ++t) {
      threads.emplace_back([this, &d, key] {
        auto c = d.client();
        c.set_read_timeout(std::chrono::seconds(5));
        while (go) {
          auto r = c.Post("/v1/api/books", hold_json(key), "application/json");
          if (!r) return;
          std::lock_guard lock(mu);
          ++statuses[r->status];
          if (r->status == 201) {
            acknowledged.push_back(
                std::string(json::parse(r->body).at("data").at("bookId").as_string()));
          }
        }
      });
    }
  }
  std::size_t count() {
    std::lock_guard lock(mu);
    return acknowledged.size();
  }
  void stop() {
    go = false;
    for (auto& t : threads) t.join();
    threads.clear();
  }
  ~Load() { stop(); }
};

}  // namespace

TEST_CASE("SIGKILL under load at several points loses no acknowledged booking",
          "[reliability][daemon]") {
  TempDir dir;
  const std::string db = dir.file("crash.db");
  std::vector<std::string> acknowledged;
  std::mt19937 rng(std::random_device{}());
  for (int round = 0; round < 3; ++round) {
    Daemon d({"--db", db, "--hold-ttl", "500ms"});
    if (round == 0) {
      auto c = d.client();
      REQUIRE(c.Post("/v1/api/events", live_event_json("Crash", 1'000'000), "application/json")
                  ->status == 201);
    }
    Load load(d, "Crash", 32);
    // kill at a random point once the load is under way (slow sanitizer builds start late)
    for (int wait = 0; wait < 1000 && load.count() < 20; ++wait) {
      std::this_thread::sleep_for(10ms);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 300));
    CHECK(d.stop(SIGKILL) == 128 + SIGKILL);
    load.stop();
    INFO("round " << round << ": " << load.acknowledged.size() << " acknowledged");
    CHECK_FALSE(load.acknowledged.empty());
    CHECK(load.statuses.count(500) == 0);
    acknowledged.insert(acknowledged.end(), load.acknowledged.begin(), load.acknowledged.end());
  }
  std::this_thread::sleep_for(600ms);  // the last round's holds come due while it is down

  Daemon d({"--db", db, "--hold-ttl", "10m"});
  auto c = d.client();
  for (const auto& id : acknowledged) {
    auto r = c.Get(("/v1/api/books/" + id).c_str());
    REQUIRE(r);
    INFO(id);
    REQUIRE(r->status == 200);
    CHECK(json::parse(r->body).at("data").at("status").as_string() == "EXPIRED");
  }
  auto g = event_group(c, "Crash");
  CHECK(g.at("held").as_int64() == 0);  // every due hold returned, exactly once
  CHECK(g.at("qty").as_int64() == 1'000'000);
  require_conserved(g);
  CHECK(d.stop() == 0);
}

#if BOOKING_TEST_REDIS
TEST_CASE("Redis going away under bookingd: fast 503s, no oversell, recovery",
          "[reliability][daemon][redis]") {
  TempDir dir;
  RedisServer redis;
  Daemon d({"--db", dir.file("r.db"), "--lock", redis.spec()});
  auto c = d.client();
  REQUIRE(c.Post("/v1/api/events", live_event_json("Red", 100), "application/json")->status == 201);
  REQUIRE(c.Post("/v1/api/books", hold_json("Red"), "application/json")->status == 201);

  redis.stop();
  for (int i = 0; i < 3; ++i) {
    auto start = std::chrono::steady_clock::now();
    auto r = c.Post("/v1/api/books", hold_json("Red"), "application/json");
    REQUIRE(r);
    CHECK(r->status == 503);
    CHECK(r->get_header_value("Retry-After") == "1");
    CHECK(json::parse(r->body).at("error").at("code").as_string() == "lock_timeout");
    CHECK(std::chrono::steady_clock::now() - start < 5s);
  }
  CHECK(event_group(c, "Red").at("held").as_int64() == 1);

  redis.start();
  auto back = c.Post("/v1/api/books", hold_json("Red"), "application/json");
  REQUIRE(back);
  CHECK(back->status == 201);
  auto g = event_group(c, "Red");
  CHECK(g.at("held").as_int64() == 2);
  require_conserved(g);
}
#endif  // BOOKING_TEST_REDIS

TEST_CASE("the file-lock directory going away gives 503s, then recovers", "[reliability][daemon]") {
  TempDir dir;
  const std::string locks = dir.file("locks");
  Daemon d({"--db", dir.file("f.db"), "--lock", "file:" + locks});
  auto c = d.client();
  REQUIRE(c.Post("/v1/api/events", live_event_json("Fl", 100), "application/json")->status == 201);
  // the directory is replaced by a file: no lock file can be created for a new tier
  std::filesystem::rename(locks, dir.file("locks.away"));
  { std::ofstream(locks) << "not a directory"; }
  auto r = c.Post("/v1/api/books", hold_json("Fl"), "application/json");
  REQUIRE(r);
  CHECK(r->status == 503);
  CHECK(json::parse(r->body).at("error").at("code").as_string() == "lock_timeout");
  CHECK(event_group(c, "Fl").at("held").as_int64() == 0);

  std::filesystem::remove(locks);
  std::filesystem::rename(dir.file("locks.away"), locks);
  auto ok = c.Post("/v1/api/books", hold_json("Fl"), "application/json");
  REQUIRE(ok);
  CHECK(ok->status == 201);
}

TEST_CASE("storage refusing writes (RLIMIT_FSIZE) fails cleanly and recovers",
          "[reliability][daemon]") {
  TempDir dir;
  const std::string db = dir.file("full.db");
  Daemon d({"--db", db});
  auto c = d.client();
  REQUIRE(
      c.Post("/v1/api/events", live_event_json("Full", 1'000'000), "application/json")->status ==
      201);
  // From now on no file of the daemon may grow: the WAL fills up after a few bookings.
  // (only the soft limit: raising it again needs no privilege)
  rlimit limit{};
  REQUIRE(::prlimit(d.child->pid(), RLIMIT_FSIZE, nullptr, &limit) == 0);
  const rlim_t original = limit.rlim_cur;
  limit.rlim_cur = static_cast<rlim_t>(std::filesystem::file_size(db + "-wal"));
  REQUIRE(::prlimit(d.child->pid(), RLIMIT_FSIZE, &limit, nullptr) == 0);
  long ok = 0;
  long failed = 0;
  for (int i = 0; i < 3000 && failed < 5; ++i) {
    auto r = c.Post("/v1/api/books", hold_json("Full"), "application/json");
    REQUIRE(r);
    if (r->status == 201) {
      ++ok;
    } else {
      INFO(r->body);
      CHECK((r->status == 500 || r->status == 503));
      ++failed;
    }
  }
  CHECK(failed == 5);
  CHECK(d.alive());
  auto g = event_group(c, "Full");
  CHECK(g.at("held").as_int64() == ok);  // nothing half-written
  require_conserved(g);

  limit.rlim_cur = original;
  REQUIRE(::prlimit(d.child->pid(), RLIMIT_FSIZE, &limit, nullptr) == 0);
  auto back = c.Post("/v1/api/books", hold_json("Full"), "application/json");
  REQUIRE(back);
  CHECK(back->status == 201);
  CHECK(event_group(c, "Full").at("held").as_int64() == ok + 1);
  CHECK(d.stop() == 0);
}

TEST_CASE("bookingd refuses a non-loopback address unless --listen names it",
          "[reliability][daemon]") {
  TempDir dir;
  ::setenv("BOOKING_LISTEN", "0.0.0.0:0", 1);
  auto refused = run_command({BOOKINGD_PATH, "--db", dir.file("l.db")});
  ::unsetenv("BOOKING_LISTEN");
  CHECK(refused.code == 2);
  CHECK(refused.err.find("non-loopback") != std::string::npos);
}
