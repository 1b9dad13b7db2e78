// 100 keep-alive clients racing for one hot tier over HTTP.
#include <atomic>
#include <boost/json.hpp>
#include <thread>

#include "httpd/http_fixture.hpp"

using namespace booking;
using namespace booking::test;

TEST_CASE("100 keep-alive clients sell exactly the capacity with no 5xx", "[http][race]") {
  TempDir dir;
  httpd::HttpOptions http;
  http.threads = 128;
  HttpFixture f(make_sqlite_repository(dir.file("load.db")).value(), {}, http);
  constexpr std::int64_t kCapacity = 1000;
  REQUIRE(f.service.create_event(sample_event("Hot", {{"gold", kCapacity}})));

  std::atomic<std::int64_t> booked{0};
  std::atomic<int> server_errors{0};
  std::atomic<int> lock_timeouts{0};
  std::atomic<int> other{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 100; ++t) {
    clients.emplace_back([&, t] {
      auto c = f.client();
      const std::string body = R"({"key": "Hot", "groupKeys": [{"key": "gold-Hot", "qty": )" +
                               std::to_string(1 + t % 3) + "}]}";
      for (int sold_out = 0; sold_out < 2;) {
        auto r = c->Post("/v1/api/books", body, "application/json");
        if (!r) {
          ++other;
          return;
        }
        if (r->status == 201) {
          booked += 1 + t % 3;
        } else if (r->status == 409) {
          ++sold_out;
        } else {
          if (r->status >= 500) ++server_errors;
          if (r->body.find("lock_timeout") != std::string::npos) ++lock_timeouts;
          if (r->status < 500) ++other;
        }
      }
    });
  }
  for (auto& t : clients) t.join();
  const TierStock s = f.repo->get_event("Hot").value().tiers[0].stock;
  CHECK(server_errors == 0);
  CHECK(lock_timeouts == 0);
  CHECK(other == 0);
  CHECK(booked == s.held);
  // single-ticket clients only hear "sold out" at zero, so every ticket went
  CHECK(booked == kCapacity);
  CHECK(s.available == 0);
  require_conserved(*f.repo, "Hot");
}
