// A load generator for bookingd (loopback only): N keep-alive connections POSTing holds on one
// event, bounded by a duration and a request count. Reports requests/s, latency percentiles,
// counts per status and error code, and checks through the API that what was booked equals
// capacity - available.
//
//   loadgen --port P [--connections 100] [--duration 10] [--requests N] [--setup CAPACITY]
//           [--scenario original] [--check] [--get PATH]
//
// With --get, each connection GETs PATH instead of holding (latency of reads, e.g. a page of
// bookings).
#include <httplib.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <iostream>
#include <map>
#include <mutex>
#include <thread>

namespace json = boost::json;
using Clock = std::chrono::steady_clock;

namespace {

struct Options {
  int port = 8080;
  int connections = 100;
  double duration = 10;
  long requests = 0;             // 0: no bound but the duration
  long setup = 0;                // create the event with this capacity per tier first
  std::string scenario = "hot";  // hot: one tier; original: two tiers, 100 VUs, 60 s
  bool check = false;
  std::string event = "Load";
  std::string token;        // bearer token for the holds and the check (sales is enough)
  std::string setup_token;  // bearer token for creating the event (admin)
  std::string get;          // GET this path instead of holding
};

std::string event_json(const std::string& key, long capacity, int tiers) {
  json::array groups;
  for (int i = 0; i < tiers; ++i) {
    groups.push_back({{"key", "t" + std::to_string(i) + "-" + key},
                      {"category", "T"},
                      {"price", 5000000},
                      {"currency", "IDR"},
                      {"qty", capacity},
                      {"startDate", "2020-01-01T00:00:00Z"},
                      {"endDate", "2099-01-01T00:00:00Z"}});
  }
  return json::serialize(json::object{{"key", key},
                                      {"name", "Load " + key},
                                      {"type", "Concert"},
                                      {"date", "2099-01-01T20:00:00Z"},
                                      {"eventGroups", groups}});
}

struct Worker {
  std::vector<double> latencies_ms;
  std::map<std::string, long> outcomes;  // "201", "409 insufficient_stock", ...
  std::map<std::string, long> booked;    // per tier
  long transport_errors = 0;
};

std::string error_code(const std::string& body) {
  auto at = body.find("\"code\":\"");
  if (at == std::string::npos) return "";
  at += 8;
  return body.substr(at, body.find('"', at) - at);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"loadgen: books one event of a running bookingd over many keep-alive connections"};
  app.add_option("--port", o.port, "bookingd port on 127.0.0.1");
  app.add_option("--connections", o.connections, "keep-alive connections (virtual users)");
  app.add_option("--duration", o.duration, "seconds");
  app.add_option("--requests", o.requests, "stop after this many requests (0: duration only)");
  app.add_option("--setup", o.setup, "create the event first with this capacity per tier");
  app.add_option("--scenario", o.scenario, "hot (one tier) or original (two tiers, 100 VUs, 60 s)")
      ->check(CLI::IsMember({"hot", "original"}));
  app.add_option("--event", o.event, "event key");
  app.add_flag("--check", o.check, "check booked == capacity - available through the API");
  app.add_option("--token", o.token, "send Authorization: Bearer TOKEN with the holds");
  app.add_option("--setup-token", o.setup_token, "the token for --setup (an admin one)");
  app.add_option("--get", o.get, "GET this path (e.g. a booking list) instead of holding");
  CLI11_PARSE(app, argc, argv);
  const int tiers = o.scenario == "original" ? 2 : 1;
  if (o.scenario == "original") {
    if (!app.count("--connections")) o.connections = 100;
    if (!app.count("--duration")) o.duration = 60;
  }

  if (o.setup > 0) {
    httplib::Client c("127.0.0.1", o.port);
    if (!o.setup_token.empty()) c.set_bearer_token_auth(o.setup_token.c_str());
    auto r = c.Post("/v1/api/events", event_json(o.event, o.setup, tiers), "application/json");
    if (!r || (r->status != 201 && r->status != 409)) {
      std::cerr << "cannot create the event: " << (r ? r->body : "no answer") << "\n";
      return 1;
    }
  }

  std::atomic<long> budget{o.requests > 0 ? o.requests : std::numeric_limits<long>::max()};
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(o.duration));
  std::vector<Worker> workers(static_cast<std::size_t>(o.connections));
  std::vector<std::thread> threads;
  const auto start = Clock::now();
  for (int w = 0; w < o.connections; ++w) {
    threads.emplace_back([&, w] {
      Worker& me = workers[static_cast<std::size_t>(w)];
      httplib::Client c("127.0.0.1", o.port);
      if (!o.token.empty()) c.set_bearer_token_auth(o.token.c_str());
      c.set_keep_alive(true);
      c.set_tcp_nodelay(true);
      c.set_read_timeout(std::chrono::seconds(30));
      long n = 0;
      while (Clock::now() < deadline && budget.fetch_sub(1) > 0) {
        const std::string tier = "t" + std::to_string((w + n++) % tiers) + "-" + o.event;
        const std::string body = R"({"key":")" + o.event + R"(","groupKeys":[{"key":")" + tier +
                                 R"(","qty":1}],"userId":"vu)" + std::to_string(w) + R"("})";
        auto t0 = Clock::now();
        auto r = o.get.empty() ? c.Post("/v1/api/books", body, "application/json")
                               : c.Get(o.get.c_str());
        me.latencies_ms.push_back(
            std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
        if (!r) {
          ++me.transport_errors;
          continue;
        }
        std::string key = std::to_string(r->status);
        if (r->status >= 300) key += " " + error_code(r->body);
        ++me.outcomes[key];
        if (r->status == 201 && o.get.empty()) ++me.booked[tier];
      }
    });
  }
  for (auto& t : threads) t.join();
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();

  std::vector<double> all;
  std::map<std::string, long> outcomes;
  std::map<std::string, long> booked;
  long transport_errors = 0;
  for (auto& w : workers) {
    all.insert(all.end(), w.latencies_ms.begin(), w.latencies_ms.end());
    for (auto& [k, v] : w.outcomes) outcomes[k] += v;
    for (auto& [k, v] : w.booked) booked[k] += v;
    transport_errors += w.transport_errors;
  }
  std::sort(all.begin(), all.end());
  auto pct = [&](double q) {
    return all.empty() ? 0.0
                       : all[std::min(all.size() - 1, static_cast<std::size_t>(q * all.size()))];
  };
  long server_errors = 0;
  long lock_timeouts = 0;
  json::object counts;
  for (auto& [k, v] : outcomes) {
    counts[k] = v;
    if (k[0] == '5') server_errors += v;
    if (k.find("lock_timeout") != std::string::npos) lock_timeouts += v;
  }
  json::object report{{"requests", all.size()},
                      {"seconds", secs},
                      {"rps", static_cast<double>(all.size()) / secs},
                      {"p50_ms", pct(0.50)},
                      {"p95_ms", pct(0.95)},
                      {"p99_ms", pct(0.99)},
                      {"max_ms", all.empty() ? 0.0 : all.back()},
                      {"outcomes", counts},
                      {"transport_errors", transport_errors},
                      {"server_errors", server_errors},
                      {"lock_timeouts", lock_timeouts}};
  int rc = 0;
  if (o.check) {
    httplib::Client c("127.0.0.1", o.port);
    if (!o.token.empty()) c.set_bearer_token_auth(o.token.c_str());
    auto r = c.Get(("/v1/api/events/" + o.event).c_str());
    bool ok = r && r->status == 200;
    if (ok) {
      const json::value doc = json::parse(r->body);  // outlives the loop (C++20 range-for)
      for (const auto& g : doc.at("data").at("eventGroups").as_array()) {
        std::string key(g.at("key").as_string());
        long capacity = g.at("capacity").as_int64();
        long available = g.at("qty").as_int64();
        ok = ok && booked[key] == capacity - available &&
             capacity == available + g.at("held").as_int64() + g.at("sold").as_int64();
      }
    }
    report["invariant_ok"] = ok;
    if (!ok) rc = 3;
  }
  std::cout << json::serialize(report) << std::endl;
  return rc;
}
