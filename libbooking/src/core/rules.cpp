// The booking rules, once for every storage (see booking/storage.hpp for the contract).
#include <algorithm>
#include <booking/storage.hpp>
#include <boost/json/object.hpp>
#include <utility>
#include <vector>

#include "core/repository_rules.hpp"

namespace booking {

namespace {

// Moves `sb`'s tickets from the bucket of its status to that of `to`, stores the new status
// and records the change, made at `at`.
void move(StorageTransaction& tx, StoredBooking& sb, BookingStatus to, Instant at) {
  Booking& b = sb.booking;
  const bool releases = to == BookingStatus::cancelled || to == BookingStatus::expired;
  // Tiers in key order: storage shared by several writers locks rows in that one order.
  std::vector<const BookingLine*> lines;
  for (const BookingLine& l : b.lines) lines.push_back(&l);
  std::sort(lines.begin(), lines.end(),
            [](const BookingLine* x, const BookingLine* y) { return x->tier_key < y->tier_key; });
  for (const BookingLine* line : lines) {
    const BookingLine& l = *line;
    StockDelta d;
    (b.status == BookingStatus::held ? d.held : d.sold) -= l.qty;
    (releases ? d.available : d.sold) += l.qty;
    tx.add_stock(l.tier_key, d);
  }
  if (releases && sb.wave_id) tx.add_wave_booked(*sb.wave_id, -b.ticket_count());
  b.status = to;
  tx.update_booking(b);
  tx.append_change({booking_change(to), at, b.event_key, &b, current_actor()});
}

// Records a change of event `key` (its definition as the transaction leaves it).
void record_event(StorageTransaction& tx, ChangeType type, std::string_view key, Instant at) {
  tx.append_change({type, at, key, nullptr, current_actor()});
}

// Loads booking `id` for a confirm or cancel; a HELD booking past its deadline is expired here
// (the expiry is kept) and answered hold_expired, as is one the sweeper already expired.
result<StoredBooking> load_live(StorageTransaction& tx, std::string_view id, Instant now) {
  auto sb = tx.load_booking(id);
  if (!sb) return detail::not_found_error("booking", id);
  const Booking& b = sb->booking;
  if (b.status == BookingStatus::held && b.expires_at <= now) {
    move(tx, *sb, BookingStatus::expired, now);
    return detail::hold_expired_error(b.expires_at);
  }
  if (b.status == BookingStatus::expired) return detail::hold_expired_error(b.expires_at);
  return std::move(*sb);
}

}  // namespace

result<Booking> apply_hold(StorageTransaction& tx, const HoldPlan& plan) {
  const Booking& b = plan.booking;
  // Every check but the stock reads; nothing is written until they have passed.
  bool expired_key = false;  // forgotten only once every check has passed
  if (b.idempotency_key) {
    if (auto rec = tx.find_idempotency(*b.idempotency_key)) {
      if (rec->created_at > plan.idempotency_cutoff) {
        return make_error(errc::duplicate_key, "idempotency key already used");
      }
      expired_key = true;
    }
  }
  if (b.client && plan.max_held_by_client) {
    const std::int64_t held = tx.count_client_held(*b.client);
    if (held + b.ticket_count() > *plan.max_held_by_client) {
      return make_error(errc::rate_limited,
                        "at most " + std::to_string(*plan.max_held_by_client) +
                            " tickets may be held at once from one client; pay for or cancel a "
                            "hold first",
                        {{"maxHeld", *plan.max_held_by_client}, {"held", held}});
    }
  }
  std::int64_t event_id = plan.event_id;
  if (event_id == 0) {
    auto found = tx.find_event_id(b.event_key);
    if (!found) return detail::not_found_error("event", b.event_key);
    event_id = *found;
  }
  const auto state = tx.load_event_state(event_id);
  if (!state) return detail::not_found_error("event", b.event_key);
  if (state->status != EventStatus::on_sale) {
    return detail::sale_closed_error(b.event_key, state->status);
  }
  if (plan.event_version != 0 && state->version != plan.event_version) {
    return make_error(errc::precondition_failed,
                      "event '" + b.event_key + "' changed while this hold was being planned",
                      {{"version", state->version}});
  }
  if (b.user_id) {
    for (std::size_t i = 0; i < b.lines.size() && i < plan.max_per_user.size(); ++i) {
      if (!plan.max_per_user[i]) continue;
      const std::int64_t limit = *plan.max_per_user[i];
      const std::int64_t used = tx.count_user_tickets(*b.user_id, event_id, b.lines[i].tier_key);
      if (used + b.lines[i].qty > limit) {
        return detail::per_user_limit_error(b.lines[i].tier_key, limit, used);
      }
    }
  }
  std::optional<WaveCounters> wave;
  if (plan.wave_start) {
    wave = tx.load_wave(event_id, *plan.wave_start);
    if (wave && wave->booked + b.ticket_count() > wave->limit) {
      return detail::wave_limit_error(wave->limit - wave->booked);
    }
  }
  // Stock: one conditional take per line (the common case costs one statement per line). A
  // line that cannot be taken gives back what the lines before it took, in this same
  // transaction, before the refusal is answered.
  for (std::size_t i = 0; i < b.lines.size(); ++i) {
    if (tx.take_stock(event_id, b.lines[i].tier_key, b.lines[i].qty)) continue;
    for (std::size_t j = 0; j < i; ++j) {
      tx.add_stock(b.lines[j].tier_key, {b.lines[j].qty, -b.lines[j].qty, 0});
    }
    boost::json::object available;
    for (const BookingLine& l : b.lines) {
      auto tier = tx.load_tier(event_id, l.tier_key);
      if (!tier) return detail::not_found_error("event group", l.tier_key);
      available[l.tier_key] = tier->available;
    }
    return detail::insufficient_stock_error(std::move(available));
  }
  if (wave) tx.add_wave_booked(wave->id, b.ticket_count());
  if (expired_key) tx.forget_idempotency(*b.idempotency_key);
  Booking held = b;  // the answer, and what is stored
  held.status = BookingStatus::held;
  tx.insert_booking(held, event_id, wave ? std::optional(wave->id) : std::nullopt,
                    plan.request_fingerprint);
  tx.append_change({ChangeType::booking_held, held.created_at, held.event_key, &held, plan.actor});
  return held;
}

result<Booking> apply_confirm(StorageTransaction& tx, std::string_view id, std::string_view method,
                              std::string_view reference, Instant now) {
  BOOKING_TRY(auto sb, load_live(tx, id, now));
  Booking& b = sb.booking;
  if (b.status == BookingStatus::confirmed && b.payment_reference.value_or("") == reference) {
    return std::move(b);  // a payment provider's retry: harmless
  }
  BOOKING_TRY(detail::require_live_hold(b, "confirm"));
  b.payment_method = std::string(method);
  b.payment_reference = std::string(reference);
  move(tx, sb, BookingStatus::confirmed, now);
  return std::move(b);
}

result<Booking> apply_cancel(StorageTransaction& tx, std::string_view id, Instant now,
                             CancelScope scope) {
  BOOKING_TRY(auto sb, load_live(tx, id, now));
  if (sb.booking.status == BookingStatus::confirmed && scope == CancelScope::held_only) {
    return make_error(errc::forbidden,
                      "booking " + std::string(id) +
                          " is paid; only the organiser (a sales or admin token) can cancel it");
  }
  if (sb.booking.status != BookingStatus::confirmed) {
    BOOKING_TRY(detail::require_live_hold(sb.booking, "cancel"));
  }
  move(tx, sb, BookingStatus::cancelled, now);
  return std::move(sb.booking);
}

result<EventState> apply_event_status(StorageTransaction& tx, std::string_view key,
                                      EventStatus status, std::optional<std::int64_t> if_version,
                                      Instant now) {
  auto state = tx.lock_event(key);
  if (!state) return detail::not_found_error("event", key);
  if (if_version && *if_version != state->version) {
    return make_error(errc::precondition_failed,
                      "event '" + std::string(key) + "' is at version " +
                          std::to_string(state->version) + ", not " + std::to_string(*if_version),
                      {{"version", state->version}});
  }
  if (state->status == status) return *state;  // already so: nothing changes
  if (state->status == EventStatus::cancelled) {
    return make_error(errc::invalid_state,
                      "event '" + std::string(key) + "' is cancelled; that is final");
  }
  state->status = status;
  ++state->version;
  tx.set_event_state(*state);
  record_event(tx,
               status == EventStatus::closed      ? ChangeType::event_closed
               : status == EventStatus::cancelled ? ChangeType::event_cancelled
                                                  : ChangeType::event_reopened,
               key, now);
  return *state;
}

namespace {
bool same_definition(const Tier& a, const Tier& b) {
  return a.category == b.category && a.price == b.price && a.capacity == b.capacity &&
         a.start == b.start && a.end == b.end && a.max_per_order == b.max_per_order &&
         a.max_per_user == b.max_per_user;
}

bool same_fields(const Event& a, const Event& b) {
  return a.name == b.name && a.type == b.type && a.promoter == b.promoter && a.date == b.date &&
         a.utc_offset_minutes == b.utc_offset_minutes && a.location == b.location;
}

bool same_waves(const std::vector<ReleaseWave>& a, const std::vector<ReleaseWave>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                    [](const ReleaseWave& x, const ReleaseWave& y) {
                      return x.start == y.start && x.end == y.end && x.limit == y.limit;
                    });
}
}  // namespace

result<EventState> apply_event_update(StorageTransaction& tx, const EventUpdate& u) {
  const std::string& key = u.before.key;
  auto state = tx.lock_event(key);
  if (!state) return detail::not_found_error("event", key);
  if (state->version != u.before.version) {
    return make_error(errc::precondition_failed,
                      "event '" + key + "' is at version " + std::to_string(state->version) +
                          ", not " + std::to_string(u.before.version),
                      {{"version", state->version}});
  }
  if (state->status == EventStatus::cancelled) {
    return make_error(errc::invalid_state, "event '" + key + "' is cancelled; it cannot change");
  }
  auto field = [&](const std::string& tier) {
    auto it = u.tier_fields.find(tier);
    return (it != u.tier_fields.end() ? it->second : "eventGroups[" + tier + "]") + ".";
  };
  // Stock moves under a definition that stays put: judge it as stored now, in tier key order
  // (storage shared by several writers locks tier rows in that one order).
  std::vector<const Tier*> tiers;
  for (const Tier& t : u.after.tiers) tiers.push_back(&t);
  std::sort(tiers.begin(), tiers.end(),
            [](const Tier* x, const Tier* y) { return x->key < y->key; });
  boost::json::object problems;
  std::vector<std::pair<const Tier*, std::int64_t>> changed;  // with their capacity deltas
  std::vector<const Tier*> added;
  for (const Tier* t : tiers) {
    auto old = std::find_if(u.before.tiers.begin(), u.before.tiers.end(),
                            [&](const Tier& b) { return b.key == t->key; });
    if (old == u.before.tiers.end()) {
      if (tx.tier_exists(t->key)) {
        problems[field(t->key) + "key"] = "event group key '" + t->key + "' is taken";
      }
      added.push_back(t);
      continue;
    }
    if (same_definition(*old, *t)) continue;
    auto counters = tx.load_tier(state->id, t->key);
    if (!counters) return detail::not_found_error("event group", t->key);
    const std::int64_t booked = counters->held + counters->sold;
    if (t->capacity < booked) {
      problems[field(t->key) + "capacity"] = "must be at least " + std::to_string(booked) + " (" +
                                             std::to_string(counters->held) + " held, " +
                                             std::to_string(counters->sold) + " sold)";
    }
    if (t->price.currency != old->price.currency && booked > 0) {
      problems[field(t->key) + "currency"] =
          "cannot change while tickets are held or sold in " + old->price.currency;
    }
    changed.emplace_back(t, t->capacity - counters->capacity);
  }
  const bool waves_change = !same_waves(u.before.waves, u.after.waves);
  if (waves_change) {
    for (std::size_t i = 0; i < u.after.waves.size(); ++i) {
      const ReleaseWave& w = u.after.waves[i];
      auto stored = tx.load_wave(state->id, w.start);
      if (stored && w.limit < stored->booked) {
        problems["eventSchedules[" + std::to_string(i) + "].limit"] =
            "must be at least " + std::to_string(stored->booked) + " (booked)";
      }
    }
  }
  if (!problems.empty()) {
    std::string fields;
    for (const auto& kv : problems) fields += (fields.empty() ? "" : ", ") + std::string(kv.key());
    return make_error(errc::validation_failed, "invalid event: " + fields, std::move(problems));
  }
  // Every check has passed: write (a patch that changes nothing is no new version).
  const bool fields_change = !same_fields(u.before, u.after);
  if (!fields_change && changed.empty() && added.empty() && !waves_change) return *state;
  if (fields_change) tx.update_event_fields(state->id, u.after);
  for (const auto& [t, delta] : changed) tx.update_tier(state->id, *t, delta);
  for (const Tier* t : added) tx.insert_tier(state->id, *t);
  if (waves_change) tx.replace_waves(state->id, u.after.waves);
  ++state->version;
  tx.set_event_state(*state);
  record_event(tx, ChangeType::event_updated, key, u.at);
  return *state;
}

result<CancelledBatch> apply_cancel_event_bookings(StorageTransaction& tx, std::string_view key,
                                                   std::size_t max, Instant now) {
  auto state = tx.lock_event(key);
  if (!state) return detail::not_found_error("event", key);
  if (state->status != EventStatus::cancelled) {
    return make_error(errc::invalid_state,
                      "event '" + std::string(key) + "' is not cancelled; cancel it first");
  }
  CancelledBatch done;
  for (const std::string& id : tx.live_booking_ids(state->id, max)) {
    auto sb = tx.load_booking(id);
    if (!sb) continue;
    const bool due = sb->booking.status == BookingStatus::held && sb->booking.expires_at <= now;
    move(tx, *sb, due ? BookingStatus::expired : BookingStatus::cancelled, now);
    ++(due ? done.expired : done.cancelled);
  }
  return done;
}

result<Event> RuleBasedRepository::set_event_status(std::string_view key, EventStatus status,
                                                    std::optional<std::int64_t> if_version,
                                                    Instant now) {
  BOOKING_TRY(write_as<EventState>([&](StorageTransaction& tx) {
    return apply_event_status(tx, key, status, if_version, now);
  }));
  return get_event(key);
}

result<CancelledBatch> RuleBasedRepository::cancel_event_bookings(std::string_view key,
                                                                  std::size_t max, Instant now) {
  return write_as<CancelledBatch>(
      [&](StorageTransaction& tx) { return apply_cancel_event_bookings(tx, key, max, now); });
}

result<Event> RuleBasedRepository::update_event(const EventUpdate& update) {
  BOOKING_TRY(
      write_as<EventState>([&](StorageTransaction& tx) { return apply_event_update(tx, update); }));
  return get_event(update.before.key);
}

result<Booking> RuleBasedRepository::insert_hold(const HoldPlan& plan) {
  return write([&](StorageTransaction& tx) { return apply_hold(tx, plan); });
}

result<Booking> RuleBasedRepository::confirm(std::string_view id, std::string_view method,
                                             std::string_view reference, Instant now) {
  return write(
      [&](StorageTransaction& tx) { return apply_confirm(tx, id, method, reference, now); });
}

result<Booking> RuleBasedRepository::cancel(std::string_view id, Instant now, CancelScope scope) {
  return write([&](StorageTransaction& tx) { return apply_cancel(tx, id, now, scope); });
}

}  // namespace booking
