// The change feed: every state change, in order, for the systems that must learn of it (ticket
// e-mails, accounting, a search index).
//
// Each change is appended in the same transaction as the change itself, by the booking rules
// (booking/storage.hpp), so every storage records them alike. `seq` increases in commit order:
// a reader that has seen N never later finds a change numbered below one it has seen, with
// several writers and several instances (PostgreSQL hands out positions under a row lock held
// until commit; SQLite and the memory repository have one writer at a time).
#pragma once

#include <booking/booking.hpp>
#include <booking/error.hpp>
#include <booking/event.hpp>
#include <booking/time.hpp>
#include <boost/json/object.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace booking {

enum class ChangeType {
  event_created,
  event_updated,
  event_closed,
  event_reopened,
  event_cancelled,
  booking_held,
  booking_confirmed,
  booking_cancelled,
  booking_expired,
};

// "event.created", "booking.held", ...
std::string_view to_string(ChangeType type) noexcept;
std::optional<ChangeType> parse_change_type(std::string_view text) noexcept;
// The type of the change that moves a booking into `status`.
ChangeType booking_change(BookingStatus status) noexcept;

struct Change {
  std::int64_t seq = 0;
  Instant at{};
  ChangeType type = ChangeType::booking_held;
  std::string event_key;
  std::optional<std::string> booking_id;
  // Who made it: a token's name, "anonymous", "sweeper", "cli", or what the embedding program
  // set (ActorScope).
  std::string actor;
  // The object after the change: the booking (its API shape), or the event's definition (its
  // API shape without live stock: no qty, held, sold or booked).
  boost::json::object data;
};

// {"seq", "at", "type", "eventKey", "bookId"?, "actor", "data"}.
boost::json::object to_json(const Change& change);

// The booking as it was right after a change of `type`, from `booking` as it is now: only the
// status and the payment ever change, and a HELD booking has no payment yet. (Storage may keep
// booking changes by reference and rebuild their data with this when they are read.)
boost::json::object booking_change_data(Booking booking, ChangeType type);

// The event's definition as event.* changes carry it.
boost::json::object definition_json(const Event& event);

// Who the calling thread acts for, recorded with the changes it makes (bookingd: the token's
// name or "anonymous"; the CLI: "cli"; the expiry sweeper: "sweeper"). Scopes nest; without one,
// changes are recorded as made by "library".
class ActorScope {
 public:
  explicit ActorScope(std::string actor);
  ~ActorScope();
  ActorScope(const ActorScope&) = delete;
  ActorScope& operator=(const ActorScope&) = delete;

 private:
  std::string previous_;
};
// The calling thread's actor.
const std::string& current_actor() noexcept;

// The oldest position a reader may resume from, and the newest change.
struct FeedBounds {
  std::int64_t floor = 0;  // changes up to here were pruned: after < floor is feed_expired
  std::int64_t last = 0;   // the newest change's seq (0: none yet)
};

// A webhook URL's delivery state.
struct WebhookState {
  std::int64_t position = 0;             // the last seq delivered
  std::optional<Instant> failing_since;  // the first failure of the current run of failures
  bool paused = false;                   // after days of failures; a restart resumes it
};

}  // namespace booking
