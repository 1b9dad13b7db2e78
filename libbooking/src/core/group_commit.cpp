#include "core/group_commit.hpp"

#include <algorithm>
#include <vector>

namespace booking::detail {

QueuedHold::~QueuedHold() {
  if (!waited_) (void)wait();
}

result<Booking> QueuedHold::wait() {
  waited_ = true;
  queue_.await(*this);
  return std::move(*outcome_);
}

std::unique_ptr<PendingHold> GroupCommit::submit(HoldPlan plan) {
  auto hold = std::make_unique<QueuedHold>(*this, std::move(plan));
  std::lock_guard lock(mu_);
  queue_.push_back(hold.get());
  return hold;
}

void GroupCommit::await(QueuedHold& hold) noexcept {
  std::unique_lock lock(mu_);
  while (!hold.done_) {
    if (leading_ && !hold.lead_) {
      hold.asleep_ = true;
      lock.unlock();
      hold.wake_.wait();
      lock.lock();
      hold.asleep_ = false;
      continue;
    }
    hold.lead_ = false;
    leading_ = true;
    const std::size_t n = std::min(queue_.size(), max_batch_);
    std::vector<QueuedHold*> batch(queue_.begin(), queue_.begin() + static_cast<long>(n));
    lock.unlock();
    commit(batch);
    lock.lock();
    queue_.erase(queue_.begin(), queue_.begin() + static_cast<long>(batch.size()));
    // The next leader is the first caller already asleep; if none is, the next caller to
    // arrive in await() finds no leader and leads. It is woken first, so that the next batch
    // commits while this leader wakes the callers of its own batch one by one.
    std::vector<QueuedHold*> posts;
    posts.reserve(batch.size() + 1);
    auto next =
        std::find_if(queue_.begin(), queue_.end(), [](const QueuedHold* h) { return h->asleep_; });
    leading_ = next != queue_.end();
    if (leading_) {
      (*next)->lead_ = true;
      posts.push_back(*next);
    }
    for (QueuedHold* h : batch) {
      h->done_ = true;
      if (h->asleep_) posts.push_back(h);
    }
    lock.unlock();
    for (QueuedHold* h : posts) h->wake_.post();
    lock.lock();
  }
}

void GroupCommit::commit(std::span<QueuedHold* const> batch) noexcept {
  try {
    commit_(batch);
  } catch (const std::exception& e) {
    // Whatever outcomes were set, the transaction did not commit as a whole: fail them all.
    for (QueuedHold* h : batch) {
      h->set_outcome(make_error(errc::internal, std::string("storage error: ") + e.what()));
    }
  } catch (...) {
    for (QueuedHold* h : batch) h->set_outcome(make_error(errc::internal, "storage error"));
  }
}

}  // namespace booking::detail
