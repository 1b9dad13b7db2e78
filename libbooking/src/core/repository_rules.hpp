// Errors and rules every EventRepository states the same way, whatever its storage.
#pragma once

#include <booking/booking.hpp>
#include <booking/error.hpp>
#include <string>
#include <string_view>

namespace booking::detail {

inline error not_found_error(std::string_view what, std::string_view key) {
  return make_error(errc::not_found, std::string(what) + " '" + std::string(key) + "' not found");
}

inline error duplicate_key_error(std::string_view key) {
  return make_error(errc::duplicate_key, "key '" + std::string(key) + "' already exists",
                    {{"key", key}});
}

// Only a HELD booking may be confirmed (or, if not CONFIRMED, cancelled): invalid_state else.
inline result<void> require_live_hold(const Booking& b, std::string_view action) {
  if (b.status == BookingStatus::held) return boost::outcome_v2::success();
  return make_error(errc::invalid_state, "cannot " + std::string(action) + " a " +
                                             std::string(to_string(b.status)) + " booking");
}

}  // namespace booking::detail
