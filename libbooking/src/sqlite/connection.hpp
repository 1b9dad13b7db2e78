// One SQLite connection with a cache of prepared statements, and a write-transaction guard.
// Not thread-safe: a Connection is used by one thread at a time (the repository arranges it).
#pragma once

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include <chrono>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "sqlite/writer_gate.hpp"

namespace booking::detail {

class Connection {
 public:
  Connection(const std::string& path, int flags, int busy_timeout_ms);

  // A prepared statement for `sql`, reset and with cleared bindings, reused across calls.
  SQLite::Statement& prepare(const char* sql);

  // Resets every statement prepared since the last call. A statement left mid-step keeps its
  // read transaction (and so a stale WAL snapshot) open: call this when an operation ends.
  void reset_statements() noexcept;

  SQLite::Database& db() { return db_; }

  // Makes every WriteTransaction on this connection pass `gate` first (waiting at most
  // `wait`). Without one, writers of other processes are ordered by SQLite's busy handler.
  void use_writer_gate(std::unique_ptr<WriterGate> gate, std::chrono::milliseconds wait) {
    gate_ = std::move(gate);
    gate_wait_ = wait;
  }

 private:
  friend class WriteTransaction;
  SQLite::Database db_;
  std::unique_ptr<WriterGate> gate_;
  std::chrono::milliseconds gate_wait_{0};
  std::unordered_map<const char*, std::unique_ptr<SQLite::Statement>> cache_;
  std::vector<SQLite::Statement*> used_;
};

// Passes the connection's writer gate, if any, then BEGIN IMMEDIATE (takes the write lock up
// front, so two writers never deadlock upgrading a read lock); ROLLBACK on destruction unless
// commit() ran; the gate is released when the transaction ends. Throws SQLite::Exception with
// SQLITE_BUSY when the gate cannot be had in time.
class WriteTransaction {
 public:
  explicit WriteTransaction(Connection& c);
  ~WriteTransaction();
  WriteTransaction(const WriteTransaction&) = delete;
  WriteTransaction& operator=(const WriteTransaction&) = delete;
  void commit();

 private:
  void end() noexcept;
  Connection& c_;
  bool done_ = false;
  bool gated_ = false;
};

// Applies the versioned schema migrations that `c` has not seen yet, in one transaction (none
// when the schema is current, so opening a database does not queue for its writer).
void migrate(Connection& c);

}  // namespace booking::detail
