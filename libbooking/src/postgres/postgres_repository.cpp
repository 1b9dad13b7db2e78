// The PostgreSQL EventRepository: one database shared by several bookingd instances on several
// hosts. The booking rules are core's (booking/storage.hpp); this file runs them in PostgreSQL
// transactions over the primitives of `Transaction` (postgres/queries.hpp).
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
// queued in one transaction, judging the stock of the tiers it has locked in memory and writing
// the batch's bookings and counters in a few statements at its end, so a hot tier's row is
// locked briefly and the WAL flushed once per batch rather than once per hold, and no lock of
// the caller's is held across the database round trips. Batches of several instances (and confirm,
// cancel) lock rows in one global order: per-user advisory locks, then tiers by key, then waves by
// id.
#include <algorithm>
#include <array>
#include <booking/storage.hpp>
#include <set>
#include <unordered_map>
#include <utility>

#include "core/group_commit.hpp"
#include "core/repository_rules.hpp"
#include "postgres/pg.hpp"
#include "postgres/queries.hpp"
#include "postgres/schema.hpp"

namespace booking {

namespace {

using detail::QueuedHold;
using namespace detail::pg;

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

  result<Event> create_event(const Event& event, Instant now) override {
    return in_transaction(
        [&](Connection& c) -> result<Event> {
          BOOKING_TRY(auto id, insert_event(c, event));
          record_created(c, std::span(&event, 1), {id}, now);
          return detail::stored_new_event(event, id);
        },
        &event);
  }

  result<std::size_t> create_events(std::span<const Event> events, Instant now) override {
    return in_transaction([&](Connection& c) -> result<std::size_t> {
      std::vector<std::int64_t> ids;
      for (const Event& e : events) {
        BOOKING_TRY(auto id, insert_event(c, e));
        ids.push_back(id);
      }
      record_created(c, events, ids, now);
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
          std::string sql = std::string(kBookingListColumns) + "WHERE true";
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
      return read_bookings(c, c.exec(shapes[shape].c_str(), params));
    });
  }

  result<std::vector<BookingTotal>> booking_totals(std::string_view key) override {
    return read([&](Connection& c) -> result<std::vector<BookingTotal>> {
      Result rows = c.exec(
          "SELECT l.tier_key, b.status, SUM(l.qty), SUM(l.qty * l.unit_price_minor), COUNT(*) "
          "FROM bookings b JOIN booking_lines l ON l.booking_id = b.id "
          "WHERE b.event_id = (SELECT id FROM events WHERE key = $1) GROUP BY 1, 2",
          {param(key)});
      std::vector<BookingTotal> out;
      for (int i = 0; i < rows.rows(); ++i) {
        out.push_back(BookingTotal{
            rows.text(i, 0), parse_booking_status(rows.text(i, 1)).value_or(BookingStatus::held),
            rows.int64(i, 2), rows.int64(i, 3), rows.int64(i, 4)});
      }
      return out;
    });
  }

  result<std::vector<Change>> read_changes(std::int64_t after, std::size_t limit) override {
    return read([&](Connection& c) -> result<std::vector<Change>> {
      return detail::pg::read_changes(c, after, limit);
    });
  }

  result<FeedBounds> feed_bounds() override {
    return read([&](Connection& c) -> result<FeedBounds> { return detail::pg::feed_bounds(c); });
  }

  result<std::size_t> prune_changes(Instant cutoff, std::size_t max) override {
    return in_transaction([&](Connection& c) -> result<std::size_t> {
      return detail::pg::prune_changes(c, ms(cutoff), max);
    });
  }

  result<std::optional<WebhookState>> lease_webhook(std::string_view url, std::string_view owner,
                                                    std::chrono::milliseconds ttl) override {
    return in_transaction([&](Connection& c) -> result<std::optional<WebhookState>> {
      return detail::pg::lease_webhook(c, url, owner, ttl.count());
    });
  }

  result<bool> save_webhook(std::string_view url, std::string_view owner,
                            const WebhookState& state) override {
    return in_transaction([&](Connection& c) -> result<bool> {
      return detail::pg::save_webhook(c, url, owner, state);
    });
  }

  result<std::vector<std::pair<std::string, WebhookState>>> list_webhooks() override {
    return read([&](Connection& c) -> result<std::vector<std::pair<std::string, WebhookState>>> {
      return detail::pg::list_webhooks(c);
    });
  }

  result<void> resume_webhook(std::string_view url) override {
    return in_transaction([&](Connection& c) -> result<void> {
      if (!detail::pg::resume_webhook(c, url)) return detail::not_found_error("webhook", url);
      return boost::outcome_v2::success();
    });
  }

  result<std::size_t> export_bookings(std::string_view key, const BookingSink& sink) override {
    // A server-side cursor in a read-only transaction (one snapshot of the event), fetched a
    // page at a time: never more than one page in memory. Not retried: the sink may already
    // have written what it received.
    return guarded([&]() -> result<std::size_t> {
      auto c = pool_.acquire();
      Result id = c->exec("SELECT id FROM events WHERE key = $1", {param(key)});
      if (id.rows() == 0) return std::size_t{0};
      std::string declare = "DECLARE booking_export NO SCROLL CURSOR FOR " +
                            std::string(kBookingListColumns) + "WHERE event_id = ";
      declare += std::to_string(id.int64(0, 0));  // an integer read from the database
      declare += " ORDER BY created_ms, id";
      c->exec_simple("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
      c->exec_simple(declare.c_str());
      std::size_t n = 0;
      bool more = true;
      while (more) {
        Result page = c->exec_simple("FETCH 2000 FROM booking_export");
        more = page.rows() == 2000;
        for (const Booking& b : read_bookings(*c, page)) {
          if (!sink(b)) {
            more = false;
            break;
          }
          ++n;
        }
      }
      c->exec_simple("COMMIT");  // closes the cursor
      return n;
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
          "  RETURNING b.id, b.wave_id, b.event_key, b.expires_ms),"
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
          "  WHERE waves.id = per_wave.w RETURNING 1),"
          // The feed's positions last (the counter row stays locked until commit), and only
          // when something expired.
          " counter AS ("
          "  UPDATE feed_state SET last_seq = last_seq + (SELECT COUNT(*) FROM gone) "
          "  WHERE id = 1 AND EXISTS (SELECT 1 FROM gone) RETURNING last_seq),"
          " recorded AS ("
          "  INSERT INTO changes (seq, at_ms, type, event_key, book_id, actor) "
          "  SELECT counter.last_seq - (SELECT COUNT(*) FROM gone) "
          "         + ROW_NUMBER() OVER (ORDER BY gone.expires_ms, gone.id), "
          "         $1, 'booking.expired', gone.event_key, gone.id, $3 "
          "  FROM gone, counter RETURNING 1)"
          " SELECT (SELECT COUNT(*) FROM gone), (SELECT COUNT(*) FROM tiers_done),"
          "        (SELECT COUNT(*) FROM waves_done), (SELECT COUNT(*) FROM recorded)",
          {param(ms(now)), param(static_cast<std::int64_t>(max)), param(current_actor())});
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
      Answer a{work(primitives)};
      primitives.flush_changes();
      return a;
    });
    if (!r) return r.error();
    return std::move(r.value().answer);
  }

  // Records event.created for `events` (stored with `ids`), numbered at the end of the caller's
  // transaction.
  static void record_created(Connection& c, std::span<const Event> events,
                             const std::vector<std::int64_t>& ids, Instant now) {
    Transaction t(c);
    const Instant at = now == Instant{} ? system_clock().now() : now;
    for (std::size_t i = 0; i < events.size(); ++i) {
      const Event stored = detail::stored_new_event(events[i], ids[i]);
      t.append_change({ChangeType::event_created, at, stored.key, nullptr, current_actor()},
                      &stored);
    }
    t.flush_changes();
  }

  // Judges `batch` in order in one transaction and sets every outcome once the transaction's
  // fate is known. The rules refuse a hold before they write anything, so a refused hold leaves
  // nothing behind. Usually the batch's stock is judged in memory under the tiers' row locks and
  // written at its end (Transaction's batch mode): a few statements per batch. A batch with an
  // idempotency key instead runs each hold in a SAVEPOINT, which undoes one refused by the
  // unique index on the keys (raced in by another instance) without failing the others.
  void commit_batch(std::span<QueuedHold* const> batch) {
    if (plain_holds(batch) && commit_batch_lock_last(batch)) return;
    const bool alone = batch.size() == 1;
    const bool keyed = std::any_of(batch.begin(), batch.end(), [](const QueuedHold* h) {
      return h->plan().booking.idempotency_key.has_value();
    });
    std::vector<std::optional<result<Booking>>> outcomes(batch.size());
    auto committed = in_transaction([&](Connection& c) -> result<void> {
      LockedRows rows = lock_rows(c, batch);
      Transaction primitives(c);
      primitives.remember_shared_events(rows.events);
      const bool in_memory = !keyed && !rows.tiers.empty();
      if (in_memory) primitives.begin_batch(std::move(rows.tiers));
      const bool savepoints = keyed && !alone;
      for (std::size_t i = 0; i < batch.size(); ++i) {
        if (savepoints) c.exec_simple("SAVEPOINT hold");
        const std::size_t changes = primitives.pending_changes();
        try {
          outcomes[i] = apply_hold(primitives, batch[i]->plan());
        } catch (const PgError& e) {
          if (!savepoints || e.sqlstate() != "23505" || e.constraint() != "bookings_idempotency") {
            throw;
          }
          c.exec_simple("ROLLBACK TO SAVEPOINT hold");
          primitives.forget_event_locks();  // the rollback released locks taken after it
          primitives.drop_changes_from(changes);
          outcomes[i] = make_error(errc::duplicate_key, "idempotency key already used");
        }
        if (savepoints) c.exec_simple("RELEASE SAVEPOINT hold");
      }
      if (in_memory) primitives.flush_batch();
      primitives.flush_changes();
      return boost::outcome_v2::success();
    });
    for (std::size_t i = 0; i < batch.size(); ++i) {
      batch[i]->set_outcome(committed ? std::move(*outcomes[i]) : committed.error());
    }
  }

  // A batch of plain holds, with its tiers' rows locked only at its end (see TierLock::last);
  // false if the stock it judged was gone by then (the batch was rolled back and nothing is
  // answered yet).
  bool commit_batch_lock_last(std::span<QueuedHold* const> batch) {
    std::vector<std::optional<result<Booking>>> outcomes(batch.size());
    bool raced = false;
    auto committed = in_transaction([&](Connection& c) -> result<void> {
      raced = false;
      Transaction primitives(c);
      LockedRows rows = lock_rows(c, batch, TierLock::last);
      primitives.remember_shared_events(rows.events);
      primitives.begin_batch(std::move(rows.tiers));
      for (std::size_t i = 0; i < batch.size(); ++i) {
        outcomes[i] = apply_hold(primitives, batch[i]->plan());
      }
      if (!primitives.flush_batch(TierLock::last)) {
        raced = true;
        return make_error(errc::precondition_failed, "the stock moved; judged again");
      }
      primitives.flush_changes();
      return boost::outcome_v2::success();
    });
    if (raced) return false;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      batch[i]->set_outcome(committed ? std::move(*outcomes[i]) : committed.error());
    }
    return true;
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
