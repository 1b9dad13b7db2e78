// The PostgreSQL EventRepository: one database shared by several bookingd instances on several
// hosts. The booking rules are core's (booking/storage.hpp); this file runs them in PostgreSQL
// transactions over the primitives of `Transaction` below.
//
// Every state change is one READ COMMITTED transaction on a pooled connection. The stock take
// is a conditional UPDATE (`... AND available >= $1`): PostgreSQL re-checks the condition on the
// latest row version after waiting for a concurrent writer, so two instances can never both
// take the last ticket, whatever their locks did. CHECK constraints enforce the conservation
// invariant in the database. Confirm and cancel lock the booking row (SELECT ... FOR UPDATE)
// and expiry skips rows another transaction holds (FOR UPDATE SKIP LOCKED), so each due hold
// expires exactly once however many sweepers run. Per-user limits take a transaction-scoped
// advisory lock on (user, event), since a SUM cannot lock rows that do not exist yet.
//
// Holds are group-committed (core/group_commit.hpp): an instance judges everything its callers
// queued in one transaction, each hold in a SAVEPOINT, so a hot tier's row is locked and the
// WAL flushed once per batch rather than once per hold, and no lock of the caller's is held
// across the database round trips. Batches of several instances (and confirm, cancel) lock
// rows in one global order: per-user advisory locks, then tiers by key, then waves by id.
#include <algorithm>
#include <array>
#include <booking/storage.hpp>
#include <set>
#include <unordered_map>
#include <utility>

#include "core/group_commit.hpp"
#include "core/repository_rules.hpp"
#include "postgres/pg.hpp"
#include "postgres/schema.hpp"

namespace booking {

namespace {

using detail::QueuedHold;
using detail::pg::Connection;
using detail::pg::param;
using detail::pg::PgError;
using detail::pg::Pool;
using detail::pg::Result;

std::int64_t ms(Instant t) { return t.time_since_epoch().count(); }
Instant instant(std::int64_t v) { return Instant(std::chrono::milliseconds(v)); }

bool exists(Connection& c, const char* sql, const std::string& key) {
  return c.exec(sql, {param(key)}).rows() > 0;
}

result<std::int64_t> insert_event(Connection& c, const Event& e) {
  if (exists(c, "SELECT 1 FROM events WHERE key = $1", e.key))
    return detail::duplicate_key_error(e.key);
  for (const Tier& t : e.tiers) {
    if (exists(c, "SELECT 1 FROM tiers WHERE key = $1", t.key))
      return detail::duplicate_key_error(t.key);
  }
  Result id = c.exec(
      "INSERT INTO events (key, name, type, promoter, date_ms, venue, address, utc_offset_min) "
      "VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
      {param(e.key), param(e.name), param(e.type), param(e.promoter), param(ms(e.date)),
       param(e.location.venue), param(e.location.address),
       param(std::int64_t{e.utc_offset_minutes})});
  const std::int64_t event_id = id.int64(0, 0);
  for (std::size_t i = 0; i < e.tiers.size(); ++i) {
    const Tier& t = e.tiers[i];
    c.exec(
        "INSERT INTO tiers (key, event_id, position, category, price_minor, currency, capacity, "
        "available, held, sold, start_ms, end_ms, max_per_order, max_per_user) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $7, 0, 0, $8, $9, $10, $11)",
        {param(t.key), param(event_id), param(static_cast<std::int64_t>(i)), param(t.category),
         param(t.price.minor), param(t.price.currency), param(t.capacity), param(ms(t.start)),
         param(ms(t.end)), param(t.max_per_order), param(t.max_per_user)});
  }
  for (const ReleaseWave& w : e.waves) {
    c.exec("INSERT INTO waves (event_id, start_ms, end_ms, lim) VALUES ($1, $2, $3, $4)",
           {param(event_id), param(ms(w.start)), param(ms(w.end)), param(w.limit)});
  }
  return event_id;
}

constexpr const char* kEventColumns =
    "SELECT id, key, name, type, promoter, date_ms, venue, address, utc_offset_min, status, "
    "version FROM events ";

// Events of `rows` (in kEventColumns order) with their tiers and waves: three queries for a
// whole page, not three per event.
std::vector<Event> load_events(Connection& c, const Result& rows) {
  std::vector<Event> out;
  std::string ids = "{";
  for (int r = 0; r < rows.rows(); ++r) {
    Event e;
    e.id = rows.int64(r, 0);
    e.key = rows.text(r, 1);
    e.name = rows.text(r, 2);
    e.type = rows.text(r, 3);
    e.promoter = rows.optional_text(r, 4);
    e.date = instant(rows.int64(r, 5));
    e.location = {rows.text(r, 6), rows.text(r, 7)};
    e.utc_offset_minutes = static_cast<std::int32_t>(rows.int64(r, 8));
    e.status = parse_event_status(rows.text(r, 9)).value_or(EventStatus::on_sale);
    e.version = rows.int64(r, 10);
    if (r) ids += ',';
    ids += std::to_string(e.id);
    out.push_back(std::move(e));
  }
  ids += "}";
  if (out.empty()) return out;
  auto find = [&](std::int64_t id) -> Event& {
    for (Event& e : out) {
      if (e.id == id) return e;
    }
    throw PgError("row for an event not asked for", "XX000", "", false);
  };
  Result tiers = c.exec(
      "SELECT event_id, key, category, price_minor, currency, capacity, available, held, sold, "
      "start_ms, end_ms, max_per_order, max_per_user FROM tiers WHERE event_id = ANY($1::bigint[]) "
      "ORDER BY event_id, position",
      {param(ids)});
  for (int r = 0; r < tiers.rows(); ++r) {
    Tier t;
    t.key = tiers.text(r, 1);
    t.category = tiers.text(r, 2);
    t.price = Money{tiers.int64(r, 3), tiers.text(r, 4)};
    t.capacity = tiers.int64(r, 5);
    t.stock = TierStock{t.capacity, tiers.int64(r, 6), tiers.int64(r, 7), tiers.int64(r, 8)};
    t.start = instant(tiers.int64(r, 9));
    t.end = instant(tiers.int64(r, 10));
    t.max_per_order = tiers.optional_int64(r, 11);
    t.max_per_user = tiers.optional_int64(r, 12);
    find(tiers.int64(r, 0)).tiers.push_back(std::move(t));
  }
  Result waves = c.exec(
      "SELECT event_id, start_ms, end_ms, lim, booked FROM waves "
      "WHERE event_id = ANY($1::bigint[]) ORDER BY event_id, start_ms",
      {param(ids)});
  for (int r = 0; r < waves.rows(); ++r) {
    find(waves.int64(r, 0))
        .waves.push_back(ReleaseWave{instant(waves.int64(r, 1)), instant(waves.int64(r, 2)),
                                     waves.int64(r, 3), waves.int64(r, 4)});
  }
  return out;
}

std::optional<StoredBooking> load_booking(Connection& c, std::string_view id, bool for_update) {
  Result r =
      c.exec(for_update ? "SELECT id, event_key, user_id, status, total_minor, currency, "
                          "created_ms, expires_ms, payment_method, payment_ref, "
                          "idempotency_key, event_id, wave_id, client FROM bookings WHERE id = $1 "
                          "FOR UPDATE"
                        : "SELECT id, event_key, user_id, status, total_minor, currency, "
                          "created_ms, expires_ms, payment_method, payment_ref, "
                          "idempotency_key, event_id, wave_id, client FROM bookings WHERE id = $1",
             {param(id)});
  if (r.rows() == 0) return std::nullopt;
  StoredBooking sb;
  Booking& b = sb.booking;
  b.id = r.text(0, 0);
  b.event_key = r.text(0, 1);
  b.user_id = r.optional_text(0, 2);
  b.status = parse_booking_status(r.text(0, 3)).value_or(BookingStatus::held);
  b.total = Money{r.int64(0, 4), r.text(0, 5)};
  b.created_at = instant(r.int64(0, 6));
  b.expires_at = instant(r.int64(0, 7));
  b.payment_method = r.optional_text(0, 8);
  b.payment_reference = r.optional_text(0, 9);
  b.idempotency_key = r.optional_text(0, 10);
  sb.event_id = r.int64(0, 11);
  sb.wave_id = r.optional_int64(0, 12);
  b.client = r.optional_text(0, 13);
  Result lines = c.exec(
      "SELECT tier_key, qty, unit_price_minor FROM booking_lines WHERE booking_id = $1 "
      "ORDER BY position",
      {param(b.id)});
  for (int i = 0; i < lines.rows(); ++i) {
    b.lines.push_back(BookingLine{lines.text(i, 0), lines.int64(i, 1), lines.int64(i, 2)});
  }
  return sb;
}

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

std::optional<EventState> event_state(const Result& r) {
  if (r.rows() == 0) return std::nullopt;
  return EventState{r.int64(0, 0), parse_event_status(r.text(0, 1)).value_or(EventStatus::on_sale),
                    r.int64(0, 2)};
}

std::optional<IdempotencyRecord> find_idempotency_record(Connection& c, std::string_view key) {
  Result r = c.exec("SELECT id, request_hash, created_ms FROM bookings WHERE idempotency_key = $1",
                    {param(key)});
  if (r.rows() == 0) return std::nullopt;
  return IdempotencyRecord{r.text(0, 0), r.text(0, 1), instant(r.int64(0, 2))};
}

// Locks, in the one global order, every row the holds of `batch` may change: the per-user and
// per-client advisory locks (by hash), the tiers (by key), the waves of their events (by id). Two
// batches (or a batch and a confirm) then never wait for each other in a cycle, which PostgreSQL
// would only break after deadlock_timeout (1 s). A lone hold on one tier without waves or per-user
// limits needs none: its one UPDATE is its one lock.
void lock_rows(Connection& c, std::span<QueuedHold* const> batch) {
  std::set<std::string> tiers;
  std::vector<std::string> users;   // with events[i]: the (user, event) pairs of
  std::vector<std::string> events;  // per-user limited holds
  std::set<std::string> wave_events;
  for (const QueuedHold* h : batch) {
    const HoldPlan& plan = h->plan();
    for (const BookingLine& l : plan.booking.lines) tiers.insert(l.tier_key);
    const bool limited = std::any_of(plan.max_per_user.begin(), plan.max_per_user.end(),
                                     [](const auto& m) { return m.has_value(); });
    if (plan.booking.user_id && limited) {
      users.push_back(*plan.booking.user_id);
      events.push_back(std::to_string(plan.event_id));
    }
    if (plan.booking.client && plan.max_held_by_client) {  // count_client_held's lock
      users.push_back(*plan.booking.client);
      events.push_back("0");
    }
    if (plan.wave_start) wave_events.insert(std::to_string(plan.event_id));
  }
  if (batch.size() == 1 && tiers.size() == 1 && users.empty() && wave_events.empty()) return;
  if (!users.empty()) {
    // The subquery's ORDER BY feeds the aggregate in hash order: the locks are taken in it.
    c.exec(
        "SELECT COUNT(pg_advisory_xact_lock(h)) FROM (SELECT DISTINCT hashtextextended(u, e) AS h "
        "FROM unnest($1::text[], $2::bigint[]) AS t(u, e) ORDER BY h) s",
        {param(array_literal(users)), param(array_literal(events))});
  }
  c.exec("SELECT key FROM tiers WHERE key = ANY($1::text[]) ORDER BY key FOR UPDATE",
         {param(array_literal(tiers))});
  if (!wave_events.empty()) {
    c.exec("SELECT id FROM waves WHERE event_id = ANY($1::bigint[]) ORDER BY id FOR UPDATE",
           {param(array_literal(wave_events))});
  }
}

// The rules' primitives on one connection inside its transaction. Reads that a rule's decision
// rests on lock their rows (FOR UPDATE; per-user counts an advisory lock), since other
// instances write the same rows at the same time.
class Transaction final : public StorageTransaction {
 public:
  explicit Transaction(Connection& c) : c_(c) {}

  std::optional<std::int64_t> find_event_id(std::string_view key) override {
    Result r = c_.exec("SELECT id FROM events WHERE key = $1", {param(key)});
    if (r.rows() == 0) return std::nullopt;
    return r.int64(0, 0);
  }
  std::optional<IdempotencyRecord> find_idempotency(std::string_view key) override {
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
    c_.exec(
        "UPDATE bookings SET idempotency_key = NULL, request_hash = NULL "
        "WHERE idempotency_key = $1",
        {param(key)});
  }
  std::int64_t count_user_tickets(std::string_view user, std::int64_t event_id,
                                  std::string_view tier) override {
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
    // PostgreSQL re-checks the condition on the latest row version after waiting for a
    // concurrent writer, so two instances can never both take the last ticket.
    return c_.exec(
                 "UPDATE tiers SET available = available - $1, held = held + $1 "
                 "WHERE key = $2 AND event_id = $3 AND available >= $1",
                 {param(qty), param(tier), param(event_id)})
               .affected() > 0;
  }
  void add_stock(std::string_view tier, const StockDelta& d) override {
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
    return booking::load_booking(c_, id, true);
  }
  void update_booking(const Booking& b) override {
    c_.exec("UPDATE bookings SET status = $1, payment_method = $2, payment_ref = $3 WHERE id = $4",
            {param(to_string(b.status)), param(b.payment_method), param(b.payment_reference),
             param(b.id)});
  }

 private:
  Connection& c_;
  std::unordered_map<std::int64_t, EventState> event_states_;  // locked by this transaction
};

// Turns libpq failures into errors at the boundary where they arise.
template <class F>
auto guarded(F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const PgError& e) {
    if (e.unavailable()) {
      return make_error(errc::lock_timeout, std::string("storage unavailable: ") + e.what());
    }
    if (e.retryable() || e.lock_wait_exceeded()) {
      return make_error(errc::lock_timeout, std::string("storage contention: ") + e.what());
    }
    return make_error(errc::internal, std::string("storage error: ") + e.what());
  } catch (const std::exception& e) {
    return make_error(errc::internal, std::string("storage error: ") + e.what());
  }
}

class PostgresRepository final : public RuleBasedRepository {
 public:
  PostgresRepository(const std::string& url, PostgresOptions options)
      : pool_(
            url, options.pool_size,
            {std::chrono::ceil<std::chrono::seconds>(options.connect_timeout), options.lock_wait}) {
    auto c = pool_.acquire();
    detail::pg::migrate(*c);
  }

  result<Event> create_event(const Event& event) override {
    return in_transaction(
        [&](Connection& c) -> result<Event> {
          BOOKING_TRY(auto id, insert_event(c, event));
          Event stored = event;
          stored.id = id;
          for (Tier& t : stored.tiers) t.stock = TierStock{t.capacity, t.capacity, 0, 0};
          for (ReleaseWave& w : stored.waves) w.booked = 0;
          stored.status = EventStatus::on_sale;
          stored.version = 1;
          return stored;
        },
        &event);
  }

  result<std::size_t> create_events(std::span<const Event> events) override {
    return in_transaction([&](Connection& c) -> result<std::size_t> {
      for (const Event& e : events) {
        BOOKING_TRY(insert_event(c, e));
      }
      return events.size();
    });
  }

  result<Event> get_event(std::string_view key) override {
    return read([&](Connection& c) -> result<Event> {
      static const std::string sql = std::string(kEventColumns) + "WHERE key = $1";
      auto events = load_events(c, c.exec(sql.c_str(), {param(key)}));
      if (events.empty()) return detail::not_found_error("event", key);
      return std::move(events.front());
    });
  }

  result<std::vector<Booking>> list_bookings(const BookingQuery& q) override {
    return read([&](Connection& c) -> result<std::vector<Booking>> {
      // Statements are prepared once per text (cached by its address): one text per
      // combination of filters, made once; the placeholders are numbered in order of use.
      static const std::array<std::string, 16> shapes = [] {
        std::array<std::string, 16> out;
        for (std::size_t m = 0; m < out.size(); ++m) {
          std::string sql =
              "SELECT id, event_key, user_id, status, total_minor, currency, created_ms, "
              "expires_ms, payment_method, payment_ref, idempotency_key, client FROM bookings "
              "WHERE true";
          int n = 0;
          auto next = [&n] {
            std::string placeholder = "$";
            placeholder += std::to_string(++n);
            return placeholder;
          };
          if (m & 1) sql += " AND event_id = (SELECT id FROM events WHERE key = " + next() + ")";
          if (m & 2) sql += " AND status = " + next();
          if (m & 4) sql += " AND user_id = " + next();
          if (m & 8) {
            const std::string at = next();
            sql += " AND (created_ms, id) < (" + at + ", " + next() + ")";
          }
          out[m] = sql + " ORDER BY created_ms DESC, id DESC LIMIT " + next();
        }
        return out;
      }();
      std::vector<detail::pg::Param> params;
      if (q.event_key) params.push_back(param(*q.event_key));
      if (q.status) params.push_back(param(to_string(*q.status)));
      if (q.user_id) params.push_back(param(*q.user_id));
      if (q.before) {
        params.push_back(param(ms(q.before->first)));
        params.push_back(param(q.before->second));
      }
      params.push_back(param(q.limit));
      const std::size_t shape =
          (q.event_key ? 1 : 0) | (q.status ? 2 : 0) | (q.user_id ? 4 : 0) | (q.before ? 8 : 0);
      Result r = c.exec(shapes[shape].c_str(), params);
      std::vector<Booking> out;
      std::map<std::string, std::size_t> at;
      std::vector<std::string> ids;
      for (int i = 0; i < r.rows(); ++i) {
        Booking b;
        b.id = r.text(i, 0);
        b.event_key = r.text(i, 1);
        b.user_id = r.optional_text(i, 2);
        b.status = parse_booking_status(r.text(i, 3)).value_or(BookingStatus::held);
        b.total = Money{r.int64(i, 4), r.text(i, 5)};
        b.created_at = instant(r.int64(i, 6));
        b.expires_at = instant(r.int64(i, 7));
        b.payment_method = r.optional_text(i, 8);
        b.payment_reference = r.optional_text(i, 9);
        b.idempotency_key = r.optional_text(i, 10);
        b.client = r.optional_text(i, 11);
        at[b.id] = out.size();
        ids.push_back(b.id);
        out.push_back(std::move(b));
      }
      if (ids.empty()) return out;
      Result lines = c.exec(
          "SELECT booking_id, tier_key, qty, unit_price_minor FROM booking_lines "
          "WHERE booking_id = ANY($1::text[]) ORDER BY booking_id, position",
          {param(array_literal(ids))});
      for (int i = 0; i < lines.rows(); ++i) {
        out[at.at(lines.text(i, 0))].lines.push_back(
            BookingLine{lines.text(i, 1), lines.int64(i, 2), lines.int64(i, 3)});
      }
      return out;
    });
  }

  result<std::vector<BookingTotal>> booking_totals(std::string_view key) override {
    return read([&](Connection& c) -> result<std::vector<BookingTotal>> {
      Result rows = c.exec(
          "SELECT l.tier_key, b.status, SUM(l.qty), SUM(l.qty * l.unit_price_minor) "
          "FROM bookings b JOIN booking_lines l ON l.booking_id = b.id "
          "WHERE b.event_id = (SELECT id FROM events WHERE key = $1) GROUP BY 1, 2",
          {param(key)});
      std::vector<BookingTotal> out;
      for (int i = 0; i < rows.rows(); ++i) {
        out.push_back(BookingTotal{
            rows.text(i, 0), parse_booking_status(rows.text(i, 1)).value_or(BookingStatus::held),
            rows.int64(i, 2), rows.int64(i, 3)});
      }
      return out;
    });
  }

  result<std::vector<Event>> search_events(const SearchQuery& q) override {
    return read([&](Connection& c) -> result<std::vector<Event>> {
      if (q.name.empty()) {
        static const std::string sql =
            std::string(kEventColumns) + "ORDER BY id LIMIT $1 OFFSET $2";
        return load_events(c, c.exec(sql.c_str(), {param(q.limit), param(q.offset)}));
      }
      // ILIKE with %, _ and \ escaped: a case-insensitive substring, served by the trigram
      // index for three characters or more.
      std::string pattern = "%";
      for (char ch : q.name) {
        if (ch == '%' || ch == '_' || ch == '\\') pattern += '\\';
        pattern += ch;
      }
      pattern += '%';
      static const std::string sql =
          std::string(kEventColumns) + "WHERE name ILIKE $1 ORDER BY id LIMIT $2 OFFSET $3";
      return load_events(c, c.exec(sql.c_str(), {param(pattern), param(q.limit), param(q.offset)}));
    });
  }

  result<Booking> insert_hold(const HoldPlan& plan) override { return submit_hold(plan)->wait(); }

  std::unique_ptr<PendingHold> submit_hold(HoldPlan plan) override {
    return holds_.submit(std::move(plan));
  }

  result<Booking> get_booking(std::string_view id) override {
    return read([&](Connection& c) -> result<Booking> {
      auto b = load_booking(c, id, false);
      if (!b) return detail::not_found_error("booking", id);
      return std::move(b->booking);
    });
  }

  result<std::optional<IdempotencyRecord>> find_idempotency_key(std::string_view key) override {
    return read([&](Connection& c) -> result<std::optional<IdempotencyRecord>> {
      return find_idempotency_record(c, key);
    });
  }

  result<std::size_t> purge_idempotency_keys(Instant cutoff, std::size_t max) override {
    return in_transaction([&](Connection& c) -> result<std::size_t> {
      Result r = c.exec(
          "UPDATE bookings SET idempotency_key = NULL, request_hash = NULL WHERE id IN ("
          "SELECT id FROM bookings WHERE idempotency_key IS NOT NULL AND created_ms <= $1 "
          "LIMIT $2 FOR UPDATE SKIP LOCKED)",
          {param(ms(cutoff)), param(static_cast<std::int64_t>(max))});
      return static_cast<std::size_t>(r.affected());
    });
  }

  result<std::size_t> expire_due(Instant now, std::size_t max) override {
    // One statement: rows another sweeper (or a confirm) holds are skipped, not waited for,
    // and each expired booking returns its stock once, aggregated per tier and per wave.
    return in_transaction([&](Connection& c) -> result<std::size_t> {
      Result r = c.exec(
          "WITH due AS ("
          "  SELECT id FROM bookings WHERE status = 'HELD' AND expires_ms <= $1 "
          "  ORDER BY expires_ms LIMIT $2 FOR UPDATE SKIP LOCKED),"
          " gone AS ("
          "  UPDATE bookings b SET status = 'EXPIRED' FROM due WHERE b.id = due.id "
          "  RETURNING b.id, b.wave_id),"
          " per_tier AS ("
          "  SELECT l.tier_key AS k, SUM(l.qty) AS q FROM gone JOIN booking_lines l "
          "  ON l.booking_id = gone.id GROUP BY l.tier_key),"
          " tiers_done AS ("
          "  UPDATE tiers SET held = held - per_tier.q, available = available + per_tier.q "
          "  FROM per_tier WHERE tiers.key = per_tier.k RETURNING 1),"
          " per_wave AS ("
          "  SELECT gone.wave_id AS w, SUM(l.qty) AS q FROM gone JOIN booking_lines l "
          "  ON l.booking_id = gone.id WHERE gone.wave_id IS NOT NULL GROUP BY gone.wave_id),"
          " waves_done AS ("
          "  UPDATE waves SET booked = booked - per_wave.q FROM per_wave "
          "  WHERE waves.id = per_wave.w RETURNING 1)"
          " SELECT (SELECT COUNT(*) FROM gone), (SELECT COUNT(*) FROM tiers_done),"
          "        (SELECT COUNT(*) FROM waves_done)",
          {param(ms(now)), param(static_cast<std::int64_t>(max))});
      return static_cast<std::size_t>(r.int64(0, 0));
    });
  }

  result<std::int64_t> count_active_holds() override {
    return read([&](Connection& c) -> result<std::int64_t> {
      return c.exec("SELECT COUNT(*) FROM bookings WHERE status = 'HELD'").int64(0, 0);
    });
  }

  result<void> insert_token(const ApiToken& t) override {
    return in_transaction([&](Connection& c) -> result<void> {
      Result r = c.exec(
          "INSERT INTO api_tokens (name, role, hash, created_ms) VALUES ($1, $2, $3, $4) "
          "ON CONFLICT (name) DO NOTHING",
          {param(t.name), param(to_string(t.role)), param(t.hash), param(ms(t.created_at))});
      if (r.affected() == 0) return detail::duplicate_key_error(t.name);
      return boost::outcome_v2::success();
    });
  }

  result<std::vector<ApiToken>> list_tokens() override {
    return read([&](Connection& c) -> result<std::vector<ApiToken>> {
      Result r =
          c.exec("SELECT name, role, hash, created_ms, revoked_ms FROM api_tokens ORDER BY name");
      std::vector<ApiToken> out;
      for (int i = 0; i < r.rows(); ++i) {
        ApiToken t;
        t.name = r.text(i, 0);
        t.role = parse_role(r.text(i, 1)).value_or(Role::sales);
        t.hash = r.text(i, 2);
        t.created_at = Instant(std::chrono::milliseconds(r.int64(i, 3)));
        if (auto revoked = r.optional_int64(i, 4)) {
          t.revoked_at = Instant(std::chrono::milliseconds(*revoked));
        }
        out.push_back(std::move(t));
      }
      return out;
    });
  }

  result<void> revoke_token(std::string_view name, Instant at) override {
    return in_transaction([&](Connection& c) -> result<void> {
      Result r =
          c.exec("UPDATE api_tokens SET revoked_ms = $1 WHERE name = $2 AND revoked_ms IS NULL",
                 {param(ms(at)), param(name)});
      if (r.affected() == 0) return detail::not_found_error("token", name);
      return boost::outcome_v2::success();
    });
  }

 private:
  // Runs `f` in one transaction: committed when it returns a value, rolled back when it returns
  // an error or throws. A serialization failure or deadlock runs it again; so does a connection
  // found broken before COMMIT was sent (the server rolled that transaction back). A connection
  // lost during COMMIT leaves the outcome unknown: that is reported, never retried.
  // `created` names the event of create_event, for a duplicate key raced in by another instance.
  template <class F>
  auto in_transaction(F&& f, const Event* created = nullptr)
      -> decltype(f(std::declval<Connection&>())) {
    constexpr int kAttempts = 4;
    for (int attempt = 1;; ++attempt) {
      try {
        auto c = pool_.acquire();
        bool committing = false;
        try {
          c->exec_simple("BEGIN");
          auto r = f(*c);
          if (!r) {
            c->exec_simple("ROLLBACK");
            return r;
          }
          committing = true;
          c->exec_simple("COMMIT");
          return r;
        } catch (const PgError& e) {
          if (!c->broken()) {
            try {
              c->exec_simple("ROLLBACK");
            } catch (const PgError&) {  // the connection is dropped by the pool
            }
          }
          if (e.sqlstate() == "23505") {  // unique_violation: raced in by another instance
            if (e.constraint() == "bookings_idempotency") {
              return make_error(errc::duplicate_key, "idempotency key already used");
            }
            if (created) return detail::duplicate_key_error(created->key);
            return make_error(errc::duplicate_key, std::string("already exists: ") + e.what());
          }
          // A broken connection usually means the server restarted: its idle siblings are
          // stale too.
          if (e.broken()) pool_.drop_idle();
          const bool again = e.retryable() || (e.broken() && !committing);
          if (!again || attempt == kAttempts) throw;
        }
      } catch (...) {
        return guarded([]() -> decltype(f(std::declval<Connection&>())) { throw; });
      }
    }
  }

  // Runs the read-only `f` on a pooled connection; once more on a fresh one if the connection
  // was found broken (reads are safe to repeat; the pool's other idle connections are dropped).
  template <class F>
  auto read(F&& f) -> decltype(f(std::declval<Connection&>())) {
    return guarded([&]() -> decltype(f(std::declval<Connection&>())) {
      for (int attempt = 1;; ++attempt) {
        try {
          auto c = pool_.acquire();
          return f(*c);
        } catch (const PgError& e) {
          if (!e.broken() || attempt == 2) throw;
          pool_.drop_idle();
        }
      }
    });
  }

  // One transaction for `work`, committed whatever it answers (the rules' contract).
  result<Booking> write(const Work& work) override {
    struct Answer {
      result<Booking> answer;
    };
    auto r = in_transaction([&](Connection& c) -> result<Answer> {
      Transaction primitives(c);
      return Answer{work(primitives)};
    });
    if (!r) return r.error();
    return std::move(r.value().answer);
  }

  // Judges `batch` in order in one transaction, each hold in a SAVEPOINT so that a refused one
  // changes nothing, and sets every outcome once the transaction's fate is known.
  void commit_batch(std::span<QueuedHold* const> batch) {
    const bool alone = batch.size() == 1;
    std::vector<std::optional<result<Booking>>> outcomes(batch.size());
    auto committed = in_transaction([&](Connection& c) -> result<void> {
      lock_rows(c, batch);
      Transaction primitives(c);
      for (std::size_t i = 0; i < batch.size(); ++i) {
        // A refused hold leaves nothing behind; the savepoint undoes a hold refused by the
        // unique index on idempotency keys (raced in by another instance). Alone,
        // in_transaction says so for the whole transaction.
        if (!alone) c.exec_simple("SAVEPOINT hold");
        try {
          outcomes[i] = apply_hold(primitives, batch[i]->plan());
        } catch (const PgError& e) {
          if (alone || e.sqlstate() != "23505" || e.constraint() != "bookings_idempotency") throw;
          c.exec_simple("ROLLBACK TO SAVEPOINT hold");
          primitives.forget_event_locks();  // the rollback released locks taken after it
          outcomes[i] = make_error(errc::duplicate_key, "idempotency key already used");
        }
        if (!alone) c.exec_simple("RELEASE SAVEPOINT hold");
      }
      return boost::outcome_v2::success();
    });
    for (std::size_t i = 0; i < batch.size(); ++i) {
      batch[i]->set_outcome(committed ? std::move(*outcomes[i]) : committed.error());
    }
  }

  Pool pool_;
  // After pool_, which its commits use. The most holds one transaction judges.
  detail::GroupCommit holds_{[this](std::span<QueuedHold* const> b) { commit_batch(b); }, 256};
};

}  // namespace

result<std::unique_ptr<EventRepository>> make_postgres_repository(const std::string& url,
                                                                  PostgresOptions options) {
  return guarded([&]() -> result<std::unique_ptr<EventRepository>> {
    return std::unique_ptr<EventRepository>(std::make_unique<PostgresRepository>(url, options));
  });
}

}  // namespace booking
