// The in-memory EventRepository: one mutex around plain containers. Each method runs entirely
// under the mutex, which is what makes every state change atomic here.
#include <booking/event_repository.hpp>
#include <map>
#include <mutex>
#include <set>
#include <unordered_map>

#include "core/repository_rules.hpp"
#include "core/text.hpp"

namespace booking {

namespace {

struct StoredBooking {
  Booking booking;
  std::optional<Instant> wave_start;
};

class MemoryRepository final : public EventRepository {
 public:
  result<Event> create_event(const Event& event) override {
    std::lock_guard lock(mu_);
    BOOKING_TRY(check_free(event));
    return insert(event);
  }

  result<std::size_t> create_events(std::span<const Event> events) override {
    std::lock_guard lock(mu_);
    std::set<std::string> keys;
    for (const Event& e : events) {
      BOOKING_TRY(check_free(e));
      bool fresh = keys.insert("e:" + e.key).second;
      for (const Tier& t : e.tiers) fresh = keys.insert("t:" + t.key).second && fresh;
      if (!fresh) return detail::duplicate_key_error(e.key);
    }
    for (const Event& e : events) insert(e);
    return events.size();
  }

  result<Event> get_event(std::string_view key) override {
    std::lock_guard lock(mu_);
    auto it = events_.find(std::string(key));
    if (it == events_.end()) return detail::not_found_error("event", key);
    return it->second;
  }

  result<std::vector<Event>> search_events(const SearchQuery& q) override {
    std::lock_guard lock(mu_);
    std::string needle = detail::ascii_lower(q.name);
    std::vector<Event> out;
    std::int64_t skipped = 0;
    for (const auto& [id, key] : by_id_) {
      const Event& e = events_.at(key);
      if (!needle.empty() && detail::ascii_lower(e.name).find(needle) == std::string::npos) {
        continue;
      }
      if (skipped++ < q.offset) continue;
      out.push_back(e);
      if (static_cast<std::int64_t>(out.size()) >= q.limit) break;
    }
    return out;
  }

  result<Booking> insert_hold(const HoldPlan& plan) override {
    std::lock_guard lock(mu_);
    const Booking& b = plan.booking;
    if (b.idempotency_key && idempotency_.contains(*b.idempotency_key)) {
      return make_error(errc::duplicate_key, "idempotency key already used");
    }
    auto ev = events_.find(b.event_key);
    if (ev == events_.end()) return detail::not_found_error("event", b.event_key);
    Event& event = ev->second;
    // per-user limits
    if (b.user_id) {
      for (std::size_t i = 0; i < b.lines.size(); ++i) {
        if (i >= plan.max_per_user.size() || !plan.max_per_user[i]) continue;
        std::int64_t used = user_usage_[{*b.user_id, b.lines[i].tier_key}];
        if (used + b.lines[i].qty > *plan.max_per_user[i]) {
          return detail::per_user_limit_error(b.lines[i].tier_key, *plan.max_per_user[i], used);
        }
      }
    }
    // the wave
    ReleaseWave* wave = nullptr;
    if (plan.wave_start) {
      for (auto& w : event.waves) {
        if (w.start == *plan.wave_start) wave = &w;
      }
      if (wave && wave->booked + b.ticket_count() > wave->limit) {
        return detail::wave_limit_error(wave->limit - wave->booked);
      }
    }
    // stock of every line
    boost::json::object available;
    std::vector<Tier*> tiers;
    for (const BookingLine& l : b.lines) {
      Tier* t = find_tier(event, l.tier_key);
      if (!t) return detail::not_found_error("event group", l.tier_key);
      tiers.push_back(t);
      available[l.tier_key] = t->stock.available;
    }
    for (std::size_t i = 0; i < b.lines.size(); ++i) {
      if (tiers[i]->stock.available < b.lines[i].qty)
        return detail::insufficient_stock_error(std::move(available));
    }
    for (std::size_t i = 0; i < b.lines.size(); ++i) {
      tiers[i]->stock.available -= b.lines[i].qty;
      tiers[i]->stock.held += b.lines[i].qty;
      if (b.user_id) user_usage_[{*b.user_id, b.lines[i].tier_key}] += b.lines[i].qty;
    }
    if (wave) wave->booked += b.ticket_count();
    bookings_[b.id] = StoredBooking{b, wave ? plan.wave_start : std::nullopt};
    due_.insert({b.expires_at, b.id});
    if (b.idempotency_key) {
      idempotency_[*b.idempotency_key] = IdempotencyRecord{b.id, plan.request_fingerprint};
    }
    return b;
  }

  result<Booking> get_booking(std::string_view id) override {
    std::lock_guard lock(mu_);
    auto it = bookings_.find(std::string(id));
    if (it == bookings_.end()) return detail::not_found_error("booking", id);
    return it->second.booking;
  }

  result<std::optional<IdempotencyRecord>> find_idempotency_key(std::string_view key) override {
    std::lock_guard lock(mu_);
    auto it = idempotency_.find(std::string(key));
    if (it == idempotency_.end()) return std::optional<IdempotencyRecord>{};
    return std::optional<IdempotencyRecord>{it->second};
  }

  result<Booking> confirm(std::string_view id, std::string_view method, std::string_view reference,
                          Instant now) override {
    std::lock_guard lock(mu_);
    auto it = bookings_.find(std::string(id));
    if (it == bookings_.end()) return detail::not_found_error("booking", id);
    StoredBooking& sb = it->second;
    BOOKING_TRY(check_live_hold(sb, now, "confirm"));
    move_stock(sb, BookingStatus::confirmed);
    sb.booking.payment_method = std::string(method);
    sb.booking.payment_reference = std::string(reference);
    return sb.booking;
  }

  result<Booking> cancel(std::string_view id, Instant now) override {
    std::lock_guard lock(mu_);
    auto it = bookings_.find(std::string(id));
    if (it == bookings_.end()) return detail::not_found_error("booking", id);
    StoredBooking& sb = it->second;
    if (sb.booking.status != BookingStatus::confirmed) {
      BOOKING_TRY(check_live_hold(sb, now, "cancel"));
    }
    move_stock(sb, BookingStatus::cancelled);
    return sb.booking;
  }

  result<std::size_t> expire_due(Instant now, std::size_t max) override {
    std::lock_guard lock(mu_);
    std::size_t n = 0;
    while (n < max && !due_.empty() && due_.begin()->first <= now) {
      std::string id = due_.begin()->second;
      move_stock(bookings_.at(id), BookingStatus::expired);
      ++n;
    }
    return n;
  }

  result<std::int64_t> count_active_holds() override {
    std::lock_guard lock(mu_);
    return static_cast<std::int64_t>(due_.size());
  }

 private:
  result<void> check_free(const Event& e) const {
    if (events_.contains(e.key)) return detail::duplicate_key_error(e.key);
    for (const Tier& t : e.tiers) {
      if (tier_owner_.contains(t.key)) return detail::duplicate_key_error(t.key);
    }
    return boost::outcome_v2::success();
  }

  Event insert(Event e) {
    e.id = ++next_id_;
    for (Tier& t : e.tiers) {
      t.stock = TierStock{t.capacity, t.capacity, 0, 0};
      tier_owner_[t.key] = e.key;
    }
    for (ReleaseWave& w : e.waves) w.booked = 0;
    by_id_[e.id] = e.key;
    events_[e.key] = e;
    return e;
  }

  static Tier* find_tier(Event& e, const std::string& key) {
    for (Tier& t : e.tiers) {
      if (t.key == key) return &t;
    }
    return nullptr;
  }

  // HELD and before its deadline; a HELD booking past it is expired here.
  result<void> check_live_hold(StoredBooking& sb, Instant now, std::string_view action) {
    if (sb.booking.status == BookingStatus::held && sb.booking.expires_at <= now) {
      move_stock(sb, BookingStatus::expired);
      return make_error(errc::hold_expired,
                        "the hold expired at " + format_instant(sb.booking.expires_at));
    }
    return detail::require_live_hold(sb.booking, action);
  }

  // Moves a booking to `to`, moving its tickets between the stock buckets.
  void move_stock(StoredBooking& sb, BookingStatus to) {
    Booking& b = sb.booking;
    Event& e = events_.at(b.event_key);
    bool releases = to == BookingStatus::cancelled || to == BookingStatus::expired;
    for (const BookingLine& l : b.lines) {
      TierStock& s = find_tier(e, l.tier_key)->stock;
      (b.status == BookingStatus::held ? s.held : s.sold) -= l.qty;
      (releases ? s.available : s.sold) += l.qty;
      if (releases && b.user_id) user_usage_[{*b.user_id, l.tier_key}] -= l.qty;
    }
    if (releases && sb.wave_start) {
      for (auto& w : e.waves) {
        if (w.start == *sb.wave_start) w.booked -= b.ticket_count();
      }
    }
    if (b.status == BookingStatus::held) due_.erase({b.expires_at, b.id});
    b.status = to;
  }

  std::mutex mu_;
  std::int64_t next_id_ = 0;
  std::unordered_map<std::string, Event> events_;
  std::map<std::int64_t, std::string> by_id_;
  std::unordered_map<std::string, std::string> tier_owner_;
  std::unordered_map<std::string, StoredBooking> bookings_;
  std::set<std::pair<Instant, std::string>> due_;
  std::map<std::pair<std::string, std::string>, std::int64_t> user_usage_;
  std::unordered_map<std::string, IdempotencyRecord> idempotency_;
};

}  // namespace

std::unique_ptr<EventRepository> make_memory_repository() {
  return std::make_unique<MemoryRepository>();
}

}  // namespace booking
