// The SQL of the SQLite repository, one function per operation. Each runs on the connection it
// is given, inside whatever transaction the caller opened; none commits.
#pragma once

#include <booking/event_repository.hpp>

#include "sqlite/connection.hpp"

namespace booking::detail {

// Inserts an event with its tiers, waves and search entry. duplicate_key if a key is taken.
result<std::int64_t> insert_event(Connection& c, const Event& e);
std::optional<Event> load_event(Connection& c, std::string_view key);
std::vector<Event> search(Connection& c, const SearchQuery& q);

// Checks per-user limits, the wave and stock, then stores the booking (see insert_hold).
result<void> take_hold(Connection& c, const HoldPlan& plan);
std::optional<Booking> load_booking(Connection& c, std::string_view id);
std::optional<IdempotencyRecord> find_idempotency(Connection& c, std::string_view key);

// invalid_state unless the booking is HELD.
// Moves the booking to `to` and its tickets between the tier buckets (and back to its wave).
void move_stock(Connection& c, Booking& b, BookingStatus to);
// Expires up to `max` HELD bookings due at `now_ms`; returns how many.
std::size_t expire_batch(Connection& c, std::int64_t now_ms, std::size_t max);

}  // namespace booking::detail
