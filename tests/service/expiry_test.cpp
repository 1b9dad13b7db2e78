// Expiry returns stock exactly once, however many sweepers run at once.
#include <atomic>
#include <thread>

#include "process.hpp"
#include "support.hpp"

using namespace booking;
using namespace booking::test;
using namespace std::chrono_literals;

namespace {
void make_holds(BookingService& s, int n) {
  for (int i = 0; i < n; ++i) {
    HoldRequest r;
    r.event_key = "Exp";
    r.lines = {{"gold-Exp", 1 + i % 3}};
    REQUIRE(s.hold(r));
  }
}
}  // namespace

TEMPLATE_TEST_CASE("holds past their deadline return their stock exactly once", "[expiry]",
                   ALL_BACKENDS) {
  TestType b;
  ServiceOptions options;
  options.expire_batch = 7;  // several batches per sweep
  Fixture f(b.repo, options);
  REQUIRE(f.service.create_event(sample_event("Exp", {{"gold", 1000}})));
  make_holds(f.service, 120);
  CHECK(f.service.expire_due().value() == 0);  // nothing is due yet
  f.clock.advance(9min);
  make_holds(f.service, 30);  // these are due 9 minutes later than the first 120
  f.clock.advance(1min);

  std::atomic<std::size_t> expired{0};
  std::atomic<int> failures{0};
  std::vector<std::thread> sweepers;
  for (int t = 0; t < 4; ++t) {
    sweepers.emplace_back([&] {
      for (int round = 0; round < 5; ++round) {
        auto n = f.service.expire_due();
        if (n) {
          expired += n.value();
        } else {
          ++failures;
        }
      }
    });
  }
  for (auto& t : sweepers) t.join();
  CHECK(failures == 0);
  CHECK(expired == 120);
  const TierStock s = f.repo->get_event("Exp").value().tiers[0].stock;
  CHECK(s.held == 10 * 6);  // the 30 later holds: 1+2+3 repeated 10 times
  CHECK(s.available == 1000 - s.held);
  CHECK(f.repo->count_active_holds().value() == 30);
  f.clock.advance(9min);
  CHECK(f.service.expire_due().value() == 30);
  CHECK(f.repo->get_event("Exp").value().tiers[0].stock == TierStock{1000, 1000, 0, 0});
}

TEST_CASE("two SQLite repositories on one file expire each hold once", "[expiry][sqlite]") {
  TempDir dir;
  auto a = make_sqlite_repository(dir.file("b.db")).value();
  auto b = make_sqlite_repository(dir.file("b.db")).value();
  Fixture fa(a);
  Fixture fb(b);
  REQUIRE(fa.service.create_event(sample_event("Exp", {{"gold", 1000}})));
  make_holds(fa.service, 200);
  fa.clock.advance(11min);
  fb.clock.advance(11min);
  std::size_t na = 0;
  std::size_t nb = 0;
  std::thread ta([&] { na = fa.service.expire_due().value(); });
  std::thread tb([&] { nb = fb.service.expire_due().value(); });
  ta.join();
  tb.join();
  CHECK(na + nb == 200);
  CHECK(b->get_event("Exp").value().tiers[0].stock == TierStock{1000, 1000, 0, 0});
}
