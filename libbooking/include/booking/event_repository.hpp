// Storage of events, tiers, stock and bookings.
//
// Every method that changes state does so atomically: either all of it is stored or none.
// The stock take is conditional in storage itself, so the repository refuses an oversell even
// when a caller's lock lease has expired. Implementations may be remote (calls are not cheap)
// and must be thread-safe.
#pragma once

#include <booking/access.hpp>
#include <booking/booking.hpp>
#include <booking/error.hpp>
#include <booking/event.hpp>
#include <booking/feed.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace booking {

// Everything a hold needs stored, decided by BookingService before the call.
struct HoldPlan {
  Booking booking;                  // id, event, user, lines with prices, total, times
  std::int64_t event_id = 0;        // the event's id (from get_event); 0: looked up by key
  std::string request_fingerprint;  // stored with the idempotency key, if any
  // Per line (same order as booking.lines): the tier's maxPerUser, checked in storage across
  // the user's HELD and CONFIRMED bookings of that tier when booking.user_id is set.
  std::vector<std::optional<std::int64_t>> max_per_user;
  // The release wave open at created_at, if any, identified by its start.
  std::optional<Instant> wave_start;
  // The version of the event definition the plan was made from (prices, windows, limits); a
  // hold finding another version stored is refused with precondition_failed (the service then
  // plans again). 0: not checked.
  std::int64_t event_version = 0;
  // With booking.client: at most this many tickets in that client's HELD bookings, this hold's
  // included (rate_limited beyond).
  std::optional<std::int64_t> max_held_by_client;
  // An idempotency key first used at or before this instant has expired: it is forgotten and
  // the hold treated as new.
  Instant idempotency_cutoff{};  // Who makes the hold, recorded with its change (the planning thread's current_actor()).
  std::string actor;
};

// What one batch of an event's cancellation did.
struct CancelledBatch {
  std::size_t cancelled = 0;
  std::size_t expired = 0;  // HELD bookings found past their deadline
};

// A change of an event's definition, computed by apply_patch from the event as read.
struct EventUpdate {
  Event before;  // as read; storage refuses the update (precondition_failed) unless its
                 // version is still the stored one
  Event after;   // the new definition: fields, tiers (capacity), waves
  // Per tier key: its field in the request, to name in details ("eventGroups[2]").
  std::map<std::string, std::string> tier_fields;
  Instant at{};  // when it is made (the change feed's record)
};

// Who may cancel what: anyone holding a booking's id may cancel it while it is HELD (the id is
// the customer's capability); a paid booking only with the organiser's authority.
enum class CancelScope { any, held_only };

// What an idempotency key was first used for.
struct IdempotencyRecord {
  std::string booking_id;
  std::string request_fingerprint;
  Instant created_at{};  // when the key was first used (its booking's created_at)
};

// Bookings newest first (created_at, then id, descending), filtered.
struct BookingQuery {
  std::optional<std::string> event_key;
  std::optional<BookingStatus> status;
  std::optional<std::string> user_id;
  std::int64_t limit = 20;
  // Only bookings strictly older than this (created_at, id): where the previous page ended.
  std::optional<std::pair<Instant, std::string>> before;
};

// Per tier of an event: its stock now, the tickets of its cancelled and expired bookings, and
// the money of its confirmed ones (minor units).
struct TierReport {
  std::string key;
  std::int64_t capacity = 0;
  std::int64_t available = 0;
  std::int64_t held = 0;
  std::int64_t sold = 0;
  std::int64_t cancelled = 0;
  std::int64_t expired = 0;
  std::int64_t revenue_minor = 0;
  std::string currency;
};

struct EventReport {
  std::string event_key;
  std::vector<TierReport> tiers;
};

// Tickets and money (minor units) of an event's bookings in one status, per tier.
struct BookingTotal {
  std::string tier_key;
  BookingStatus status = BookingStatus::held;
  std::int64_t tickets = 0;
  std::int64_t money_minor = 0;
  std::int64_t lines = 0;  // booking lines (an export's rows)
};

// Receives an export's bookings one at a time; false stops the export.
using BookingSink = std::function<bool(const Booking&)>;

struct SearchQuery {
  std::string name;  // case-insensitive substring; empty lists all
  std::int64_t limit = 20;
  std::int64_t offset = 0;
};

// A hold handed to storage (EventRepository::submit_hold) whose outcome is not known yet.
class PendingHold {
 public:
  virtual ~PendingHold() = default;
  // Blocks until the hold is stored or refused and returns what insert_hold would have.
  // Call it once. Destroying a PendingHold without calling wait() waits anyway.
  virtual result<Booking> wait() = 0;
};

class EventRepository {
 public:
  virtual ~EventRepository() = default;

  // Stores a validated event with stock == capacity and returns it with its id; the change
  // feed's event.created is made at `now` (the system clock's when not given).
  // duplicate_key when the event key or any tier key is taken.
  virtual result<Event> create_event(const Event& event, Instant now = {}) = 0;

  // Stores many validated events in one transaction: all or none. duplicate_key names the
  // first event whose key (or a tier key) is taken. Returns how many were stored.
  virtual result<std::size_t> create_events(std::span<const Event> events, Instant now = {}) = 0;

  // One event with current stock per tier and booked counts per wave. not_found.
  virtual result<Event> get_event(std::string_view key) = 0;

  // Events whose name contains query.name, case-insensitively, ordered by id.
  virtual result<std::vector<Event>> search_events(const SearchQuery& query) = 0;

  // Atomically, in this order: per-user limits (per_user_limit), the wave limit
  // (wave_limit_reached), stock of every line (insufficient_stock, details: available per
  // tier), then stores the booking as HELD. duplicate_key when the booking's idempotency key is
  // already stored (the caller then looks it up). Nothing changes on failure.
  virtual result<Booking> insert_hold(const HoldPlan& plan) = 0;

  // insert_hold in two steps, for group commit. When this returns, the hold's place in storage's
  // order is fixed: holds submitted one after the other (e.g. under a tier lock) are judged in
  // that order. wait() then gives the outcome, once the hold's transaction has committed. The
  // default runs insert_hold at once; the SQLite repository queues the hold, and one waiting
  // caller commits everything queued in one transaction (each hold in its own SAVEPOINT, so a
  // refused hold changes nothing).
  virtual std::unique_ptr<PendingHold> submit_hold(HoldPlan plan);

  virtual result<Booking> get_booking(std::string_view id) = 0;
  virtual result<std::optional<IdempotencyRecord>> find_idempotency_key(std::string_view key) = 0;

  // HELD and not past its deadline at `now` -> CONFIRMED with payment details; held stock
  // becomes sold. A HELD booking past its deadline is expired (stock returned) and
  // hold_expired returned; any other status gives invalid_state.
  virtual result<Booking> confirm(std::string_view id, std::string_view method,
                                  std::string_view reference, Instant now) = 0;

  // HELD (before its deadline) or CONFIRMED -> CANCELLED; its stock becomes available again.
  // A HELD booking past its deadline is expired instead and hold_expired returned;
  // CANCELLED or EXPIRED gives invalid_state. With CancelScope::held_only a CONFIRMED booking
  // gives forbidden and stays as it is.
  virtual result<Booking> cancel(std::string_view id, Instant now,
                                 CancelScope scope = CancelScope::any) = 0;

  // Moves up to `max` HELD bookings with expires_at <= now to EXPIRED and returns their stock,
  // each exactly once even when called concurrently. Returns how many expired.
  virtual result<std::size_t> expire_due(Instant now, std::size_t max) = 0;

  // Moves event `key` to `status`: on_sale and closed into each other, either into cancelled,
  // which is final (invalid_state out of it). Each change is +1 version. With `if_version`, a
  // stored version that differs gives precondition_failed. Returns the event as stored.
  virtual result<Event> set_event_status(std::string_view key, EventStatus status,
                                         std::optional<std::int64_t> if_version,
                                         Instant now) = 0;
  // Stores update.after as event update.before.key's definition, +1 version, in one
  // transaction: precondition_failed when the stored version is not update.before.version,
  // invalid_state for a cancelled event, validation_failed (details per field) when a tier's
  // new capacity is below its tickets held and sold, a tier whose tickets are held or sold
  // changes currency, a new tier's key is taken, or a wave's limit is below its booked count.
  // A capacity change moves available by the difference. Returns the event as stored.
  virtual result<Event> update_event(const EventUpdate& update) = 0;
  // For a cancelled event (invalid_state otherwise): up to `max` of its HELD and CONFIRMED
  // bookings become CANCELLED (a HELD one past its deadline EXPIRED), their stock returned, in
  // one transaction. Says how many of each; call until both are 0.
  virtual result<CancelledBatch> cancel_event_bookings(std::string_view key, std::size_t max,
                                                       Instant now) = 0;

  // Up to query.limit bookings matching `query`, newest first.
  virtual result<std::vector<Booking>> list_bookings(const BookingQuery& query) = 0;
  // Per tier and status, the tickets and money of event `key`'s bookings (none: no bookings;
  // an unknown event has none either).
  virtual result<std::vector<BookingTotal>> booking_totals(std::string_view key) = 0;

  // Every booking of event `key`, oldest first (created_at, then id), handed to `sink` as
  // storage reads them, so that a large event's bookings are never all in memory at once (the
  // memory repository copies the event's bookings first). Stops early when `sink` answers
  // false. Returns how many bookings `sink` received; an unknown event has none.
  virtual result<std::size_t> export_bookings(std::string_view key, const BookingSink& sink) = 0;

  // The change feed (booking/feed.hpp): up to `limit` changes numbered after `after`, in order
  // (none before a change that is not committed yet); the pruned floor and the newest change;
  // and pruning: up to `max` of the oldest changes made before `cutoff` are forgotten (the
  // floor rises to the highest pruned seq). Creating events records event.created, and
  // expire_due booking.expired, like the rules record the rest.
  virtual result<std::vector<Change>> read_changes(std::int64_t after, std::size_t limit) = 0;
  virtual result<FeedBounds> feed_bounds() = 0;
  // Pruning never passes a webhook's delivered position (see lease_webhook).
  virtual result<std::size_t> prune_changes(Instant cutoff, std::size_t max) = 0;

  // Webhook delivery (bookingd --webhook): one row per URL with its delivered position and a
  // lease, so that of several instances exactly one delivers at a time. lease_webhook takes or
  // renews `url`'s lease for `owner` until `ttl` from now on the database's clock, when it is
  // free, expired or already `owner`'s, and answers the URL's state; nullopt while another
  // owner holds it. A URL seen for the first time starts at the newest change (it receives
  // what happens from then on). save_webhook stores `state` only while `owner` still holds the
  // lease (false otherwise: another instance took over).
  virtual result<std::optional<WebhookState>> lease_webhook(std::string_view url,
                                                            std::string_view owner,
                                                            std::chrono::milliseconds ttl) = 0;
  virtual result<bool> save_webhook(std::string_view url, std::string_view owner,
                                    const WebhookState& state) = 0;
  // Every webhook URL's state, by URL; and resuming a paused one (not_found for an unknown URL):
  // its delivering instance picks the change up at its next lease renewal.
  virtual result<std::vector<std::pair<std::string, WebhookState>>> list_webhooks() = 0;
  virtual result<void> resume_webhook(std::string_view url) = 0;

  // Forgets up to `max` idempotency keys first used at or before `cutoff` (they expired);
  // returns how many.
  virtual result<std::size_t> purge_idempotency_keys(Instant cutoff, std::size_t max) = 0;

  // The number of HELD bookings (for metrics).
  virtual result<std::int64_t> count_active_holds() = 0;

  // API tokens (booking/access.hpp). insert_token: duplicate_key when the name is taken, by a
  // revoked token too. list_tokens: every token, revoked ones included, by name. revoke_token:
  // not_found unless an unrevoked token has the name.
  virtual result<void> insert_token(const ApiToken& token) = 0;
  virtual result<std::vector<ApiToken>> list_tokens() = 0;
  virtual result<void> revoke_token(std::string_view name, Instant at) = 0;
};

enum class Durability {
  normal,  // synchronous=NORMAL in WAL: survives a process crash, may lose the last commits on
           // power loss
  full,    // synchronous=FULL: every acknowledged commit survives power loss
};

struct SqliteOptions {
  Durability durability = Durability::normal;
  std::chrono::milliseconds busy_timeout{5000};
  int reader_connections = 4;
};

// An in-memory repository: for embedding and tests. Thread-safe (one mutex).
std::unique_ptr<EventRepository> make_memory_repository();

// An SQLite repository on `path` (created if missing; WAL; schema migrated on open).
// Several processes may open the same file. Thread-safe: one writer connection behind a mutex,
// readers on their own connections. Holds are group-committed (see submit_hold). At
// Durability::normal the repository owns one background thread that checkpoints the WAL.
result<std::unique_ptr<EventRepository>> make_sqlite_repository(const std::string& path,
                                                                SqliteOptions options = {});

struct PostgresOptions {
  int pool_size = 8;                                // connections per repository, opened on demand
  std::chrono::milliseconds connect_timeout{3000};  // whole seconds (rounded up), at least 2
  // The longest a statement waits for a row lock another transaction holds (e.g. a paused
  // instance's); then lock_timeout. The server also ends sessions idle in a transaction for 60 s.
  std::chrono::milliseconds lock_wait{5000};
};

// A PostgreSQL repository on `url` (postgresql://user[:password]@host[:port]/dbname[?...], any
// libpq URI). Several processes on several hosts may share the database: the schema is
// migrated on open under an advisory lock, so instances starting together apply it once.
// Durability is the server's (synchronous_commit). An unreachable server gives lock_timeout
// (HTTP 503, CLI exit 5); connections are reopened when it returns. Thread-safe: a pool of
// `pool_size` connections. The database user needs CREATE on the database (the schema uses the
// trusted pg_trgm extension for search).
result<std::unique_ptr<EventRepository>> make_postgres_repository(const std::string& url,
                                                                  PostgresOptions options = {});

struct RepositoryOptions {
  SqliteOptions sqlite;
  PostgresOptions postgres;
};

// True for a `--db` value that names PostgreSQL (postgresql:// or postgres://).
bool is_postgres_url(std::string_view db) noexcept;

// A `--db` value fit for logs: a URL's password replaced by "***"; a path unchanged.
std::string printable_db(std::string_view db);

// The repository a `--db` value names: a PostgreSQL URL, else an SQLite file path. Both
// frontends open storage through this one function.
result<std::unique_ptr<EventRepository>> open_repository(const std::string& db,
                                                         RepositoryOptions options = {});

}  // namespace booking
