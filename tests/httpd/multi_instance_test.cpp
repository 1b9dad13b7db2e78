// Several bookingd instances sharing one PostgreSQL database and one Redis, as operators run
// them behind a load balancer: one stock, no oversell, each hold expired exactly once.
#include <atomic>
#include <mutex>
#include <thread>

#include "httpd/daemon.hpp"
#include "process.hpp"

using namespace booking;
using namespace booking::test;
using namespace std::chrono_literals;
namespace json = boost::json;

namespace {
std::int64_t metric(const Daemon& d, const std::string& name) {
  auto r = d.client().Get("/metrics");
  if (!r) return -1;
  const std::string line = "\n" + name + " ";
  auto at = r->body.find(line);
  if (at == std::string::npos) return -1;
  return std::stoll(r->body.substr(at + line.size()));
}
}  // namespace

TEST_CASE("three bookingd on one PostgreSQL and one Redis sell exactly the capacity",
          "[daemon][postgres][redis][process]") {
  const std::string db = shared_postgres().create_database();
  const std::string lock = shared_redis().spec();
  std::vector<std::unique_ptr<Daemon>> daemons;
  for (int i = 0; i < 3; ++i) {
    daemons.push_back(std::make_unique<Daemon>(std::vector<std::string>{
        "--db", db, "--lock", lock, "--hold-ttl", "3s", "--threads", "16"}));
  }
  constexpr std::int64_t kCapacity = 300;
  REQUIRE(daemons[0]
              ->client()
              .Post("/v1/api/events", live_event_json("Multi", kCapacity), "application/json")
              ->status == 201);

  std::atomic<int> sold{0};
  std::atomic<int> server_errors{0};
  std::atomic<int> other{0};
  std::mutex problems_mu;
  std::vector<std::string> problems;  // each 5xx or unexpected answer, said in full
  auto tell = [&](std::string what) {
    std::lock_guard lock(problems_mu);
    problems.push_back(std::move(what));
  };
  std::vector<std::thread> clients;
  const auto start = std::chrono::steady_clock::now();
  for (int t = 0; t < 24; ++t) {
    clients.emplace_back([&, t] {
      auto c = daemons[static_cast<std::size_t>(t % 3)]->client();
      for (int sold_out = 0; sold_out < 2;) {
        auto r = c.Post("/v1/api/books", hold_json("Multi"), "application/json");
        if (!r) {
          ++other;
          tell("no answer: " + httplib::to_string(r.error()));
          return;
        }
        if (r->status == 201) {
          ++sold;
        } else if (r->status == 409) {
          ++sold_out;
        } else if (r->status >= 500) {
          ++server_errors;
          tell(std::to_string(r->status) + ": " + r->body);
        } else {
          ++other;
          tell(std::to_string(r->status) + ": " + r->body);
        }
      }
    });
  }
  for (auto& t : clients) t.join();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  WARN("3 instances sold " << sold << " tickets in " << seconds << " s ("
                           << static_cast<int>(sold / seconds) << " holds/s)");
  std::string said;
  for (const auto& p : problems) said += p + "\n";
  INFO(said);
  CHECK(server_errors == 0);
  CHECK(other == 0);
  CHECK(sold == kCapacity);
  for (auto& d : daemons) {
    auto r = d->client().Get("/v1/api/events/Multi");
    REQUIRE(r);
    auto g = json::parse(r->body).at("data").at("eventGroups").at(0);
    CHECK(g.at("qty").as_int64() == 0);
    CHECK(g.at("held").as_int64() == kCapacity);
  }

  // The holds come due; the three sweepers race for them and each is expired exactly once.
  const auto deadline = std::chrono::steady_clock::now() + 15s;
  std::int64_t available = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    auto r = daemons[1]->client().Get("/v1/api/events/Multi");
    REQUIRE(r);
    available = json::parse(r->body).at("data").at("eventGroups").at(0).at("qty").as_int64();
    if (available == kCapacity) break;
    std::this_thread::sleep_for(200ms);
  }
  CHECK(available == kCapacity);
  std::int64_t expired = 0;
  for (auto& d : daemons) expired += metric(*d, "booking_holds_expired_total");
  CHECK(expired == kCapacity);
  for (auto& d : daemons) CHECK(metric(*d, "booking_holds_active") == 0);
  for (auto& d : daemons) CHECK(d->stop() == 0);
}
