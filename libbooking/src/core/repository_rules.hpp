// Errors and rules every EventRepository states the same way, whatever its storage.
#pragma once

#include <booking/booking.hpp>
#include <booking/error.hpp>
#include <booking/time.hpp>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include "core/text.hpp"

namespace booking::detail {

// Throws unless storage at schema `version` is one this build knows (`known` migrations): a
// database migrated further by a newer libbooking would be misread by these queries.
inline void require_known_schema(std::int64_t version, std::size_t known) {
  if (version >= 0 && static_cast<std::size_t>(version) <= known) return;
  throw std::runtime_error("database schema version " + std::to_string(version) +
                           " is newer than this libbooking supports (" + std::to_string(known) +
                           ")");
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
inline error hold_expired_error(Instant expires_at) {
  return make_error(errc::hold_expired, "the hold expired at " + format_instant(expires_at));
}

}  // namespace booking::detail
