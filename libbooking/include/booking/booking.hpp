// A booking: tickets of one event held for a buyer until paid, cancelled or expired.
#pragma once

#include <booking/money.hpp>
#include <booking/time.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace booking {

// HELD -> CONFIRMED | CANCELLED | EXPIRED; CONFIRMED -> CANCELLED. Nothing else.
enum class BookingStatus { held, confirmed, cancelled, expired };

std::string_view to_string(BookingStatus s) noexcept;  // "HELD", ...
std::optional<BookingStatus> parse_booking_status(std::string_view s) noexcept;

struct BookingLine {
  std::string tier_key;
  std::int64_t qty = 0;
  std::int64_t unit_price_minor = 0;
  friend bool operator==(const BookingLine&, const BookingLine&) = default;
};

struct Booking {
  std::string id;  // 32 hex chars: the hold's unix milliseconds (12), then 80 bits of CSPRNG
  std::string event_key;
  std::optional<std::string> user_id;
  std::vector<BookingLine> lines;
  Money total;
  BookingStatus status = BookingStatus::held;
  Instant created_at;
  Instant expires_at;
  std::optional<std::string> payment_method;  // set on confirmation
  std::optional<std::string> payment_reference;
  std::optional<std::string> idempotency_key;  // as stored: scoped to whoever sent it
  // The anonymous caller a hold was made for (bookingd: "client:ADDRESS"), for the limit on
  // tickets one client may hold at once. Not part of the API's JSON.
  std::optional<std::string> client;
  friend bool operator==(const Booking&, const Booking&) = default;

  std::int64_t ticket_count() const noexcept {
    std::int64_t n = 0;
    for (const auto& l : lines) n += l.qty;
    return n;
  }
};

}  // namespace booking
