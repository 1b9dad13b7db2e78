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
// An asynchronous hold (the overload with `Done`) has no thread to lead or to sleep: it queues
// like the others, and its round is led by whoever leads that queue, or, when it heads the
// queue, by this object's committing thread (started by the first asynchronous hold), which
// takes the lease, submits, releases, waits for storage and calls each hold's `Done`, round
// after round. A server uses this so that a request's thread need not sleep until its hold
// commits and be woken to answer: the committing thread writes the answer (bookingd's hold
// route). That thread leads the rounds of every tier set in turn, so a round whose lease is slow
// to come (a lock another process holds) delays the others' by as long.
//
// Thread-safe. A synchronous caller blocks until its own hold has an outcome.
#pragma once

#include <atomic>
#include <booking/event_repository.hpp>
#include <booking/lock_provider.hpp>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
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
  // Called once per round that stored a hold, after the round's answers: a change feed's
  // waiters are woken once per commit, not once per hold (each wake is a read of the feed).
  using Stored = std::function<void()>;

  LockRounds(Acquire acquire, Submit submit, Stored stored = {})
      : acquire_(std::move(acquire)), submit_(std::move(submit)), stored_(std::move(stored)) {}
  // Waits until every asynchronous hold has been answered, then stops the thread. No call may
  // be in progress or begin meanwhile, except from a `Done` (a hold planned again).
  ~LockRounds();
  LockRounds(const LockRounds&) = delete;
  LockRounds& operator=(const LockRounds&) = delete;

  struct Outcome {
    result<Booking> booking;
    // From the call until the hold was submitted under the lease (or the lease was refused).
    std::chrono::nanoseconds lock_wait{0};
  };
  // Submits `plan` under a lease on `keys` and waits for storage's answer. When the lease
  // cannot be had by the deadline (of the oldest hold waiting for these keys, which the others
  // queue behind), every hold of the round gets the provider's error.
  Outcome hold(std::vector<std::string> keys, HoldPlan plan, SteadyTime deadline);

  // The same without waiting: returns once the hold is queued, and `done` gets its outcome
  // later, once, on the committing thread (or on a synchronous caller's thread that leads its
  // round). `done` runs where other holds are answered, so it must be quick and must not wait
  // for another hold; it may queue a new one. What it throws is dropped. If this throws
  // (bad_alloc, no thread), nothing was queued and `done` is not called.
  using Done = std::function<void(Outcome)>;
  void hold(std::vector<std::string> keys, HoldPlan plan, SteadyTime deadline, Done done);

 private:
  struct Waiter {
    HoldPlan plan;
    SteadyTime arrived;
    SteadyTime deadline;
    Done done;  // set for an asynchronous hold, which the queue owns (deleted once answered)
    // Written before the waiter is posted, read by it after; a post without it makes the
    // waiter the next round's leader.
    std::optional<Outcome> outcome;
    Wakeup wake;
  };
  struct Queue {
    std::vector<std::string> keys;
    std::deque<Waiter*> waiting;  // arrival order
    bool led = false;             // a leader is running a round, or has been woken or scheduled
  };
  // A round submitted under its lease (or refused it), waiting for storage's answers.
  struct Round {
    std::vector<Waiter*> waiters;
    std::vector<std::unique_ptr<PendingHold>> pending;  // null: not submitted
    std::vector<std::chrono::nanoseconds> waited;
    std::optional<error> refused;  // the lease's error, for every waiter
  };

  // Sorts `keys`, drops repeats, and names their queue.
  std::string queue_name(std::vector<std::string>& keys);
  // Takes the lease for the holds waiting on `name` (until the deadline of the queue's head, the
  // oldest), submits them in order, releases and passes the queue on.
  Round submit_round(const std::string& name, const std::vector<std::string>& keys);
  // Waits for the round's outcomes, in order, and answers each waiter; returns `self`'s.
  std::optional<Outcome> finish_round(Round& round, const Waiter* self);
  // After a round took its holds: the next waiter leads the next round, or nobody waits.
  void pass_on(const std::string& name);
  // mu_ held: the committing thread leads `name`'s next round.
  void schedule(const std::string& name);
  void commit_loop();

  const Acquire acquire_;
  const Submit submit_;
  const Stored stored_;
  std::mutex mu_;                        // guards queues_, to_lead_, stopping_ and every
                                         // queued Waiter's place
  std::map<std::string, Queue> queues_;  // by the sorted keys; dropped when nobody waits
  std::deque<std::string> to_lead_;      // queues the committing thread leads next
  std::condition_variable lead_cv_;      // to_lead_ has a queue, or stopping_
  std::condition_variable idle_cv_;      // async_in_flight_ fell to 0
  bool stopping_ = false;
  std::atomic<std::size_t> async_in_flight_{0};  // asynchronous holds not yet answered
  std::thread committer_;                        // started by the first asynchronous hold
};

}  // namespace booking::detail
