#include <booking/booking.hpp>
#include <booking/event.hpp>

#include <algorithm>
#include <set>

#include "core/text.hpp"

namespace booking {

std::string_view to_string(EventStatus status) noexcept {
  switch (status) {
    case EventStatus::on_sale: return "on_sale";
    case EventStatus::closed: return "closed";
    case EventStatus::cancelled: return "cancelled";
  }
  return "on_sale";
}

std::optional<EventStatus> parse_event_status(std::string_view text) noexcept {
  if (text == "on_sale") return EventStatus::on_sale;
  if (text == "closed") return EventStatus::closed;
  if (text == "cancelled") return EventStatus::cancelled;
  return std::nullopt;
}

bool is_valid_key(std::string_view key) noexcept {
  if (key.empty() || key.size() > 64) return false;
  return std::all_of(key.begin(), key.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == '-';
  });
}

namespace {
class Problems {
 public:
  void add(const std::string& field, std::string message) {
    if (!details_.contains(field)) details_[field] = message;
  }
  result<void> finish() const {
    if (details_.empty()) return boost::outcome_v2::success();
    std::string fields;
    for (const auto& kv : details_) {
      if (!fields.empty()) fields += ", ";
      fields += std::string(kv.key());
    }
    return make_error(errc::validation_failed, "invalid event: " + fields, details_);
  }

 private:
  boost::json::object details_;
};

void check_text(Problems& p, const std::string& field, const std::string& value,
                std::size_t max_chars, bool required) {
  auto chars = detail::utf8_length(value);
  if (!chars) {
    p.add(field, "must be valid UTF-8");
  } else if (required && *chars == 0) {
    p.add(field, "must not be empty");
  } else if (*chars > max_chars) {
    p.add(field, "must be at most " + std::to_string(max_chars) + " characters");
  }
}
}  // namespace

result<void> validate_new_event(const Event& e) {
  Problems p;
  if (!is_valid_key(e.key)) p.add("key", "must match [A-Za-z0-9._-]{1,64}");
  check_text(p, "name", e.name, 200, true);
  check_text(p, "type", e.type, 100, true);
  if (e.promoter) check_text(p, "promoter", *e.promoter, 200, false);
  check_text(p, "location.venue", e.location.venue, 200, false);
  check_text(p, "location.address", e.location.address, 500, false);
  if (e.tiers.empty()) p.add("eventGroups", "at least one event group is required");
  if (e.tiers.size() > 100) p.add("eventGroups", "at most 100 event groups");
  std::set<std::string> seen;
  for (std::size_t i = 0; i < e.tiers.size(); ++i) {
    const Tier& t = e.tiers[i];
    const std::string f = "eventGroups[" + std::to_string(i) + "].";
    if (!is_valid_key(t.key)) {
      p.add(f + "key", "must match [A-Za-z0-9._-]{1,64}");
    } else if (!seen.insert(t.key).second) {
      p.add(f + "key", "duplicate event group key '" + t.key + "'");
    }
    check_text(p, f + "category", t.category, 100, true);
    if (!find_currency(t.price.currency)) p.add(f + "currency", "unknown ISO 4217 currency");
    if (t.price.minor < 0) p.add(f + "price", "must be >= 0");
    if (t.capacity < 0) p.add(f + "qty", "must be >= 0");
    if (t.capacity > 100'000'000) p.add(f + "qty", "must be at most 100000000");
    if (t.end <= t.start) p.add(f + "endDate", "must be after startDate");
    if (t.max_per_order && *t.max_per_order < 1) p.add(f + "maxPerOrder", "must be >= 1");
    if (t.max_per_user && *t.max_per_user < 1) p.add(f + "maxPerUser", "must be >= 1");
  }
  std::vector<const ReleaseWave*> waves;
  for (std::size_t i = 0; i < e.waves.size(); ++i) {
    const ReleaseWave& w = e.waves[i];
    const std::string f = "eventSchedules[" + std::to_string(i) + "].";
    if (w.end <= w.start) p.add(f + "endDate", "must be after startDate");
    if (w.limit < 1) p.add(f + "limit", "must be >= 1");
    waves.push_back(&w);
  }
  std::sort(waves.begin(), waves.end(),
            [](const ReleaseWave* a, const ReleaseWave* b) { return a->start < b->start; });
  for (std::size_t i = 1; i < waves.size(); ++i) {
    if (waves[i]->start < waves[i - 1]->end) {
      auto index = static_cast<std::size_t>(waves[i] - e.waves.data());
      p.add("eventSchedules[" + std::to_string(index) + "]", "overlaps another schedule");
    }
  }
  return p.finish();
}

const ReleaseWave* open_wave(const Event& event, Instant now) noexcept {
  for (const auto& w : event.waves) {
    if (w.start <= now && now < w.end) return &w;
  }
  return nullptr;
}

std::string_view to_string(BookingStatus s) noexcept {
  switch (s) {
    case BookingStatus::held: return "HELD";
    case BookingStatus::confirmed: return "CONFIRMED";
    case BookingStatus::cancelled: return "CANCELLED";
    case BookingStatus::expired: return "EXPIRED";
  }
  return "HELD";
}

std::optional<BookingStatus> parse_booking_status(std::string_view s) noexcept {
  for (auto st : {BookingStatus::held, BookingStatus::confirmed, BookingStatus::cancelled,
                  BookingStatus::expired}) {
    if (to_string(st) == s) return st;
  }
  return std::nullopt;
}

}  // namespace booking
