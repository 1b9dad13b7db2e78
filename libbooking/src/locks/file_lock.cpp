// LockProvider for processes on one host.
//
// Each key is a file in the lock directory, named by the hex of the key (no path traversal is
// possible), created once and never unlinked: unlinking lets a waiter lock a deleted inode while
// a newcomer locks a fresh file of the same name. The OS lock is flock(2), which belongs to the
// open file description: classic fcntl locks would be dropped by any close() of the file in this
// process and do not exclude threads. The kernel releases a flock when its holder dies, SIGKILL
// included.
//
// flock has no timeout, so the cross-process wait is short jittered polls (50 us growing to
// 1 ms) until the deadline: a blocking flock could not give up, and a stopped (not dead) holder
// must give its waiters lock_timeout rather than a hang. Threads of this process first queue on
// an in-process first-come-first-served table (two threads sharing one descriptor would both
// "get" the flock), so each process has at most one poller per key, and the TTL is enforced
// there. Across processes the guarantee is the kernel's release on death: a live process keeps
// its flock until it releases. Not for network file systems (refused).
#include <fcntl.h>
#include <sys/file.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <booking/lock_provider.hpp>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "locks/fifo_table.hpp"
#include "locks/lock_util.hpp"

namespace booking {

namespace {

using SteadyTime = std::chrono::steady_clock::time_point;

constexpr long kNfsMagic = 0x6969;
constexpr long kSmbMagic = 0x517B;
constexpr long kCifsMagic = 0xFF534D42;
constexpr long kSmb2Magic = 0xFE534D42;

class FileLockProvider final : public LockProvider {
 public:
  explicit FileLockProvider(std::filesystem::path dir) : dir_(std::move(dir)) {}

  ~FileLockProvider() override {
    for (auto& [key, fd] : fds_) ::close(fd);
  }

  result<LeaseInfo> acquire(std::span<const std::string> keys, std::chrono::milliseconds ttl,
                            SteadyTime deadline) override {
    LeaseInfo lease{detail::sorted_unique(keys), random_token(), {}};
    for (const auto& k : lease.keys) {
      if (k.empty() || k.size() > 120) {
        return make_error(errc::validation_failed, "lock keys must be 1-120 bytes");
      }
    }
    // 1. Queue behind the other threads of this process.
    BOOKING_TRY(table_.acquire(lease, ttl, deadline, "file"));
    std::vector<int> fds;
    for (const auto& k : lease.keys) {
      auto fd = fd_for(k);
      if (!fd) {
        table_.release(lease);
        return fd.error();
      }
      fds.push_back(fd.value());
    }
    // 2. Exclude other processes, key by key in sorted order, all or nothing.
    for (std::size_t i = 0; i < fds.size(); ++i) {
      detail::Backoff backoff(std::chrono::microseconds(50), std::chrono::microseconds(1000));
      while (true) {
        if (::flock(fds[i], LOCK_EX | LOCK_NB) == 0) break;
        const int err = errno;
        const bool busy = err == EWOULDBLOCK || err == EINTR;
        if (!busy || std::chrono::steady_clock::now() >= deadline) {
          for (std::size_t j = 0; j < i; ++j) ::flock(fds[j], LOCK_UN);
          table_.release(lease);
          if (!busy) {
            return make_error(errc::lock_timeout,
                              std::string("flock failed: ") + std::strerror(err));
          }
          return detail::lock_timeout_error("file", lease.keys);
        }
        std::this_thread::sleep_for(backoff.next(deadline));
      }
    }
    return lease;
  }

  result<ReleaseOutcome> release(const LeaseInfo& lease) override {
    const bool expired = lease.valid_until <= std::chrono::steady_clock::now();
    // The flock goes while the table still says we own the key: a thread of this process woken
    // for it must not find our flock (on the shared descriptor it would seem to be its own).
    const std::size_t owned = table_.release(lease, [this](const std::string& k) {
      std::lock_guard lock(fds_mu_);
      if (auto it = fds_.find(k); it != fds_.end()) ::flock(it->second, LOCK_UN);
    });
    if (owned == lease.keys.size() && !expired) return ReleaseOutcome::released;
    if (owned == 0 && !expired) return ReleaseOutcome::not_owner;
    return ReleaseOutcome::expired;
  }

  result<void> extend(LeaseInfo& lease, std::chrono::milliseconds ttl) override {
    return table_.extend(lease, ttl);
  }

  std::string describe() const override { return "file:" + dir_.string(); }

 private:
  std::string path_for(const std::string& key) const {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string name = "lock-";
    for (unsigned char c : key) {
      name += kHex[c >> 4];
      name += kHex[c & 0xF];
    }
    return (dir_ / name).string();
  }

  // The key's lock file, opened once and kept for the provider's life.
  result<int> fd_for(const std::string& key) {
    std::lock_guard lock(fds_mu_);
    if (auto it = fds_.find(key); it != fds_.end()) return it->second;
    int fd = ::open(path_for(key).c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
      return make_error(errc::lock_timeout,
                        "cannot open lock file in " + dir_.string() + ": " + std::strerror(errno));
    }
    fds_.emplace(key, fd);
    return fd;
  }

  std::filesystem::path dir_;
  detail::FifoTable table_;
  std::mutex fds_mu_;  // guards fds_
  std::unordered_map<std::string, int> fds_;
};
}  // namespace

result<std::unique_ptr<LockProvider>> make_file_lock_provider(const std::string& dir) {
  if (dir.empty()) return make_error(errc::validation_failed, "file lock needs a directory");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec || !std::filesystem::is_directory(dir)) {
    return make_error(errc::lock_timeout,
                      "cannot create lock directory '" + dir + "': " + ec.message());
  }
  struct statfs fs {};
  if (::statfs(dir.c_str(), &fs) == 0) {
    long type = static_cast<long>(fs.f_type);
    if (type == kNfsMagic || type == kSmbMagic || type == kCifsMagic || type == kSmb2Magic) {
      return make_error(errc::validation_failed,
                        "lock directory '" + dir +
                            "' is on a network file system; use --lock redis://... instead");
    }
  }
  if (::access(dir.c_str(), W_OK) != 0) {
    return make_error(errc::lock_timeout, "lock directory '" + dir + "' is not writable");
  }
  return std::unique_ptr<LockProvider>(
      std::make_unique<FileLockProvider>(std::filesystem::absolute(dir)));
}

}  // namespace booking
