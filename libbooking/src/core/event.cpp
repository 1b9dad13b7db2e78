#include <algorithm>
#include <booking/booking.hpp>
#include <booking/event.hpp>
#include <set>

#include "core/text.hpp"

namespace booking {

std::string_view to_string(EventStatus status) noexcept {
  switch (status) {
    case EventStatus::on_sale:
      return "on_sale";
    case EventStatus::closed:
      return "closed";
    case EventStatus::cancelled:
      return "cancelled";
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
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
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

namespace {
void check_fields(Problems& p, const Event& e) {
  check_text(p, "name", e.name, 200, true);
  check_text(p, "type", e.type, 100, true);
  if (e.promoter) check_text(p, "promoter", *e.promoter, 200, false);
  check_text(p, "location.venue", e.location.venue, 200, false);
  check_text(p, "location.address", e.location.address, 500, false);
}

// `f` is the tier's field prefix ("eventGroups[1]."); `capacity` names its capacity field
// (qty when created, capacity in a patch).
void check_tier(Problems& p, const std::string& f, const Tier& t, const char* capacity) {
  if (!is_valid_key(t.key)) p.add(f + "key", "must match [A-Za-z0-9._-]{1,64}");
  check_text(p, f + "category", t.category, 100, true);
  if (!find_currency(t.price.currency)) p.add(f + "currency", "unknown ISO 4217 currency");
  if (t.price.minor < 0) p.add(f + "price", "must be >= 0");
  if (t.capacity < 0) p.add(f + capacity, "must be >= 0");
  if (t.capacity > 100'000'000) p.add(f + capacity, "must be at most 100000000");
  if (t.end <= t.start) p.add(f + "endDate", "must be after startDate");
  if (t.max_per_order && *t.max_per_order < 1) p.add(f + "maxPerOrder", "must be >= 1");
  if (t.max_per_user && *t.max_per_user < 1) p.add(f + "maxPerUser", "must be >= 1");
}

void check_waves(Problems& p, const std::vector<ReleaseWave>& waves) {
  std::vector<const ReleaseWave*> sorted;
  for (std::size_t i = 0; i < waves.size(); ++i) {
    const ReleaseWave& w = waves[i];
    const std::string f = "eventSchedules[" + std::to_string(i) + "].";
    if (w.end <= w.start) p.add(f + "endDate", "must be after startDate");
    if (w.limit < 1) p.add(f + "limit", "must be >= 1");
    sorted.push_back(&w);
  }
  std::sort(sorted.begin(), sorted.end(),
            [](const ReleaseWave* a, const ReleaseWave* b) { return a->start < b->start; });
  for (std::size_t i = 1; i < sorted.size(); ++i) {
    if (sorted[i]->start < sorted[i - 1]->end) {
      auto index = static_cast<std::size_t>(sorted[i] - waves.data());
      p.add("eventSchedules[" + std::to_string(index) + "]", "overlaps another schedule");
    }
  }
}
}  // namespace

result<void> validate_new_event(const Event& e) {
  Problems p;
  if (!is_valid_key(e.key)) p.add("key", "must match [A-Za-z0-9._-]{1,64}");
  check_fields(p, e);
  if (e.tiers.empty()) p.add("eventGroups", "at least one event group is required");
  if (e.tiers.size() > 100) p.add("eventGroups", "at most 100 event groups");
  std::set<std::string> seen;
  for (std::size_t i = 0; i < e.tiers.size(); ++i) {
    const Tier& t = e.tiers[i];
    const std::string f = "eventGroups[" + std::to_string(i) + "].";
    if (is_valid_key(t.key) && !seen.insert(t.key).second) {
      p.add(f + "key", "duplicate event group key '" + t.key + "'");
    }
    check_tier(p, f, t, "qty");
  }
  check_waves(p, e.waves);
  return p.finish();
}

namespace {
// Applies `patch` to `t` (a copy of the stored tier, or a blank one for a new tier).
void merge_tier(Problems& p, const std::string& f, const TierPatch& patch, Tier& t, bool fresh) {
  auto required = [&](bool given, const char* field) {
    if (fresh && !given) p.add(f + field, "is required for a new event group");
  };
  required(patch.category.has_value(), "category");
  required(patch.currency.has_value(), "currency");
  required(patch.price.has_value(), "price");
  required(patch.capacity.has_value(), "capacity");
  required(patch.start.has_value(), "startDate");
  required(patch.end.has_value(), "endDate");
  if (patch.category) t.category = *patch.category;
  if (patch.currency) t.price.currency = *patch.currency;
  if (patch.price) {
    // The price is read with the currency it will be in: the patch's, else the tier's.
    if (auto cur = find_currency(t.price.currency)) {
      auto minor = parse_major_units(*patch.price, cur.value().decimals);
      if (minor) {
        t.price.minor = minor.value();
      } else {
        p.add(f + "price", minor.error().message);
      }
    }
  } else if (patch.currency && !fresh) {
    p.add(f + "price", "is required with a new currency");
  }
  if (patch.capacity) t.capacity = *patch.capacity;
  if (patch.start) t.start = *patch.start;
  if (patch.end) t.end = *patch.end;
  if (patch.max_per_order) t.max_per_order = *patch.max_per_order;
  if (patch.max_per_user) t.max_per_user = *patch.max_per_user;
}
}  // namespace

result<Event> apply_patch(const Event& current, const EventPatch& patch) {
  Problems p;
  Event e = current;
  if (patch.key && *patch.key != current.key) p.add("key", "cannot be changed");
  if (patch.name) e.name = *patch.name;
  if (patch.type) e.type = *patch.type;
  if (patch.promoter) e.promoter = *patch.promoter;
  if (patch.date) e.date = *patch.date;
  if (patch.utc_offset_minutes) e.utc_offset_minutes = *patch.utc_offset_minutes;
  if (patch.venue) e.location.venue = *patch.venue;
  if (patch.address) e.location.address = *patch.address;
  check_fields(p, e);

  std::set<std::string> patched;
  for (std::size_t i = 0; i < patch.tiers.size(); ++i) {
    const TierPatch& tp = patch.tiers[i];
    const std::string f = "eventGroups[" + std::to_string(i) + "].";
    if (!is_valid_key(tp.key)) {
      p.add(f + "key", "must match [A-Za-z0-9._-]{1,64}");
      continue;
    }
    if (!patched.insert(tp.key).second) {
      p.add(f + "key", "event group '" + tp.key + "' is patched twice");
      continue;
    }
    auto it = std::find_if(e.tiers.begin(), e.tiers.end(),
                           [&](const Tier& t) { return t.key == tp.key; });
    const bool fresh = it == e.tiers.end();
    Tier& t = fresh ? e.tiers.emplace_back() : *it;
    if (fresh) t.key = tp.key;
    const Tier before = t;
    merge_tier(p, f, tp, t, fresh);
    check_tier(p, f, t, "capacity");
    const std::int64_t booked = before.stock.held + before.stock.sold;
    if (t.capacity < booked) {
      p.add(f + "capacity", "must be at least " + std::to_string(booked) + " (" +
                                std::to_string(before.stock.held) + " held, " +
                                std::to_string(before.stock.sold) + " sold)");
    }
    if (!fresh && t.price.currency != before.price.currency && booked > 0) {
      p.add(f + "currency",
            "cannot change while tickets are held or sold in " + before.price.currency);
    }
    const std::int64_t delta = t.capacity - before.capacity;
    t.stock.capacity += delta;
    t.stock.available += delta;
  }
  if (e.tiers.size() > 100) p.add("eventGroups", "at most 100 event groups");

  if (patch.waves) {
    std::vector<ReleaseWave> waves = *patch.waves;
    for (std::size_t i = 0; i < waves.size(); ++i) {
      waves[i].booked = 0;
      for (const ReleaseWave& old : current.waves) {
        if (old.start != waves[i].start) continue;
        waves[i].booked = old.booked;
        if (waves[i].limit >= 1 && waves[i].limit < old.booked) {
          p.add("eventSchedules[" + std::to_string(i) + "].limit",
                "must be at least " + std::to_string(old.booked) + " (booked)");
        }
      }
    }
    check_waves(p, waves);
    e.waves = std::move(waves);
  }
  BOOKING_TRY(p.finish());
  return e;
}

const ReleaseWave* open_wave(const Event& event, Instant now) noexcept {
  for (const auto& w : event.waves) {
    if (w.start <= now && now < w.end) return &w;
  }
  return nullptr;
}

std::string_view to_string(BookingStatus s) noexcept {
  switch (s) {
    case BookingStatus::held:
      return "HELD";
    case BookingStatus::confirmed:
      return "CONFIRMED";
    case BookingStatus::cancelled:
      return "CANCELLED";
    case BookingStatus::expired:
      return "EXPIRED";
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
