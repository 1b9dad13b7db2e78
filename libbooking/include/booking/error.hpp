// Errors are values: every public function returns booking::result<T>.
//
// One enum names every failure the product reports; http_status() and exit_code() map a code
// to its HTTP status and CLI exit code (both tables are in docs/api.md), so the frontends never
// decide this themselves.
#pragma once

#include <boost/json/object.hpp>
#include <boost/outcome/result.hpp>
#include <boost/outcome/try.hpp>

#include <string>
#include <string_view>
#include <system_error>

namespace booking {

enum class errc {
  invalid_json,
  not_found,
  validation_failed,
  duplicate_key,
  insufficient_stock,
  sale_not_open,
  wave_limit_reached,
  per_user_limit,
  invalid_state,
  hold_expired,
  idempotency_conflict,
  payload_too_large,
  unsupported_media_type,
  method_not_allowed,
  bad_request,   // malformed HTTP (not the JSON inside it)
  uri_too_long,  // a request line longer than the server reads
  lock_timeout,
  internal,
  unauthorized,  // no, an unknown or a revoked API token where one is needed
  forbidden,     // a valid caller without the role for this
  rate_limited,  // too many requests or held tickets from one client; try again later
  sale_closed,   // the event is closed or cancelled: no new holds
  precondition_failed,  // If-Match no longer matches the event's version
  feed_expired,         // a change feed position older than what is retained
};

// A failure: a code, a human message and optional structured details (for validation_failed,
// one entry per bad field; for insufficient_stock, what is available per tier).
struct error {
  errc code = errc::internal;
  std::string message;
  boost::json::object details;
};

// `policy::terminate`: calling value() on an error is a programming bug, never an exception.
template <class T>
using result = boost::outcome_v2::result<T, error, boost::outcome_v2::policy::terminate>;

// The wire name of a code ("insufficient_stock").
std::string_view to_string(errc code) noexcept;
// The HTTP status for a code.
int http_status(errc code) noexcept;
// The CLI exit code for a code: 1 internal, 2 usage/validation, 3 not found,
// 4 business conflict, 5 lock timeout or backend unavailable.
int exit_code(errc code) noexcept;

inline error make_error(errc code, std::string message, boost::json::object details = {}) {
  return error{code, std::move(message), std::move(details)};
}

// The error category of errc ("booking"), so that codes interoperate with std::error_code.
const std::error_category& booking_category() noexcept;
inline std::error_code make_error_code(errc code) noexcept {
  return {static_cast<int>(code), booking_category()};
}

}  // namespace booking

template <>
struct std::is_error_code_enum<booking::errc> : std::true_type {};

#define BOOKING_TRY BOOST_OUTCOME_TRY
