// The in-memory EventRepository: one mutex around plain containers. Each method runs entirely
// under the mutex, which is what makes every state change atomic here. The booking rules are
// core's (booking/storage.hpp); this file only offers their primitives over the containers.
#include <algorithm>
#include <booking/json_codec.hpp>
#include <booking/storage.hpp>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <unordered_map>

#include "core/repository_rules.hpp"
#include "core/text.hpp"

namespace booking {

namespace {

class MemoryRepository final : public RuleBasedRepository, private StorageTransaction {
 public:
  result<Event> create_event(const Event& event, Instant now) override {
    std::lock_guard lock(mu_);
    BOOKING_TRY(check_free(event));
    return insert(event, now);
  }

  result<std::size_t> create_events(std::span<const Event> events, Instant now) override {
    std::lock_guard lock(mu_);
    std::set<std::string> keys;
    for (const Event& e : events) {
      BOOKING_TRY(check_free(e));
      bool fresh = keys.insert("e:" + e.key).second;
      for (const Tier& t : e.tiers) fresh = keys.insert("t:" + t.key).second && fresh;
      if (!fresh) return detail::duplicate_key_error(e.key);
    }
    for (const Event& e : events) insert(e, now);
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

  result<std::vector<Booking>> list_bookings(const BookingQuery& q) override {
    std::lock_guard lock(mu_);
    std::vector<const Booking*> found;
    for (const auto& [id, sb] : bookings_) {
      const Booking& b = sb.booking;
      if (q.event_key && b.event_key != *q.event_key) continue;
      if (q.status && b.status != *q.status) continue;
      if (q.user_id && b.user_id != q.user_id) continue;
      if (q.before && std::pair(b.created_at, b.id) >= *q.before) continue;
      found.push_back(&b);
    }
    std::sort(found.begin(), found.end(), [](const Booking* x, const Booking* y) {
      return std::pair(x->created_at, x->id) > std::pair(y->created_at, y->id);
    });
    std::vector<Booking> out;
    for (const Booking* b : found) {
      if (static_cast<std::int64_t>(out.size()) >= q.limit) break;
      out.push_back(*b);
    }
    return out;
  }

  result<std::vector<BookingTotal>> booking_totals(std::string_view key) override {
    std::lock_guard lock(mu_);
    std::map<std::pair<std::string, BookingStatus>, BookingTotal> sums;
    for (const auto& [id, sb] : bookings_) {
      if (sb.booking.event_key != key) continue;
      for (const BookingLine& l : sb.booking.lines) {
        BookingTotal& t = sums[{l.tier_key, sb.booking.status}];
        t.tier_key = l.tier_key;
        t.status = sb.booking.status;
        t.tickets += l.qty;
        t.money_minor += l.qty * l.unit_price_minor;
        ++t.lines;
      }
    }
    std::vector<BookingTotal> out;
    for (auto& [k, t] : sums) out.push_back(std::move(t));
    return out;
  }

  result<std::vector<Change>> read_changes(std::int64_t after, std::size_t limit) override {
    std::lock_guard lock(mu_);
    auto it = std::upper_bound(changes_.begin(), changes_.end(), after,
                               [](std::int64_t seq, const Change& c) { return seq < c.seq; });
    std::vector<Change> out;
    for (; it != changes_.end() && out.size() < limit; ++it) out.push_back(*it);
    return out;
  }

  result<FeedBounds> feed_bounds() override {
    std::lock_guard lock(mu_);
    return FeedBounds{feed_floor_, last_seq_};
  }

  result<std::size_t> prune_changes(Instant cutoff, std::size_t max) override {
    std::lock_guard lock(mu_);
    std::size_t n = 0;
    std::int64_t keep = last_seq_;  // the newest stays, and every undelivered webhook change
    for (const auto& [url, w] : webhooks_) keep = std::min(keep, w.state.position);
    while (n < max && !changes_.empty() && changes_.front().at < cutoff &&
           changes_.front().seq <= keep && changes_.front().seq < last_seq_) {
      feed_floor_ = changes_.front().seq;
      changes_.pop_front();
      ++n;
    }
    return n;
  }

  result<std::optional<WebhookState>> lease_webhook(std::string_view url, std::string_view owner,
                                                    std::chrono::milliseconds ttl) override {
    std::lock_guard lock(mu_);
    const Instant now = system_clock().now();
    auto [it, fresh] = webhooks_.try_emplace(std::string(url));
    if (fresh) it->second.state.position = last_seq_;
    Webhook& w = it->second;
    if (w.owner != owner && w.until >= now) return std::optional<WebhookState>{};
    w.owner = std::string(owner);
    w.until = now + ttl;
    return std::optional<WebhookState>{w.state};
  }

  result<bool> save_webhook(std::string_view url, std::string_view owner,
                            const WebhookState& state) override {
    std::lock_guard lock(mu_);
    auto it = webhooks_.find(std::string(url));
    if (it == webhooks_.end() || it->second.owner != owner ||
        it->second.until < system_clock().now()) {
      return false;
    }
    it->second.state = state;
    return true;
  }

  result<std::vector<std::pair<std::string, WebhookState>>> list_webhooks() override {
    std::lock_guard lock(mu_);
    std::vector<std::pair<std::string, WebhookState>> out;
    for (const auto& [url, w] : webhooks_) out.emplace_back(url, w.state);
    return out;
  }

  result<void> resume_webhook(std::string_view url) override {
    std::lock_guard lock(mu_);
    auto it = webhooks_.find(std::string(url));
    if (it == webhooks_.end()) return detail::not_found_error("webhook", url);
    it->second.state.paused = false;
    it->second.state.failing_since.reset();
    return boost::outcome_v2::success();
  }

  result<std::size_t> export_bookings(std::string_view key, const BookingSink& sink) override {
    std::vector<Booking> found;
    {
      std::lock_guard lock(mu_);
      for (const auto& [id, sb] : bookings_) {
        if (sb.booking.event_key == key) found.push_back(sb.booking);
      }
    }
    std::sort(found.begin(), found.end(), [](const Booking& x, const Booking& y) {
      return std::pair(x.created_at, x.id) < std::pair(y.created_at, y.id);
    });
    std::size_t n = 0;
    for (const Booking& b : found) {
      if (!sink(b)) break;
      ++n;
    }
    return n;
  }

  result<std::size_t> purge_idempotency_keys(Instant cutoff, std::size_t max) override {
    std::lock_guard lock(mu_);
    std::size_t n = 0;
    while (n < max && !idempotency_age_.empty() && idempotency_age_.begin()->first <= cutoff) {
      forget_idempotency(std::string(idempotency_age_.begin()->second));
      ++n;
    }
    return n;
  }

  result<std::size_t> expire_due(Instant now, std::size_t max) override {
    std::lock_guard lock(mu_);
    std::size_t n = 0;
    while (n < max && !due_.empty() && due_.begin()->first <= now) {
      const StoredBooking& sb = bookings_.at(due_.begin()->second);
      for (const BookingLine& l : sb.booking.lines) add_stock(l.tier_key, {l.qty, -l.qty, 0});
      if (sb.wave_id) add_wave_booked(*sb.wave_id, -sb.booking.ticket_count());
      Booking expired = sb.booking;
      expired.status = BookingStatus::expired;
      set_booking(expired);
      append_change({ChangeType::booking_expired, now, expired.event_key, &expired,
                     current_actor()});
      ++n;
    }
    return n;
  }

  result<std::int64_t> count_active_holds() override {
    std::lock_guard lock(mu_);
    return static_cast<std::int64_t>(due_.size());
  }

  result<void> insert_token(const ApiToken& token) override {
    std::lock_guard lock(mu_);
    if (!tokens_.emplace(token.name, token).second) return detail::duplicate_key_error(token.name);
    return boost::outcome_v2::success();
  }

  result<std::vector<ApiToken>> list_tokens() override {
    std::lock_guard lock(mu_);
    std::vector<ApiToken> out;
    for (const auto& [name, t] : tokens_) out.push_back(t);
    return out;
  }

  result<void> revoke_token(std::string_view name, Instant at) override {
    std::lock_guard lock(mu_);
    auto it = tokens_.find(std::string(name));
    if (it == tokens_.end() || it->second.revoked_at) return detail::not_found_error("token", name);
    it->second.revoked_at = at;
    return boost::outcome_v2::success();
  }

 private:
  result<void> check_free(const Event& e) const {
    if (events_.contains(e.key)) return detail::duplicate_key_error(e.key);
    for (const Tier& t : e.tiers) {
      if (tier_owner_.contains(t.key)) return detail::duplicate_key_error(t.key);
    }
    return boost::outcome_v2::success();
  }

  Event insert(Event e, Instant now) {
    e.id = ++next_id_;
    for (Tier& t : e.tiers) {
      t.stock = TierStock{t.capacity, t.capacity, 0, 0};
      tier_owner_[t.key] = e.key;
    }
    std::vector<std::int64_t>& ids = wave_ids_[e.id];
    for (ReleaseWave& w : e.waves) {
      w.booked = 0;
      ids.push_back(++next_wave_id_);
      wave_owner_[ids.back()] = e.id;
    }
    e.status = EventStatus::on_sale;
    e.version = 1;
    by_id_[e.id] = e.key;
    events_[e.key] = e;
    append_change({ChangeType::event_created, now == Instant{} ? system_clock().now() : now,
                   e.key, nullptr, current_actor()});
    return e;
  }

  // The write transaction: everything under mu_. The rules write only after every check
  // passed and the primitives cannot fail half-way, so no undo log is needed.
  result<Booking> write(const Work& work) override {
    std::lock_guard lock(mu_);
    try {
      return work(*this);
    } catch (const std::exception& e) {  // out of memory: nothing else here throws
      return make_error(errc::internal, std::string("storage error: ") + e.what());
    }
  }

  // StorageTransaction, called under mu_ (from write).
  std::optional<std::int64_t> find_event_id(std::string_view key) override {
    auto it = events_.find(std::string(key));
    if (it == events_.end()) return std::nullopt;
    return it->second.id;
  }
  std::optional<IdempotencyRecord> find_idempotency(std::string_view key) override {
    auto it = idempotency_.find(std::string(key));
    if (it == idempotency_.end()) return std::nullopt;
    return it->second;
  }
  std::optional<EventState> load_event_state(std::int64_t event_id) override {
    auto it = by_id_.find(event_id);
    if (it == by_id_.end()) return std::nullopt;
    const Event& e = events_.at(it->second);
    return EventState{e.id, e.status, e.version};
  }
  std::optional<EventState> lock_event(std::string_view key) override {
    auto it = events_.find(std::string(key));
    if (it == events_.end()) return std::nullopt;
    return EventState{it->second.id, it->second.status, it->second.version};
  }
  void set_event_state(const EventState& s) override {
    Event& e = events_.at(by_id_.at(s.id));
    e.status = s.status;
    e.version = s.version;
  }
  void update_event_fields(std::int64_t event_id, const Event& from) override {
    Event& e = events_.at(by_id_.at(event_id));
    e.name = from.name;
    e.type = from.type;
    e.promoter = from.promoter;
    e.date = from.date;
    e.utc_offset_minutes = from.utc_offset_minutes;
    e.location = from.location;
  }
  bool tier_exists(std::string_view key) override { return tier_owner_.contains(std::string(key)); }
  void update_tier(std::int64_t, const Tier& from, std::int64_t capacity_delta) override {
    Tier& t = *find_tier(from.key);
    TierStock stock = t.stock;
    stock.capacity += capacity_delta;
    stock.available += capacity_delta;
    t = from;
    t.capacity = stock.capacity;
    t.stock = stock;
  }
  void insert_tier(std::int64_t event_id, const Tier& from) override {
    Event& e = events_.at(by_id_.at(event_id));
    Tier& t = e.tiers.emplace_back(from);
    t.stock = TierStock{t.capacity, t.capacity, 0, 0};
    tier_owner_[t.key] = e.key;
  }
  void replace_waves(std::int64_t event_id, const std::vector<ReleaseWave>& waves) override {
    Event& e = events_.at(by_id_.at(event_id));
    std::vector<std::int64_t>& ids = wave_ids_[event_id];
    std::vector<ReleaseWave> next;
    std::vector<std::int64_t> next_ids;
    for (const ReleaseWave& w : waves) {
      auto kept = std::find_if(e.waves.begin(), e.waves.end(),
                               [&](const ReleaseWave& old) { return old.start == w.start; });
      next.push_back(w);
      if (kept != e.waves.end()) {
        next.back().booked = kept->booked;
        next_ids.push_back(ids.at(static_cast<std::size_t>(kept - e.waves.begin())));
      } else {
        next.back().booked = 0;
        next_ids.push_back(++next_wave_id_);
        wave_owner_[next_ids.back()] = event_id;
      }
    }
    for (std::int64_t gone : ids) {
      if (std::find(next_ids.begin(), next_ids.end(), gone) != next_ids.end()) continue;
      wave_owner_.erase(gone);
      for (auto& [id, sb] : bookings_) {
        if (sb.wave_id == gone) sb.wave_id.reset();
      }
    }
    e.waves = std::move(next);
    ids = std::move(next_ids);
  }
  std::vector<std::string> live_booking_ids(std::int64_t event_id, std::size_t max) override {
    std::vector<std::string> ids;
    for (const auto& [id, sb] : bookings_) {
      if (ids.size() >= max) break;
      const auto s = sb.booking.status;
      if (sb.event_id == event_id && (s == BookingStatus::held || s == BookingStatus::confirmed)) {
        ids.push_back(id);
      }
    }
    return ids;
  }
  std::int64_t count_client_held(std::string_view client) override {
    auto it = client_held_.find(std::string(client));
    return it == client_held_.end() ? 0 : it->second;
  }
  void forget_idempotency(std::string_view key) override {
    auto it = idempotency_.find(std::string(key));
    if (it == idempotency_.end()) return;
    idempotency_age_.erase({it->second.created_at, it->first});
    bookings_.at(it->second.booking_id).booking.idempotency_key.reset();
    idempotency_.erase(it);
  }
  std::int64_t count_user_tickets(std::string_view user, std::int64_t,
                                  std::string_view tier) override {
    auto it = user_usage_.find({std::string(user), std::string(tier)});
    return it == user_usage_.end() ? 0 : it->second;
  }
  std::optional<TierCounters> load_tier(std::int64_t event_id, std::string_view key) override {
    Tier* t = find_tier(key);
    if (!t || events_.at(tier_owner_.at(t->key)).id != event_id) return std::nullopt;
    return TierCounters{t->stock.capacity, t->stock.available, t->stock.held, t->stock.sold};
  }
  std::optional<WaveCounters> load_wave(std::int64_t event_id, Instant start) override {
    auto ev = by_id_.find(event_id);
    if (ev == by_id_.end()) return std::nullopt;
    const Event& e = events_.at(ev->second);
    for (std::size_t i = 0; i < e.waves.size(); ++i) {
      if (e.waves[i].start == start) {
        return WaveCounters{wave_ids_.at(event_id).at(i), e.waves[i].limit, e.waves[i].booked};
      }
    }
    return std::nullopt;
  }
  bool take_stock(std::int64_t event_id, std::string_view key, std::int64_t qty) override {
    auto counters = load_tier(event_id, key);
    if (!counters || counters->available < qty) return false;
    add_stock(key, {-qty, qty, 0});
    return true;
  }
  void add_stock(std::string_view key, const StockDelta& d) override {
    TierStock& s = find_tier(key)->stock;
    s.available += d.available;
    s.held += d.held;
    s.sold += d.sold;
  }
  void add_wave_booked(std::int64_t id, std::int64_t delta) override {
    const std::int64_t event_id = wave_owner_.at(id);
    const std::vector<std::int64_t>& ids = wave_ids_.at(event_id);
    const auto position =
        static_cast<std::size_t>(std::find(ids.begin(), ids.end(), id) - ids.begin());
    events_.at(by_id_.at(event_id)).waves.at(position).booked += delta;
  }
  void insert_booking(const Booking& b, std::int64_t event_id, std::optional<std::int64_t> wave_id,
                      const std::string& fingerprint) override {
    bookings_[b.id] = StoredBooking{b, event_id, wave_id};
    bookings_[b.id].booking.status = BookingStatus::cancelled;  // set_booking counts it in
    set_booking(b);
    if (b.idempotency_key) {
      idempotency_[*b.idempotency_key] = IdempotencyRecord{b.id, fingerprint, b.created_at};
      idempotency_age_.insert({b.created_at, *b.idempotency_key});
    }
  }
  std::optional<StoredBooking> load_booking(std::string_view id) override {
    auto it = bookings_.find(std::string(id));
    if (it == bookings_.end()) return std::nullopt;
    return it->second;
  }
  void update_booking(const Booking& b) override { set_booking(b); }
  void append_change(const ChangeRecord& r) override {
    Change c;
    c.seq = ++last_seq_;
    c.at = r.at;
    c.type = r.type;
    c.event_key = std::string(r.event_key);
    c.actor = std::string(r.actor);
    if (r.booking) {
      c.booking_id = r.booking->id;
      c.data = to_json(*r.booking);
    } else {
      c.data = definition_json(events_.at(c.event_key));
    }
    changes_.push_back(std::move(c));
  }

 private:
  Tier* find_tier(std::string_view key) {
    auto owner = tier_owner_.find(std::string(key));
    if (owner == tier_owner_.end()) return nullptr;
    for (Tier& t : events_.at(owner->second).tiers) {
      if (t.key == key) return &t;
    }
    return nullptr;
  }

  // Stores b's status and payment, keeping the indexes of HELD (due_) and live tickets
  // (user_usage_) in step with its status. `b` must not be the stored booking itself.
  void set_booking(const Booking& b) {
    Booking& stored = bookings_.at(b.id).booking;
    auto live = [](BookingStatus s) {
      return s == BookingStatus::held || s == BookingStatus::confirmed;
    };
    if (b.user_id && live(stored.status) != live(b.status)) {
      for (const BookingLine& l : b.lines) {
        user_usage_[{*b.user_id, l.tier_key}] += live(b.status) ? l.qty : -l.qty;
      }
    }
    if (b.client && (stored.status == BookingStatus::held) != (b.status == BookingStatus::held)) {
      client_held_[*b.client] +=
          b.status == BookingStatus::held ? b.ticket_count() : -b.ticket_count();
    }
    if (stored.status == BookingStatus::held) due_.erase({stored.expires_at, b.id});
    if (b.status == BookingStatus::held) due_.insert({b.expires_at, b.id});
    stored = b;
  }

  std::mutex mu_;
  std::int64_t next_id_ = 0;
  std::unordered_map<std::string, Event> events_;
  std::map<std::int64_t, std::string> by_id_;
  std::unordered_map<std::string, std::string> tier_owner_;
  std::int64_t next_wave_id_ = 0;
  // Per event, the ids of its waves (parallel to Event::waves), and each wave's event.
  std::unordered_map<std::int64_t, std::vector<std::int64_t>> wave_ids_;
  std::unordered_map<std::int64_t, std::int64_t> wave_owner_;
  std::unordered_map<std::string, StoredBooking> bookings_;
  std::set<std::pair<Instant, std::string>> due_;
  std::map<std::pair<std::string, std::string>, std::int64_t> user_usage_;
  std::unordered_map<std::string, IdempotencyRecord> idempotency_;
  std::set<std::pair<Instant, std::string>> idempotency_age_;  // (first used, key)
  std::unordered_map<std::string, std::int64_t> client_held_;  // tickets in HELD bookings
  std::map<std::string, ApiToken> tokens_;                     // by name
  struct Webhook {
    WebhookState state;
    std::string owner;  // of the lease
    Instant until{};
  };
  std::map<std::string, Webhook> webhooks_;  // by URL
  std::deque<Change> changes_;               // the feed, by seq
  std::int64_t last_seq_ = 0;
  std::int64_t feed_floor_ = 0;
};

}  // namespace

std::unique_ptr<EventRepository> make_memory_repository() {
  return std::make_unique<MemoryRepository>();
}

}  // namespace booking
