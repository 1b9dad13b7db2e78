#include "sqlite/writer_gate.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <thread>

#include "locks/lock_util.hpp"

namespace booking::detail {

std::unique_ptr<WriterGate> WriterGate::open(const std::string& db_path) {
  if (db_path.empty() || db_path == ":memory:") return nullptr;
  const std::string path = db_path + "-writer";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);  // flock needs no write access
  if (fd < 0) return nullptr;
  return std::make_unique<WriterGate>(fd);
}

WriterGate::~WriterGate() { ::close(fd_); }

bool WriterGate::lock(std::chrono::steady_clock::time_point deadline) {
  // Short, jittered polls rather than a blocking flock: a blocking flock has no timeout, and a
  // stopped (not dead) holder must give the waiter lock_timeout, not a hang.
  Backoff backoff(std::chrono::microseconds(50), std::chrono::microseconds(1000));
  while (true) {
    if (::flock(fd_, LOCK_EX | LOCK_NB) == 0) return true;
    if (errno != EWOULDBLOCK && errno != EINTR) return true;  // no gate to be had: SQLite decides
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(backoff.next(deadline));
  }
}

void WriterGate::unlock() noexcept { ::flock(fd_, LOCK_UN); }

}  // namespace booking::detail
