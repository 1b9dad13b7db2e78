// The change feed on every storage: one record per state change, in commit order, with the
// object after the change; waiting for changes; retention.
#include <atomic>
#include <set>
#include <thread>

#include "process.hpp"
#include "support.hpp"

using namespace booking;
using namespace booking::test;
using namespace std::chrono_literals;

namespace {
HoldRequest one(const std::string& event, std::int64_t qty = 1) {
  HoldRequest r;
  r.event_key = event;
  r.lines = {{"gold-" + event, qty}};
  return r;
}

std::vector<std::string> types(const std::vector<Change>& changes) {
  std::vector<std::string> out;
  for (const Change& c : changes) out.emplace_back(to_string(c.type));
  return out;
}
}  // namespace

TEMPLATE_TEST_CASE("every state change appends one change, in order, with the object after it",
                   "[feed]", ALL_BACKENDS) {
  TestType b;
  Fixture f(b.repo);
  {
    ActorScope actor("ops");
    REQUIRE(f.service.create_event(sample_event("Fd", {{"gold", 10}})));
  }
  Booking held;
  {
    ActorScope actor("shop");
    held = f.service.hold(one("Fd", 2)).value();
    REQUIRE(f.service.confirm(held.id, Payment{"card", "r1"}));
    CHECK(f.service.hold(one("Fd", 100)).error().code == errc::insufficient_stock);  // nothing
  }
  auto doomed = f.service.hold(one("Fd")).value();
  auto late = f.service.hold(one("Fd")).value();
  REQUIRE(f.service.cancel(doomed.id));
  EventPatch patch;
  patch.name = "Renamed";
  REQUIRE(f.service.update_event("Fd", patch));
  REQUIRE(f.service.close_event("Fd"));
  REQUIRE(f.service.reopen_event("Fd"));
  f.clock.advance(11min);
  {
    ActorScope actor("sweeper");
    REQUIRE(f.service.expire_due().value() == 1);
  }
  REQUIRE(f.service.cancel_event("Fd"));

  auto all_r = f.service.changes(0, 1000);
  INFO((all_r ? "" : all_r.error().message));
  REQUIRE(all_r);
  auto all = all_r.value();
  CHECK(types(all) == std::vector<std::string>{"event.created", "booking.held", "booking.confirmed",
                                               "booking.held", "booking.held", "booking.cancelled",
                                               "event.updated", "event.closed", "event.reopened",
                                               "booking.expired", "event.cancelled",
                                               "booking.cancelled"});
  for (std::size_t i = 1; i < all.size(); ++i) CHECK(all[i].seq > all[i - 1].seq);
  CHECK(all[0].actor == "ops");
  CHECK(all[1].actor == "shop");
  CHECK(all[3].actor == "library");
  CHECK(all[9].actor == "sweeper");
  CHECK(all[9].booking_id == late.id);
  CHECK(all[9].at == kT0 + 11min);
  // The object as it was right after each change, not as it is now.
  CHECK(all[1].data.at("status") == "HELD");
  CHECK(all[1].data.at("reference").is_null());
  CHECK(all[2].data.at("status") == "CONFIRMED");
  CHECK(all[2].data.at("reference") == "r1");
  CHECK(all[11].data.at("status") == "CANCELLED");  // the paid booking, cancelled with its event
  CHECK(all[11].data.at("reference") == "r1");
  CHECK(all[1].data.at("userId").is_null());
  // Events carry their definition, not live stock.
  const auto& created = all[0].data;
  CHECK(created.at("name") == "Sample Fd");
  CHECK(created.at("eventGroups").at(0).at("capacity") == 10);
  CHECK_FALSE(created.at("eventGroups").at(0).as_object().contains("qty"));
  CHECK(all[6].data.at("name") == "Renamed");
  CHECK(all[7].data.at("status") == "closed");
  CHECK(all[10].data.at("status") == "cancelled");
  CHECK(to_json(all[1]).at("bookId").as_string() == held.id);
  CHECK(to_json(all[1]).at("type") == "booking.held");

  // Pages after a position.
  auto page = f.service.changes(all[2].seq, 3).value();
  REQUIRE(page.size() == 3);
  CHECK(page[0].seq == all[3].seq);
  CHECK(f.service.changes(all.back().seq, 10).value().empty());
  CHECK(f.service.changes(-1, 10).error().code == errc::validation_failed);
  CHECK(f.service.changes(0, 1001).error().code == errc::validation_failed);
}

TEMPLATE_TEST_CASE("a follower misses no change while many threads write", "[feed][race]",
                   ALL_BACKENDS) {
  TestType b;
  Fixture f(b.repo);
  for (const char* e : {"Fa", "Fb", "Fc", "Slow"}) {
    REQUIRE(f.service.create_event(sample_event(e, {{"gold", 100000}})));
  }
  // A slow transaction among the fast ones: cancelling an event of 2,000 bookings in one batch
  // (PostgreSQL numbers its changes only as it commits, so the fast ones cannot pass it).
  for (int i = 0; i < 2000; ++i) REQUIRE(f.service.hold(one("Slow")));
  std::atomic<bool> stop{false};
  std::vector<std::thread> writers;
  writers.emplace_back([&] {
    std::this_thread::sleep_for(300ms);
    CHECK(f.service.cancel_event("Slow").value().bookings_cancelled == 2000);
  });
  for (int t = 0; t < 6; ++t) {
    writers.emplace_back([&, t] {
      const std::string event = t % 3 == 0 ? "Fa" : t % 3 == 1 ? "Fb" : "Fc";
      while (!stop) {
        auto h = f.service.hold(one(event));
        if (h && t % 2 == 0) (void)f.service.confirm(h.value().id, Payment{"card", "x"});
      }
    });
  }
  // The follower reads as it goes; it must never find, later, a change below one it has seen.
  std::vector<std::int64_t> seen;
  std::int64_t after = 0;
  const auto until = std::chrono::steady_clock::now() + 1500ms;
  while (std::chrono::steady_clock::now() < until) {
    auto page = f.service.changes(after, 1000);
    if (!page) FAIL(page.error().message);
    for (const Change& c : page.value()) {
      seen.push_back(c.seq);
      after = c.seq;
    }
  }
  stop = true;
  for (auto& w : writers) w.join();
  for (auto page = f.service.changes(after, 1000).value(); !page.empty();
       page = f.service.changes(after, 1000).value()) {
    for (const Change& c : page) {
      seen.push_back(c.seq);
      after = c.seq;
    }
  }
  // What the follower saw, in the order it saw it, is the whole feed.
  std::vector<std::int64_t> all;
  for (std::int64_t at = 0;;) {
    auto page = f.service.changes(at, 1000).value();
    if (page.empty()) break;
    for (const Change& c : page) all.push_back(c.seq);
    at = page.back().seq;
  }
  CHECK(seen.size() > 100);
  CHECK(seen == all);
  std::set<std::int64_t> distinct(all.begin(), all.end());
  CHECK(distinct.size() == all.size());
}

TEMPLATE_TEST_CASE("a waiter wakes when a change commits, or leaves empty at its deadline",
                   "[feed]", ALL_BACKENDS) {
  TestType b;
  Fixture f(b.repo);
  REQUIRE(f.service.create_event(sample_event("Fw", {{"gold", 10}})));
  const std::int64_t last = f.service.changes(0, 1000).value().back().seq;
  auto t0 = std::chrono::steady_clock::now();
  auto empty = f.service.wait_changes(last, 10, 100ms);
  REQUIRE(empty);
  CHECK(empty.value().empty());
  CHECK(std::chrono::steady_clock::now() - t0 >= 100ms);

  std::thread writer([&] {
    std::this_thread::sleep_for(100ms);
    REQUIRE(f.service.hold(one("Fw")));
  });
  t0 = std::chrono::steady_clock::now();
  auto woke = f.service.wait_changes(last, 10, 10s);
  const auto waited = std::chrono::steady_clock::now() - t0;
  writer.join();
  REQUIRE(woke);
  REQUIRE(woke.value().size() == 1);
  CHECK(woke.value()[0].type == ChangeType::booking_held);
  CHECK(waited < 2s);

  // Another process's change (here: another service on the same storage) is seen by polling.
  Fixture other(b.repo);
  const std::int64_t now_last = woke.value()[0].seq;
  std::thread elsewhere([&] {
    std::this_thread::sleep_for(50ms);
    REQUIRE(other.service.hold(one("Fw")));
  });
  auto polled = f.service.wait_changes(now_last, 10, 10s);
  elsewhere.join();
  REQUIRE(polled);
  CHECK(polled.value().size() == 1);

  std::atomic<bool> stop{true};
  t0 = std::chrono::steady_clock::now();
  CHECK(f.service.wait_changes(polled.value()[0].seq, 10, 10s, &stop).value().empty());
  CHECK(std::chrono::steady_clock::now() - t0 < 1s);
}

TEMPLATE_TEST_CASE("changes older than the retention are pruned, and resuming before them is 410",
                   "[feed]", ALL_BACKENDS) {
  TestType b;
  ServiceOptions options;
  options.feed_retention = std::chrono::hours(24);
  Fixture f(b.repo, options);
  REQUIRE(f.service.create_event(sample_event("Fr", {{"gold", 10}})));
  REQUIRE(f.service.hold(one("Fr")));
  f.clock.advance(std::chrono::hours(25));
  auto recent = f.service.hold(one("Fr")).value();
  REQUIRE(f.service.expire_due());  // expires the first hold (recorded now) and prunes
  auto left = f.service.changes(0, 100);
  REQUIRE_FALSE(left);
  CHECK(left.error().code == errc::feed_expired);
  const std::int64_t floor = left.error().details.at("floor").as_int64();
  CHECK(floor == 2);  // event.created and the first booking.held
  auto rest = f.service.changes(floor, 100).value();
  REQUIRE(rest.size() == 2);
  CHECK(rest[0].booking_id == recent.id);
  CHECK(rest[1].type == ChangeType::booking_expired);
  CHECK(f.repo->feed_bounds().value().last == rest[1].seq);
}

TEMPLATE_TEST_CASE("retention never prunes a change a webhook has not received", "[feed]",
                   ALL_BACKENDS) {
  TestType b;
  ServiceOptions options;
  options.feed_retention = std::chrono::hours(1);
  Fixture f(b.repo, options);
  REQUIRE(f.service.create_event(sample_event("Fk", {{"gold", 10}})));
  // A webhook registered now starts at the newest change; it then falls behind.
  auto registered = f.repo->lease_webhook("http://127.0.0.1:9/hook", "me", 60s).value();
  REQUIRE(registered);
  const std::int64_t delivered = registered->position;
  REQUIRE(f.service.hold(one("Fk")));
  REQUIRE(f.service.hold(one("Fk")));
  f.clock.advance(std::chrono::hours(2));
  REQUIRE(f.service.hold(one("Fk")));
  REQUIRE(f.service.expire_due());
  // Older than the retention, but undelivered: kept; the event.created before it went.
  auto kept = f.service.changes(delivered, 100);
  REQUIRE(kept);
  CHECK(kept.value().size() >= 3);
  CHECK(f.repo->feed_bounds().value().floor <= delivered);
  // Delivered: now they may go.
  WebhookState state = *registered;
  state.position = kept.value().back().seq;
  REQUIRE(f.repo->save_webhook("http://127.0.0.1:9/hook", "me", state).value());
  REQUIRE(f.service.expire_due());
  CHECK(f.repo->feed_bounds().value().floor > delivered);

  // Listing and resuming (booking webhook list|resume).
  state.paused = true;
  state.failing_since = kT0;
  REQUIRE(f.repo->save_webhook("http://127.0.0.1:9/hook", "me", state).value());
  auto hooks = f.repo->list_webhooks().value();
  REQUIRE(hooks.size() == 1);
  CHECK(hooks[0].first == "http://127.0.0.1:9/hook");
  CHECK(hooks[0].second.paused);
  CHECK(hooks[0].second.position == state.position);
  REQUIRE(f.repo->resume_webhook("http://127.0.0.1:9/hook"));
  hooks = f.repo->list_webhooks().value();
  CHECK_FALSE(hooks[0].second.paused);
  CHECK_FALSE(hooks[0].second.failing_since);
  CHECK(f.repo->resume_webhook("http://127.0.0.1:9/none").error().code == errc::not_found);
}
