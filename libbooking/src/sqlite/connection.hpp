// One SQLite connection with a cache of prepared statements, and a write-transaction guard.
// Not thread-safe: a Connection is used by one thread at a time (the repository arranges it).
#pragma once

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

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

 private:
  SQLite::Database db_;
  std::unordered_map<const char*, std::unique_ptr<SQLite::Statement>> cache_;
  std::vector<SQLite::Statement*> used_;
};

// BEGIN IMMEDIATE on construction (takes the write lock up front, so two writers never
// deadlock upgrading a read lock); ROLLBACK on destruction unless commit() ran.
class WriteTransaction {
 public:
  explicit WriteTransaction(Connection& c);
  ~WriteTransaction();
  WriteTransaction(const WriteTransaction&) = delete;
  WriteTransaction& operator=(const WriteTransaction&) = delete;
  void commit();

 private:
  Connection& c_;
  bool done_ = false;
};

// Applies the versioned schema migrations that `c` has not seen yet, in one transaction.
void migrate(Connection& c);

}  // namespace booking::detail
