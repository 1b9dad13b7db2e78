#include "core/lock_rounds.hpp"

#include <algorithm>

namespace booking::detail {

LockRounds::~LockRounds() {
  {
    std::unique_lock lock(mu_);
    idle_cv_.wait(lock, [&] { return async_in_flight_.load() == 0; });
    stopping_ = true;
  }
  lead_cv_.notify_all();
  if (committer_.joinable()) committer_.join();
}

std::string LockRounds::queue_name(std::vector<std::string>& keys) {
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  std::string name;
  for (const std::string& k : keys) {
    name += k;
    name += '\0';  // lock keys are text: no key contains it
  }
  return name;
}

LockRounds::Outcome LockRounds::hold(std::vector<std::string> keys, HoldPlan plan,
                                     SteadyTime deadline) {
  const std::string name = queue_name(keys);
  Waiter self{std::move(plan), std::chrono::steady_clock::now(), deadline, {}, std::nullopt, {}};
  bool first = false;
  {
    std::lock_guard lock(mu_);
    Queue& q = queues_[name];
    if (q.keys.empty()) q.keys = keys;
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
  Round round = submit_round(name, keys);
  return std::move(*finish_round(round, &self));
}

void LockRounds::hold(std::vector<std::string> keys, HoldPlan plan, SteadyTime deadline,
                      Done done) {
  const std::string name = queue_name(keys);
  std::unique_ptr<Waiter> waiter(new Waiter{std::move(plan),
                                            std::chrono::steady_clock::now(),
                                            deadline,
                                            std::move(done),
                                            std::nullopt,
                                            {}});
  std::lock_guard lock(mu_);
  // What can throw comes first, so that a throw leaves nothing queued (and the caller answers).
  if (!committer_.joinable()) committer_ = std::thread([this] { commit_loop(); });
  auto [it, inserted] = queues_.try_emplace(name);
  Queue& q = it->second;
  try {
    if (inserted) q.keys = keys;
    q.waiting.push_back(waiter.get());
    if (!q.led) {
      to_lead_.push_back(name);
      q.led = true;
      if (to_lead_.size() == 1) lead_cv_.notify_one();  // it sleeps only when there was none
    }
  } catch (...) {
    if (!q.waiting.empty() && q.waiting.back() == waiter.get()) q.waiting.pop_back();
    if (inserted) queues_.erase(it);
    throw;
  }
  waiter.release();  // the queue owns it now
  ++async_in_flight_;
}

void LockRounds::schedule(const std::string& name) {
  to_lead_.push_back(name);
  if (to_lead_.size() == 1) lead_cv_.notify_one();  // it sleeps only when there was none
}

void LockRounds::commit_loop() {
  std::unique_lock lock(mu_);
  while (true) {
    lead_cv_.wait(lock, [&] { return stopping_ || !to_lead_.empty(); });
    if (to_lead_.empty()) return;  // stopping, and every hold answered
    const std::string name = std::move(to_lead_.front());
    to_lead_.pop_front();
    const std::vector<std::string> keys = queues_.at(name).keys;
    lock.unlock();
    // The round is answered before the next is submitted: a second thread to answer while
    // this one submits cost 13 % of bookingd's holds/s (its wake-ups), and for one process the
    // next round's holds simply queue meanwhile and make a bigger round.
    Round round = submit_round(name, keys);
    finish_round(round, nullptr);
    lock.lock();
  }
}

LockRounds::Round LockRounds::submit_round(const std::string& name,
                                           const std::vector<std::string>& keys) {
  // The queue's head is the round's oldest hold, so its deadline is the earliest of the round.
  SteadyTime deadline;
  {
    std::lock_guard lock(mu_);
    deadline = queues_.at(name).waiting.front()->deadline;
  }
  auto lease = acquire_(keys, deadline);
  Round round;
  {
    std::lock_guard lock(mu_);
    std::deque<Waiter*>& waiting = queues_.at(name).waiting;
    round.waiters.assign(waiting.begin(), waiting.end());
    waiting.clear();
  }
  const std::size_t n = round.waiters.size();
  round.waited.resize(n);
  if (!lease) {
    round.refused = lease.error();
    const auto now = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < n; ++i) round.waited[i] = now - round.waiters[i]->arrived;
    pass_on(name);
    return round;
  }
  round.pending.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    round.waited[i] = std::chrono::steady_clock::now() - round.waiters[i]->arrived;
    try {
      round.pending[i] = submit_(std::move(round.waiters[i]->plan));
    } catch (...) {  // bad_alloc: the rest are answered below; no waiter is left asleep
      break;
    }
  }
  (void)lease.value().release();
  pass_on(name);
  return round;
}

std::optional<LockRounds::Outcome> LockRounds::finish_round(Round& round, const Waiter* self) {
  std::optional<Outcome> mine;
  // Every waiter but `self` is answered exactly once: posted after its outcome is written, or
  // called back and deleted.
  auto answer = [&](std::size_t i, Outcome outcome) {
    Waiter* w = round.waiters[i];
    if (w == self) {
      mine = std::move(outcome);
    } else if (w->done) {
      try {
        w->done(std::move(outcome));
      } catch (...) {  // documented: dropped, the other holds are still answered
      }
      delete w;
      if (async_in_flight_.fetch_sub(1) == 1) {
        std::lock_guard lock(mu_);  // the destructor checks the count under mu_
        idle_cv_.notify_all();
      }
    } else {
      w->outcome = std::move(outcome);
      w->wake.post();
    }
  };
  // In order: the first wait may lead storage's group commit, which usually judges the whole
  // round in one batch.
  bool stored = false;
  for (std::size_t i = 0; i < round.waiters.size(); ++i) {
    if (round.refused) {
      answer(i, Outcome{*round.refused, round.waited[i]});
    } else if (round.pending[i]) {
      result<Booking> booking = round.pending[i]->wait();
      stored |= booking.has_value();
      answer(i, Outcome{std::move(booking), round.waited[i]});
    } else {
      answer(i, Outcome{make_error(errc::internal, "the hold could not be submitted"),
                        round.waited[i]});
    }
  }
  if (stored && stored_) {
    try {
      stored_();
    } catch (...) {  // a feed waiter still reads again within its polling interval
    }
  }
  return mine;
}

void LockRounds::pass_on(const std::string& name) {
  Waiter* next = nullptr;
  {
    std::lock_guard lock(mu_);
    auto it = queues_.find(name);
    if (it->second.waiting.empty()) {
      queues_.erase(it);
    } else if (it->second.waiting.front()->done) {
      schedule(name);  // an asynchronous hold has no thread to lead: the committing thread does
    } else {
      next = it->second.waiting.front();
    }
  }
  if (next) next->wake.post();
}

}  // namespace booking::detail
