// WAL checkpoints off the commit path.
//
// SQLite's automatic checkpoint runs inside the COMMIT that pushes the WAL past 1,000 pages: that
// commit copies every page back into the database file and syncs it, while every other writer
// (and with group commit, a whole batch of callers) waits. Measured under 100 HTTP clients on
// one tier this cost about a quarter of the throughput. SQLite's documented alternative is to
// checkpoint from another thread (https://sqlite.org/wal.html#application_initiated_checkpoints);
// this class does that, on its own connection, in PASSIVE mode (it never blocks the writer or
// readers). If the thread falls behind and the WAL reaches a hard limit anyway, the committing
// writer checkpoints itself, as the automatic checkpoint would have. Used at NORMAL durability
// only (see SqliteRepository's constructor for why not at FULL).
#pragma once

#include <sqlite3.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "sqlite/connection.hpp"

namespace booking::detail {

class Checkpointer {
 public:
  // Watches `writer`'s WAL through its WAL hook (which replaces its automatic checkpoint) and
  // checkpoints on `own` from a background thread each time the WAL grew by `pages` frames.
  Checkpointer(sqlite3* writer, std::unique_ptr<Connection> own, int pages, int limit);
  ~Checkpointer();  // stops the thread and gives the writer its automatic checkpoint back
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  // How many checkpoints the thread has run (for tests).
  long checkpoints() const noexcept { return done_.load(std::memory_order_relaxed); }

 private:
  static int on_commit(void* self, sqlite3* db, const char* schema, int frames);
  void run(const std::stop_token& stop);

  sqlite3* writer_;
  std::unique_ptr<Connection> own_;
  const int pages_;
  const int limit_;
  int next_ = pages_;    // the WAL size that asks for the next checkpoint (writer's thread only)
  int last_frames_ = 0;  // the WAL size at the last commit (writer's thread only)
  std::atomic<bool> due_{false};
  std::atomic<long> done_{0};
  std::mutex mu_;  // pairs with wake_
  std::condition_variable_any wake_;
  std::jthread thread_;  // last: starts once everything it uses exists
};

}  // namespace booking::detail
