// Group commit of holds, after LevelDB's write queue.
//
// Holds queue in submission order. One waiting caller at a time (the leader) takes everything
// queued (up to `max_batch`), hands it to the storage's commit function, which judges and stores
// the holds in one transaction and sets each one's outcome, then marks them done and hands
// leadership to the next waiting caller. One commit (one WAL append, one fsync, one round trip
// for COMMIT) serves a whole batch, and no thread hands its work to a thread of its own.
// Waiters sleep on their own signal, posted after the queue's mutex is released, so a woken
// caller does not queue for that mutex. Thread-safe.
#pragma once

#include <booking/event_repository.hpp>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>

#include "core/wakeup.hpp"

namespace booking::detail {

class GroupCommit;

// One hold in the queue. The commit function reads plan() and calls set_outcome() once.
class QueuedHold final : public PendingHold {
 public:
  QueuedHold(GroupCommit& queue, HoldPlan plan) : queue_(queue), plan_(std::move(plan)) {}
  ~QueuedHold() override;  // waits if wait() was not called: leaves the queue only once judged
  QueuedHold(const QueuedHold&) = delete;
  QueuedHold& operator=(const QueuedHold&) = delete;

  result<Booking> wait() override;

  const HoldPlan& plan() const noexcept { return plan_; }
  void set_outcome(result<Booking> outcome) { outcome_ = std::move(outcome); }

 private:
  friend class GroupCommit;

  GroupCommit& queue_;
  HoldPlan plan_;
  bool waited_ = false;  // owner's thread only
  // Guarded by the queue's mutex. A hold is posted at most once per sleep: when it is done, or
  // when leadership is handed to it (`lead_`); only a sleeping (`asleep_`) hold is posted, and
  // its owner cannot return before taking the post, so the post never outlives the hold.
  bool asleep_ = false;
  bool lead_ = false;
  bool done_ = false;
  std::optional<result<Booking>> outcome_;  // written by a leader before it sets done_
  Wakeup wake_;
};

class GroupCommit {
 public:
  // Judges and stores `batch` (in order) in one transaction and sets every hold's outcome.
  // An exception it lets escape fails every hold of the batch with `internal`, so it must
  // only throw when nothing of the batch committed.
  using CommitFn = std::function<void(std::span<QueuedHold* const> batch)>;

  GroupCommit(CommitFn commit, std::size_t max_batch)
      : commit_(std::move(commit)), max_batch_(max_batch) {}

  // Queues a hold; its place in the order of commits is fixed when this returns.
  std::unique_ptr<PendingHold> submit(HoldPlan plan);

 private:
  friend class QueuedHold;
  // Returns once `hold` has its outcome, leading batches when it is its turn.
  void await(QueuedHold& hold) noexcept;
  void commit(std::span<QueuedHold* const> batch) noexcept;

  const CommitFn commit_;
  const std::size_t max_batch_;
  std::mutex mu_;  // guards queue_, leading_ and each queued hold's flags
  std::deque<QueuedHold*> queue_;
  bool leading_ = false;  // a caller is committing a batch, or leadership is being handed over
};

}  // namespace booking::detail
