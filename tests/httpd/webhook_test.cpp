// Webhook delivery against a real receiver on loopback, on every storage: order, batches,
// signatures, a receiver that fails for a while, two instances sharing one URL (one delivers;
// the other takes over when it dies), pausing, and bookingd's flags.
#include <httplib.h>

#include <atomic>
#include <boost/json.hpp>
#include <mutex>
#include <thread>

#include "httpd/daemon.hpp"
#include "httpd/http_fixture.hpp"
#include "process.hpp"
#include "webhooks.hpp"

using namespace booking;
using namespace booking::test;
using namespace std::chrono_literals;
namespace json = boost::json;

namespace {
const std::string kSecret = "0123456789abcdef-test-secret";

// A webhook receiver on a free loopback port: records every batch it acknowledges, after
// checking its signature; answers 500 while `failing` says so.
class Receiver {
 public:
  Receiver() {
    server_.Post("/hook", [this](const httplib::Request& req, httplib::Response& res) {
      const int now = ++in_flight_;
      max_in_flight_ = std::max(max_in_flight_.load(), now);
      ++requests_;
      bool ok = true;
      {
        std::lock_guard lock(mu_);
        ok = !failing_(requests_.load());
      }
      if (ok) check(req);
      std::this_thread::sleep_for(2ms);
      --in_flight_;
      res.status = ok ? 200 : 500;
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(1ms);
  }
  ~Receiver() {
    server_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/hook"; }
  // Which requests (numbered from 1) to answer 500.
  void set_failing(std::function<bool(int)> failing) {
    std::lock_guard lock(mu_);
    failing_ = std::move(failing);
  }

  // The seqs received, in order (duplicates included), and the problems seen.
  std::vector<std::int64_t> seqs() {
    std::lock_guard lock(mu_);
    return seqs_;
  }
  std::vector<std::string> problems() {
    std::lock_guard lock(mu_);
    return problems_;
  }
  bool got(std::int64_t seq) {
    std::lock_guard lock(mu_);
    return !seqs_.empty() && seqs_.back() >= seq;
  }
  int requests() const { return requests_; }
  int max_in_flight() const { return max_in_flight_; }

 private:
  void check(const httplib::Request& req) {
    std::lock_guard lock(mu_);
    const std::string sig = req.get_header_value("X-Booking-Signature");
    const auto comma = sig.find(",v1=");
    if (!sig.starts_with("t=") || comma == std::string::npos) {
      problems_.push_back("bad signature header " + sig);
      return;
    }
    const std::string t = sig.substr(2, comma - 2);
    if (httpd::hmac_sha256_hex(kSecret, t + "." + req.body) != sig.substr(comma + 4)) {
      problems_.push_back("signature does not verify");
    }
    const auto batch = json::parse(req.body).as_array();
    if (batch.empty() || batch.size() > 100)
      problems_.push_back("batch size " + std::to_string(batch.size()));
    for (const auto& c : batch) seqs_.push_back(c.at("seq").as_int64());
    if (req.get_header_value("X-Booking-Delivery") != std::to_string(seqs_.back())) {
      problems_.push_back("X-Booking-Delivery is not the batch's last seq");
    }
  }

  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::int64_t> seqs_;
  std::vector<std::string> problems_;
  std::function<bool(int)> failing_ = [](int) { return false; };
  std::atomic<int> requests_{0};
  std::atomic<int> in_flight_{0};
  std::atomic<int> max_in_flight_{0};
};

httpd::WebhookOptions hooks(const std::string& url, const std::string& owner) {
  httpd::WebhookOptions o;
  o.urls = {url};
  o.secret = kSecret;
  o.owner = owner;
  o.lease_ttl = 600ms;
  o.first_backoff = 20ms;
  o.max_backoff = 100ms;
  return o;
}

void hold(BookingService& service, int n) {
  for (int i = 0; i < n; ++i) {
    HoldRequest r;
    r.event_key = "Wh";
    r.lines = {{"gold-Wh", 1}};
    REQUIRE(service.hold(r));
  }
}

std::int64_t last_seq(BookingService& service) {
  return service.changes(0, 1000).value().back().seq;
}

// Waits up to `limit` for the receiver to have `seq`.
bool wait_for(Receiver& r, std::int64_t seq, std::chrono::milliseconds limit = 10s) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (r.got(seq)) return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

// Every seq from `first` to `last` arrives, and once a seq arrived nothing older comes after
// it except a resend of a whole batch (at least once).
void check_order(const std::vector<std::int64_t>& seqs, std::int64_t first, std::int64_t last) {
  REQUIRE(!seqs.empty());
  std::int64_t high = first - 1;
  for (std::int64_t s : seqs) {
    if (s > high) {
      CHECK(s == high + 1);  // no gap
      high = s;
    }
  }
  CHECK(high == last);
}
}  // namespace

TEST_CASE("webhook signatures are HMAC-SHA256 over t.body", "[webhook]") {
  // RFC 4231-style vector computed independently.
  CHECK(httpd::hmac_sha256_hex("key", "The quick brown fox jumps over the lazy dog") ==
        "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8");
  CHECK(httpd::webhook_signature("key", 1700000000, "[]") ==
        "t=1700000000,v1=" + httpd::hmac_sha256_hex("key", "1700000000.[]"));
  CHECK(httpd::printable_url("http://u:secret@h:1/x") == "http://***@h:1/x");
  CHECK(httpd::printable_url("http://h:1/x@y") == "http://h:1/x@y");
  CHECK(httpd::check_webhook_url("http://127.0.0.1:9/x"));
  CHECK_FALSE(httpd::check_webhook_url("https://example.com/x"));
  CHECK_FALSE(httpd::check_webhook_url("http:///x"));
}

TEMPLATE_TEST_CASE("a webhook receives every change in order, in signed batches of at most 100",
                   "[webhook]", ALL_BACKENDS) {
  TestType b;
  HttpFixture f(std::move(b.repo));
  REQUIRE(f.service.create_event(sample_event("Wh", {{"gold", 10000}})));
  Receiver receiver;
  const std::int64_t start = last_seq(f.service);  // a new URL starts at the newest change
  httpd::WebhookDeliverer deliverer(f.service, *f.repo, hooks(receiver.url(), "one"));
  std::this_thread::sleep_for(200ms);  // registers the URL at the newest change
  hold(f.service, 250);
  const std::int64_t last = last_seq(f.service);
  REQUIRE(wait_for(receiver, last));
  check_order(receiver.seqs(), start + 1, last);
  CHECK(receiver.problems().empty());
  CHECK(receiver.max_in_flight() == 1);
  // The lag reaches 0 once the last batch's acknowledgement is recorded.
  std::string metrics;
  for (int i = 0; i < 200; ++i) {
    metrics.clear();
    deliverer.render_metrics(metrics);
    if (metrics.find("booking_webhook_lag{url=\"" + receiver.url() + "\"} 0") !=
        std::string::npos) {
      break;
    }
    std::this_thread::sleep_for(10ms);
  }
  CHECK(metrics.find("booking_webhook_lag{url=\"" + receiver.url() + "\"} 0") != std::string::npos);
}

TEMPLATE_TEST_CASE("a receiver that fails for a while gets everything, in order, once it is back",
                   "[webhook]", ALL_BACKENDS) {
  TestType b;
  HttpFixture f(std::move(b.repo));
  REQUIRE(f.service.create_event(sample_event("Wh", {{"gold", 10000}})));
  Receiver receiver;
  receiver.set_failing([](int request) { return request <= 4; });
  const std::int64_t start = last_seq(f.service);
  httpd::WebhookDeliverer deliverer(f.service, *f.repo, hooks(receiver.url(), "one"));
  std::this_thread::sleep_for(200ms);  // registers the URL at the newest change
  hold(f.service, 30);
  const std::int64_t last = last_seq(f.service);
  REQUIRE(wait_for(receiver, last));
  CHECK(receiver.requests() > 4);
  check_order(receiver.seqs(), start + 1, last);
  CHECK(receiver.problems().empty());
  std::string metrics;
  deliverer.render_metrics(metrics);
  CHECK(metrics.find("booking_webhook_failures_total{url=\"" + receiver.url() + "\"} 4") !=
        std::string::npos);
}

TEMPLATE_TEST_CASE("of two instances one delivers; the other takes over when it dies", "[webhook]",
                   ALL_BACKENDS) {
  TestType b;
  HttpFixture f(std::move(b.repo));
  REQUIRE(f.service.create_event(sample_event("Wh", {{"gold", 10000}})));
  Receiver receiver;
  const std::int64_t start = last_seq(f.service);
  auto first =
      std::make_unique<httpd::WebhookDeliverer>(f.service, *f.repo, hooks(receiver.url(), "first"));
  std::this_thread::sleep_for(100ms);  // "first" takes the lease
  Fixture other(f.repo);               // a second instance on the same storage
  httpd::WebhookDeliverer second(other.service, *f.repo, hooks(receiver.url(), "second"));
  hold(f.service, 60);
  std::int64_t last = last_seq(f.service);
  REQUIRE(wait_for(receiver, last));
  CHECK(receiver.max_in_flight() == 1);  // never both at once
  // The first dies (its lease is left to expire); changes made meanwhile reach the receiver
  // through the second within the lease's TTL and a little.
  first->stop();
  first.reset();
  const auto died = std::chrono::steady_clock::now();
  hold(other.service, 40);
  last = last_seq(other.service);
  REQUIRE(wait_for(receiver, last));
  CHECK(std::chrono::steady_clock::now() - died < 5s);
  check_order(receiver.seqs(), start + 1, last);
  CHECK(receiver.problems().empty());
}

TEMPLATE_TEST_CASE("a URL failing past pause_after is paused, its position kept", "[webhook]",
                   ALL_BACKENDS) {
  TestType b;
  HttpFixture f(std::move(b.repo));
  REQUIRE(f.service.create_event(sample_event("Wh", {{"gold", 10000}})));
  Receiver receiver;
  receiver.set_failing([](int) { return true; });
  const std::int64_t start = last_seq(f.service);
  auto options = hooks(receiver.url(), "one");
  options.pause_after = 300ms;
  httpd::WebhookDeliverer deliverer(f.service, *f.repo, options);
  std::this_thread::sleep_for(200ms);  // registers the URL at the newest change
  hold(f.service, 3);
  const auto until = std::chrono::steady_clock::now() + 5s;
  std::string metrics;
  while (std::chrono::steady_clock::now() < until) {
    metrics.clear();
    deliverer.render_metrics(metrics);
    if (metrics.find("booking_webhook_paused{url=\"" + receiver.url() + "\"} 1") !=
        std::string::npos) {
      break;
    }
    std::this_thread::sleep_for(20ms);
  }
  CHECK(metrics.find("booking_webhook_paused{url=\"" + receiver.url() + "\"} 1") !=
        std::string::npos);
  const int requests = receiver.requests();
  std::this_thread::sleep_for(300ms);
  CHECK(receiver.requests() == requests);  // paused: no more attempts
  deliverer.stop();
  // Stored: paused, nothing delivered. A restart (a new lease owner) would resume here.
  std::this_thread::sleep_for(700ms);  // the lease expires
  auto state = f.repo->lease_webhook(receiver.url(), "inspector", 1s).value();
  REQUIRE(state);
  CHECK(state->paused);
  CHECK(state->position == start);
  CHECK(state->failing_since);
  // A restart resumes it: everything is delivered once the receiver is back.
  receiver.set_failing([](int) { return false; });
  std::this_thread::sleep_for(1100ms);  // the inspector's lease expires
  httpd::WebhookDeliverer restarted(f.service, *f.repo, hooks(receiver.url(), "restarted"));
  const std::int64_t last = last_seq(f.service);
  REQUIRE(wait_for(receiver, last));
  check_order(receiver.seqs(), start + 1, last);
}

TEST_CASE("bookingd refuses a webhook without a secret, and never prints the secret",
          "[webhook][daemon]") {
  TempDir dir;
  auto no_secret = run_command({BOOKINGD_PATH, "--db", dir.file("w.db"), "--listen", "127.0.0.1:0",
                                "--webhook", "http://127.0.0.1:9/x"});
  CHECK(no_secret.code == 2);
  CHECK(no_secret.err.find("--webhook-secret") != std::string::npos);
  auto https = run_command({BOOKINGD_PATH, "--db", dir.file("w.db"), "--listen", "127.0.0.1:0",
                            "--webhook", "https://u:pw-in-url@example.com/x", "--webhook-secret",
                            "s3cret-s3cret-s3cret"});
  CHECK(https.code == 2);
  CHECK(https.err.find("pw-in-url") == std::string::npos);
  CHECK(https.err.find("s3cret") == std::string::npos);
}

TEST_CASE("bookingd SIGKILLed mid-delivery resumes where it stopped: nothing lost, in order",
          "[webhook][daemon]") {
  TempDir dir;
  const std::string db = dir.file("kill.db");
  Receiver receiver;
  std::atomic<bool> down{true};  // from the third request until bookingd is killed
  receiver.set_failing([&down](int request) { return request >= 3 && down.load(); });
  const std::vector<std::string> args{"--db", db, "--webhook", receiver.url(), "--webhook-secret",
                                      kSecret};
  std::int64_t start = 0;
  {
    Daemon d(args);
    auto c = d.client();
    const std::string event = json::serialize(json::value_from(json::object{
        {"key", "Wk"},
        {"name", "Kill"},
        {"type", "Concert"},
        {"date", "2099-01-01T20:00:00Z"},
        {"eventGroups", json::array{json::object{{"key", "gold-Wk"},
                                                 {"category", "Gold"},
                                                 {"price", 10},
                                                 {"currency", "USD"},
                                                 {"qty", 100000},
                                                 {"startDate", "2020-01-01T00:00:00Z"},
                                                 {"endDate", "2099-01-01T00:00:00Z"}}}}}));
    std::this_thread::sleep_for(300ms);  // the URL is registered at the newest change
    REQUIRE(c.Post("/v1/api/events", event, "application/json")->status == 201);
    for (int i = 0; i < 200; ++i) {
      REQUIRE(c.Post("/v1/api/books", R"({"key":"Wk","groupKeys":[{"key":"gold-Wk","qty":1}]})",
                     "application/json")
                  ->status == 201);
    }
    REQUIRE(wait_for(receiver, 2));  // delivery is under way
    d.stop(SIGKILL);
  }
  auto repo = make_sqlite_repository(db).value();
  const std::int64_t last = repo->feed_bounds().value().last;
  CHECK(last == 201);
  CHECK_FALSE(receiver.got(last));  // killed before the end
  down = false;
  {
    Daemon again(args);  // a new owner: it waits out the dead one's lease, then resumes
    CHECK(wait_for(receiver, last, 20s));
  }
  check_order(receiver.seqs(), start + 1, last);
  CHECK(receiver.problems().empty());
}

#if BOOKING_TEST_POSTGRES
TEST_CASE("two bookingd on PostgreSQL: when the one delivering is killed, the other takes over",
          "[webhook][daemon][postgres]") {
  const std::string url = shared_postgres().create_database();
  Receiver receiver;
  const std::vector<std::string> args{"--db", url, "--webhook", receiver.url(), "--webhook-secret",
                                      kSecret};
  auto a = std::make_unique<Daemon>(args);
  auto b = std::make_unique<Daemon>(args);
  auto c = a->client();
  const std::string event = json::serialize(json::object{
      {"key", "Wp"},
      {"name", "Two"},
      {"type", "Concert"},
      {"date", "2099-01-01T20:00:00Z"},
      {"eventGroups", json::array{json::object{{"key", "gold-Wp"},
                                               {"category", "Gold"},
                                               {"price", 10},
                                               {"currency", "USD"},
                                               {"qty", 100000},
                                               {"startDate", "2020-01-01T00:00:00Z"},
                                               {"endDate", "2099-01-01T00:00:00Z"}}}}});
  std::this_thread::sleep_for(500ms);  // the URL is registered before the event exists
  REQUIRE(c.Post("/v1/api/events", event, "application/json")->status == 201);
  const std::string hold = R"({"key":"Wp","groupKeys":[{"key":"gold-Wp","qty":1}]})";
  for (int i = 0; i < 50; ++i) {
    REQUIRE(c.Post("/v1/api/books", hold, "application/json")->status == 201);
  }
  REQUIRE(wait_for(receiver, 51));
  // Kill the instance that holds the lease (its owner names its pid), mid-stream.
  const std::string owner =
      run_command({pg_program("psql"), "-XqAt", url, "-c", "SELECT lease_owner FROM webhooks"}).out;
  const bool a_delivers =
      owner.find(":" + std::to_string(a->child->pid()) + ":") != std::string::npos;
  INFO("lease owner " << owner);
  REQUIRE(
      (a_delivers || owner.find(":" + std::to_string(b->child->pid()) + ":") != std::string::npos));
  auto& survivor = a_delivers ? b : a;
  (a_delivers ? a : b)->stop(SIGKILL);
  const auto killed = std::chrono::steady_clock::now();
  auto s = survivor->client();
  for (int i = 0; i < 50; ++i) {
    REQUIRE(s.Post("/v1/api/books", hold, "application/json")->status == 201);
  }
  REQUIRE(wait_for(receiver, 101, 20s));
  CHECK(std::chrono::steady_clock::now() - killed < 10s);
  check_order(receiver.seqs(), 1, 101);
  CHECK(receiver.problems().empty());
}
#endif
