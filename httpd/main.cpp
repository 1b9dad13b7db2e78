// bookingd: the HTTP daemon. Parses flags, opens storage and locks, runs the expiry sweeper and
// the HTTP server, and shuts down gracefully on SIGINT/SIGTERM.
#include <arpa/inet.h>
#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <booking/access.hpp>
#include <booking/booking_service.hpp>
#include <booking/expiry_sweeper.hpp>
#include <booking/version.hpp>
#include <iostream>
#include <optional>
#include <thread>

#include "http_server.hpp"
#include "web_routes.hpp"
#include "webhooks.hpp"

using namespace booking;

namespace {

bool is_loopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host == "[::1]" || host.starts_with("127.");
}

struct Flags {
  std::string db = "booking.db";
  std::string listen = "127.0.0.1:8080";
  std::string lock = "memory";
  std::string hold_ttl = "10m";
  std::string durability = "normal";
  std::string log_level = "info";
  int threads = 256;
  std::size_t max_body = 64 * 1024;
  std::size_t metrics_tiers = 100;
  bool demo = false;
  bool listen_on_command_line = false;  // --listen given as an argument, not by BOOKING_LISTEN
  double hold_rate = 5;
  std::int64_t max_held_per_client = 10;
  std::string request_timeout = "5s";
  std::optional<int> max_connections_per_client;  // default: 64 off loopback, 0 on it
  std::vector<std::string> trusted_proxies;
  std::optional<int> max_streams;  // default: 64, at most half the workers
  std::vector<std::string> webhooks;
  std::string webhook_secret;
  std::string feed_retention = "30d";
  std::string checkout_url;
};

int fail(const error& e) {
  spdlog::critical("{}: {}", to_string(e.code), e.message);
  return exit_code(e.code);
}

result<std::pair<std::string, int>> parse_listen(const std::string& spec) {
  auto colon = spec.rfind(':');
  int port = -1;
  if (colon != std::string::npos) {
    try {
      std::size_t used = 0;
      port = std::stoi(spec.substr(colon + 1), &used);
      if (used != spec.size() - colon - 1) port = -1;
    } catch (const std::exception&) {
      port = -1;
    }
  }
  if (colon == std::string::npos || colon == 0 || port < 0 || port > 65535) {
    return make_error(errc::validation_failed,
                      "--listen must be HOST:PORT (e.g. 127.0.0.1:8080), got '" + spec + "'");
  }
  return std::pair{spec.substr(0, colon), port};
}

int run(const Flags& f) {
  auto level = spdlog::level::from_str(f.log_level);
  if (level == spdlog::level::off && f.log_level != "off") {
    return fail(make_error(errc::validation_failed, "unknown --log-level '" + f.log_level + "'"));
  }
  spdlog::set_level(level);
  auto listen = parse_listen(f.listen);
  if (!listen) return fail(listen.error());
  if (!is_loopback(listen.value().first) && !f.listen_on_command_line) {
    return fail(make_error(errc::validation_failed,
                           "refusing to listen on non-loopback address '" + f.listen +
                               "' from BOOKING_LISTEN; name it with --listen to expose bookingd"));
  }
  auto ttl = parse_duration(f.hold_ttl);
  if (!ttl) return fail(ttl.error());
  if (f.durability != "normal" && f.durability != "full") {
    return fail(make_error(errc::validation_failed, "--durability must be normal or full"));
  }
  RepositoryOptions storage;
  storage.sqlite.durability = f.durability == "full" ? Durability::full : Durability::normal;
  auto repo = open_repository(f.db, storage);
  if (!repo) return fail(repo.error());
  auto locks = make_lock_provider(f.lock);
  if (!locks) return fail(locks.error());
  auto retention = parse_duration(f.feed_retention);
  if (!retention) return fail(retention.error());
  for (const auto& url : f.webhooks) {
    if (auto ok = httpd::check_webhook_url(url); !ok) return fail(ok.error());
  }
  if (!f.checkout_url.empty()) {
    if (auto ok = httpd::check_checkout_url(f.checkout_url); !ok) return fail(ok.error());
  }
  if (!f.webhooks.empty() && f.webhook_secret.size() < 16) {
    return fail(make_error(errc::validation_failed,
                           "--webhook needs --webhook-secret (or BOOKING_WEBHOOK_SECRET) of at "
                           "least 16 characters: receivers check each request's signature"));
  }
  const int max_streams = f.max_streams.value_or(std::min(64, f.threads / 2));
  if (max_streams >= f.threads) {
    return fail(make_error(errc::validation_failed,
                           "--max-streams (" + std::to_string(max_streams) +
                               ") must be below --threads (" + std::to_string(f.threads) +
                               "): each stream holds a worker, and holds need some"));
  }
  ServiceOptions options;
  options.hold_ttl = ttl.value();
  options.feed_retention = retention.value();
  BookingService service(*repo.value(), *locks.value(), system_clock(), options);

  // Access control: open mode only on loopback, without a proxy, while no token exists.
  const bool loopback = is_loopback(listen.value().first);
  const bool open_allowed = loopback && f.trusted_proxies.empty();
  auto tokens = repo.value()->list_tokens();
  if (!tokens) return fail(tokens.error());
  const bool any_token = std::any_of(tokens.value().begin(), tokens.value().end(),
                                     [](const ApiToken& t) { return !t.revoked_at; });
  const bool admin_token =
      std::any_of(tokens.value().begin(), tokens.value().end(),
                  [](const ApiToken& t) { return !t.revoked_at && t.role == Role::admin; });
  const std::string create_hint =
      "booking --db " + printable_db(f.db) + " token create NAME --role admin";
  if (!loopback && !admin_token) {
    spdlog::critical(
        "refusing to listen on {} without an admin token: anyone who can reach it could sell "
        "or cancel every ticket. Create one with `{}`, then send it as 'Authorization: Bearer "
        "TOKEN' (or listen on 127.0.0.1 behind a proxy)",
        f.listen, create_hint);
    return 2;
  }
  if (open_allowed && !any_token) {
    spdlog::warn(
        "open mode: no API token exists, so every caller on this loopback address is admin. "
        "The first token ends it: `{}`",
        create_hint);
  }
  auto request_timeout = parse_duration(f.request_timeout);
  if (!request_timeout) return fail(request_timeout.error());
  if (request_timeout.value() <= std::chrono::milliseconds(0)) {
    return fail(make_error(errc::validation_failed, "--request-timeout must be positive"));
  }
  for (const auto& proxy : f.trusted_proxies) {
    unsigned char buf[16];
    if (::inet_pton(AF_INET, proxy.c_str(), buf) != 1 &&
        ::inet_pton(AF_INET6, proxy.c_str(), buf) != 1) {
      return fail(make_error(errc::validation_failed,
                             "--trusted-proxy must be an IP address, got '" + proxy + "'"));
    }
  }
  TokenVerifier verifier(*repo.value());

  if (f.demo) {
    Event demo = demo_event(system_clock().now());
    auto existing = service.get_event(demo.key);
    if (!existing && existing.error().code == errc::not_found) {
      if (auto created = service.create_event(demo); !created) return fail(created.error());
      spdlog::info("created the demo event {}", demo.key);
    }
  }
  // Catch up on holds that came due while the daemon was down, before serving.
  std::size_t caught_up = 0;
  if (auto n = service.expire_due(); n && n.value() > 0) {
    caught_up = n.value();
    spdlog::info("expired {} holds that came due while stopped", caught_up);
  }

  httpd::HttpOptions http;
  http.host = listen.value().first;
  http.port = listen.value().second;
  http.threads = f.threads;
  http.max_body = f.max_body;
  http.metrics_tiers = f.metrics_tiers;
  http.tokens = &verifier;
  http.open_allowed = open_allowed;
  http.trusted_proxies = f.trusted_proxies;
  http.hold_rate = f.hold_rate;
  http.max_held_per_client = f.max_held_per_client;
  http.request_timeout = request_timeout.value();
  http.max_connections_per_client = f.max_connections_per_client.value_or(loopback ? 0 : 64);
  http.max_streams = max_streams;
  http.checkout_url = f.checkout_url;
  http.demo_payment = f.demo;
  httpd::HttpServer server(service, http);
  server.count_expired(caught_up);
  std::unique_ptr<httpd::WebhookDeliverer> webhooks;
  if (!f.webhooks.empty()) {
    httpd::WebhookOptions hooks;
    hooks.urls = f.webhooks;
    hooks.secret = f.webhook_secret;
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    hooks.owner =
        std::string(host) + ":" + std::to_string(::getpid()) + ":" + random_token().substr(0, 8);
    webhooks = std::make_unique<httpd::WebhookDeliverer>(service, *repo.value(), hooks);
    server.add_metrics([&webhooks](std::string& out) { webhooks->render_metrics(out); });
    for (const auto& url : f.webhooks) {
      spdlog::info("delivering the change feed to webhook {}", httpd::printable_url(url));
    }
  }
  auto port = server.bind();
  if (!port) return fail(port.error());
  spdlog::info("bookingd {} listening on http://{}:{} (db {}, lock {}, hold ttl {})", version,
               http.host, port.value(), printable_db(f.db), locks.value()->describe(), f.hold_ttl);
  // The port on stdout, for scripts and tests that start the daemon on port 0.
  std::cout << "listening on http://" << http.host << ":" << port.value() << std::endl;

  // Signals are blocked in every thread (see main) and taken here, synchronously.
  std::jthread signals([&server] {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    int sig = 0;
    sigwait(&set, &sig);
    spdlog::info("signal {}: finishing in-flight requests", sig);
    server.stop();
  });
  SweeperOptions sweeping;
  sweeping.on_expired = [&server](std::size_t n) {
    server.count_expired(n);
    spdlog::info("expired {} holds", n);
  };
  sweeping.on_error = [](const error& e) { spdlog::warn("expiry sweep failed: {}", e.message); };
  ExpirySweeper sweeper(service, sweeping);

  server.run();  // returns once stopped and every in-flight request has been answered
  if (webhooks) webhooks->stop();
  sweeper.stop();
  pthread_kill(signals.native_handle(), SIGTERM);  // wakes the signal thread if still waiting
  signals.join();
  spdlog::info("stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Before any thread exists: SIGINT/SIGTERM go to the signal thread only; a client that hangs
  // up mid-response must not kill the daemon.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
  signal(SIGXFSZ, SIG_IGN);  // a write past RLIMIT_FSIZE fails (EFBIG) instead of killing us

  spdlog::set_default_logger(spdlog::stderr_color_mt("bookingd"));  // stdout is for the port
  Flags f;
  CLI::App app{"bookingd: sells limited tickets over HTTP without overselling"};
  app.set_version_flag("--version", std::string("bookingd ") + version);
  app.option_defaults()->always_capture_default();
  app.add_option("--db", f.db,
                 "SQLite database file, or postgresql://USER@HOST:PORT/DBNAME to share one "
                 "PostgreSQL database between instances (created or migrated if needed)")
      ->envname("BOOKING_DB");
  app.add_option("--listen", f.listen, "HOST:PORT to serve on (port 0 picks a free one)")
      ->envname("BOOKING_LISTEN");
  app.add_option("--lock", f.lock,
                 "Lock backend: memory (one process), file:DIR (processes on one host), "
                 "redis://[:PASSWORD@]HOST:PORT[/DB] (many hosts)")
      ->envname("BOOKING_LOCK");
  app.add_option("--hold-ttl", f.hold_ttl, "How long a hold lasts before it expires (10m, 90s)")
      ->envname("BOOKING_HOLD_TTL");
  app.add_option("--threads", f.threads,
                 "HTTP worker threads for requests other than holds (an event loop waits on idle "
                 "connections and handles holds); a stream or slow client holds one while it lasts")
      ->envname("BOOKING_THREADS")
      ->check(CLI::Range(1, 4096));
  app.add_option("--max-body", f.max_body, "Largest request body in bytes (larger: 413)")
      ->envname("BOOKING_MAX_BODY")
      ->check(CLI::Range(std::size_t{1}, std::size_t{64} << 20));
  app.add_option("--durability", f.durability,
                 "SQLite: normal survives a crash of the process; full: fsync per commit, "
                 "survives power loss. PostgreSQL: the server's synchronous_commit decides")
      ->envname("BOOKING_DURABILITY")
      ->check(CLI::IsMember({"normal", "full"}));
  app.add_option("--metrics-tiers", f.metrics_tiers, "At most this many tiers in /metrics")
      ->envname("BOOKING_METRICS_TIERS");
  app.add_option("--log-level", f.log_level, "trace, debug, info, warn, error, critical, off")
      ->envname("BOOKING_LOG_LEVEL");
  app.add_flag("--demo", f.demo, "Create the demo event (Con10124) if it is absent")
      ->envname("BOOKING_DEMO");
  app.add_option("--hold-rate", f.hold_rate,
                 "Anonymous holds per second per client address (bursts of twice as many); "
                 "beyond it 429. 0: no limit")
      ->envname("BOOKING_HOLD_RATE")
      ->check(CLI::Range(0.0, 1e6));
  app.add_option("--max-held-per-client", f.max_held_per_client,
                 "Tickets one anonymous client address may hold at once; beyond it 429. 0: no "
                 "limit")
      ->envname("BOOKING_MAX_HELD_PER_CLIENT")
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{1'000'000}));
  app.add_option("--request-timeout", f.request_timeout,
                 "A request's headers and body must arrive within this, in total (5s, 500ms)")
      ->envname("BOOKING_REQUEST_TIMEOUT");
  app.add_option("--max-connections-per-client", f.max_connections_per_client,
                 "Open connections per client address; beyond it a connection is closed at "
                 "once. Default 64, or 0 (no cap) on a loopback --listen")
      ->envname("BOOKING_MAX_CONNECTIONS_PER_CLIENT")
      ->check(CLI::Range(0, 1'000'000));
  app.add_option("--max-streams", f.max_streams,
                 "Change feed long polls and event streams at once (each holds a worker); "
                 "beyond it 503 with Retry-After. Default 64, at most half of --threads")
      ->envname("BOOKING_MAX_STREAMS")
      ->check(CLI::Range(0, 100'000));
  app.add_option("--webhook", f.webhooks,
                 "POST the change feed to this http:// URL, in order, signed (repeatable)")
      ->envname("BOOKING_WEBHOOK");
  app.add_option("--webhook-secret", f.webhook_secret,
                 "The HMAC-SHA256 key of X-Booking-Signature (required with --webhook); prefer "
                 "the environment variable, which stays out of the process list")
      ->envname("BOOKING_WEBHOOK_SECRET");
  app.add_option("--feed-retention", f.feed_retention,
                 "How long the change feed keeps changes (30d, 12h); the sweeper prunes older")
      ->envname("BOOKING_FEED_RETENTION")
      ->capture_default_str();
  app.add_option("--checkout-url", f.checkout_url,
                 "Where the storefront's pay button sends a buyer: an http(s):// URL or a path "
                 "with {bookId}, e.g. https://pay.example.com/checkout?booking={bookId}")
      ->envname("BOOKING_CHECKOUT_URL");
  app.add_option("--trusted-proxy", f.trusted_proxies,
                 "Address of a reverse proxy whose X-Forwarded-For names the client (repeatable); "
                 "it is exempt from the connection cap")
      ->envname("BOOKING_TRUSTED_PROXY");
  for (int i = 1; i < argc; ++i) {
    f.listen_on_command_line |= std::string_view(argv[i]).starts_with("--listen");
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  return run(f);
}
