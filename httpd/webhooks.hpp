// Webhook delivery: bookingd POSTs the change feed to each --webhook URL, in seq order, in
// batches of 1 to 100 changes, signed with --webhook-secret.
//
// Each URL has a thread. It holds the URL's lease in the database (renewed every third of its
// TTL), so that of several instances exactly one delivers at a time; another takes over when
// the lease expires. The delivered position is stored after each acknowledged batch, so a
// restart resumes there: delivery is at least once (a batch acknowledged but not yet recorded
// is sent again). A failing URL is retried with exponential backoff and jitter while later
// changes wait (order is kept); after `pause_after` of failures it is paused, never skipped,
// until `booking webhook resume` or a restart. A slow receiver holds only its URL's thread.
#pragma once

#include <httplib.h>

#include <atomic>
#include <booking/booking_service.hpp>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace booking::httpd {

struct WebhookOptions {
  std::vector<std::string> urls;  // http://host[:port]/path
  std::string secret;
  std::string owner;  // this instance's name in the lease (host, pid and a random part)
  // Renewed once a third of it has passed, and a batch is only sent within that third: its POST
  // (connect 1 s, send 2 s, answer `timeout`, so at most 6 s) ends inside the lease, and two
  // instances never deliver at once. Another takes over within lease_ttl of the holder's death.
  std::chrono::milliseconds lease_ttl{9000};
  std::chrono::milliseconds timeout{3000};  // for the receiver's answer, per batch
  std::chrono::milliseconds first_backoff{1000};
  std::chrono::milliseconds max_backoff{std::chrono::minutes(5)};
  std::chrono::milliseconds pause_after{std::chrono::hours(72)};
  std::size_t batch = 100;
};

// Lowercase hex of HMAC-SHA256(key, data) (OpenSSL's libcrypto).
std::string hmac_sha256_hex(std::string_view key, std::string_view data);
// X-Booking-Signature for `body` sent at `unix_seconds`: "t=UNIX,v1=HEX" where HEX is
// hmac_sha256_hex(secret, "UNIX.body").
std::string webhook_signature(std::string_view secret, std::int64_t unix_seconds,
                              std::string_view body);
// `url` fit for logs and metrics: its user and password, if any, replaced by ***.
std::string printable_url(std::string_view url);
// validation_failed unless `url` is http://host[:port][/path].
result<void> check_webhook_url(std::string_view url);

class WebhookDeliverer {
 public:
  WebhookDeliverer(BookingService& service, EventRepository& repo, WebhookOptions options);
  ~WebhookDeliverer();  // stop()
  WebhookDeliverer(const WebhookDeliverer&) = delete;
  WebhookDeliverer& operator=(const WebhookDeliverer&) = delete;

  // Ends every URL's thread (an in-flight POST runs out its timeout). The lease is left to
  // expire, as after a crash.
  void stop();
  // Prometheus lines: per URL, the delivery lag (changes not yet delivered), attempts,
  // failures and whether it is paused.
  void render_metrics(std::string& out) const;

 private:
  struct Url {
    std::string url;
    std::string shown;  // printable_url
    std::atomic<std::int64_t> position{0};
    std::atomic<std::uint64_t> attempts{0};
    std::atomic<std::uint64_t> failures{0};
    std::atomic<bool> paused{false};
  };
  void run(Url& u);
  // One POST of `changes`; true when the receiver answered 2xx.
  bool post(httplib::Client& client, const std::string& path, const std::vector<Change>& changes);

  BookingService& service_;
  EventRepository& repo_;
  WebhookOptions options_;
  std::atomic<bool> stopping_{false};
  std::vector<std::unique_ptr<Url>> urls_;
  std::vector<std::thread> threads_;
};

}  // namespace booking::httpd
