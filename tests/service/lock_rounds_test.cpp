// The holds of one process that wait for the same tiers are submitted in rounds under one lease
// (core/lock_rounds.hpp): observed from the outside, through a lock provider that counts and
// delays its acquisitions.
#include <atomic>
#include <condition_variable>
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

TEMPLATE_TEST_CASE("holds waiting for one tier share a lease, and each gets its own answer",
                   "[service][rounds]", ALL_BACKENDS) {
  TestType b;
  GateProvider gate;
  ManualClock clock{kT0};
  BookingService service(*b.repo, gate, clock);
  std::atomic<int> observed{0};
  service.set_observer({[&](std::chrono::nanoseconds) { observed.fetch_add(1); }});
  REQUIRE(service.create_event(sample_event("Gate", {{"gold", 10}, {"sil", 100}})));

  // The first hold's lease waits at the closed gate; 15 more holds of the same tier queue
  // behind it meanwhile. Only 10 tickets exist: 5 holds must hear insufficient_stock.
  gate.close();
  constexpr int kHolds = 16;
  std::vector<std::optional<result<Booking>>> answers(kHolds);
  std::vector<std::thread> threads;
  threads.emplace_back([&] { answers[0] = service.hold(one("Gate", "gold-Gate")); });
  gate.await_waiter();
  for (int i = 1; i < kHolds; ++i) {
    threads.emplace_back([&, i] { answers[i] = service.hold(one("Gate", "gold-Gate")); });
  }
  std::this_thread::sleep_for(200ms);  // lets them queue; the check below holds either way
  gate.open();
  for (auto& t : threads) t.join();

  int sold = 0;
  int refused = 0;
  std::set<std::string> ids;
  for (const auto& a : answers) {
    REQUIRE(a.has_value());
    if (*a) {
      ++sold;
      ids.insert(a->value().id);
    } else {
      INFO(a->error().message);
      CHECK(a->error().code == errc::insufficient_stock);
      ++refused;
    }
  }
  CHECK(sold == 10);
  CHECK(refused == kHolds - 10);
  CHECK(ids.size() == 10);
  // Fewer leases than holds: the holds that queued while the first lease waited shared one.
  CHECK(gate.acquisitions.load() < kHolds);
  CHECK(observed.load() == kHolds);  // one lock wait observed per hold
  require_conserved(*b.repo, "Gate");
  // Another tier's holds were never in these rounds, and the queue is empty again.
  CHECK(service.hold(one("Gate", "sil-Gate")));
  auto late = service.hold(one("Gate", "gold-Gate"));
  REQUIRE_FALSE(late);
  CHECK(late.error().code == errc::insufficient_stock);
}

TEMPLATE_TEST_CASE("a round whose lease times out fails every hold in it, and stores none",
                   "[service][rounds]", ALL_BACKENDS) {
  TestType b;
  GateProvider gate;
  ManualClock clock{kT0};
  ServiceOptions options;
  options.lock_wait.wait = 300ms;
  BookingService service(*b.repo, gate, clock, options);
  REQUIRE(service.create_event(sample_event("Stuck", {{"gold", 10}})));
  const Event before = b.repo->get_event("Stuck").value();

  gate.close();  // a holder that never lets go
  std::vector<std::optional<result<Booking>>> answers(8);
  std::vector<std::thread> threads;
  const auto start = std::chrono::steady_clock::now();
  threads.emplace_back([&] { answers[0] = service.hold(one("Stuck", "gold-Stuck")); });
  gate.await_waiter();
  for (std::size_t i = 1; i < answers.size(); ++i) {
    threads.emplace_back([&, i] { answers[i] = service.hold(one("Stuck", "gold-Stuck")); });
  }
  for (auto& t : threads) t.join();
  // Each hold waited at most about two deadlines: its round's, and the one before it.
  CHECK(std::chrono::steady_clock::now() - start < 3s);
  for (const auto& a : answers) {
    REQUIRE(a.has_value());
    REQUIRE_FALSE(*a);
    CHECK(a->error().code == errc::lock_timeout);
    CHECK(a->error().message.find("try again") != std::string::npos);
  }
  CHECK(b.repo->get_event("Stuck").value() == before);
  CHECK(b.repo->count_active_holds().value() == 0);

  gate.open();
  CHECK(service.hold(one("Stuck", "gold-Stuck")));
}

TEMPLATE_TEST_CASE("holds of overlapping tier sets from many threads sell each tier exactly once",
                   "[service][rounds][race]", ALL_BACKENDS) {
  TestType b;
  Fixture f(b.repo);
  REQUIRE(f.service.create_event(sample_event("Mix", {{"a", 300}, {"b", 300}})));
  std::atomic<int> unexpected{0};
  std::atomic<std::int64_t> answered_a{0};
  std::atomic<std::int64_t> answered_b{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 32; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(t));
      int refusals = 0;
      while (refusals < 5) {
        HoldRequest r;
        r.event_key = "Mix";
        switch (rng() % 3) {
          case 0:
            r.lines = {{"a-Mix", 1 + static_cast<std::int64_t>(rng() % 3)}};
            break;
          case 1:
            r.lines = {{"b-Mix", 1 + static_cast<std::int64_t>(rng() % 3)}};
            break;
          default:
            r.lines = {{"a-Mix", 1}, {"b-Mix", 1}};
            break;
        }
        auto h = f.service.hold(r);
        if (h) {
          for (const BookingLine& l : h.value().lines) {
            (l.tier_key == "a-Mix" ? answered_a : answered_b).fetch_add(l.qty);
          }
        } else {
          if (h.error().code == errc::insufficient_stock) {
            ++refusals;
          } else {
            unexpected.fetch_add(1);
          }
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(unexpected.load() == 0);
  require_conserved(*b.repo, "Mix");
  // Every ticket answered is held, and no other.
  const Event e = b.repo->get_event("Mix").value();
  CHECK(e.tiers[0].stock.held == answered_a.load());
  CHECK(e.tiers[1].stock.held == answered_b.load());
  CHECK(answered_a.load() + answered_b.load() > 300);  // at least one tier sold out
}
