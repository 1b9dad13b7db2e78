// Errors and rules every EventRepository states the same way, whatever its storage.
#pragma once

#include <booking/booking.hpp>
#include <booking/error.hpp>
#include <booking/event.hpp>
#include <booking/time.hpp>
#include <array>
#include <cstddef>
#include <optional>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include "core/text.hpp"

namespace booking::detail {

// One schema migration: its SQL, and whether it only adds (tables, columns with defaults,
// indexes), so that a libbooking that knows only the schema before it still reads and writes
// the database correctly (every query names its columns). Instances are upgraded one at a
// time: while some still run the previous version, the database is already migrated.
struct Migration {
  const char* sql;
  bool additive;
};

// The oldest schema version a libbooking must know to use a database migrated through the
// first `applied` of `migrations`: the version the last non-additive migration brought.
template <std::size_t N>
std::int64_t readable_by(const std::array<Migration, N>& migrations, std::size_t applied) {
  std::int64_t oldest = 0;
  for (std::size_t i = 0; i < applied && i < N; ++i) {
    if (!migrations[i].additive) oldest = static_cast<std::int64_t>(i + 1);
  }
  return oldest;
}

// Throws unless this build, which knows `known` migrations, can use storage at schema
// `version`. A database migrated further by a newer libbooking is used when every migration
// past `known` only added (its `readable_by`, read from the database, is at most `known`),
// and refused rather than misread otherwise. `readable_by` is nullopt when the database does
// not say (written before libbooking recorded it).
inline void require_known_schema(std::int64_t version, std::size_t known,
                                 std::optional<std::int64_t> readable_by = std::nullopt) {
  if (version >= 0 && static_cast<std::size_t>(version) <= known) return;
  if (version > 0 && readable_by && *readable_by >= 0 &&
      static_cast<std::size_t>(*readable_by) <= known) {
    return;
  }
  throw std::runtime_error("database schema version " + std::to_string(version) +
                           " is newer than this libbooking supports (" + std::to_string(known) +
                           ") and not readable by it");
}

// A new event as storage holds it once created with `id`: every ticket available, no wave
// booked, on sale, version 1.
inline Event stored_new_event(Event e, std::int64_t id) {
  e.id = id;
  for (Tier& t : e.tiers) t.stock = TierStock{t.capacity, t.capacity, 0, 0};
  for (ReleaseWave& w : e.waves) w.booked = 0;
  e.status = EventStatus::on_sale;
  e.version = 1;
  return e;
}

inline error not_found_error(std::string_view what, std::string_view key) {
  return make_error(errc::not_found, std::string(what) + " '" + std::string(key) + "' not found");
}

inline error duplicate_key_error(std::string_view key) {
  return make_error(errc::duplicate_key, "key '" + std::string(key) + "' already exists",
                    {{"key", key}});
}

// A user would exceed the tier's maxPerUser with `used` tickets already HELD or CONFIRMED.
inline error per_user_limit_error(const std::string& tier, std::int64_t limit, std::int64_t used) {
  return make_error(errc::per_user_limit,
                    "at most " + std::to_string(limit) + " tickets of '" + tier + "' per user",
                    {{"key", tier}, {"maxPerUser", limit}, {"alreadyBooked", used}});
}

// The open release wave has only `remaining` tickets left.
inline error wave_limit_error(std::int64_t remaining) {
  return make_error(errc::wave_limit_reached,
                    "the current release wave has " + std::to_string(remaining) + " tickets left",
                    {{"remaining", remaining}});
}

// Not enough stock; `available` maps each requested tier to what it has now.
inline error insufficient_stock_error(boost::json::object available) {
  return make_error(errc::insufficient_stock, "not enough tickets available",
                    {{"available", std::move(available)}});
}

// Only a HELD booking may be confirmed (or, if not CONFIRMED, cancelled): invalid_state else.
inline result<void> require_live_hold(const Booking& b, std::string_view action) {
  if (b.status == BookingStatus::held) return boost::outcome_v2::success();
  return make_error(errc::invalid_state, "cannot " + std::string(action) + " the booking: it is " +
                                             ascii_lower(to_string(b.status)));
}

// A hold whose deadline `expires_at` has passed.
inline error sale_closed_error(std::string_view event, EventStatus status) {
  return make_error(errc::sale_closed,
                    "event '" + std::string(event) + "' is " +
                        (status == EventStatus::cancelled ? "cancelled" : "closed") +
                        ": it takes no new holds",
                    {{"key", event}, {"status", to_string(status)}});
}

inline error hold_expired_error(Instant expires_at) {
  return make_error(errc::hold_expired, "the hold expired at " + format_instant(expires_at));
}

}  // namespace booking::detail
