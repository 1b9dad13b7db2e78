// LockProvider for processes on one host.
//
// Each key is a file in the lock directory, named by the hex of the key (no path traversal is
// possible), created once and never unlinked: unlinking lets a waiter lock a deleted inode while
// a newcomer locks a fresh file of the same name. The OS lock is flock(2), which belongs to the
// open file description: classic fcntl locks would be dropped by any close() of the file in this
// process and do not exclude threads. The kernel releases a flock when its holder dies, SIGKILL
// included.
//
// flock has no timeout, so waits are non-blocking tries with jittered backoff until the
// deadline. Threads of this process first exclude each other on an in-process table (two threads
// sharing one descriptor would both "get" the flock); the TTL is enforced there. Across
// processes the guarantee is the kernel's release on death: a live process keeps its flock
// until it releases. Not for network file systems (refused).
#include <booking/lock_provider.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <thread>
#include <unordered_map>

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
    for (auto& [key, slot] : slots_) {
      if (slot.fd >= 0) ::close(slot.fd);
    }
  }

  result<LeaseInfo> acquire(std::span<const std::string> keys, std::chrono::milliseconds ttl,
                            SteadyTime deadline) override {
    LeaseInfo lease{detail::sorted_unique(keys), random_token(), {}};
    for (const auto& k : lease.keys) {
      if (k.empty() || k.size() > 120) {
        return make_error(errc::validation_failed, "lock keys must be 1-120 bytes");
      }
    }
    // 1. Exclude the other threads of this process.
    std::vector<Slot*> slots;
    {
      std::unique_lock lock(mu_);
      while (true) {
        auto now = std::chrono::steady_clock::now();
        SteadyTime wake = deadline;
        bool all_free = true;
        for (const auto& k : lease.keys) {
          const Slot& s = slots_[k];
          if (!s.token.empty() && s.valid_until > now) {
            all_free = false;
            wake = std::min(wake, s.valid_until);
          }
        }
        if (all_free) break;
        if (now >= deadline) return detail::lock_timeout_error("file", lease.keys);
        cv_.wait_until(lock, wake);
      }
      for (const auto& k : lease.keys) {
        BOOKING_TRY(open_slot(k, slots_[k]));
      }
      lease.valid_until = std::chrono::steady_clock::now() + ttl;
      for (const auto& k : lease.keys) {
        Slot& s = slots_[k];
        s.token = lease.token;
        s.valid_until = lease.valid_until;
        slots.push_back(&s);
      }
    }
    // 2. Exclude other processes, key by key in sorted order, all or nothing.
    detail::Backoff backoff;
    for (std::size_t i = 0; i < slots.size(); ++i) {
      while (true) {
        auto r = try_flock(*slots[i]);
        if (!r) {
          unwind(lease, i);
          return r.error();
        }
        if (r.value()) break;
        if (std::chrono::steady_clock::now() >= deadline) {
          unwind(lease, i);
          return detail::lock_timeout_error("file", lease.keys);
        }
        std::this_thread::sleep_for(backoff.next(deadline));
      }
    }
    return lease;
  }

  result<ReleaseOutcome> release(const LeaseInfo& lease) override {
    std::size_t owned = 0;
    {
      std::lock_guard lock(mu_);
      for (const auto& k : lease.keys) {
        auto it = slots_.find(k);
        if (it == slots_.end() || it->second.token != lease.token) continue;
        ::flock(it->second.fd, LOCK_UN);
        it->second.token.clear();
        ++owned;
      }
    }
    cv_.notify_all();
    bool expired = lease.valid_until <= std::chrono::steady_clock::now();
    if (owned == lease.keys.size() && !expired) return ReleaseOutcome::released;
    if (owned == 0 && !expired) return ReleaseOutcome::not_owner;
    return ReleaseOutcome::expired;
  }

  result<void> extend(LeaseInfo& lease, std::chrono::milliseconds ttl) override {
    std::lock_guard lock(mu_);
    auto now = std::chrono::steady_clock::now();
    for (const auto& k : lease.keys) {
      auto it = slots_.find(k);
      if (it == slots_.end() || it->second.token != lease.token ||
          it->second.valid_until <= now) {
        return make_error(errc::invalid_state, "lease on '" + k + "' is no longer held");
      }
    }
    lease.valid_until = now + ttl;
    for (const auto& k : lease.keys) slots_[k].valid_until = lease.valid_until;
    return boost::outcome_v2::success();
  }

  std::string describe() const override { return "file:" + dir_.string(); }

 private:
  struct Slot {
    int fd = -1;            // opened once, kept for the provider's life
    std::string token;      // in-process owner; empty when free
    SteadyTime valid_until;
  };

  std::string path_for(const std::string& key) const {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string name = "lock-";
    for (unsigned char c : key) {
      name += kHex[c >> 4];
      name += kHex[c & 0xF];
    }
    return (dir_ / name).string();
  }

  // Opens the key's file once; called under mu_, so fd is written once before any use.
  result<void> open_slot(const std::string& key, Slot& slot) {
    if (slot.fd >= 0) return boost::outcome_v2::success();
    int fd = ::open(path_for(key).c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
      return make_error(errc::lock_timeout, "cannot open lock file in " + dir_.string() + ": " +
                                                std::strerror(errno));
    }
    slot.fd = fd;
    return boost::outcome_v2::success();
  }

  // true when the flock was taken, false when another process holds it.
  result<bool> try_flock(const Slot& slot) {
    if (::flock(slot.fd, LOCK_EX | LOCK_NB) == 0) return true;
    if (errno == EWOULDBLOCK || errno == EINTR) return false;
    return make_error(errc::lock_timeout, std::string("flock failed: ") + std::strerror(errno));
  }

  // Releases keys [0, taken) at the OS level and every key of `lease` in-process.
  void unwind(const LeaseInfo& lease, std::size_t taken) {
    {
      std::lock_guard lock(mu_);
      for (std::size_t i = 0; i < lease.keys.size(); ++i) {
        Slot& s = slots_[lease.keys[i]];
        if (s.token != lease.token) continue;
        if (i < taken) ::flock(s.fd, LOCK_UN);
        s.token.clear();
      }
    }
    cv_.notify_all();
  }

  std::filesystem::path dir_;
  std::mutex mu_;  // guards slots_ (the map and each slot's token and deadline)
  std::condition_variable cv_;
  std::unordered_map<std::string, Slot> slots_;  // node-based: Slot* stays valid
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
