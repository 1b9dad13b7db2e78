// Events, their ticket tiers ("event groups" in the API) and release waves.
#pragma once

#include <booking/error.hpp>
#include <booking/money.hpp>
#include <booking/time.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace booking {

struct Location {
  std::string venue;
  std::string address;
  friend bool operator==(const Location&, const Location&) = default;
};

// Stock of one tier. Conservation: capacity == available + held + sold, available >= 0.
struct TierStock {
  std::int64_t capacity = 0;
  std::int64_t available = 0;
  std::int64_t held = 0;
  std::int64_t sold = 0;
  friend bool operator==(const TierStock&, const TierStock&) = default;
};

// A ticket tier. `key` is unique across all events.
struct Tier {
  std::string key;       // "gold-Con10124"
  std::string category;  // "Gold"
  Money price;           // unit price
  std::int64_t capacity = 0;
  Instant start;  // sale window [start, end)
  Instant end;
  std::optional<std::int64_t> max_per_order;
  std::optional<std::int64_t> max_per_user;
  TierStock stock;  // filled in by reads; ignored when creating
  friend bool operator==(const Tier&, const Tier&) = default;
};

// While [start, end) is open, at most `limit` tickets of the event (summed over its tiers)
// may be booked. Tickets of bookings that are cancelled or expire return to the wave.
struct ReleaseWave {
  Instant start;
  Instant end;
  std::int64_t limit = 0;
  std::int64_t booked = 0;  // filled in by reads
  friend bool operator==(const ReleaseWave&, const ReleaseWave&) = default;
};

// Whether an event sells: closed takes no new holds until reopened; cancelled is for good (its
// bookings are cancelled too).
enum class EventStatus { on_sale, closed, cancelled };

std::string_view to_string(EventStatus status) noexcept;
std::optional<EventStatus> parse_event_status(std::string_view text) noexcept;

struct Event {
  std::int64_t id = 0;  // assigned by the repository
  std::string key;      // [A-Za-z0-9._-]{1,64}
  std::string name;     // 1-200 characters of UTF-8
  std::string type;     // "Concert"
  std::optional<std::string> promoter;
  Instant date;
  // The UTC offset (minutes east) the organiser gave `date` in: the event's local time, used
  // to show its instants as people there read them. Instants themselves are UTC.
  std::int32_t utc_offset_minutes = 0;
  Location location;
  std::vector<Tier> tiers;
  std::vector<ReleaseWave> waves;
  EventStatus status = EventStatus::on_sale;  // filled in by reads; on_sale when created
  // +1 per change of the definition (status included, stock not); 1 when created. Filled in by
  // reads.
  std::int64_t version = 1;
  friend bool operator==(const Event&, const Event&) = default;
};

// A change to one tier, matched by key: a field left empty keeps its value. A key the event
// does not have yet adds a tier (category, currency, price, capacity and the sale window are
// then required). Tiers are never removed or renamed.
struct TierPatch {
  std::string key;
  std::optional<std::string> category;
  std::optional<std::string> currency;
  // The unit price in major units as decimal text ("12.5"), read with the tier's currency (this
  // patch's when it sets one). A new price applies to new holds; bookings keep theirs.
  std::optional<std::string> price;
  // The tier's total tickets; available moves by the difference. At least held + sold.
  std::optional<std::int64_t> capacity;
  std::optional<Instant> start;
  std::optional<Instant> end;
  // Set to a value: the new limit; set to nullopt: no limit any more.
  std::optional<std::optional<std::int64_t>> max_per_order;
  std::optional<std::optional<std::int64_t>> max_per_user;
};

// A change to an event's definition (an RFC 7396 merge patch in the HTTP API): fields left
// empty keep their value.
struct EventPatch {
  std::optional<std::string> key;  // if given, must be the event's own: keys never change
  std::optional<std::string> name;
  std::optional<std::string> type;
  std::optional<std::optional<std::string>> promoter;  // set to nullopt: removed
  std::optional<Instant> date;
  std::optional<std::int32_t> utc_offset_minutes;
  std::optional<std::string> venue;
  std::optional<std::string> address;
  std::vector<TierPatch> tiers;
  // When set, replaces the waves. A wave keeps its booked count when its start is unchanged;
  // a wave that is gone no longer counts anything.
  std::optional<std::vector<ReleaseWave>> waves;
};

// `current` with `patch` applied; id, status, version and stock are current's (a new tier's
// stock is its capacity, all available). validation_failed with details naming every bad field
// as the patch names it ("eventGroups[0].capacity", "eventSchedules[1]"): a changed key, what
// validate_new_event refuses, a capacity below the tickets held and sold in current's stock, a
// currency change of a tier with tickets held or sold, a wave limit below its booked count.
// Storage checks the stock again when it stores the change.
result<Event> apply_patch(const Event& current, const EventPatch& patch);

// True when `key` matches [A-Za-z0-9._-]{1,64}; used for event and tier keys.
bool is_valid_key(std::string_view key) noexcept;

// Checks a new event: key format, name, at least one tier, unique tier keys, known currency,
// price >= 0, capacity >= 0, end > start, limits >= 1, waves valid and not overlapping.
// validation_failed with `details` naming every bad field ("eventGroups[1].endDate").
result<void> validate_new_event(const Event& event);

// The wave open at `now`, if any.
const ReleaseWave* open_wave(const Event& event, Instant now) noexcept;

}  // namespace booking
