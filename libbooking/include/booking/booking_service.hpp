// The engine: creates events, holds tickets, confirms, cancels and expires bookings.
#pragma once

#include <atomic>
#include <booking/booking.hpp>
#include <booking/error.hpp>
#include <booking/event.hpp>
#include <booking/event_repository.hpp>
#include <booking/feed.hpp>
#include <booking/lock_provider.hpp>
#include <booking/time.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace booking {

namespace detail {
class LockRounds;
}  // namespace detail

// How a hold waits for its tier locks. Waiters are served first come, first served, so the
// deadline only passes when the lock backend is unreachable, a holder is stuck, or more holds
// queue for one tier than the deadline can serve (real overload): never because a waiter lost
// its turn. The locks are held only while a hold is handed to storage (microseconds), so the
// lease is short and never needs renewing.
struct LockWaitPolicy {
  std::chrono::milliseconds wait{2000};       // total, from the first try (lock_timeout after)
  std::chrono::milliseconds lease_ttl{2000};  // a crashed holder blocks its tiers at most this
};

struct ServiceOptions {
  std::chrono::milliseconds hold_ttl{std::chrono::minutes(10)};
  LockWaitPolicy lock_wait;
  std::size_t expire_batch = 10000;  // bookings per expiry transaction
  // An idempotency key answers repeats of its request for this long; then it is forgotten
  // (expire_due purges expired keys).
  std::chrono::milliseconds idempotency_ttl{std::chrono::hours(24)};
  // The change feed keeps changes this long (expire_due prunes older ones).
  std::chrono::milliseconds feed_retention{std::chrono::hours(24 * 30)};
};

struct HoldLineRequest {
  std::string tier_key;
  std::int64_t qty = 0;
};

struct HoldRequest {
  std::string event_key;
  std::vector<HoldLineRequest> lines;
  std::optional<std::string> user_id;
  std::optional<std::string> idempotency_key;
  // Whose key it is: keys of different scopes never meet (bookingd: the token's name, or the
  // client address of an anonymous caller). Empty: one scope for everything.
  std::string idempotency_scope;
  // An anonymous caller's identity (bookingd: its address). Without user_id it stands for the
  // user of a tier's maxPerUser, and with max_held_by_client it limits the tickets this client
  // may hold at once (rate_limited beyond).
  std::optional<std::string> client;
  std::optional<std::int64_t> max_held_by_client;
};

// A filter for list_bookings; `cursor` is a page's `next`.
struct BookingListRequest {
  std::optional<std::string> event_key;
  std::optional<std::string> status;  // HELD, CONFIRMED, CANCELLED, EXPIRED
  std::optional<std::string> user_id;
  std::int64_t limit = 20;  // 1-100
  std::optional<std::string> cursor;
};

struct BookingPage {
  std::vector<Booking> bookings;    // newest first
  std::optional<std::string> next;  // the cursor of the next page; none on the last
};

struct EventCancellation {
  Event event;                         // as stored after (status cancelled)
  std::size_t bookings_cancelled = 0;  // by this call
};

struct SearchPage {
  std::vector<Event> events;
  bool more = false;  // events after this page match too
};

struct Payment {
  std::string method = "card";
  std::string reference;
};

// Observes the service (metrics). Called from the calling thread; must be thread-safe.
struct ServiceObserver {
  std::function<void(std::chrono::nanoseconds)> on_lock_wait;
};

// Thread-safe. The repository, lock provider and clock are borrowed and must outlive it.
// Holds expire only when something expires them: run an ExpirySweeper
// (booking/expiry_sweeper.hpp) next to the service, or call expire_due() periodically.
class BookingService {
 public:
  BookingService(EventRepository& repository, LockProvider& locks, const Clock& clock,
                 ServiceOptions options = {});
  ~BookingService();
  BookingService(const BookingService&) = delete;
  BookingService& operator=(const BookingService&) = delete;

  // The clock holds expire by (a frontend shows a countdown to expiresAt by it).
  const Clock& clock() const { return clock_; }

  // Validates and stores a new event. validation_failed, duplicate_key.
  result<Event> create_event(const Event& event);
  // Validates and stores many events in one transaction: all or none.
  result<std::size_t> create_events(std::span<const Event> events);
  result<Event> get_event(std::string_view key);
  // validation_failed for a limit outside 1..1000 or a negative offset.
  result<std::vector<Event>> search_events(const SearchQuery& query);
  // search_events, and whether more events match after this page (so that a frontend can
  // offer the next one: offset + limit).
  result<SearchPage> search_page(const SearchQuery& query);

  // Holds tickets until now + hold_ttl. Checks, in order: request shape (validation_failed),
  // event and tiers (not_found), one currency (validation_failed), sale windows
  // (sale_not_open), maxPerOrder and maxPerUser (per_user_limit), the open wave
  // (wave_limit_reached), stock (insufficient_stock). All lines or none. With an idempotency
  // key, a repeat of the same request returns the first booking; another request under the same
  // key gives idempotency_conflict. lock_timeout when the tier locks cannot be had.
  result<Booking> hold(const HoldRequest& request);
  // The same hold, answered through `done` instead of on return: a server's request thread
  // need not sleep until the hold commits. `done` is called exactly once: before this returns
  // when the answer needs no commit (a bad request, an unknown event or tier, a sale window
  // that is closed, an idempotent replay, ...), otherwise later on the service's committing
  // thread, which leads the rounds of these holds and answers them (or on a caller of the
  // synchronous hold that leads the same tiers' round). `done` must therefore be quick and must
  // not wait for another hold or throw; it may start new work. This never throws (a failure is
  // `done`'s internal error).
  // The service's destructor waits until every `done` has run.
  // `planned`, if given, runs on the calling thread before the hold is queued, with the booking
  // the hold stores if storage accepts it: a server can render that answer there, so that the
  // committing thread only writes it (`done` still says whether it was accepted: compare). It
  // is not called for the answers that need no commit, nor when the hold is planned again on
  // the committing thread. If it throws, nothing is queued and `done` gets an internal error.
  using HoldDone = std::function<void(result<Booking>)>;
  using HoldPlanned = std::function<void(const Booking&)>;
  void hold(const HoldRequest& request, HoldDone done, HoldPlanned planned = {});

  result<Booking> get_booking(std::string_view id);
  // HELD -> CONFIRMED. hold_expired past the deadline (even before the sweeper ran),
  // invalid_state from any other status.
  result<Booking> confirm(std::string_view id, const Payment& payment);
  // HELD or CONFIRMED -> CANCELLED, returning the stock. invalid_state otherwise; forbidden
  // for a CONFIRMED booking with CancelScope::held_only (an anonymous caller).
  result<Booking> cancel(std::string_view id, CancelScope scope = CancelScope::any);
  // Changes event `key`'s definition (booking/event.hpp, EventPatch): +1 version. A capacity
  // change moves available by the difference in the same transaction; prices, windows and
  // limits apply to holds from then on (bookings keep their prices). validation_failed with
  // details per field (nothing stored), not_found, invalid_state for a cancelled event, and
  // with `if_version` precondition_failed when the event changed since. Without it, a change
  // made meanwhile by someone else is kept: the patch is applied again on top of it.
  result<Event> update_event(std::string_view key, const EventPatch& patch,
                             std::optional<std::int64_t> if_version = {});
  // Stops the sale of an event: no new holds (sale_closed); its bookings can still be confirmed
  // and cancelled. reopen_event undoes it. With `if_version`, a changed event gives
  // precondition_failed. Both answer the event as stored (status, version).
  result<Event> close_event(std::string_view key, std::optional<std::int64_t> if_version = {});
  result<Event> reopen_event(std::string_view key, std::optional<std::int64_t> if_version = {});
  // Cancels an event for good: first its status (one transaction; no hold commits after it),
  // then every HELD and CONFIRMED booking, in batches of expire_batch that each commit on their
  // own, their stock returned (a refund is the payment system's job). Calling it again after an
  // interruption finishes the job.
  result<EventCancellation> cancel_event(std::string_view key,
                                         std::optional<std::int64_t> if_version = {});

  // Bookings newest first, cursor-paginated. validation_failed for a bad limit, status or
  // cursor.
  result<BookingPage> list_bookings(const BookingListRequest& request);
  // Per tier: stock, cancelled and expired tickets, confirmed revenue. not_found.
  result<EventReport> event_report(std::string_view key);

  // Hands every booking of event `key` to `sink`, oldest first, as storage reads them (see
  // EventRepository::export_bookings): bookingd streams the CSV export this way. not_found for
  // an unknown event. Returns how many bookings `sink` took.
  result<std::size_t> export_bookings(std::string_view key, const BookingSink& sink);

  // The change feed (booking/feed.hpp): up to `limit` (1-1000) changes numbered after
  // `after`, oldest first. feed_expired (details.floor) when changes after `after` were pruned.
  result<std::vector<Change>> changes(std::int64_t after, std::int64_t limit = 100);
  // The oldest seq still readable after (floor) and the newest change's seq (last): a reader
  // that only wants what happens from now on starts after `last`.
  result<FeedBounds> feed_bounds();
  // changes(), waiting up to `wait` for at least one: answers as soon as one exists, or empty
  // at the deadline or when `*stop` becomes true. Changes made through this service wake the
  // waiters at once; those of other processes are seen within 25 ms.
  result<std::vector<Change>> wait_changes(std::int64_t after, std::int64_t limit,
                                           std::chrono::milliseconds wait,
                                           const std::atomic<bool>* stop = nullptr);

  // Expires every HELD booking past its deadline, returning stock exactly once, forgets
  // idempotency keys older than idempotency_ttl and prunes changes older than feed_retention.
  // Safe to call from several threads or processes at once. Returns how many holds this call
  // expired.
  result<std::size_t> expire_due();
  // The number of HELD bookings (for metrics).
  result<std::int64_t> count_active_holds() { return repo_.count_active_holds(); }

  const ServiceOptions& options() const noexcept { return options_; }
  void set_observer(ServiceObserver observer) { observer_ = std::move(observer); }

 private:
  struct HoldJob;
  struct PlannedHold;
  // The stages of a hold, shared by both forms: shape and idempotent replay, the plan from the
  // event's definition, and the answer once storage judged it.
  std::optional<result<Booking>> begin_hold(HoldJob& job);
  result<PlannedHold> plan_hold(const HoldJob& job);
  result<Booking> settle_hold(const HoldJob& job, result<Booking> stored,
                              std::chrono::nanoseconds lock_wait);
  result<Booking> replay(const IdempotencyRecord& rec, const std::string& fingerprint);
  void hold_attempt(std::shared_ptr<HoldJob> job, int attempt);
  result<Lease> lock_tiers(const std::vector<std::string>& tier_keys,
                           std::chrono::steady_clock::time_point deadline);
  // The event's definition (tiers, prices, windows, limits, waves), cached: storage checks the
  // version a hold was planned from inside the hold's transaction (precondition_failed when it
  // changed, e.g. by another process), so a cached definition never outlives a change. Stock
  // is always read from storage.
  result<std::shared_ptr<const Event>> definition(const std::string& key);
  void forget_definition(const std::string& key);
  result<Event> set_status(std::string_view key, EventStatus status,
                           std::optional<std::int64_t> if_version);

  // Passes `r` through, waking the change feed's waiters when it is a success.
  template <class R>
  R feed_changed(R&& r) {
    if (r) wake_feed_waiters();
    return std::forward<R>(r);
  }
  void wake_feed_waiters();

  EventRepository& repo_;
  LockProvider& locks_;
  const Clock& clock_;
  ServiceOptions options_;
  ServiceObserver observer_;
  std::unique_ptr<detail::LockRounds> rounds_;  // holds submitted under their tiers' lock
  std::shared_mutex definitions_mu_;            // guards definitions_
  std::unordered_map<std::string, std::shared_ptr<const Event>> definitions_;
  std::mutex feed_mu_;  // guards feed_generation_
  std::condition_variable feed_cv_;
  std::uint64_t feed_generation_ = 0;  // +1 per change made through this service
};

// The lock key of a tier ("tier:gold-Con10124").
std::string tier_lock_key(std::string_view tier_key);

// The demo event (Blink 182 Goes to Indonesia, key Con10124, tiers gold/sil/pla), dated
// relative to `now` so its sale is open.
Event demo_event(Instant now);

}  // namespace booking
