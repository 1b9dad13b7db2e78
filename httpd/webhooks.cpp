#include "webhooks.hpp"

#include <openssl/evp.h>
#include <spdlog/spdlog.h>

#include <booking/json_codec.hpp>
#include <boost/json.hpp>
#include <random>

namespace booking::httpd {

std::string hmac_sha256_hex(std::string_view key, std::string_view data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  std::size_t len = 0;
  if (!EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, key.data(), key.size(),
                 reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, sizeof mac,
                 &len)) {
    throw std::runtime_error("HMAC-SHA256 failed");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < len; ++i) {
    out += kHex[mac[i] >> 4];
    out += kHex[mac[i] & 15];
  }
  return out;
}

std::string webhook_signature(std::string_view secret, std::int64_t unix_seconds,
                              std::string_view body) {
  std::string signed_text = std::to_string(unix_seconds);
  signed_text += '.';
  signed_text += body;
  std::string out = "t=" + std::to_string(unix_seconds);
  out += ",v1=";
  out += hmac_sha256_hex(secret, signed_text);
  return out;
}

std::string printable_url(std::string_view url) {
  const auto scheme = url.find("://");
  const auto at = url.find('@');
  const auto path = url.find('/', scheme == std::string_view::npos ? 0 : scheme + 3);
  if (scheme == std::string_view::npos || at == std::string_view::npos || at > path) {
    return std::string(url);
  }
  return std::string(url.substr(0, scheme + 3)) + "***" + std::string(url.substr(at));
}

result<void> check_webhook_url(std::string_view url) {
  auto bad = [&](const char* why) {
    return make_error(errc::validation_failed,
                      "--webhook " + printable_url(url.substr(0, 200)) + ": " + why,
                      {{"webhook", why}});
  };
  if (!url.starts_with("http://")) {
    return bad("must be an http:// URL (put a TLS proxy in front of an https receiver)");
  }
  const std::string_view rest = url.substr(7);
  const std::string_view host = rest.substr(0, rest.find('/'));
  if (host.empty() || host.find_first_of(" \t\r\n") != std::string_view::npos) {
    return bad("has no host");
  }
  return boost::outcome_v2::success();
}

namespace {
// http://host:port/path -> ("http://host:port", "/path").
std::pair<std::string, std::string> split_url(const std::string& url) {
  const auto slash = url.find('/', 7);
  if (slash == std::string::npos) return {url, "/"};
  return {url.substr(0, slash), url.substr(slash)};
}
}  // namespace

WebhookDeliverer::WebhookDeliverer(BookingService& service, EventRepository& repo,
                                   WebhookOptions options)
    : service_(service), repo_(repo), options_(std::move(options)) {
  for (const std::string& url : options_.urls) {
    auto u = std::make_unique<Url>();
    u->url = url;
    u->shown = printable_url(url);
    urls_.push_back(std::move(u));
  }
  for (auto& u : urls_) threads_.emplace_back([this, &u = *u] { run(u); });
}

WebhookDeliverer::~WebhookDeliverer() { stop(); }

void WebhookDeliverer::stop() {
  stopping_ = true;
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
}

bool WebhookDeliverer::post(httplib::Client& client, const std::string& path,
                            const std::vector<Change>& changes) {
  boost::json::array batch;
  for (const Change& c : changes) batch.push_back(to_json(c));
  const std::string body = to_text(batch);
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  httplib::Headers headers{
      {"X-Booking-Signature", webhook_signature(options_.secret, now, body)},
      {"X-Booking-Delivery", std::to_string(changes.back().seq)},
  };
  auto r = client.Post(path.c_str(), headers, body, "application/json");
  return r && r->status >= 200 && r->status < 300;
}

void WebhookDeliverer::run(Url& u) {
  const auto [origin, path] = split_url(u.url);
  httplib::Client client(origin);
  client.set_connection_timeout(1, 0);
  client.set_write_timeout(2, 0);
  const auto timeout = std::chrono::duration_cast<std::chrono::microseconds>(options_.timeout);
  client.set_read_timeout(timeout.count() / 1'000'000, timeout.count() % 1'000'000);
  client.set_keep_alive(true);
  client.set_tcp_nodelay(true);  // else Nagle and the receiver's delayed ACK add ~40 ms a batch
  std::mt19937_64 rng{std::random_device{}()};
  // The lease is renewed once a third of its TTL has passed; a POST (at most connect 1 s, send
  // 2 s, answer `timeout`) then still ends inside it (see WebhookOptions).
  const auto slice = options_.lease_ttl / 3;
  using Steady = std::chrono::steady_clock;
  std::uint32_t failures_in_a_row = 0;
  auto next_try = Steady::now();
  bool said_paused = false;
  std::optional<WebhookState> held;  // ours while we hold the lease: only we write it
  Steady::time_point leased_at{};
  auto pause = [&](std::chrono::milliseconds d) {
    const auto until = Steady::now() + d;
    while (!stopping_ && Steady::now() < until) {
      std::this_thread::sleep_for(
          std::min<std::chrono::milliseconds>(d, std::chrono::milliseconds(50)));
    }
  };
  while (!stopping_) {
    if (!held || Steady::now() - leased_at >= slice) {
      const auto asked = Steady::now();
      auto lease = repo_.lease_webhook(u.url, options_.owner, options_.lease_ttl);
      if (!lease) {
        spdlog::warn("webhook {}: cannot take its lease: {}", u.shown, lease.error().message);
        held.reset();
        pause(slice);
        continue;
      }
      held = lease.value();
      if (!held) {  // another instance delivers
        pause(slice);
        continue;
      }
      leased_at = asked;
      if (held->paused && !said_paused && !u.paused) {
        // Paused by an earlier run: a restart resumes it (failures count from now on).
        spdlog::warn("webhook {}: resuming, paused since it failed from {}", u.shown,
                     held->failing_since ? format_instant(*held->failing_since) : "?");
        held->paused = false;
        held->failing_since.reset();
        if (auto saved = repo_.save_webhook(u.url, options_.owner, *held);
            !saved || !saved.value()) {
          held.reset();
          continue;
        }
      }
    }
    WebhookState& state = *held;
    u.position = state.position;
    u.paused = state.paused;
    if (state.paused) {
      if (!said_paused) {
        spdlog::error(
            "webhook {}: paused after failing since {}; `booking webhook resume URL` resumes it",
            u.shown, state.failing_since ? format_instant(*state.failing_since) : "?");
        said_paused = true;
      }
      pause(slice);
      continue;
    }
    const auto now = Steady::now();
    if (now < next_try) {  // backing off: later changes wait, in order
      pause(std::min(slice, std::chrono::duration_cast<std::chrono::milliseconds>(next_try - now)));
      continue;
    }
    // Wait no longer than the lease's next renewal.
    const auto renew_in =
        std::chrono::duration_cast<std::chrono::milliseconds>(leased_at + slice - now);
    auto page = service_.wait_changes(state.position, static_cast<std::int64_t>(options_.batch),
                                      std::max(renew_in, std::chrono::milliseconds(1)), &stopping_);
    if (!page) {
      spdlog::error("webhook {}: cannot read the change feed: {}", u.shown, page.error().message);
      pause(slice);
      continue;
    }
    if (page.value().empty()) continue;
    if (Steady::now() - leased_at >= slice) continue;  // renew first: the POST must end in it
    ++u.attempts;
    if (post(client, path, page.value())) {
      failures_in_a_row = 0;
      state.position = page.value().back().seq;
      state.failing_since.reset();
      auto saved = repo_.save_webhook(u.url, options_.owner, state);
      if (saved && saved.value()) {
        u.position = state.position;
      } else {
        // The lease passed to another instance, which resends from the stored position (at
        // least once).
        held.reset();
      }
      continue;
    }
    ++u.failures;
    ++failures_in_a_row;
    const Instant wall = system_clock().now();
    if (!state.failing_since) state.failing_since = wall;
    if (wall - *state.failing_since >= options_.pause_after) {
      state.paused = true;
      u.paused = true;
    }
    if (auto saved = repo_.save_webhook(u.url, options_.owner, state); !saved || !saved.value()) {
      held.reset();
    }
    // Exponential backoff with jitter: 1 s, 2 s, 4 s, ... up to max_backoff (each between half
    // and all of it, so that instances and URLs do not retry in step).
    const auto cap = std::min<std::int64_t>(
        options_.max_backoff.count(), options_.first_backoff.count()
                                          << std::min<std::uint32_t>(failures_in_a_row - 1, 20));
    const auto wait = std::uniform_int_distribution<std::int64_t>(cap / 2, cap)(rng);
    spdlog::warn("webhook {}: delivery of changes after {} failed ({} in a row); next try in {} ms",
                 u.shown, state.position, failures_in_a_row, wait);
    next_try = Steady::now() + std::chrono::milliseconds(wait);
  }
}

void WebhookDeliverer::render_metrics(std::string& out) const {
  if (urls_.empty()) return;
  auto last = repo_.feed_bounds();
  const std::int64_t newest = last ? last.value().last : 0;
  auto label = [](const std::string& url) {
    std::string l;
    for (char c : url) {
      if (c == '"' || c == '\\') l += '\\';
      if (c == '\n') {
        l += "\\n";
        continue;
      }
      l += c;
    }
    return l;
  };
  out += "# HELP booking_webhook_lag Changes not yet delivered to a webhook URL.\n";
  out += "# TYPE booking_webhook_lag gauge\n";
  for (const auto& u : urls_) {
    out += "booking_webhook_lag{url=\"" + label(u->shown) + "\"} " +
           std::to_string(std::max<std::int64_t>(0, newest - u->position.load())) + "\n";
  }
  out += "# HELP booking_webhook_attempts_total Batches this instance POSTed per URL.\n";
  out += "# TYPE booking_webhook_attempts_total counter\n";
  for (const auto& u : urls_) {
    out += "booking_webhook_attempts_total{url=\"" + label(u->shown) + "\"} " +
           std::to_string(u->attempts.load()) + "\n";
  }
  out += "# HELP booking_webhook_failures_total Batches a URL did not acknowledge.\n";
  out += "# TYPE booking_webhook_failures_total counter\n";
  for (const auto& u : urls_) {
    out += "booking_webhook_failures_total{url=\"" + label(u->shown) + "\"} " +
           std::to_string(u->failures.load()) + "\n";
  }
  out += "# HELP booking_webhook_paused 1 when a URL is paused after days of failures.\n";
  out += "# TYPE booking_webhook_paused gauge\n";
  for (const auto& u : urls_) {
    out += "booking_webhook_paused{url=\"" + label(u->shown) + "\"} " +
           (u->paused.load() ? "1\n" : "0\n");
  }
}

}  // namespace booking::httpd
