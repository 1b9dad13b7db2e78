// The SQLite EventRepository.
//
// Concurrency: one writer connection behind `write_mu_` (SQLite allows one writer at a time
// anyway, and two writer connections only add unfair busy-waiting), readers on a pool of their
// own connections (WAL lets them read while the writer writes). Every state change is one
// BEGIN IMMEDIATE transaction, so a crash never leaves half a booking, and every stock take is a
// conditional UPDATE, so the database refuses an oversell whatever the locks did. Holds are
// group-committed (QueuedHold below): many per transaction, each in a SAVEPOINT. At NORMAL
// durability a background thread checkpoints the WAL (Checkpointer).
#include <sqlite3.h>

#include <algorithm>
#include <booking/event_repository.hpp>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <vector>

#include "core/repository_rules.hpp"
#include "sqlite/checkpointer.hpp"
#include "sqlite/connection.hpp"
#include "sqlite/queries.hpp"

namespace booking {

namespace {

using detail::Connection;
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
// only if the WAL grows ten times past it.
constexpr int kCheckpointPages = 1000;
constexpr int kCheckpointLimit = 10'000;

// The most holds one transaction commits. Bounds a batch's latency and its savepoint journal.
constexpr std::size_t kMaxBatch = 512;

class SqliteRepository final : public EventRepository {
 public:
  SqliteRepository(std::string path, SqliteOptions options)
      : path_(std::move(path)), options_(options) {
    writer_ = open(SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    writer_->db().exec("PRAGMA journal_mode = WAL");
    detail::migrate(*writer_);
    // At FULL every commit already waits for its fsync, and a concurrent checkpoint's fsyncs
    // queue in front of it: measured, one caller's holds/s fell from ~7,500 to ~4,800 with the
    // background checkpoint, while 100 HTTP clients gained only ~5 %. So at FULL SQLite's own
    // automatic checkpoint stays.
    if (options_.durability == Durability::normal) {
      checkpointer_ = std::make_unique<detail::Checkpointer>(
          writer_->db().getHandle(), open(SQLite::OPEN_READWRITE), kCheckpointPages,
          kCheckpointLimit);
    }
  }

  result<Event> create_event(const Event& event) override {
    return guarded([&]() -> result<Event> {
      std::lock_guard lock(write_mu_);
      WriteTransaction tx(*writer_);
      BOOKING_TRY(auto id, detail::insert_event(*writer_, event));
      tx.commit();
      Event stored = event;
      stored.id = id;
      for (Tier& t : stored.tiers) t.stock = TierStock{t.capacity, t.capacity, 0, 0};
      for (ReleaseWave& w : stored.waves) w.booked = 0;
      return stored;
    });
  }

  result<std::size_t> create_events(std::span<const Event> events) override {
    return guarded([&]() -> result<std::size_t> {
      std::lock_guard lock(write_mu_);
      WriteTransaction tx(*writer_);
      for (const Event& e : events) {
        BOOKING_TRY(detail::insert_event(*writer_, e));
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
    auto hold = std::make_unique<QueuedHold>(*this, std::move(plan));
    std::lock_guard lock(queue_mu_);
    queue_.push_back(hold.get());
    return hold;
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

  result<Booking> confirm(std::string_view id, std::string_view method, std::string_view reference,
                          Instant now) override {
    return transition(id, now, [&](Booking& b) -> result<void> {
      BOOKING_TRY(detail::require_live_hold(b, "confirm"));
      detail::move_stock(*writer_, b, BookingStatus::confirmed);
      auto& st =
          writer_->prepare("UPDATE bookings SET payment_method = ?, payment_ref = ? WHERE id = ?");
      st.bind(1, std::string(method));
      st.bind(2, std::string(reference));
      st.bind(3, b.id);
      st.exec();
      b.payment_method = std::string(method);
      b.payment_reference = std::string(reference);
      return boost::outcome_v2::success();
    });
  }

  result<Booking> cancel(std::string_view id, Instant now) override {
    return transition(id, now, [&](Booking& b) -> result<void> {
      if (b.status != BookingStatus::confirmed) {
        BOOKING_TRY(detail::require_live_hold(b, "cancel"));
      }
      detail::move_stock(*writer_, b, BookingStatus::cancelled);
      return boost::outcome_v2::success();
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

  result<std::int64_t> count_active_holds() override {
    return guarded([&]() -> result<std::int64_t> {
      Reader r(*this);
      auto& st = r->prepare("SELECT COUNT(*) FROM bookings WHERE status = 'HELD'");
      st.executeStep();
      return st.getColumn(0).getInt64();
    });
  }

 private:
  // A one-shot wake-up per sleep. (std::binary_semaphore in GCC 12 spins with sched_yield
  // before it sleeps, which cost ~15 % of a loaded daemon's CPU on 2 cores.) post() notifies
  // under the mutex, so the waiter cannot return and free the Signal while post() still uses it.
  class Signal {
   public:
    void wait() {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return posted_; });
      posted_ = false;
    }
    void post() {
      std::lock_guard lock(mu_);
      posted_ = true;
      cv_.notify_one();
    }

   private:
    std::mutex mu_;
    std::condition_variable cv_;
    bool posted_ = false;
  };

  // Group commit, after LevelDB's write queue: holds queue in submission order; one waiting
  // caller at a time (the leader) commits everything queued (up to kMaxBatch) in one
  // transaction, each hold in a SAVEPOINT, then marks those holds done and hands leadership to
  // the next waiting caller. One commit (one WAL append, one fsync at FULL) serves a whole
  // batch, and no thread hands its work to another. Waiters sleep on their own Signal, which
  // is posted after queue_mu_ is released, so a woken caller does not queue for that mutex.
  class QueuedHold final : public PendingHold {
   public:
    QueuedHold(SqliteRepository& repo, HoldPlan plan) : repo_(repo), plan_(std::move(plan)) {}
    ~QueuedHold() override {
      if (!waited_) (void)wait();  // leaves the queue only once stored or refused
    }
    QueuedHold(const QueuedHold&) = delete;
    QueuedHold& operator=(const QueuedHold&) = delete;

    result<Booking> wait() override {
      waited_ = true;
      repo_.await(*this);
      return std::move(*outcome_);
    }

   private:
    friend class SqliteRepository;
    SqliteRepository& repo_;
    HoldPlan plan_;
    bool waited_ = false;  // owner's thread only
    // Guarded by queue_mu_. A hold is posted at most once per sleep: when it is done, or when
    // leadership is handed to it (`lead_`); only a sleeping (`asleep_`) hold is posted, and its
    // owner cannot return before taking the post, so the post never outlives the hold.
    bool asleep_ = false;
    bool lead_ = false;
    bool done_ = false;
    std::optional<result<Booking>> outcome_;  // written by a leader before it sets done_
    Signal wake_;
  };

  // Returns once `hold` has its outcome, leading batches when it is its turn.
  void await(QueuedHold& hold) noexcept {  // noexcept: a leader that threw would strand the queue
    std::unique_lock lock(queue_mu_);
    while (!hold.done_) {
      if (leading_ && !hold.lead_) {
        hold.asleep_ = true;
        lock.unlock();
        hold.wake_.wait();
        lock.lock();
        hold.asleep_ = false;
        continue;
      }
      hold.lead_ = false;
      leading_ = true;
      const std::size_t n = std::min(queue_.size(), kMaxBatch);
      std::vector<QueuedHold*> batch(queue_.begin(), queue_.begin() + static_cast<long>(n));
      lock.unlock();
      commit_batch(batch);
      lock.lock();
      std::vector<QueuedHold*> posts;
      for (QueuedHold* h : batch) {
        queue_.pop_front();
        h->done_ = true;
        if (h->asleep_) posts.push_back(h);
      }
      // The next leader is the first caller already asleep; if none is, the next caller to
      // arrive in await() finds no leader and leads.
      auto next = std::find_if(queue_.begin(), queue_.end(),
                               [](const QueuedHold* h) { return h->asleep_; });
      leading_ = next != queue_.end();
      if (leading_) {
        (*next)->lead_ = true;
        posts.push_back(*next);
      }
      lock.unlock();
      for (QueuedHold* h : posts) h->wake_.post();
      lock.lock();
    }
  }

  // Stores or refuses each hold of `batch`, in order, in one transaction, and sets its outcome.
  void commit_batch(const std::vector<QueuedHold*>& batch) noexcept {
    try {
      std::lock_guard lock(write_mu_);
      WriteTransaction tx(*writer_);
      if (batch.size() == 1) {  // alone in its transaction: no savepoint needed
        QueuedHold& h = *batch.front();
        auto taken = detail::take_hold(*writer_, h.plan_);
        if (!taken) {
          h.outcome_ = taken.error();
          return;  // tx rolls back
        }
        tx.commit();
        h.outcome_ = h.plan_.booking;
        return;
      }
      for (QueuedHold* h : batch) {
        writer_->prepare("SAVEPOINT hold").exec();
        std::optional<error> failed;
        try {
          auto taken = detail::take_hold(*writer_, h->plan_);
          if (!taken) failed = taken.error();
        } catch (const std::exception& e) {
          // Some errors (disk full, I/O) make SQLite roll back the whole transaction: then
          // the holds before this one are gone too, and the batch fails as one.
          if (sqlite3_get_autocommit(writer_->db().getHandle())) throw;
          failed = storage_error(e);
        }
        writer_->reset_statements();
        if (failed) {
          writer_->prepare("ROLLBACK TO hold").exec();
          h->outcome_ = std::move(*failed);
        } else {
          h->outcome_ = h->plan_.booking;
        }
        writer_->prepare("RELEASE hold").exec();
      }
      tx.commit();
    } catch (const std::exception& e) {
      error failed = storage_error(e);
      for (QueuedHold* h : batch) h->outcome_ = failed;
    } catch (...) {
      for (QueuedHold* h : batch) h->outcome_ = make_error(errc::internal, "storage error");
    }
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

  // Loads a booking under the write lock, applies `change` (which may expire it instead, in
  // which case the expiry commits and hold_expired is returned) and commits.
  template <class F>
  result<Booking> transition(std::string_view id, Instant now, F&& change) {
    return guarded([&]() -> result<Booking> {
      std::lock_guard lock(write_mu_);
      WriteTransaction tx(*writer_);
      auto b = detail::load_booking(*writer_, id);
      if (!b) return detail::not_found_error("booking", id);
      if (b->status == BookingStatus::held && b->expires_at <= now) {
        detail::move_stock(*writer_, *b, BookingStatus::expired);
        tx.commit();
        return make_error(errc::hold_expired,
                          "the hold expired at " + format_instant(b->expires_at));
      }
      BOOKING_TRY(change(*b));
      tx.commit();
      return std::move(*b);
    });
  }

  std::string path_;
  SqliteOptions options_;
  std::mutex write_mu_;  // guards writer_
  std::unique_ptr<Connection> writer_;
  std::unique_ptr<detail::Checkpointer> checkpointer_;  // after writer_: destroyed before it
  std::mutex queue_mu_;  // guards queue_, leading_ and each queued hold's flags; never held
                         // together with write_mu_
  std::deque<QueuedHold*> queue_;
  bool leading_ = false;   // a caller is committing a batch, or leadership is being handed over
  std::mutex readers_mu_;  // guards readers_; never held together with write_mu_
  std::vector<std::unique_ptr<Connection>> readers_;
};

}  // namespace

result<std::unique_ptr<EventRepository>> make_sqlite_repository(const std::string& path,
                                                                SqliteOptions options) {
  return guarded([&]() -> result<std::unique_ptr<EventRepository>> {
    return std::unique_ptr<EventRepository>(std::make_unique<SqliteRepository>(path, options));
  });
}

}  // namespace booking
