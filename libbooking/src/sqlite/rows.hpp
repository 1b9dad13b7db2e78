// Reading and binding the SQLite repository's rows: shared by its query files.
#pragma once

#include <SQLiteCpp/SQLiteCpp.h>

#include <booking/booking.hpp>
#include <booking/time.hpp>
#include <cstdint>
#include <optional>
#include <string>

namespace booking::detail {

std::int64_t ms(Instant t);
Instant instant(std::int64_t v);
void bind_optional(SQLite::Statement& st, int i, const std::optional<std::string>& v);
void bind_optional(SQLite::Statement& st, int i, const std::optional<std::int64_t>& v);
std::optional<std::string> optional_text(const SQLite::Column& col);
std::optional<std::int64_t> optional_int(const SQLite::Column& col);

// The columns read_booking reads, in its order.
constexpr const char* kBookingColumns =
    "SELECT id, event_key, user_id, status, total_minor, currency, created_ms, expires_ms, "
    "payment_method, payment_ref, idempotency_key, lines, client FROM bookings ";
// A booking from a row of kBookingColumns (its first 13 columns).
Booking read_booking(SQLite::Statement& st);

}  // namespace booking::detail
