// bookingd's HTTP layer: translates requests into BookingService calls and results into the
// JSON envelope. No business rule lives here.
#pragma once

#include <booking/access.hpp>
#include <booking/booking_service.hpp>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace booking::httpd {

struct HttpOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                   // 0 picks a free port
  int threads = 256;                 // workers, for requests other than holds
  std::size_t max_body = 64 * 1024;  // larger bodies get 413 before they are read
  std::size_t metrics_tiers = 100;   // at most this many tiers in /metrics
  int listen_backlog = 1024;         // cpp-httplib 0.11 hard-codes 5

  // Access control. `tokens` null: no caller has a token. Open mode (every caller is admin)
  // needs open_allowed (bookingd: a loopback listen without a trusted proxy) and no token.
  TokenVerifier* tokens = nullptr;
  bool open_allowed = true;
  std::vector<std::string> trusted_proxies;  // their X-Forwarded-For names the client
  // Anonymous callers, per client address: holds per second (a token bucket of burst
  // 2 x hold_rate; 0: no limit) and tickets held at once (0: no limit).
  double hold_rate = 5;
  std::int64_t max_held_per_client = 10;
  std::chrono::milliseconds request_timeout{5000};  // headers and body, in total
  int max_connections_per_client = 0;               // 0: no cap
  // Long polls (GET /v1/api/changes?wait=) and event streams at once; each holds a worker.
  int max_streams = 64;
  // The storefront's pay button: a URL template with {bookId} (empty: no pay button), and
  // whether a caller that may confirm gets a demo payment instead (bookingd --demo).
  std::string checkout_url;
  bool demo_payment = false;
};

// One route: its method, OpenAPI path and a stable label for metrics, and who may call it.
struct Route {
  std::string method;
  std::string path;  // OpenAPI form: /v1/api/books/{bookId}
  std::string role;  // "" for anyone, else "sales" or "admin" (admin may do everything)
};

// The routes bookingd serves; /openapi.json documents exactly these.
const std::vector<Route>& routes();

// The OpenAPI 3 document.
const std::string& openapi_document();

class HttpServer {
 public:
  HttpServer(BookingService& service, HttpOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds the listening socket; returns the bound port. Fails if the port is taken (no
  // SO_REUSEPORT, so a second daemon on the same port fails instead of stealing connections).
  result<int> bind();
  // Serves until stop(); in-flight requests complete before it returns.
  void run();
  // Stops accepting and ends idle and still-arriving requests at once; requests inside a
  // handler finish. Safe from any thread (e.g. a signal-handling thread).
  void stop();
  bool is_running() const;
  // Reports `n` holds expired by this instance's sweeper (booking_holds_expired_total).
  void count_expired(std::size_t n);
  // Appends `extra` lines to /metrics (set before run()).
  void add_metrics(std::function<void(std::string&)> extra);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace booking::httpd
