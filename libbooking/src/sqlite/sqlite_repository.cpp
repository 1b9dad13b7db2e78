// The SQLite EventRepository.
//
// Concurrency: one writer connection behind `write_mu_` (SQLite allows one writer at a time
// anyway, and two writer connections only add unfair busy-waiting), readers on a pool of their
// own connections (WAL lets them read while the writer writes). Every state change is one
// BEGIN IMMEDIATE transaction, so a crash never leaves half a booking, and every stock take is a
// conditional UPDATE, so the database refuses an oversell whatever the locks did.
#include <sqlite3.h>

#include <booking/event_repository.hpp>
#include <mutex>
#include <vector>

#include "core/repository_rules.hpp"
#include "sqlite/connection.hpp"
#include "sqlite/queries.hpp"

namespace booking {

namespace {

using detail::Connection;
using detail::WriteTransaction;

std::int64_t ms(Instant t) { return t.time_since_epoch().count(); }

// Turns SQLite exceptions into errors at the boundary where they arise.
template <class F>
auto guarded(F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const SQLite::Exception& e) {
    int code = e.getErrorCode();
    if (code == SQLITE_BUSY || code == SQLITE_LOCKED) {
      return make_error(errc::lock_timeout, std::string("database is busy: ") + e.what());
    }
    return make_error(errc::internal, std::string("storage error: ") + e.what());
  } catch (const std::exception& e) {
    return make_error(errc::internal, std::string("storage error: ") + e.what());
  }
}

class SqliteRepository final : public EventRepository {
 public:
  SqliteRepository(std::string path, SqliteOptions options)
      : path_(std::move(path)), options_(options) {
    writer_ = open(SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    writer_->db().exec("PRAGMA journal_mode = WAL");
    detail::migrate(*writer_);
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

  result<Booking> insert_hold(const HoldPlan& plan) override {
    return guarded([&]() -> result<Booking> {
      std::lock_guard lock(write_mu_);
      WriteTransaction tx(*writer_);
      BOOKING_TRY(detail::take_hold(*writer_, plan));
      tx.commit();
      return plan.booking;
    });
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
