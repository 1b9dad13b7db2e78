// A thin layer over libpq: one connection with a cache of prepared statements, a pool of them,
// and results read as text. Errors are exceptions here (PgError) and become booking::error at
// the repository's boundary, like SQLite's.
//
// libpq rather than libpqxx: the repository needs a dozen statements, text parameters and the
// SQLSTATE of a failure; libpq gives exactly that without another C++ dependency.
#pragma once

#include <libpq-fe.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace booking::detail::pg {

// A failed call: the SQLSTATE ("23505"), the constraint it names if any, and whether the
// connection itself is gone (then it is never reused).
class PgError : public std::runtime_error {
 public:
  PgError(std::string message, std::string sqlstate, std::string constraint, bool broken)
      : std::runtime_error(std::move(message)),
        sqlstate_(std::move(sqlstate)),
        constraint_(std::move(constraint)),
        broken_(broken) {}
  const std::string& sqlstate() const noexcept { return sqlstate_; }
  const std::string& constraint() const noexcept { return constraint_; }
  bool broken() const noexcept { return broken_; }
  // The server is unreachable, restarting or out of connections: worth a 503 and a retry.
  bool unavailable() const noexcept;
  // A serialization failure or deadlock: the whole transaction may simply be run again.
  bool retryable() const noexcept { return sqlstate_ == "40001" || sqlstate_ == "40P01"; }
  // A row lock not granted within the session's lock_timeout (another transaction holds it).
  bool lock_wait_exceeded() const noexcept { return sqlstate_ == "55P03"; }

 private:
  std::string sqlstate_;
  std::string constraint_;
  bool broken_;
};

// A statement parameter in text form; nullopt is SQL NULL.
using Param = std::optional<std::string>;
inline Param param(std::string_view v) { return std::string(v); }
inline Param param(const std::string& v) { return v; }
inline Param param(const char* v) { return std::string(v); }
inline Param param(std::int64_t v) { return std::to_string(v); }
inline Param param(const std::optional<std::string>& v) { return v; }
inline Param param(const std::optional<std::int64_t>& v) {
  return v ? Param(std::to_string(*v)) : std::nullopt;
}

struct ConnectOptions {
  std::chrono::seconds connect_timeout{3};
  // The session's lock_timeout: the longest a statement waits for a row lock.
  std::chrono::milliseconds lock_wait{5000};
};

// An owned PGresult.
class Result {
 public:
  explicit Result(PGresult* r) : r_(r, &PQclear) {}
  int rows() const { return PQntuples(r_.get()); }
  int affected() const;
  bool null(int row, int col) const { return PQgetisnull(r_.get(), row, col) != 0; }
  std::string text(int row, int col) const { return PQgetvalue(r_.get(), row, col); }
  std::int64_t int64(int row, int col) const;
  std::optional<std::string> optional_text(int row, int col) const;
  std::optional<std::int64_t> optional_int64(int row, int col) const;

 private:
  std::unique_ptr<PGresult, void (*)(PGresult*)> r_;
};

class Connection {
 public:
  Connection(const std::string& url, const ConnectOptions& options);
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Runs `sql` (with $1.. placeholders) as a statement prepared once per connection.
  Result exec(const char* sql, const std::vector<Param>& params = {});
  // Runs one or more statements without parameters (BEGIN, COMMIT, DDL, cursors); the result
  // is the last statement's.
  Result exec_simple(const char* sql);
  bool broken() const { return PQstatus(conn_.get()) != CONNECTION_OK; }
  // Connected and outside any transaction: fit to be handed to the next caller.
  bool reusable() const { return !broken() && PQtransactionStatus(conn_.get()) == PQTRANS_IDLE; }

 private:
  [[noreturn]] void fail(PGresult* r, std::string_view what);
  Result check(PGresult* r, std::string_view what);

  std::unique_ptr<PGconn, void (*)(PGconn*)> conn_;
  std::unordered_map<const char*, std::string> prepared_;  // sql text address -> name
};

// At most `size` connections, opened lazily and reopened after a failure. Thread-safe.
class Pool {
 public:
  Pool(std::string url, int size, ConnectOptions options);

  class Lease {
   public:
    Lease(Pool& pool, std::unique_ptr<Connection> c) : pool_(pool), c_(std::move(c)) {}
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease() { pool_.give_back(std::move(c_)); }
    Connection& operator*() { return *c_; }
    Connection* operator->() { return c_.get(); }

   private:
    Pool& pool_;
    std::unique_ptr<Connection> c_;
  };

  // Waits for a free slot; throws PgError if a new connection cannot be opened.
  Lease acquire();
  // Closes the idle connections (after one was found broken, the others likely are too).
  void drop_idle() noexcept;

 private:
  void give_back(std::unique_ptr<Connection> c) noexcept;

  std::string url_;
  int size_;
  ConnectOptions options_;
  std::mutex mu_;
  std::condition_variable freed_;
  int out_ = 0;  // leased connections
  std::vector<std::unique_ptr<Connection>> idle_;
};

}  // namespace booking::detail::pg
