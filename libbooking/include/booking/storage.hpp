// The storage primitives under EventRepository, and the booking rules that run over them.
//
// The rules of a booking are written once, in the functions at the end of this header: the
// order of a hold's checks (idempotency key, per-user limit, release wave, stock), every
// business error and its details, expiry of a hold found past its deadline when it is touched,
// and the state machine of confirm and cancel. A storage offers only the primitives of
// StorageTransaction, each a few lines of SQL or a map operation, inside a write transaction
// it owns. The library's memory, SQLite and PostgreSQL repositories are built this way, and so
// can yours: derive from RuleBasedRepository, implement the reads and the primitives, and the
// rules come with it.
//
// Contract of the rules towards storage: a rule leaves behind only what is to be kept. A
// refused hold leaves storage as it found it (its checks read before anything is written, and
// stock it took before finding a line short is given back in the same transaction); a confirm
// or cancel of a hold found past its deadline writes that hold's expiry and answers
// hold_expired. So a storage commits whatever a rule answers, and rolls back only when a
// primitive throws.
#pragma once

#include <booking/event_repository.hpp>
#include <booking/feed.hpp>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace booking {

// A tier's ticket counts: capacity == available + held + sold.
struct TierCounters {
  std::int64_t capacity = 0;
  std::int64_t available = 0;
  std::int64_t held = 0;
  std::int64_t sold = 0;
};

// A release wave's limit and the tickets booked while it was open.
struct WaveCounters {
  std::int64_t id = 0;
  std::int64_t limit = 0;
  std::int64_t booked = 0;
};

// Additions to a tier's buckets (each may be negative); their sum is always 0.
struct StockDelta {
  std::int64_t available = 0;
  std::int64_t held = 0;
  std::int64_t sold = 0;
};

// What a hold and a status change need of an event.
struct EventState {
  std::int64_t id = 0;
  EventStatus status = EventStatus::on_sale;
  std::int64_t version = 1;
};

// A booking as storage keeps it: with its event's id and the wave it counted against.
struct StoredBooking {
  Booking booking;
  std::int64_t event_id = 0;
  std::optional<std::int64_t> wave_id;
};

// A change for the feed (booking/feed.hpp), appended by a rule with the change it records.
struct ChangeRecord {
  ChangeType type = ChangeType::booking_held;
  Instant at{};
  std::string_view event_key;
  const Booking* booking = nullptr;  // booking.*: the booking after the change
  std::string_view actor;
};

// The primitives a storage offers inside one of its write transactions. Reads see the
// transaction's own writes. A storage that other processes write at the same time makes each
// `load_*` lock what it returns until the transaction ends, so that what a rule judged is
// still true when it writes. Errors are exceptions (the storage's own) and fail the whole
// transaction; the methods are called from one thread at a time.
class StorageTransaction {
 public:
  virtual ~StorageTransaction() = default;

  // The id of event `key`, if it is stored.
  virtual std::optional<std::int64_t> find_event_id(std::string_view key) = 0;
  // The status and version of event `event_id`. Storage shared by several processes locks the
  // event shared until the transaction ends, so that a concurrent status change waits for this
  // transaction (and a hold never commits into an event cancelled meanwhile).
  virtual std::optional<EventState> load_event_state(std::int64_t event_id) = 0;
  // Event `key`'s state, locked for update until the transaction ends.
  virtual std::optional<EventState> lock_event(std::string_view key) = 0;
  // Stores event `event_id`'s status and version.
  virtual void set_event_state(const EventState& state) = 0;
  // Stores event `event_id`'s own fields (name, type, promoter, date, offset, location) from
  // `event`.
  virtual void update_event_fields(std::int64_t event_id, const Event& event) = 0;
  // Whether any event has a tier with key `key`.
  virtual bool tier_exists(std::string_view key) = 0;
  // Stores tier `tier` of event `event_id`'s definition (category, price, window, limits) and
  // adds `capacity_delta` to both its capacity and its available tickets.
  virtual void update_tier(std::int64_t event_id, const Tier& tier,
                           std::int64_t capacity_delta) = 0;
  // Adds tier `tier` (a free key) to event `event_id`, after its other tiers, all available.
  virtual void insert_tier(std::int64_t event_id, const Tier& tier) = 0;
  // Replaces event `event_id`'s waves with `waves`: a wave starting where a stored one starts
  // keeps its id and booked count; the bookings of a wave that is gone count against none.
  virtual void replace_waves(std::int64_t event_id, const std::vector<ReleaseWave>& waves) = 0;
  // Up to `max` ids of event `event_id`'s HELD and CONFIRMED bookings.
  virtual std::vector<std::string> live_booking_ids(std::int64_t event_id, std::size_t max) = 0;
  // What idempotency key `key` was first used for, if anything.
  virtual std::optional<IdempotencyRecord> find_idempotency(std::string_view key) = 0;
  // Tickets of `tier` in `user`'s HELD and CONFIRMED bookings of event `event_id`. Storage
  // shared by several processes serializes the holds of one (user, event) until commit.
  virtual std::int64_t count_user_tickets(std::string_view user, std::int64_t event_id,
                                          std::string_view tier) = 0;
  // Tickets in `client`'s HELD bookings (Booking::client), of every event. Storage shared by
  // several processes serializes the holds of one client until commit.
  virtual std::int64_t count_client_held(std::string_view client) = 0;
  // Frees idempotency key `key` (it expired): its booking keeps everything else.
  virtual void forget_idempotency(std::string_view key) = 0;
  // The counters of tier `tier` of event `event_id`; nullopt when the event has no such tier.
  virtual std::optional<TierCounters> load_tier(std::int64_t event_id, std::string_view tier) = 0;
  // The wave of event `event_id` that starts at `start`, if any.
  virtual std::optional<WaveCounters> load_wave(std::int64_t event_id, Instant start) = 0;

  // Moves `qty` tickets of tier `tier` of event `event_id` from available to held if at least
  // `qty` are available, in one step that no concurrent writer can split; false, changing
  // nothing, when fewer are available or the event has no such tier.
  virtual bool take_stock(std::int64_t event_id, std::string_view tier, std::int64_t qty) = 0;
  virtual void add_stock(std::string_view tier, const StockDelta& delta) = 0;
  virtual void add_wave_booked(std::int64_t wave_id, std::int64_t delta) = 0;
  // Stores a new HELD booking of event `event_id`, counted against wave `wave_id` if any;
  // `request_fingerprint` goes with its idempotency key, if it has one.
  virtual void insert_booking(const Booking& booking, std::int64_t event_id,
                              std::optional<std::int64_t> wave_id,
                              const std::string& request_fingerprint) = 0;
  // Booking `id`, if stored.
  virtual std::optional<StoredBooking> load_booking(std::string_view id) = 0;
  // Stores `booking`'s status and payment details (nothing else of a booking ever changes).
  virtual void update_booking(const Booking& booking) = 0;
  // Appends `record` to the change feed, numbered after every change committed before this
  // transaction commits. An event.* record carries the event's definition as this transaction
  // leaves it; a booking.* record may be stored by reference (booking_change_data rebuilds it).
  virtual void append_change(const ChangeRecord& record) = 0;
};

// The rules. Each runs inside one write transaction of `tx`'s storage; see the contract above.

// Judges and stores a hold planned by BookingService: duplicate_key when the plan's
// idempotency key is taken and has not expired (the caller then replays), rate_limited when
// the client would hold more than plan.max_held_by_client, per_user_limit, wave_limit_reached,
// insufficient_stock (details: what each requested tier has available), not_found for an
// event or tier that is not stored. Returns the booking as stored.
result<Booking> apply_hold(StorageTransaction& tx, const HoldPlan& plan);

// HELD and not past its deadline at `now` -> CONFIRMED with the payment details. A HELD booking
// past its deadline is expired (its stock returned) and hold_expired answered. CONFIRMED with
// the same reference answers the booking unchanged (a payment provider's retry); anything else
// is invalid_state. not_found for an unknown id.
result<Booking> apply_confirm(StorageTransaction& tx, std::string_view id, std::string_view method,
                              std::string_view reference, Instant now);

// HELD (before its deadline) or CONFIRMED -> CANCELLED, the stock returned. A HELD booking past
// its deadline, or an EXPIRED one, answers hold_expired (the former is expired first);
// CANCELLED gives invalid_state. not_found for an unknown id.
// With CancelScope::held_only, CONFIRMED gives forbidden.
result<Booking> apply_cancel(StorageTransaction& tx, std::string_view id, Instant now,
                             CancelScope scope = CancelScope::any);

// Moves event `key` to `status` (see EventRepository::set_event_status).
result<EventState> apply_event_status(StorageTransaction& tx, std::string_view key,
                                      EventStatus status, std::optional<std::int64_t> if_version,
                                      Instant now);

// Stores an event's new definition (see EventRepository::update_event).
result<EventState> apply_event_update(StorageTransaction& tx, const EventUpdate& update);

// Cancels up to `max` live bookings of cancelled event `key` (see
// EventRepository::cancel_event_bookings).
result<CancelledBatch> apply_cancel_event_bookings(StorageTransaction& tx, std::string_view key,
                                                   std::size_t max, Instant now);

// An EventRepository whose holds, confirms and cancels are the rules above, run by the storage
// in one write transaction each (`write`). A storage that group-commits overrides submit_hold
// and calls apply_hold for each queued hold inside its batch.
class RuleBasedRepository : public EventRepository {
 public:
  result<Booking> insert_hold(const HoldPlan& plan) override;
  result<Booking> confirm(std::string_view id, std::string_view method, std::string_view reference,
                          Instant now) final;
  result<Booking> cancel(std::string_view id, Instant now,
                         CancelScope scope = CancelScope::any) final;
  result<Event> set_event_status(std::string_view key, EventStatus status,
                                 std::optional<std::int64_t> if_version, Instant now) final;
  result<CancelledBatch> cancel_event_bookings(std::string_view key, std::size_t max,
                                               Instant now) final;
  result<Event> update_event(const EventUpdate& update) final;

 protected:
  using Work = std::function<result<Booking>(StorageTransaction&)>;
  // Runs `work` in one write transaction and commits what it wrote, whatever it answers (see
  // the rules' contract). When a primitive throws, rolls back and answers the storage's error
  // (lock_timeout for contention or an unreachable server, internal otherwise). Thread-safe.
  virtual result<Booking> write(const Work& work) = 0;

 private:
  // write() for a rule that answers something other than a booking.
  template <class T, class F>
  result<T> write_as(F&& rule) {
    std::optional<T> out;
    BOOKING_TRY(write([&](StorageTransaction& tx) -> result<Booking> {
      auto r = rule(tx);
      if (!r) return r.error();
      out = std::move(r).value();
      return Booking{};
    }));
    return std::move(*out);
  }
};

}  // namespace booking
