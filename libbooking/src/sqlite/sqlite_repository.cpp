// The SQLite EventRepository: the booking rules are core's (booking/storage.hpp); this file runs
// them in SQLite transactions over the primitives of sqlite/queries.
//
// Concurrency: one writer connection behind `write_mu_` (SQLite allows one writer at a time
// anyway, and two writer connections only add unfair busy-waiting), readers on a pool of their
// own connections (WAL lets them read while the writer writes). Every state change is one
// BEGIN IMMEDIATE transaction, so a crash never leaves half a booking, and every stock take is a
// conditional UPDATE, so the database refuses an oversell whatever the locks did. Holds are
// group-committed (core/group_commit.hpp): many per transaction, their stock judged in memory
// (core/batch_stock.hpp). At NORMAL durability a background thread checkpoints the WAL
// (Checkpointer).
#include <sqlite3.h>

#include <algorithm>
#include <booking/storage.hpp>
#include <mutex>
#include <optional>
#include <vector>

#include "core/group_commit.hpp"
#include "core/repository_rules.hpp"
#include "sqlite/checkpointer.hpp"
#include "sqlite/connection.hpp"
#include "sqlite/queries.hpp"

namespace booking {

namespace {

using detail::Connection;
using detail::QueuedHold;
using detail::WriteTransaction;

std::int64_t ms(Instant t) { return t.time_since_epoch().count(); }

// The error an exception from storage stands for.
error storage_error(const std::exception& e) {
  if (const auto* sql = dynamic_cast<const SQLite::Exception*>(&e)) {
    int code = sql->getErrorCode();
    if (code == SQLITE_BUSY || code == SQLITE_LOCKED) {
      return make_error(errc::lock_timeout, std::string("database is busy: ") + e.what());
    }
  }
  return make_error(errc::internal, std::string("storage error: ") + e.what());
}

// Turns storage exceptions into errors at the boundary where they arise.
template <class F>
auto guarded(F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const std::exception& e) {
    return storage_error(e);
  }
}

// The background checkpoint starts at SQLite's usual threshold; a writer checkpoints itself
// only if the WAL grows ten times past it. (16,000 pages was tried: 100 HTTP clients sold ~6 %
// more, since hot pages are copied once per checkpoint however often they were rewritten, but
// one writer alone, in engine_bench right after the FULL runs, fell from ~21,000 to ~7,500
// holds/s, every time. Until that is understood the threshold stays where it is.)
constexpr int kCheckpointPages = 1000;
constexpr int kCheckpointLimit = 10'000;

// The most holds one transaction commits. Bounds a batch's latency and its savepoint journal.
constexpr std::size_t kMaxBatch = 512;

class SqliteRepository final : public RuleBasedRepository {
 public:
  SqliteRepository(std::string path, SqliteOptions options)
      : path_(std::move(path)), options_(options) {
    writer_ = open(SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    writer_->use_writer_gate(detail::WriterGate::open(path_), options_.busy_timeout);
    writer_->db().exec("PRAGMA journal_mode = WAL");
    detail::migrate(*writer_);
    // At FULL every commit already waits for its fsync, and a concurrent checkpoint's fsyncs
    // queue in front of it: measured, one caller's holds/s fell from ~7,500 to ~4,800 with the
    // background checkpoint, while 100 HTTP clients gained only ~5 %. So at FULL SQLite's own
    // automatic checkpoint stays.
    if (options_.durability == Durability::normal) {
      checkpointer_ = std::make_unique<detail::Checkpointer>(writer_->db().getHandle(),
                                                             open(SQLite::OPEN_READWRITE),
                                                             kCheckpointPages, kCheckpointLimit);
    }
  }

  result<Event> create_event(const Event& event, Instant now) override {
    return guarded([&]() -> result<Event> {
      std::lock_guard lock(write_mu_);
      WriteTransaction tx(*writer_);
      BOOKING_TRY(auto id, detail::insert_event(*writer_, event, now));
      tx.commit();
      return detail::stored_new_event(event, id);
    });
  }

  result<std::size_t> create_events(std::span<const Event> events, Instant now) override {
    return guarded([&]() -> result<std::size_t> {
      std::lock_guard lock(write_mu_);
      WriteTransaction tx(*writer_);
      for (const Event& e : events) {
        BOOKING_TRY(detail::insert_event(*writer_, e, now));
      }
      tx.commit();
      return events.size();
    });
  }

  result<Event> get_event(std::string_view key) override {
    return guarded([&]() -> result<Event> {
      Reader r(*this);
      auto e = detail::load_event(*r, key);
      if (!e) return detail::not_found_error("event", key);
      return std::move(*e);
    });
  }

  result<std::vector<Event>> search_events(const SearchQuery& q) override {
    return guarded([&]() -> result<std::vector<Event>> {
      Reader r(*this);
      return detail::search(*r, q);
    });
  }

  result<Booking> insert_hold(const HoldPlan& plan) override { return submit_hold(plan)->wait(); }

  std::unique_ptr<PendingHold> submit_hold(HoldPlan plan) override {
    return holds_.submit(std::move(plan));
  }

  result<Booking> get_booking(std::string_view id) override {
    return guarded([&]() -> result<Booking> {
      Reader r(*this);
      auto b = detail::load_booking(*r, id);
      if (!b) return detail::not_found_error("booking", id);
      return std::move(*b);
    });
  }

  result<std::optional<IdempotencyRecord>> find_idempotency_key(std::string_view key) override {
    return guarded([&]() -> result<std::optional<IdempotencyRecord>> {
      Reader r(*this);
      return detail::find_idempotency(*r, key);
    });
  }

  result<std::size_t> expire_due(Instant now, std::size_t max) override {
    return guarded([&]() -> result<std::size_t> {
      std::lock_guard lock(write_mu_);
      WriteTransaction tx(*writer_);
      std::size_t n = detail::expire_batch(*writer_, ms(now), max);
      tx.commit();
      return n;
    });
  }

  result<std::vector<Booking>> list_bookings(const BookingQuery& q) override {
    return guarded([&]() -> result<std::vector<Booking>> {
      Reader r(*this);
      return detail::list_bookings(*r, q);
    });
  }

  result<std::vector<BookingTotal>> booking_totals(std::string_view key) override {
    return guarded([&]() -> result<std::vector<BookingTotal>> {
      Reader r(*this);
      return detail::booking_totals(*r, key);
    });
  }

  result<std::vector<Change>> read_changes(std::int64_t after, std::size_t limit) override {
    return guarded([&]() -> result<std::vector<Change>> {
      Reader r(*this);
      return detail::read_changes(*r, after, limit);
    });
  }

  result<FeedBounds> feed_bounds() override {
    return guarded([&]() -> result<FeedBounds> {
      Reader r(*this);
      return detail::feed_bounds(*r);
    });
  }

  result<std::size_t> prune_changes(Instant cutoff, std::size_t max) override {
    return guarded([&]() -> result<std::size_t> {
      std::lock_guard lock(write_mu_);
      WriteTransaction tx(*writer_);
      std::size_t n = detail::prune_changes(*writer_, ms(cutoff), max);
      tx.commit();
      return n;
    });
  }

  // SQLite lives on one host: its clock is the database's.
  result<std::optional<WebhookState>> lease_webhook(std::string_view url, std::string_view owner,
                                                    std::chrono::milliseconds ttl) override {
    return guarded([&]() -> result<std::optional<WebhookState>> {
      std::lock_guard lock(write_mu_);
      WriteTransaction tx(*writer_);
      auto w = detail::lease_webhook(*writer_, url, owner, ms(system_clock().now()), ttl.count());
      tx.commit();
      return w;
    });
  }

  result<bool> save_webhook(std::string_view url, std::string_view owner,
                            const WebhookState& state) override {
    return guarded([&]() -> result<bool> {
      std::lock_guard lock(write_mu_);
      WriteTransaction tx(*writer_);
      bool saved = detail::save_webhook(*writer_, url, owner, state, ms(system_clock().now()));
      tx.commit();
      return saved;
    });
  }

  result<std::vector<std::pair<std::string, WebhookState>>> list_webhooks() override {
    return guarded([&]() -> result<std::vector<std::pair<std::string, WebhookState>>> {
      Reader r(*this);
      return detail::list_webhooks(*r);
    });
  }

  result<void> resume_webhook(std::string_view url) override {
    return guarded([&]() -> result<void> {
      std::lock_guard lock(write_mu_);
      WriteTransaction tx(*writer_);
      const bool found = detail::resume_webhook(*writer_, url);
      tx.commit();
      if (!found) return detail::not_found_error("webhook", url);
      return boost::outcome_v2::success();
    });
  }

  result<std::size_t> export_bookings(std::string_view key, const BookingSink& sink) override {
    return guarded([&]() -> result<std::size_t> {
      Reader r(*this);
      return detail::export_bookings(*r, key, sink);
    });
  }

  result<std::size_t> purge_idempotency_keys(Instant cutoff, std::size_t max) override {
    return guarded([&]() -> result<std::size_t> {
      std::lock_guard lock(write_mu_);
      WriteTransaction tx(*writer_);
      std::size_t n = detail::purge_idempotency(*writer_, ms(cutoff), max);
      tx.commit();
      return n;
    });
  }

  result<std::int64_t> count_active_holds() override {
    return guarded([&]() -> result<std::int64_t> {
      Reader r(*this);
      auto& st = r->prepare("SELECT COUNT(*) FROM bookings WHERE status = 'HELD'");
      st.executeStep();
      return st.getColumn(0).getInt64();
    });
  }

  result<void> insert_token(const ApiToken& t) override {
    return guarded([&]() -> result<void> {
      std::lock_guard lock(write_mu_);
      WriteTransaction tx(*writer_);
      auto& exists = writer_->prepare("SELECT 1 FROM api_tokens WHERE name = ?");
      exists.bind(1, t.name);
      if (exists.executeStep()) return detail::duplicate_key_error(t.name);
      auto& ins = writer_->prepare(
          "INSERT INTO api_tokens (name, role, hash, created_ms) VALUES (?, ?, ?, ?)");
      ins.bind(1, t.name);
      ins.bind(2, std::string(to_string(t.role)));
      ins.bind(3, t.hash);
      ins.bind(4, static_cast<int64_t>(ms(t.created_at)));
      ins.exec();
      tx.commit();
      return boost::outcome_v2::success();
    });
  }

  result<std::vector<ApiToken>> list_tokens() override {
    return guarded([&]() -> result<std::vector<ApiToken>> {
      Reader r(*this);
      auto& st = r->prepare(
          "SELECT name, role, hash, created_ms, revoked_ms FROM api_tokens ORDER BY name");
      std::vector<ApiToken> out;
      while (st.executeStep()) {
        ApiToken t;
        t.name = st.getColumn(0).getString();
        t.role = parse_role(st.getColumn(1).getString()).value_or(Role::sales);
        t.hash = st.getColumn(2).getString();
        t.created_at = Instant(std::chrono::milliseconds(st.getColumn(3).getInt64()));
        if (!st.getColumn(4).isNull()) {
          t.revoked_at = Instant(std::chrono::milliseconds(st.getColumn(4).getInt64()));
        }
        out.push_back(std::move(t));
      }
      return out;
    });
  }

  result<void> revoke_token(std::string_view name, Instant at) override {
    return guarded([&]() -> result<void> {
      std::lock_guard lock(write_mu_);
      WriteTransaction tx(*writer_);
      auto& up = writer_->prepare(
          "UPDATE api_tokens SET revoked_ms = ? WHERE name = ? AND revoked_ms IS NULL");
      up.bind(1, static_cast<int64_t>(ms(at)));
      up.bind(2, std::string(name));
      if (up.exec() == 0) return detail::not_found_error("token", name);
      tx.commit();
      return boost::outcome_v2::success();
    });
  }

 private:
  // Stores or refuses each hold of `batch`, in order, in one transaction, and sets its outcome.
  // Usually the batch's stock is judged in memory (Transaction's batch mode) and each changed
  // tier written once. A hold that fails with a storage error there (not a refusal: the rules
  // refuse before they write) undoes the whole attempt; the batch is then judged again with a
  // SAVEPOINT per hold, which fails only that hold.
  void commit_batch(std::span<QueuedHold* const> batch) noexcept {
    try {
      if (batch.size() > 1 && commit_in_memory(batch)) return;
      std::lock_guard lock(write_mu_);
      WriteTransaction tx(*writer_);
      detail::Transaction primitives(*writer_);
      if (batch.size() == 1) {  // alone in its transaction: no savepoint needed
        QueuedHold& h = *batch.front();
        auto answer = apply_hold(primitives, h.plan());
        tx.commit();
        h.set_outcome(std::move(answer));
        return;
      }
      for (QueuedHold* h : batch) {
        // A refused hold leaves nothing behind; the savepoint undoes a hold whose write failed.
        writer_->prepare("SAVEPOINT hold").exec();
        std::optional<result<Booking>> answer;
        bool undo = false;
        try {
          answer = apply_hold(primitives, h->plan());
        } catch (const std::exception& e) {
          // Some errors (disk full, I/O) make SQLite roll back the whole transaction: then
          // the holds before this one are gone too, and the batch fails as one.
          if (sqlite3_get_autocommit(writer_->db().getHandle())) throw;
          answer = storage_error(e);
          undo = true;
        }
        writer_->reset_statements();
        if (undo) writer_->prepare("ROLLBACK TO hold").exec();
        writer_->prepare("RELEASE hold").exec();
        h->set_outcome(std::move(*answer));
      }
      tx.commit();
    } catch (const std::exception& e) {
      error failed = storage_error(e);
      for (QueuedHold* h : batch) h->set_outcome(failed);
    } catch (...) {
      for (QueuedHold* h : batch) h->set_outcome(make_error(errc::internal, "storage error"));
    }
  }

  // The batch judged in memory; false (nothing written, no outcome set) when a hold failed
  // with a storage error that left the transaction open.
  bool commit_in_memory(std::span<QueuedHold* const> batch) {
    std::vector<std::optional<result<Booking>>> outcomes(batch.size());
    {
      std::lock_guard lock(write_mu_);
      WriteTransaction tx(*writer_);
      detail::Transaction primitives(*writer_);
      primitives.begin_batch();
      for (std::size_t i = 0; i < batch.size(); ++i) {
        try {
          outcomes[i] = apply_hold(primitives, batch[i]->plan());
        } catch (const std::exception&) {
          // Some errors (disk full, I/O) make SQLite roll back the whole transaction: then
          // the batch fails as one. Others leave it open: roll back, judge one by one.
          if (sqlite3_get_autocommit(writer_->db().getHandle())) throw;
          return false;
        }
      }
      primitives.flush_batch();
      tx.commit();
    }
    for (std::size_t i = 0; i < batch.size(); ++i) batch[i]->set_outcome(std::move(*outcomes[i]));
    return true;
  }

  // Borrows a reader connection from the pool for one call.
  class Reader {
   public:
    explicit Reader(SqliteRepository& repo) : repo_(repo) {
      std::lock_guard lock(repo_.readers_mu_);
      if (!repo_.readers_.empty()) {
        conn_ = std::move(repo_.readers_.back());
        repo_.readers_.pop_back();
      }
      if (!conn_) conn_ = repo_.open(SQLite::OPEN_READONLY);
    }
    ~Reader() {
      conn_->reset_statements();
      std::lock_guard lock(repo_.readers_mu_);
      if (repo_.readers_.size() < static_cast<std::size_t>(repo_.options_.reader_connections)) {
        repo_.readers_.push_back(std::move(conn_));
      }
    }
    Connection& operator*() { return *conn_; }
    Connection* operator->() { return conn_.get(); }

   private:
    SqliteRepository& repo_;
    std::unique_ptr<Connection> conn_;
  };

  std::unique_ptr<Connection> open(int flags) {
    auto c = std::make_unique<Connection>(path_, flags | SQLite::OPEN_NOMUTEX,
                                          static_cast<int>(options_.busy_timeout.count()));
    c->db().exec(options_.durability == Durability::full ? "PRAGMA synchronous = FULL"
                                                         : "PRAGMA synchronous = NORMAL");
    c->db().exec("PRAGMA foreign_keys = ON");
    return c;
  }

  // One write transaction for `work`, committed whatever it answers (the rules' contract).
  result<Booking> write(const Work& work) override {
    return guarded([&]() -> result<Booking> {
      std::lock_guard lock(write_mu_);
      WriteTransaction tx(*writer_);
      detail::Transaction primitives(*writer_);
      auto answer = work(primitives);
      tx.commit();
      return answer;
    });
  }

  std::string path_;
  SqliteOptions options_;
  std::mutex write_mu_;  // guards writer_
  std::unique_ptr<Connection> writer_;
  std::unique_ptr<detail::Checkpointer> checkpointer_;  // after writer_: destroyed before it
  // Group commit (see core/group_commit.hpp); its mutex is never held together with write_mu_.
  detail::GroupCommit holds_{[this](std::span<QueuedHold* const> b) { commit_batch(b); },
                             kMaxBatch};
  std::mutex readers_mu_;  // guards readers_; never held together with write_mu_
  std::vector<std::unique_ptr<Connection>> readers_;
};

}  // namespace

result<std::unique_ptr<EventRepository>> make_sqlite_repository(const std::string& path,
                                                                SqliteOptions options) {
  try {
    return std::unique_ptr<EventRepository>(std::make_unique<SqliteRepository>(path, options));
  } catch (const SQLite::Exception& e) {
    // A path that cannot be opened is the caller's to fix: say which, and why.
    if ((e.getErrorCode() & 0xFF) == SQLITE_CANTOPEN) {
      return make_error(errc::not_found, "cannot open database '" + path + "': " + e.what() +
                                             " (does its directory exist, and may we write it?)");
    }
    error failed = storage_error(e);
    failed.message = "database '" + path + "': " + failed.message;
    return failed;
  } catch (const std::exception& e) {
    return make_error(errc::internal, "database '" + path + "': " + e.what());
  }
}

}  // namespace booking
