// BookingService::hold with a callback: answered on the service's answering thread, exactly once,
// with the same rules, order and stock as the synchronous hold.
#include <algorithm>
#include <atomic>
#include <booking/feed.hpp>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "process.hpp"
#include "service/gate_provider.hpp"
#include "support.hpp"

using namespace booking;
using namespace booking::test;
using namespace std::chrono_literals;

namespace {

// Collects asynchronous answers: how many, and whether any came twice.
class Answers {
 public:
  BookingService::HoldDone sink(std::size_t slot) {
    return [this, slot](result<Booking> r) {
      std::lock_guard lock(mu_);
      if (got_[slot]) ++twice_;
      got_[slot] = std::move(r);
      ++count_;
      cv_.notify_all();
    };
  }
  std::size_t add() {
    std::lock_guard lock(mu_);
    got_.emplace_back();
    return got_.size() - 1;
  }
  // Waits (at most 30 s) for the answer in `slot`.
  std::optional<result<Booking>> await_slot(std::size_t slot) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, 30s, [&] { return got_[slot].has_value(); });
    return got_[slot];
  }
  // Waits (at most 30 s) until `n` answers came.
  bool await(std::size_t n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, 30s, [&] { return count_ >= n; });
  }
  std::size_t count() {
    std::lock_guard lock(mu_);
    return count_;
  }
  int twice() {
    std::lock_guard lock(mu_);
    return twice_;
  }
  std::optional<result<Booking>> at(std::size_t slot) {
    std::lock_guard lock(mu_);
    return got_[slot];
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::optional<result<Booking>>> got_;  // deque: slots stay put as it grows
  std::size_t count_ = 0;
  int twice_ = 0;
};

}  // namespace

TEMPLATE_TEST_CASE(
    "asynchronous and synchronous holds racing for one tier sell exactly its capacity",
    "[service][async][race]", ALL_BACKENDS) {
  TestType b;
  Fixture f(b.repo);
  constexpr std::int64_t kCapacity = 300;
  REQUIRE(f.service.create_event(sample_event("Async", {{"gold", kCapacity}, {"sil", 50}})));

  Answers answers;
  std::atomic<std::int64_t> booked{0};
  std::mutex ids_mu;
  std::set<std::string> ids;
  std::vector<std::string> unexpected;
  auto record = [&](const result<Booking>& h) {
    std::lock_guard lock(ids_mu);
    if (h) {
      ids.insert(h.value().id);
      booked += h.value().ticket_count();
    } else if (h.error().code != errc::insufficient_stock) {
      unexpected.push_back(std::string(to_string(h.error().code)) + ": " + h.error().message);
    }
  };
  std::vector<std::thread> threads;
  // 8 callers wait for each answer (an HTTP client's pace), 8 hold synchronously, and one
  // queues 200 holds at once without waiting.
  for (int t = 0; t < 16; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(t));
      for (int i = 0; i < 40; ++i) {
        const HoldRequest r = one("Async", "gold-Async", 1 + static_cast<std::int64_t>(rng() % 3));
        if (t % 2 == 0) {
          const std::size_t slot = answers.add();
          f.service.hold(r, answers.sink(slot));
          const auto got = answers.await_slot(slot);
          if (got) record(*got);  // else missing from the count below
        } else {
          record(f.service.hold(r));
        }
      }
    });
  }
  std::vector<std::size_t> burst;
  for (int i = 0; i < 200; ++i) {
    const std::size_t slot = answers.add();
    burst.push_back(slot);
    f.service.hold(one("Async", i % 4 == 0 ? "sil-Async" : "gold-Async"), answers.sink(slot));
  }
  for (auto& t : threads) t.join();
  REQUIRE(answers.await(8 * 40 + 200));
  for (std::size_t slot : burst) record(*answers.at(slot));

  for (const auto& u : unexpected) UNSCOPED_INFO(u);
  CHECK(unexpected.empty());
  CHECK(answers.count() == 8 * 40 + 200);
  CHECK(answers.twice() == 0);
  const Event e = f.service.get_event("Async").value();
  CHECK(e.tiers[0].stock.held == kCapacity);  // far more was asked: sold out exactly
  CHECK(booked == kCapacity + e.tiers[1].stock.held);
  CHECK(static_cast<std::int64_t>(ids.size()) == f.repo->count_active_holds().value());
  require_conserved(*f.repo, "Async");
}

TEMPLATE_TEST_CASE(
    "an asynchronous hold is answered before the call returns when no commit is needed",
    "[service][async]", ALL_BACKENDS) {
  TestType b;
  Fixture f(b.repo);
  REQUIRE(f.service.create_event(sample_event("Now", {{"gold", 5}})));
  const auto caller = std::this_thread::get_id();
  struct Case {
    HoldRequest request;
    errc code;
  };
  HoldRequest empty;
  empty.event_key = "Now";
  std::vector<Case> cases{{empty, errc::validation_failed},
                          {one("Nope", "gold-Nope"), errc::not_found},
                          {one("Now", "lead-Now"), errc::not_found}};
  for (const Case& c : cases) {
    std::optional<result<Booking>> got;
    std::thread::id where;
    f.service.hold(c.request, [&](result<Booking> r) {
      got = std::move(r);
      where = std::this_thread::get_id();
    });
    REQUIRE(got.has_value());  // before hold() returned
    CHECK(where == caller);
    REQUIRE_FALSE(*got);
    CHECK(got->error().code == c.code);
  }
  CHECK(f.repo->count_active_holds().value() == 0);
}

TEMPLATE_TEST_CASE(
    "an asynchronous hold returns while its lease waits, and is answered once it is had",
    "[service][async]", ALL_BACKENDS) {
  TestType b;
  GateProvider gate;
  ManualClock clock{kT0};
  ServiceOptions options;
  options.lock_wait.wait = 10s;
  std::atomic<int> observed{0};
  BookingService service(*b.repo, gate, clock, options);
  service.set_observer({[&](std::chrono::nanoseconds) { observed.fetch_add(1); }});
  REQUIRE(service.create_event(sample_event("Gate", {{"gold", 3}})));

  gate.close();
  Answers answers;
  for (int i = 0; i < 5; ++i) service.hold(one("Gate", "gold-Gate"), answers.sink(answers.add()));
  std::this_thread::sleep_for(100ms);
  CHECK(answers.count() == 0);  // every call returned, none answered: the lease is not had
  gate.open();
  REQUIRE(answers.await(5));
  int sold = 0;
  for (std::size_t i = 0; i < 5; ++i) {
    const auto a = answers.at(i).value();
    if (a) {
      ++sold;
    } else {
      CHECK(a.error().code == errc::insufficient_stock);
    }
  }
  CHECK(sold == 3);
  CHECK(answers.twice() == 0);
  CHECK(observed.load() == 5);
  require_conserved(*b.repo, "Gate");

  // A lease that never comes: every waiting hold hears lock_timeout, and nothing is stored.
  ServiceOptions quick;
  quick.lock_wait.wait = 200ms;
  BookingService impatient(*b.repo, gate, clock, quick);
  REQUIRE(impatient.create_event(sample_event("Stuck", {{"gold", 3}})));
  gate.close();
  Answers late;
  for (int i = 0; i < 4; ++i) impatient.hold(one("Stuck", "gold-Stuck"), late.sink(late.add()));
  REQUIRE(late.await(4));
  for (std::size_t i = 0; i < 4; ++i) {
    const auto a = late.at(i).value();
    REQUIRE_FALSE(a);
    CHECK(a.error().code == errc::lock_timeout);
  }
  gate.open();
  CHECK(b.repo->get_event("Stuck").value().tiers[0].stock.held == 0);
}

TEMPLATE_TEST_CASE("an asynchronous hold planned from an outdated definition is planned again",
                   "[service][async]", ALL_BACKENDS) {
  TestType b;
  Fixture mine(b.repo);
  Fixture theirs(b.repo);
  REQUIRE(mine.service.create_event(sample_event("Upd", {{"gold", 10}})));
  REQUIRE(mine.service.hold(one("Upd", "gold-Upd")));  // caches the definition
  EventPatch p;
  p.tiers.push_back(TierPatch{});
  p.tiers.back().key = "gold-Upd";
  p.tiers.back().price = std::string("7");
  REQUIRE(theirs.service.update_event("Upd", p));

  Answers answers;
  {
    ActorScope actor("alice");
    mine.service.hold(one("Upd", "gold-Upd"), answers.sink(answers.add()));
  }
  REQUIRE(answers.await(1));
  const auto a = answers.at(0).value();
  REQUIRE(a);
  CHECK(a.value().lines[0].unit_price_minor == 700);
  // Planned again on the answering thread, still recorded as the caller's.
  auto changes = mine.service.changes(0, 1000).value();
  auto it = std::find_if(changes.begin(), changes.end(),
                         [&](const Change& c) { return c.booking_id == a.value().id; });
  REQUIRE(it != changes.end());
  CHECK(it->actor == "alice");
  require_conserved(*b.repo, "Upd");
}

TEMPLATE_TEST_CASE("a service is destroyed only after answering every asynchronous hold",
                   "[service][async]", ALL_BACKENDS) {
  TestType b;
  auto locks = make_memory_lock_provider();
  ManualClock clock{kT0};
  Answers answers;
  {
    BookingService service(*b.repo, *locks, clock);
    REQUIRE(service.create_event(sample_event("End", {{"gold", 150}, {"sil", 150}})));
    for (int i = 0; i < 300; ++i) {
      service.hold(one("End", i % 2 ? "gold-End" : "sil-End"), answers.sink(answers.add()));
    }
  }  // destroyed here, holds still queued
  CHECK(answers.count() == 300);
  CHECK(answers.twice() == 0);
  int sold = 0;
  for (std::size_t i = 0; i < 300; ++i) sold += answers.at(i).value() ? 1 : 0;
  CHECK(sold == 300);
  CHECK(b.repo->count_active_holds().value() == 300);
  require_conserved(*b.repo, "End");
}

TEMPLATE_TEST_CASE(
    "an asynchronous hold shows its planned booking to the caller first, as the answer stores it",
    "[service][async]", ALL_BACKENDS) {
  TestType b;
  Fixture f(b.repo);
  REQUIRE(f.service.create_event(sample_event("Plan", {{"gold", 1}})));
  const auto caller = std::this_thread::get_id();
  struct Seen {
    int calls = 0;
    std::thread::id where;
    Booking booking;
  };
  auto watch = [&](Seen& seen) {
    return [&seen](const Booking& planned) {
      ++seen.calls;
      seen.where = std::this_thread::get_id();
      seen.booking = planned;
    };
  };

  // Accepted: shown on the caller's thread before the call returns, equal to the answer.
  Answers answers;
  Seen accepted;
  f.service.hold(one("Plan", "gold-Plan"), answers.sink(answers.add()), watch(accepted));
  CHECK(accepted.calls == 1);
  CHECK(accepted.where == caller);
  auto a = answers.await_slot(0).value();
  REQUIRE(a);
  CHECK(a.value() == accepted.booking);

  // Refused by storage (sold out): shown, but the answer is the refusal.
  Seen refused;
  f.service.hold(one("Plan", "gold-Plan"), answers.sink(answers.add()), watch(refused));
  CHECK(refused.calls == 1);
  auto r = answers.await_slot(1).value();
  REQUIRE_FALSE(r);
  CHECK(r.error().code == errc::insufficient_stock);

  // Answered before the call returns: nothing was planned, nothing shown.
  Seen early;
  std::optional<result<Booking>> got;
  f.service.hold(
      one("Nope", "gold-Nope"), [&](result<Booking> x) { got = std::move(x); }, watch(early));
  REQUIRE(got.has_value());
  CHECK(got->error().code == errc::not_found);
  CHECK(early.calls == 0);

  // A throwing hook: nothing is queued and the caller is answered with an internal error.
  REQUIRE(f.service.create_event(sample_event("Throw", {{"gold", 5}})));
  std::optional<result<Booking>> failed;
  f.service.hold(
      one("Throw", "gold-Throw"), [&](result<Booking> x) { failed = std::move(x); },
      [](const Booking&) { throw std::runtime_error("no room"); });
  REQUIRE(failed.has_value());
  REQUIRE_FALSE(*failed);
  CHECK(failed->error().code == errc::internal);
  CHECK(f.service.get_event("Throw").value().tiers[0].stock.held == 0);
  require_conserved(*b.repo, "Plan");
  require_conserved(*b.repo, "Throw");
}
