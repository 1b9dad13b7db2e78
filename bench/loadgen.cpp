// A load generator for bookingd (loopback only): N keep-alive connections POSTing holds on one
// event, bounded by a duration and a request count. Reports requests/s, latency percentiles,
// counts per status and error code, and checks through the API that what was booked equals
// capacity - available.
//
//   loadgen --port P [--connections 100] [--duration 10] [--requests N] [--setup CAPACITY]
//           [--scenario original] [--check] [--get PATH]
//
// With --get, each connection GETs PATH instead of holding (latency of reads, e.g. a page of
// bookings). With --follow, one more connection reads the change feed's event stream during
// the run and reports how long after its `at` each change arrived (feed_p99_ms). With
// --receive PORT, loadgen is a webhook receiver instead: it counts the changes POSTed to it
// until --expect of them arrived (or --duration passed) and reports whether they came in
// order with none missing. With --pages N, N storefront pages are open during the run: each
// polls the event's availability every 2 s with If-None-Match, on a new connection (a browser's
// keep-alive connection to bookingd is closed after 1 s idle), and the report adds how those
// polls went (pages_*).
#include <httplib.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <ctime>
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
  bool follow = false;      // measure the change feed's latency during the run
  int receive = 0;          // be a webhook receiver on this port
  long expect = 0;          // changes the receiver waits for
  int pages = 0;            // open storefront pages polling availability
};

// The milliseconds since the epoch of an ISO 8601 instant as bookingd prints it (UTC).
std::int64_t epoch_ms(const std::string& iso) {
  std::tm tm{};
  int ms = 0;
  if (std::sscanf(iso.c_str(), "%d-%d-%dT%d:%d:%d.%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) != 7) {
    return 0;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<std::int64_t>(timegm(&tm)) * 1000 + ms;
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A webhook receiver: acknowledges every batch, checks that seqs come in order (a resent batch
// may repeat seqs already seen, never skip one).
int receive(const Options& o) {
  httplib::Server server;
  std::mutex mu;
  long distinct = 0;
  std::int64_t high = -1;
  long gaps = 0;
  long duplicates = 0;
  long batches = 0;
  Clock::time_point first{};
  Clock::time_point last{};
  server.Post(".*", [&](const httplib::Request& req, httplib::Response& res) {
    const json::value batch = json::parse(req.body);
    std::lock_guard lock(mu);
    if (batches++ == 0) first = Clock::now();
    last = Clock::now();
    for (const auto& c : batch.as_array()) {
      const std::int64_t seq = c.at("seq").as_int64();
      if (high >= 0 && seq > high + 1) ++gaps;
      if (seq <= high) {
        ++duplicates;
      } else {
        high = seq;
        ++distinct;
      }
    }
    res.status = 204;
  });
  server.set_tcp_nodelay(true);
  server.set_keep_alive_timeout(1);  // stop() waits out open keep-alive connections
  std::thread serving([&] { server.listen("127.0.0.1", o.receive); });
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::duration_cast<Clock::duration>(
                                    std::chrono::duration<double>(o.duration));
  while (Clock::now() < deadline) {
    {
      std::lock_guard lock(mu);
      if (o.expect > 0 && distinct >= o.expect) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  server.stop();
  serving.join();
  std::lock_guard lock(mu);
  std::cout << json::serialize(json::object{
                   {"received", distinct},
                   {"batches", batches},
                   {"duplicates", duplicates},
                   {"gaps", gaps},
                   {"last_seq", high},
                   {"delivery_seconds", std::chrono::duration<double>(last - first).count()}})
            << std::endl;
  return gaps == 0 && (o.expect == 0 || distinct >= o.expect) ? 0 : 3;
}

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
  app.add_flag("--follow", o.follow, "measure the change feed's latency (an SSE subscriber)");
  app.add_option("--receive", o.receive, "be a webhook receiver on this port instead");
  app.add_option("--expect", o.expect, "the receiver's changes to wait for");
  app.add_option("--pages", o.pages, "storefront pages polling the availability every 2 s");
  CLI11_PARSE(app, argc, argv);
  if (o.receive > 0) return receive(o);
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
  // The feed follower: latency from each change's `at` to its arrival here.
  std::vector<double> feed_latencies;
  std::atomic<bool> done{false};
  std::thread follower;
  if (o.follow) {
    follower = std::thread([&] {
      httplib::Client c("127.0.0.1", o.port);
      if (!o.token.empty()) c.set_bearer_token_auth(o.token.c_str());
      c.set_read_timeout(std::chrono::seconds(2));  // ends the stream once the load is over
      std::string buffer;
      c.Get("/v1/api/changes/stream?after=latest", [&](const char* data, std::size_t n) {
        buffer.append(data, n);
        const std::int64_t arrived = now_ms();
        for (std::size_t at; (at = buffer.find("\n\n")) != std::string::npos;) {
          const std::string event = buffer.substr(0, at);
          buffer.erase(0, at + 2);
          const auto data_at = event.find("\"at\":\"");
          if (data_at == std::string::npos) continue;
          const std::int64_t made = epoch_ms(event.substr(data_at + 6, 23));
          feed_latencies.push_back(static_cast<double>(arrived - made));
        }
        return !done.load();
      });
    });
  }
  // Open storefront pages: polls spread evenly over each 2 s period, on 8 threads.
  constexpr int kPageThreads = 8;
  std::vector<Worker> pollers(kPageThreads);
  std::vector<std::thread> page_threads;
  for (int t = 0; t < kPageThreads && o.pages > 0; ++t) {
    page_threads.emplace_back([&, t] {
      Worker& me = pollers[static_cast<std::size_t>(t)];
      const std::string path = "/v1/api/events/" + o.event + "/availability";
      std::map<int, std::string> etags;  // per page
      const auto period = std::chrono::milliseconds(2000);
      const auto begin = Clock::now();
      for (long k = 0;; ++k) {
        for (int page = t; page < o.pages; page += kPageThreads) {
          const auto due = begin + k * period + period * page / o.pages;
          if (due >= deadline) return;
          std::this_thread::sleep_until(due);
          httplib::Client c("127.0.0.1", o.port);
          httplib::Headers h;
          if (!etags[page].empty()) h.emplace("If-None-Match", etags[page]);
          auto t0 = Clock::now();
          auto r = c.Get(path.c_str(), h);
          me.latencies_ms.push_back(
              std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
          if (!r) {
            ++me.transport_errors;
            continue;
          }
          ++me.outcomes[std::to_string(r->status)];
          if (r->status == 200) etags[page] = r->get_header_value("ETag");
        }
      }
    });
  }
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
  for (auto& t : page_threads) t.join();
  if (follower.joinable()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the last changes arrive
    done = true;  // the stream ends at its next event, or when its read times out
    follower.join();
  }

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
  if (o.follow) {
    std::sort(feed_latencies.begin(), feed_latencies.end());
    auto fpct = [&](double q) {
      return feed_latencies.empty()
                 ? 0.0
                 : feed_latencies[std::min(feed_latencies.size() - 1,
                                           static_cast<std::size_t>(q * feed_latencies.size()))];
    };
    report["feed_changes"] = feed_latencies.size();
    report["feed_p50_ms"] = fpct(0.50);
    report["feed_p99_ms"] = fpct(0.99);
    report["feed_max_ms"] = feed_latencies.empty() ? 0.0 : feed_latencies.back();
  }
  if (o.pages > 0) {
    std::vector<double> polls;
    json::object page_counts;
    long page_errors = 0;
    for (auto& w : pollers) {
      polls.insert(polls.end(), w.latencies_ms.begin(), w.latencies_ms.end());
      for (auto& [k, v] : w.outcomes) {
        page_counts[k] = (page_counts.contains(k) ? page_counts[k].as_int64() : 0) + v;
      }
      page_errors += w.transport_errors;
    }
    std::sort(polls.begin(), polls.end());
    report["pages"] = o.pages;
    report["pages_polls_per_s"] = static_cast<double>(polls.size()) / secs;
    report["pages_outcomes"] = page_counts;
    report["pages_transport_errors"] = page_errors;
    report["pages_p99_ms"] =
        polls.empty()
            ? 0.0
            : polls[std::min(polls.size() - 1, static_cast<std::size_t>(0.99 * polls.size()))];
  }
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
