#include "core/lock_rounds.hpp"

#include <algorithm>

namespace booking::detail {

LockRounds::Outcome LockRounds::hold(std::vector<std::string> keys, HoldPlan plan,
                                     SteadyTime deadline) {
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  std::string name;
  for (const std::string& k : keys) {
    name += k;
    name += '\0';  // lock keys are text: no key contains it
  }
  Waiter self{std::move(plan), std::chrono::steady_clock::now(), deadline, std::nullopt, {}};
  bool first = false;
  {
    std::lock_guard lock(mu_);
    Queue& q = queues_[name];
    q.waiting.push_back(&self);
    first = !q.led;
    q.led = true;
  }
  if (!first) {
    // Posted once: with this hold's outcome (another leader submitted it), or without one to
    // lead the next round.
    self.wake.wait();
    if (self.outcome) return std::move(*self.outcome);
  }
  return lead(name, keys, self);
}

LockRounds::Outcome LockRounds::lead(const std::string& name, const std::vector<std::string>& keys,
                                     Waiter& self) {
  // `self` heads the queue (the first to arrive, or made leader as its head), so its deadline
  // is the earliest of the round.
  auto lease = acquire_(keys, self.deadline);
  std::vector<Waiter*> round;
  {
    std::lock_guard lock(mu_);
    std::deque<Waiter*>& waiting = queues_[name].waiting;
    round.assign(waiting.begin(), waiting.end());
    waiting.clear();
  }
  // Every waiter but `self` is posted exactly once, after its outcome is written.
  auto answer = [&](std::size_t i, Outcome outcome) {
    round[i]->outcome = std::move(outcome);
    if (round[i] != &self) round[i]->wake.post();
  };
  if (!lease) {
    const auto now = std::chrono::steady_clock::now();
    pass_on(name);
    for (std::size_t i = 0; i < round.size(); ++i) {
      answer(i, Outcome{lease.error(), now - round[i]->arrived});
    }
    return std::move(*self.outcome);
  }
  std::vector<std::unique_ptr<PendingHold>> pending(round.size());
  std::vector<std::chrono::nanoseconds> waited(round.size());
  for (std::size_t i = 0; i < round.size(); ++i) {
    waited[i] = std::chrono::steady_clock::now() - round[i]->arrived;
    try {
      pending[i] = submit_(std::move(round[i]->plan));
    } catch (...) {  // bad_alloc: the rest are answered below; no waiter is left asleep
      break;
    }
  }
  (void)lease.value().release();
  pass_on(name);
  // In order: the first wait may lead storage's group commit, which usually judges the whole
  // round in one batch.
  for (std::size_t i = 0; i < round.size(); ++i) {
    if (pending[i]) {
      answer(i, Outcome{pending[i]->wait(), waited[i]});
    } else {
      answer(i, Outcome{make_error(errc::internal, "the hold could not be submitted"), waited[i]});
    }
  }
  return std::move(*self.outcome);
}

void LockRounds::pass_on(const std::string& name) {
  Waiter* next = nullptr;
  {
    std::lock_guard lock(mu_);
    auto it = queues_.find(name);
    if (it->second.waiting.empty()) {
      queues_.erase(it);
    } else {
      next = it->second.waiting.front();
    }
  }
  if (next) next->wake.post();
}

}  // namespace booking::detail
