// The PostgreSQL repository's queries: reading events and bookings, the batch's row locks, and
// the rules' primitives (`Transaction`) on one connection inside its transaction.
#pragma once

#include <algorithm>
#include <booking/storage.hpp>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/batch_stock.hpp"
#include "core/group_commit.hpp"
#include "postgres/pg.hpp"

namespace booking::detail::pg {

std::int64_t ms(Instant t);
Instant instant(std::int64_t v);
bool exists(Connection& c, const char* sql, const std::string& key);

constexpr const char* kEventColumns =
    "SELECT id, key, name, type, promoter, date_ms, venue, address, utc_offset_min, status, "
    "version FROM events ";

// Bookings without their lines; read_bookings reads the rows and fetches their lines.
constexpr const char* kBookingListColumns =
    "SELECT id, event_key, user_id, status, total_minor, currency, created_ms, expires_ms, "
    "payment_method, payment_ref, idempotency_key, client FROM bookings ";
std::vector<Booking> read_bookings(Connection& c, const Result& rows);

result<std::int64_t> insert_event(Connection& c, const Event& e);
// A new tier with all its tickets available; a new wave.
void insert_tier_row(Connection& c, std::int64_t event_id, std::int64_t position, const Tier& t);
void insert_wave_row(Connection& c, std::int64_t event_id, const ReleaseWave& w);
// StorageTransaction::replace_waves.
void replace_waves(Connection& c, std::int64_t event_id, const std::vector<ReleaseWave>& waves);
// Events of `rows` (in kEventColumns order) with their tiers and waves: three queries for a
// whole page, not three per event.
std::vector<Event> load_events(Connection& c, const Result& rows);
std::optional<StoredBooking> load_booking(Connection& c, std::string_view id, bool for_update);
std::optional<EventState> event_state(const Result& r);
std::optional<IdempotencyRecord> find_idempotency_record(Connection& c, std::string_view key);
// A batch's tiers, their rows locked (or, with TierLock::last, read) by lock_rows.
using LockedTier = BatchTier;
using LockedTiers = BatchTiers;

// When a batch locks its tiers' rows: `now`, before judging (the counters read are the truth
// until COMMIT); or `last`, with the conditional UPDATE that ends the batch, so that the row is
// locked only for that UPDATE, the feed's counter and the COMMIT (the counters are then read
// without a lock, and a batch that finds less stock than it judged is judged again with `now`).
enum class TierLock { now, last };

// What lock_rows took: the tiers' counters, and the state of the events it locked shared (so
// that the holds need not read and lock them again).
struct LockedRows {
  LockedTiers tiers;
  std::vector<EventState> events;
};

// Locks, in the one global order, every row the holds of `batch` may change (see the .cpp), and
// answers the tiers' counters (none when a lone hold needs no lock first). With TierLock::last
// the tiers are read, not locked.
LockedRows lock_rows(Connection& c, std::span<QueuedHold* const> batch,
                     TierLock how = TierLock::now);
// Whether every hold of `batch` (two or more) is plain: no idempotency key, wave, or per-user
// or per-client limit (nothing but stock to judge): the batches TierLock::last serves.
bool plain_holds(std::span<QueuedHold* const> batch);

// A PostgreSQL array literal ({"a","b"} or {1,2}) for a `$1::text[]` or `$1::bigint[]`
// parameter: each item quoted, with " and \ escaped.
template <class Items>
std::string array_literal(const Items& items) {
  std::string out = "{";
  for (const auto& item : items) {
    if (out.size() > 1) out += ',';
    out += '"';
    for (char ch : item) {
      if (ch == '"' || ch == '\\') out += '\\';
      out += ch;
    }
    out += '"';
  }
  return out + "}";
}

// A PostgreSQL array literal whose nullopt items are NULL.
std::string nullable_array_literal(const std::vector<std::optional<std::string>>& items);

// The change feed's reads (EventRepository::read_changes and the rest).
std::vector<Change> read_changes(Connection& c, std::int64_t after, std::size_t limit);
FeedBounds feed_bounds(Connection& c);
std::size_t prune_changes(Connection& c, std::int64_t cutoff_ms, std::size_t max);
// EventRepository::lease_webhook and save_webhook, on the database server's clock.
std::optional<WebhookState> lease_webhook(Connection& c, std::string_view url,
                                          std::string_view owner, std::int64_t ttl_ms);
bool save_webhook(Connection& c, std::string_view url, std::string_view owner,
                  const WebhookState& state);
std::vector<std::pair<std::string, WebhookState>> list_webhooks(Connection& c);
// false for an unknown URL.
bool resume_webhook(Connection& c, std::string_view url);

// The rules' primitives on one connection inside its transaction. Reads that a rule's decision
// rests on lock their rows (FOR UPDATE; per-user counts an advisory lock), since other
// instances write the same rows at the same time.
class Transaction final : public StorageTransaction {
 public:
  explicit Transaction(Connection& c) : c_(c) {}

  // Batch mode, for a group commit's holds: the stock of the tiers the batch has locked is
  // judged in memory (the rows stay locked until COMMIT, so the counters read under the lock
  // are the truth), and the batch's bookings and counters are written at its end by
  // flush_batch in a few statements, instead of an UPDATE and two INSERTs per hold. A read that
  // must see the batch's earlier holds (a user's or a client's tickets, an idempotency key)
  // writes the bookings first.
  void begin_batch(LockedTiers tiers) {
    tiers_ = std::move(tiers);
    batching_ = true;
  }
  // Ends batch mode: writes the queued bookings and the tiers' counters. With TierLock::last,
  // false when a tier no longer has the stock the batch took (nothing is then changed in it).
  bool flush_batch(TierLock how = TierLock::now);

  std::optional<std::int64_t> find_event_id(std::string_view key) override {
    Result r = c_.exec("SELECT id FROM events WHERE key = $1", {param(key)});
    if (r.rows() == 0) return std::nullopt;
    return r.int64(0, 0);
  }
  std::optional<IdempotencyRecord> find_idempotency(std::string_view key) override {
    flush_bookings();
    return find_idempotency_record(c_, key);
  }
  std::optional<EventState> load_event_state(std::int64_t event_id) override {
    // Locked shared once per transaction (a batch has many holds of one event): a status change
    // waits for this batch, and the state cannot change before it commits.
    if (auto it = event_states_.find(event_id); it != event_states_.end()) return it->second;
    auto state = event_state(c_.exec(
        "SELECT id, status, version FROM events WHERE id = $1 FOR SHARE", {param(event_id)}));
    if (state) event_states_.emplace(event_id, *state);
    return state;
  }
  std::optional<EventState> lock_event(std::string_view key) override {
    return event_state(
        c_.exec("SELECT id, status, version FROM events WHERE key = $1 FOR UPDATE", {param(key)}));
  }
  void set_event_state(const EventState& s) override {
    c_.exec("UPDATE events SET status = $1, version = $2 WHERE id = $3",
            {param(to_string(s.status)), param(s.version), param(s.id)});
    event_states_.erase(s.id);
  }
  void forget_event_locks() { event_states_.clear(); }
  // Events this transaction has locked shared already (lock_rows): load_event_state answers
  // them without a query.
  void remember_shared_events(const std::vector<EventState>& events) {
    for (const EventState& e : events) event_states_.emplace(e.id, e);
  }
  // Changes are numbered at the end of the transaction (flush_changes, its last statement):
  // the counter row stays locked until COMMIT, so numbers follow commit order.
  void append_change(const ChangeRecord& r) override { append_change(r, nullptr); }
  // An event change with its `definition` known (else read when the changes are numbered).
  void append_change(const ChangeRecord& r, const Event* definition);
  std::size_t pending_changes() const { return pending_.size(); }
  void drop_changes_from(std::size_t n) { pending_.resize(std::min(n, pending_.size())); }
  void flush_changes();
  void update_event_fields(std::int64_t event_id, const Event& e) override {
    c_.exec(
        "UPDATE events SET name = $1, type = $2, promoter = $3, date_ms = $4, venue = $5, "
        "address = $6, utc_offset_min = $7 WHERE id = $8",
        {param(e.name), param(e.type), param(e.promoter), param(ms(e.date)),
         param(e.location.venue), param(e.location.address),
         param(std::int64_t{e.utc_offset_minutes}), param(event_id)});
  }
  bool tier_exists(std::string_view key) override {
    return exists(c_, "SELECT 1 FROM tiers WHERE key = $1", std::string(key));
  }
  void update_tier(std::int64_t event_id, const Tier& t, std::int64_t capacity_delta) override {
    c_.exec(
        "UPDATE tiers SET category = $1, price_minor = $2, currency = $3, start_ms = $4, "
        "end_ms = $5, max_per_order = $6, max_per_user = $7, capacity = capacity + $8, "
        "available = available + $8 WHERE key = $9 AND event_id = $10",
        {param(t.category), param(t.price.minor), param(t.price.currency), param(ms(t.start)),
         param(ms(t.end)), param(t.max_per_order), param(t.max_per_user), param(capacity_delta),
         param(t.key), param(event_id)});
  }
  void insert_tier(std::int64_t event_id, const Tier& t) override {
    const std::int64_t position =
        c_.exec("SELECT COALESCE(MAX(position) + 1, 0) FROM tiers WHERE event_id = $1",
                {param(event_id)})
            .int64(0, 0);
    insert_tier_row(c_, event_id, position, t);
  }
  void replace_waves(std::int64_t event_id, const std::vector<ReleaseWave>& waves) override {
    pg::replace_waves(c_, event_id, waves);
  }
  std::vector<std::string> live_booking_ids(std::int64_t event_id, std::size_t max) override {
    Result r = c_.exec(
        "SELECT id FROM bookings WHERE event_id = $1 AND status IN ('HELD', 'CONFIRMED') "
        "LIMIT $2",
        {param(event_id), param(static_cast<std::int64_t>(max))});
    std::vector<std::string> ids;
    for (int i = 0; i < r.rows(); ++i) ids.push_back(r.text(i, 0));
    return ids;
  }
  std::int64_t count_client_held(std::string_view client) override {
    flush_bookings();
    // Like count_user_tickets: serialized per client across instances until commit.
    c_.exec("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", {param(client)});
    return c_
        .exec(
            "SELECT COALESCE(SUM(l.qty), 0) FROM bookings b JOIN booking_lines l "
            "ON l.booking_id = b.id WHERE b.client = $1 AND b.status = 'HELD'",
            {param(client)})
        .int64(0, 0);
  }
  void forget_idempotency(std::string_view key) override {
    flush_bookings();
    c_.exec(
        "UPDATE bookings SET idempotency_key = NULL, request_hash = NULL "
        "WHERE idempotency_key = $1",
        {param(key)});
  }
  std::int64_t count_user_tickets(std::string_view user, std::int64_t event_id,
                                  std::string_view tier) override {
    flush_bookings();
    // A SUM cannot lock rows that do not exist yet: serialize this user's holds on this event
    // across instances until commit (re-entrant, and already taken by a batch's lock_rows).
    c_.exec("SELECT pg_advisory_xact_lock(hashtextextended($1, $2))",
            {param(user), param(event_id)});
    return c_
        .exec(
            "SELECT COALESCE(SUM(l.qty), 0) FROM bookings b JOIN booking_lines l "
            "ON l.booking_id = b.id WHERE b.user_id = $1 AND b.event_id = $2 AND l.tier_key = $3 "
            "AND b.status IN ('HELD', 'CONFIRMED')",
            {param(user), param(event_id), param(tier)})
        .int64(0, 0);
  }
  std::optional<TierCounters> load_tier(std::int64_t event_id, std::string_view tier) override {
    if (LockedTier* t = locked(event_id, tier)) return t->counters;
    Result r = c_.exec(
        "SELECT capacity, available, held, sold FROM tiers WHERE key = $1 AND event_id = $2 "
        "FOR UPDATE",
        {param(tier), param(event_id)});
    if (r.rows() == 0) return std::nullopt;
    return TierCounters{r.int64(0, 0), r.int64(0, 1), r.int64(0, 2), r.int64(0, 3)};
  }
  std::optional<WaveCounters> load_wave(std::int64_t event_id, Instant start) override {
    Result r = c_.exec(
        "SELECT id, lim, booked FROM waves WHERE event_id = $1 AND start_ms = $2 FOR UPDATE",
        {param(event_id), param(ms(start))});
    if (r.rows() == 0) return std::nullopt;
    return WaveCounters{r.int64(0, 0), r.int64(0, 1), r.int64(0, 2)};
  }
  bool take_stock(std::int64_t event_id, std::string_view tier, std::int64_t qty) override {
    if (LockedTier* t = locked(event_id, tier)) return t->take(qty);
    // PostgreSQL re-checks the condition on the latest row version after waiting for a
    // concurrent writer, so two instances can never both take the last ticket.
    return c_.exec(
                 "UPDATE tiers SET available = available - $1, held = held + $1 "
                 "WHERE key = $2 AND event_id = $3 AND available >= $1",
                 {param(qty), param(tier), param(event_id)})
               .affected() > 0;
  }
  void add_stock(std::string_view tier, const StockDelta& d) override {
    if (LockedTier* t = batching_ ? tiers_.find(tier) : nullptr) {
      t->add(d);
      return;
    }
    c_.exec(
        "UPDATE tiers SET available = available + $1, held = held + $2, sold = sold + $3 "
        "WHERE key = $4",
        {param(d.available), param(d.held), param(d.sold), param(tier)});
  }
  void add_wave_booked(std::int64_t wave_id, std::int64_t delta) override {
    c_.exec("UPDATE waves SET booked = booked + $1 WHERE id = $2", {param(delta), param(wave_id)});
  }
  void insert_booking(const Booking& b, std::int64_t event_id, std::optional<std::int64_t> wave_id,
                      const std::string& fingerprint) override {
    if (batching_) {
      new_bookings_.push_back(NewBooking{b, event_id, wave_id, fingerprint});
      return;
    }
    c_.exec(
        "INSERT INTO bookings (id, event_id, event_key, user_id, status, total_minor, currency, "
        "created_ms, expires_ms, wave_id, idempotency_key, request_hash, client) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        {param(b.id), param(event_id), param(b.event_key), param(b.user_id),
         param(to_string(b.status)), param(b.total.minor), param(b.total.currency),
         param(ms(b.created_at)), param(ms(b.expires_at)), param(wave_id), param(b.idempotency_key),
         b.idempotency_key ? param(fingerprint) : std::nullopt, param(b.client)});
    std::vector<std::string> tiers;
    std::vector<std::string> qtys;
    std::vector<std::string> prices;
    for (const BookingLine& l : b.lines) {
      tiers.push_back(l.tier_key);
      qtys.push_back(std::to_string(l.qty));
      prices.push_back(std::to_string(l.unit_price_minor));
    }
    c_.exec(
        "INSERT INTO booking_lines (booking_id, position, tier_key, qty, unit_price_minor) "
        "SELECT $1, n - 1, t, q, p FROM unnest($2::text[], $3::bigint[], $4::bigint[]) "
        "WITH ORDINALITY AS l(t, q, p, n)",
        {param(b.id), param(array_literal(tiers)), param(array_literal(qtys)),
         param(array_literal(prices))});
  }
  std::optional<StoredBooking> load_booking(std::string_view id) override {
    flush_bookings();
    return pg::load_booking(c_, id, true);
  }
  void update_booking(const Booking& b) override {
    c_.exec("UPDATE bookings SET status = $1, payment_method = $2, payment_ref = $3 WHERE id = $4",
            {param(to_string(b.status)), param(b.payment_method), param(b.payment_reference),
             param(b.id)});
  }

 private:
  LockedTier* locked(std::int64_t event_id, std::string_view tier) {
    return batching_ ? tiers_.find(event_id, tier) : nullptr;
  }
  // Writes the batch's bookings so far, with their lines, in two statements.
  void flush_bookings();

  struct NewBooking {
    Booking booking;
    std::int64_t event_id;
    std::optional<std::int64_t> wave_id;
    std::string fingerprint;
  };
  bool batching_ = false;
  LockedTiers tiers_;
  std::vector<NewBooking> new_bookings_;
  struct PendingChange {
    ChangeType type;
    std::int64_t at_ms;
    std::string event_key;
    std::optional<std::string> booking_id;
    std::string actor;
    std::optional<std::string> data;  // an event change's definition, when known
  };
  Connection& c_;
  std::unordered_map<std::int64_t, EventState> event_states_;  // locked by this transaction
  std::vector<PendingChange> pending_;                         // appended, not yet numbered
};

}  // namespace booking::detail::pg
