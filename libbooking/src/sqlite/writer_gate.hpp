// A gate that the writers of one SQLite file pass one at a time, across the processes of a host.
//
// SQLite lets one connection write at a time; the others wait in its busy handler, which in
// Debian's build (no blocking lock wait) sleeps between tries with pauses growing to 100 ms.
// A writer that sleeps loses the lock to every writer that comes along meanwhile: measured, a
// daemon's hold waited 6-7 s while four CLI processes booked the same database. Each write
// transaction therefore first takes this gate, an flock(2) on `<database>-writer` polled at
// sub-millisecond intervals, so that a waiter tries again within a millisecond of every release
// and cannot starve; SQLite's own lock is then free when the gate holder asks for it. The
// kernel drops the flock when its holder dies. The gate file is created next to the database
// and never removed (removing it would let two writers lock two different files).
#pragma once

#include <chrono>
#include <memory>
#include <string>

namespace booking::detail {

class WriterGate {
 public:
  // The gate of the database at `db_path`; nullptr for an in-memory or temporary database, or
  // when the gate file cannot be opened (writers then rely on SQLite's busy handler alone).
  static std::unique_ptr<WriterGate> open(const std::string& db_path);

  explicit WriterGate(int fd) : fd_(fd) {}
  ~WriterGate();
  WriterGate(const WriterGate&) = delete;
  WriterGate& operator=(const WriterGate&) = delete;

  // Takes the gate; false when `deadline` passed first. Not thread-safe: the repository's
  // writer mutex lets one thread of the process use it at a time.
  bool lock(std::chrono::steady_clock::time_point deadline);
  void unlock() noexcept;

 private:
  int fd_;
};

}  // namespace booking::detail
