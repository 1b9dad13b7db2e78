// A one-shot wake-up for one sleeping thread: wait() returns once post() has run (and resets),
// whichever came first. post() notifies under the mutex, so a waiter cannot return and free the
// object while post() still uses it: the object may live on the waiter's stack.
//
// (std::binary_semaphore in GCC 12 spins with sched_yield before it sleeps, which cost ~15 % of
// a loaded daemon's CPU on 2 cores; a mutex and a condition variable sleep at once.)
#pragma once

#include <condition_variable>
#include <mutex>

namespace booking::detail {

class Wakeup {
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

}  // namespace booking::detail
