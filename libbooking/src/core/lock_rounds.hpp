// Holds submitted under their tiers' lock in rounds: one lease for all of a process's waiting
// holds of the same tiers, and one sleep per hold.
//
// A hold takes its tiers' lock only to fix its place in storage's order (the commit comes after
// the release; core/group_commit.hpp). Taken hold by hold, a hot tier's lock is handed from
// thread to thread: each waiter sleeps until its turn, wakes to submit, and sleeps again until
// its commit, and every hand-over waits for the next thread to be scheduled. Here the holds of
// one process that wait for the same tiers queue in arrival order, and the thread at the head
// (the round's leader) takes the lease once, submits every waiting hold in that order, releases,
// makes the next waiter (if any) the next round's leader, and then waits for its round's
// outcomes and hands each to its caller. A caller that is not a leader sleeps once, until its
// outcome. The lock still orders the holds: first come, first served within a process (the
// queue), and across processes (the provider). A lease on other tiers, or on these and others,
// is another round's.
//
// Thread-safe. Every caller blocks until its own hold has an outcome.
#pragma once

#include <booking/event_repository.hpp>
#include <booking/lock_provider.hpp>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/wakeup.hpp"

namespace booking::detail {

class LockRounds {
 public:
  using SteadyTime = std::chrono::steady_clock::time_point;
  // Takes the lease on `keys`, waiting until `deadline`.
  using Acquire =
      std::function<result<Lease>(const std::vector<std::string>& keys, SteadyTime deadline)>;
  // Hands a hold to storage (EventRepository::submit_hold); its order is fixed on return.
  using Submit = std::function<std::unique_ptr<PendingHold>(HoldPlan plan)>;

  LockRounds(Acquire acquire, Submit submit)
      : acquire_(std::move(acquire)), submit_(std::move(submit)) {}

  struct Outcome {
    result<Booking> booking;
    // From the call until the hold was submitted under the lease (or the lease was refused).
    std::chrono::nanoseconds lock_wait{0};
  };
  // Submits `plan` under a lease on `keys` and waits for storage's answer. When the lease
  // cannot be had by the deadline (of the oldest hold waiting for these keys, which the others
  // queue behind), every hold of the round gets the provider's error.
  Outcome hold(std::vector<std::string> keys, HoldPlan plan, SteadyTime deadline);

 private:
  struct Waiter {
    HoldPlan plan;
    SteadyTime arrived;
    SteadyTime deadline;
    // Written before the waiter is posted, read by it after; a post without it makes the
    // waiter the next round's leader.
    std::optional<Outcome> outcome;
    Wakeup wake;
  };
  struct Queue {
    std::deque<Waiter*> waiting;  // arrival order
    bool led = false;             // a leader is running a round, or has been woken to
  };

  // Runs `self`'s round for the holds waiting on `name` and answers them.
  Outcome lead(const std::string& name, const std::vector<std::string>& keys, Waiter& self);
  // After a round took its holds: the next waiter leads the next round, or nobody waits.
  void pass_on(const std::string& name);

  const Acquire acquire_;
  const Submit submit_;
  std::mutex mu_;                        // guards queues_ and every queued Waiter's place
  std::map<std::string, Queue> queues_;  // by the sorted keys; dropped when nobody waits
};

}  // namespace booking::detail
