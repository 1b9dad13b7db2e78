// The real bookingd binary: expiry end to end, restart on the same database, graceful shutdown.
#include <signal.h>

#include <atomic>
#include <boost/json.hpp>
#include <mutex>
#include <thread>

#include <httplib.h>

#include "httpd/daemon.hpp"

using namespace booking;
using namespace booking::test;
using namespace std::chrono_literals;
namespace json = boost::json;

namespace {

const std::string kEvent = R"({"key": "Live", "name": "Live show", "type": "Concert",
  "date": "2099-01-01T20:00:00Z", "eventGroups": [{"key": "gold-Live", "category": "Gold",
  "price": 100, "currency": "USD", "qty": 500, "startDate": "2020-01-01T00:00:00Z",
  "endDate": "2099-01-01T00:00:00Z"}]})";
const std::string kHold = R"({"key": "Live", "groupKeys": [{"key": "gold-Live", "qty": 1}]})";

std::string status_of(httplib::Client& c, const std::string& id) {
  auto r = c.Get(("/v1/api/books/" + id).c_str());
  REQUIRE(r);
  return std::string(json::parse(r->body).at("data").at("status").as_string());
}

std::string hold(httplib::Client& c) {
  auto r = c.Post("/v1/api/books", kHold, "application/json");
  REQUIRE(r);
  REQUIRE(r->status == 201);
  return std::string(json::parse(r->body).at("data").at("bookId").as_string());
}

}  // namespace

TEST_CASE("holds expire end to end, and a restart keeps bookings and expires what came due",
          "[daemon]") {
  TempDir dir;
  const std::string db = dir.file("d.db");
  std::string confirmed;
  std::string late;
  {
    Daemon d({"--db", db, "--hold-ttl", "1s"});
    auto c = d.client();
    REQUIRE(c.Post("/v1/api/events", kEvent, "application/json")->status == 201);
    const std::string early = hold(c);
    confirmed = hold(c);
    REQUIRE(c.Post(("/v1/api/books/" + confirmed + "/confirm").c_str(), "{}", "application/json")
                ->status == 200);
    // the sweeper runs at least once a second: the 1 s hold is gone within ~2 s
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (status_of(c, early) == "HELD" && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(50ms);
    }
    CHECK(status_of(c, early) == "EXPIRED");
    late = hold(c);
    CHECK(d.stop() == 0);
  }
  std::this_thread::sleep_for(1100ms);  // `late` comes due while the daemon is down
  Daemon d({"--db", db, "--hold-ttl", "1s"});
  auto c = d.client();
  CHECK(status_of(c, late) == "EXPIRED");  // caught up before serving
  CHECK(status_of(c, confirmed) == "CONFIRMED");
  auto e = json::parse(c.Get("/v1/api/events/Live")->body).at("data").at("eventGroups").at(0);
  CHECK(e.at("qty").as_int64() == 499);
  CHECK(e.at("sold").as_int64() == 1);
  CHECK(e.at("held").as_int64() == 0);
  CHECK(d.stop() == 0);
}

TEST_CASE("SIGTERM under load loses no acknowledged booking", "[daemon]") {
  TempDir dir;
  const std::string db = dir.file("s.db");
  Daemon d({"--db", db, "--hold-ttl", "10m"});
  {
    auto c = d.client();
    REQUIRE(c.Post("/v1/api/events", kEvent, "application/json")->status == 201);
  }
  std::mutex mu;
  std::vector<std::string> acknowledged;
  std::atomic<bool> go{true};
  std::vector<std::thread> clients;
  for (int t = 0; t < 16; ++t) {
    clients.emplace_back([&] {
      auto c = d.client();
      while (go) {
        auto r = c.Post("/v1/api/books", kHold, "application/json");
        if (!r) break;  // the daemon stopped accepting
        if (r->status == 201) {
          std::lock_guard lock(mu);
          acknowledged.push_back(
              std::string(json::parse(r->body).at("data").at("bookId").as_string()));
        }
      }
    });
  }
  std::this_thread::sleep_for(300ms);
  CHECK(d.stop() == 0);
  go = false;
  for (auto& t : clients) t.join();
  REQUIRE_FALSE(acknowledged.empty());
  auto repo = make_sqlite_repository(db).value();
  for (const auto& id : acknowledged) {
    auto b = repo->get_booking(id);
    INFO(id);
    CHECK(b);
  }
  const TierStock s = repo->get_event("Live").value().tiers[0].stock;
  CHECK(s.held == static_cast<std::int64_t>(acknowledged.size()));
  require_conserved(*repo, "Live");
}
