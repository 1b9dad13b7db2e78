// Running a sale: close, reopen and cancel an event, on every storage; a change made through
// another service (another process or instance) is obeyed at once.
#include <atomic>
#include <boost/json.hpp>
#include <thread>

#include "process.hpp"
#include "support.hpp"

using namespace booking;
using namespace booking::test;
using namespace std::chrono_literals;

namespace {
HoldRequest one(std::int64_t qty = 1) {
  HoldRequest r;
  r.event_key = "Sale";
  r.lines = {{"gold-Sale", qty}};
  return r;
}
}  // namespace

TEMPLATE_TEST_CASE("a closed event takes no holds, keeps its bookings, and reopens", "[sale]",
                   ALL_BACKENDS) {
  TestType b;
  Fixture f(b.repo);
  REQUIRE(f.service.create_event(sample_event("Sale", {{"gold", 10}})));
  CHECK(f.service.get_event("Sale").value().version == 1);
  auto held = f.service.hold(one(2)).value();
  auto paid = f.service.hold(one(3)).value();

  auto closed = f.service.close_event("Sale");
  REQUIRE(closed);
  CHECK(closed.value().status == EventStatus::closed);
  CHECK(closed.value().version == 2);
  auto refused = f.service.hold(one());
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == errc::sale_closed);
  CHECK(refused.error().details.at("status").as_string() == "closed");
  // What was sold before stays: it can be paid for and cancelled.
  CHECK(f.service.confirm(paid.id, Payment{"card", "r"}));
  CHECK(f.service.cancel(held.id));
  CHECK(f.service.close_event("Sale").value().version == 2);  // already closed: no change

  CHECK(f.service.reopen_event("Sale", 1).error().code == errc::precondition_failed);
  auto open = f.service.reopen_event("Sale", 2);
  REQUIRE(open);
  CHECK(open.value().status == EventStatus::on_sale);
  CHECK(open.value().version == 3);
  CHECK(f.service.hold(one()));
  CHECK(f.service.close_event("Nope").error().code == errc::not_found);
  require_conserved(*f.repo, "Sale");
}

TEMPLATE_TEST_CASE("cancelling an event cancels its bookings in batches, for good", "[sale]",
                   ALL_BACKENDS) {
  TestType b;
  ServiceOptions options;
  options.expire_batch = 2;  // several batches
  Fixture f(b.repo, options);
  REQUIRE(f.service.create_event(sample_event("Sale", {{"gold", 100}})));
  REQUIRE(f.service.create_event(sample_event("Other", {{"gold", 10}})));
  std::vector<Booking> held;
  for (int i = 0; i < 5; ++i) held.push_back(f.service.hold(one(2)).value());
  REQUIRE(f.service.confirm(held[0].id, Payment{"card", "p0"}));
  REQUIRE(f.service.confirm(held[1].id, Payment{"card", "p1"}));
  REQUIRE(f.service.cancel(held[2].id));
  HoldRequest other;
  other.event_key = "Other";
  other.lines = {{"gold-Other", 1}};
  auto elsewhere = f.service.hold(other).value();

  // Two holds past their deadline: with batches of 2, a whole batch of them expires, and the
  // cancellation must go on to the others.
  f.clock.advance(9min);
  REQUIRE(f.service.hold(one(1)));
  REQUIRE(f.service.hold(one(1)));
  f.clock.advance(2min);  // the first five are past their 10 min deadline, these two are not
  auto done = f.service.cancel_event("Sale");
  REQUIRE(done);
  CHECK(done.value().event.status == EventStatus::cancelled);
  CHECK(done.value().bookings_cancelled == 2 + 2);  // 2 paid, 2 fresh holds
  CHECK(f.repo->get_booking(held[0].id).value().status == BookingStatus::cancelled);
  CHECK(f.repo->get_booking(held[1].id).value().status == BookingStatus::cancelled);
  CHECK(f.repo->get_booking(held[3].id).value().status == BookingStatus::expired);
  CHECK(f.repo->get_booking(held[4].id).value().status == BookingStatus::expired);
  BookingListRequest live;
  live.event_key = "Sale";
  live.status = "HELD";
  CHECK(f.service.list_bookings(live).value().bookings.empty());
  CHECK(f.repo->get_event("Sale").value().tiers[0].stock == TierStock{100, 100, 0, 0});
  CHECK(f.repo->get_booking(elsewhere.id).value().status == BookingStatus::held);
  CHECK(f.service.hold(one()).error().code == errc::sale_closed);
  CHECK(f.service.reopen_event("Sale").error().code == errc::invalid_state);
  CHECK(f.service.close_event("Sale").error().code == errc::invalid_state);
  // Again: nothing left to cancel, and nothing breaks.
  CHECK(f.service.cancel_event("Sale").value().bookings_cancelled == 0);
  require_conserved(*f.repo, "Sale");
  require_conserved(*f.repo, "Other");
}

TEMPLATE_TEST_CASE("a change made through another service is obeyed by the next hold", "[sale]",
                   ALL_BACKENDS) {
  TestType b;
  Fixture mine(b.repo);
  Fixture theirs(b.repo);  // another process or instance on the same storage
  REQUIRE(mine.service.create_event(sample_event("Sale", {{"gold", 10}})));
  REQUIRE(mine.service.hold(one()));  // caches the definition
  REQUIRE(theirs.service.close_event("Sale"));
  CHECK(mine.service.hold(one()).error().code == errc::sale_closed);
  REQUIRE(theirs.service.reopen_event("Sale"));
  auto again = mine.service.hold(one());  // planned from version 1, stored is 3: planned anew
  INFO((again ? "" : again.error().message));
  CHECK(again);
  require_conserved(*b.repo, "Sale");
}

TEMPLATE_TEST_CASE("holds racing an event's cancellation leave no live booking behind",
                   "[sale][race]", ALL_BACKENDS) {
  TestType b;
  Fixture f(b.repo);
  REQUIRE(f.service.create_event(sample_event("Sale", {{"gold", 100000}})));
  std::atomic<bool> stop{false};
  std::atomic<int> after_close{0};
  std::vector<std::thread> buyers;
  for (int t = 0; t < 8; ++t) {
    buyers.emplace_back([&] {
      while (!stop) {
        auto r = f.service.hold(one());
        if (!r && r.error().code == errc::sale_closed) ++after_close;
      }
    });
  }
  std::this_thread::sleep_for(50ms);
  auto done = f.service.cancel_event("Sale");
  std::this_thread::sleep_for(20ms);
  stop = true;
  for (auto& t : buyers) t.join();
  REQUIRE(done);
  CHECK(after_close > 0);
  const Event e = f.repo->get_event("Sale").value();
  CHECK(e.tiers[0].stock.held == 0);
  CHECK(e.tiers[0].stock.sold == 0);
  CHECK(e.tiers[0].stock.available == 100000);
  require_conserved(*f.repo, "Sale");
}

TEMPLATE_TEST_CASE("bookings list newest first in cursor pages, filtered; the report adds up",
                   "[sale]", ALL_BACKENDS) {
  TestType b;
  Fixture f(b.repo);
  REQUIRE(f.service.create_event(sample_event("Sale", {{"gold", 100}, {"sil", 50}})));
  REQUIRE(f.service.create_event(sample_event("Other", {{"gold", 10}})));
  std::vector<std::string> ids;  // in creation order
  for (int i = 0; i < 7; ++i) {
    HoldRequest r = one(i + 1);
    r.user_id = i % 2 ? "odd" : "even";
    if (i == 3) r.lines.push_back({"sil-Sale", 5});
    ids.push_back(f.service.hold(r).value().id);
    f.clock.advance(i == 4 ? 0ms : 1s);  // two bookings in one millisecond: ordered by id
  }
  HoldRequest other;
  other.event_key = "Other";
  other.lines = {{"gold-Other", 1}};
  REQUIRE(f.service.hold(other));
  REQUIRE(f.service.confirm(ids[0], Payment{"card", "a"}));
  REQUIRE(f.service.confirm(ids[3], Payment{"card", "b"}));
  REQUIRE(f.service.cancel(ids[1]));

  // Pages of 3 over the event: every booking once, newest first.
  BookingListRequest q;
  q.event_key = "Sale";
  q.limit = 3;
  std::vector<Booking> seen;
  for (int page = 0; page < 5; ++page) {
    auto listed = f.service.list_bookings(q);
    INFO((listed ? ""
                 : listed.error().message + " " + boost::json::serialize(listed.error().details)));
    REQUIRE(listed);
    auto p = std::move(listed).value();
    CHECK(p.bookings.size() <= 3);
    seen.insert(seen.end(), p.bookings.begin(), p.bookings.end());
    if (!p.next) break;
    q.cursor = p.next;
  }
  REQUIRE(seen.size() == 7);
  for (std::size_t i = 1; i < seen.size(); ++i) {
    CHECK(std::pair(seen[i - 1].created_at, seen[i - 1].id) >
          std::pair(seen[i].created_at, seen[i].id));
  }
  CHECK(seen.front().id == ids[6]);
  CHECK(seen[3].lines.size() == 2);  // bookings come with their lines

  BookingListRequest confirmed;
  confirmed.status = "CONFIRMED";
  auto c = f.service.list_bookings(confirmed).value();
  REQUIRE(c.bookings.size() == 2);
  CHECK_FALSE(c.next);
  BookingListRequest odd;
  odd.user_id = "odd";
  odd.event_key = "Sale";
  CHECK(f.service.list_bookings(odd).value().bookings.size() == 3);
  BookingListRequest bad;
  bad.limit = 101;
  bad.status = "PAID";
  bad.cursor = "yesterday";
  auto refused = f.service.list_bookings(bad);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().details.size() == 3);

  // Expire what is left, then the report: stock, cancelled, expired, revenue.
  f.clock.advance(1h);
  REQUIRE(f.service.expire_due());
  auto report = f.service.event_report("Sale").value();
  REQUIRE(report.tiers.size() == 2);
  const TierReport& gold = report.tiers[0];
  CHECK(gold.sold == 1 + 4);
  CHECK(gold.cancelled == 2);
  CHECK(gold.expired == 3 + 5 + 6 + 7);
  CHECK(gold.held == 0);
  CHECK(gold.available == 100 - 5);
  CHECK(gold.revenue_minor == std::int64_t{5} * 500'000'000);
  CHECK(report.tiers[1].sold == 5);
  CHECK(report.tiers[1].revenue_minor == std::int64_t{5} * 500'000'000);
  CHECK(f.service.event_report("Nope").error().code == errc::not_found);
}
