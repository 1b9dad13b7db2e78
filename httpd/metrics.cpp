#include "metrics.hpp"

#include <fmt/format.h>

namespace booking::httpd {

void Histogram::observe(std::chrono::nanoseconds d) {
  const double s = std::chrono::duration<double>(d).count();
  std::lock_guard lock(mu_);
  std::size_t i = 0;
  while (i < kBounds.size() && s > kBounds[i]) ++i;
  ++counts_[i];
  sum_ += s;
  max_ = std::max(max_, s);
  ++count_;
}

void Histogram::render(std::string& out, const std::string& name, const std::string& help) const {
  std::lock_guard lock(mu_);
  out += fmt::format("# HELP {} {}\n# TYPE {} histogram\n", name, help, name);
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < kBounds.size(); ++i) {
    cumulative += counts_[i];
    out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, kBounds[i], cumulative);
  }
  out += fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n{}_sum {}\n{}_count {}\n", name, count_, name,
                     sum_, name, count_);
  out += fmt::format("# HELP {}_max The longest since start.\n# TYPE {}_max gauge\n{}_max {}\n",
                     name, name, name, max_);
}

void Metrics::count_request(const std::string& route, const std::string& method, int status) {
  std::lock_guard lock(mu_);
  ++requests_[{route, method, status}];
}

void Metrics::count_hold(std::string_view outcome, std::chrono::nanoseconds took) {
  {
    std::lock_guard lock(mu_);
    auto it = holds_.find(outcome);
    if (it == holds_.end()) it = holds_.emplace(std::string(outcome), 0).first;
    ++it->second;
  }
  hold_latency_.observe(took);
}

std::string Metrics::render(BookingService& service) const {
  std::string out;
  {
    std::lock_guard lock(mu_);
    out +=
        "# HELP booking_http_requests_total HTTP requests by route, method and status.\n"
        "# TYPE booking_http_requests_total counter\n";
    for (const auto& [k, n] : requests_) {
      const auto& [route, method, status] = k;
      out += fmt::format(
          "booking_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{}\"}} {}\n", route,
          method, status, n);
    }
    out +=
        "# HELP booking_holds_total Hold requests by outcome (ok or the error code).\n"
        "# TYPE booking_holds_total counter\n";
    for (const auto& [code, n] : holds_) {
      out += fmt::format("booking_holds_total{{outcome=\"{}\"}} {}\n", code, n);
    }
  }
  hold_latency_.render(out, "booking_hold_duration_seconds", "Latency of hold requests.");
  lock_wait_.render(out, "booking_lock_wait_seconds", "Time spent acquiring tier locks.");
  out += fmt::format(
      "# HELP booking_holds_expired_total Holds this instance's sweeper expired.\n"
      "# TYPE booking_holds_expired_total counter\nbooking_holds_expired_total {}\n",
      expired_.load());
  if (auto active = service.count_active_holds()) {
    out += fmt::format(
        "# HELP booking_holds_active Bookings currently HELD.\n"
        "# TYPE booking_holds_active gauge\nbooking_holds_active {}\n",
        active.value());
  }
  // Bounded cardinality: at most tier_limit_ tiers, of the first events by id.
  out +=
      "# HELP booking_tickets_available Tickets available now per tier (capped by "
      "--metrics-tiers).\n# TYPE booking_tickets_available gauge\n";
  std::size_t exported = 0;
  std::int64_t offset = 0;
  while (exported < tier_limit_) {
    auto events = service.search_events({"", 100, offset});
    if (!events || events.value().empty()) break;
    for (const Event& e : events.value()) {
      for (const Tier& t : e.tiers) {
        if (exported++ >= tier_limit_) break;
        out += fmt::format("booking_tickets_available{{event=\"{}\",tier=\"{}\"}} {}\n", e.key,
                           t.key, t.stock.available);
      }
    }
    offset += 100;
  }
  if (extra_) extra_(out);
  return out;
}

}  // namespace booking::httpd
