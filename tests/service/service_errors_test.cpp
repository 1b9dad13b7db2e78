// Every error code the service returns, provoked through the public API, with storage unchanged.
#include <algorithm>
#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include "process.hpp"
#include "support.hpp"

using namespace booking;
using namespace booking::test;
using namespace std::chrono_literals;

namespace {
HoldRequest req(std::string event, std::vector<std::pair<std::string, std::int64_t>> lines,
                std::optional<std::string> user = std::nullopt) {
  HoldRequest r;
  r.event_key = std::move(event);
  for (auto& [k, q] : lines) r.lines.push_back({k, q});
  r.user_id = std::move(user);
  return r;
}

// Checks that `r` failed with `code` and that the event's stock and the hold count are unchanged.
template <class R>
void require_failed_cleanly(Fixture& f, const R& r, errc code, const Event& before) {
  REQUIRE_FALSE(r);
  INFO(r.error().message);
  CHECK(r.error().code == code);
  CHECK(f.repo->get_event(before.key).value() == before);
}
}  // namespace

TEMPLATE_TEST_CASE("every hold error leaves storage untouched", "[service]", ALL_BACKENDS) {
  TestType b;
  ServiceOptions options;
  options.lock_wait.wait = 20ms;
  Fixture f(b.repo, options);
  Event e = sample_event("Con1", {{"gold", 10}, {"sil", 10}});
  e.tiers[0].max_per_order = 4;
  e.tiers[1].max_per_user = 3;
  e.waves = {ReleaseWave{kT0 + 1h, kT0 + 2h, 2, 0}};
  Event usd = sample_event("Usd1", {{"usd", 5}}, "USD", 1250);
  usd.tiers[0].key = "usd-Con1x";
  REQUIRE(f.service.create_event(e));
  REQUIRE(f.service.create_event(usd));
  // A booking on the silver tier by alice uses 2 of her 3.
  REQUIRE(f.service.hold(req("Con1", {{"sil-Con1", 2}}, "alice")));
  const Event before = f.repo->get_event("Con1").value();

  SECTION("validation_failed") {
    require_failed_cleanly(f, f.service.hold(req("Con 1", {{"gold-Con1", 1}})),
                           errc::validation_failed, before);
    require_failed_cleanly(f, f.service.hold(req("Con1", {})), errc::validation_failed, before);
    require_failed_cleanly(f, f.service.hold(req("Con1", {{"gold-Con1", 0}})),
                           errc::validation_failed, before);
    require_failed_cleanly(f, f.service.hold(req("Con1", {{"gold-Con1", 1}, {"gold-Con1", 1}})),
                           errc::validation_failed, before);
    // mixed currencies in one booking
    Event mix = sample_event("Mix", {{"a", 5}});
    Tier usd_tier = mix.tiers[0];
    usd_tier.key = "b-Mix";
    usd_tier.price = Money{100, "USD"};
    mix.tiers.push_back(usd_tier);
    REQUIRE(f.service.create_event(mix));
    const Event mix_before = f.repo->get_event("Mix").value();
    require_failed_cleanly(f, f.service.hold(req("Mix", {{"a-Mix", 1}, {"b-Mix", 1}})),
                           errc::validation_failed, mix_before);
    // a tier that limits per user needs a user
    require_failed_cleanly(f, f.service.hold(req("Con1", {{"sil-Con1", 1}})),
                           errc::validation_failed, before);
  }
  SECTION("not_found") {
    require_failed_cleanly(f, f.service.hold(req("Nope", {{"gold-Con1", 1}})), errc::not_found,
                           before);
    require_failed_cleanly(f, f.service.hold(req("Con1", {{"nope-Con1", 1}})), errc::not_found,
                           before);
    // a tier of another event
    require_failed_cleanly(f, f.service.hold(req("Con1", {{"usd-Con1x", 1}})), errc::not_found,
                           before);
    CHECK(f.service.get_booking("0123456789abcdef0123456789abcdef").error().code ==
          errc::not_found);
    CHECK(f.service.get_booking("../../etc/passwd").error().code == errc::not_found);
  }
  SECTION("sale_not_open") {
    f.clock.set(kT0 + std::chrono::days(31));
    require_failed_cleanly(f, f.service.hold(req("Con1", {{"gold-Con1", 1}})), errc::sale_not_open,
                           before);
    f.clock.set(kT0 - std::chrono::days(2));
    require_failed_cleanly(f, f.service.hold(req("Con1", {{"gold-Con1", 1}})), errc::sale_not_open,
                           before);
  }
  SECTION("per_user_limit") {
    require_failed_cleanly(f, f.service.hold(req("Con1", {{"gold-Con1", 5}})), errc::per_user_limit,
                           before);
    require_failed_cleanly(f, f.service.hold(req("Con1", {{"sil-Con1", 2}}, "alice")),
                           errc::per_user_limit, before);
    CHECK(f.service.hold(req("Con1", {{"sil-Con1", 1}}, "alice")));  // exactly at the limit
  }
  SECTION("wave_limit_reached") {
    f.clock.advance(90min);
    auto r = f.service.hold(req("Con1", {{"gold-Con1", 3}}));
    require_failed_cleanly(f, r, errc::wave_limit_reached, before);
    CHECK(r.error().details.at("remaining").as_int64() == 2);
  }
  SECTION("insufficient_stock") {
    auto r = f.service.hold(req("Con1", {{"gold-Con1", 4}, {"sil-Con1", 1}}, "bob"));
    REQUIRE(r);
    REQUIRE(f.service.hold(req("Con1", {{"gold-Con1", 4}})));
    const Event now = f.repo->get_event("Con1").value();
    auto fail = f.service.hold(req("Con1", {{"gold-Con1", 3}}));
    require_failed_cleanly(f, fail, errc::insufficient_stock, now);
    CHECK(fail.error().details.at("available").as_object().at("gold-Con1").as_int64() == 2);
  }
  SECTION("idempotency_conflict and replay") {
    auto r1 = req("Con1", {{"gold-Con1", 2}});
    r1.idempotency_key = "abc";
    auto first = f.service.hold(r1);
    REQUIRE(first);
    const Event after_first = f.repo->get_event("Con1").value();
    auto second = f.service.hold(r1);
    REQUIRE(second);
    CHECK(second.value().id == first.value().id);
    CHECK(f.repo->get_event("Con1").value() == after_first);
    auto r2 = req("Con1", {{"gold-Con1", 3}});
    r2.idempotency_key = "abc";
    require_failed_cleanly(f, f.service.hold(r2), errc::idempotency_conflict, after_first);
  }
  SECTION("lock_timeout") {
    auto other = f.locks->acquire(std::vector<std::string>{tier_lock_key("gold-Con1")}, 10s,
                                  std::chrono::steady_clock::now() + 1s);
    REQUIRE(other);
    auto start = std::chrono::steady_clock::now();
    require_failed_cleanly(f, f.service.hold(req("Con1", {{"gold-Con1", 1}})), errc::lock_timeout,
                           before);
    CHECK(std::chrono::steady_clock::now() - start < 1s);
    CHECK(f.locks->release(other.value()).value() == ReleaseOutcome::released);
    CHECK(f.service.hold(req("Con1", {{"gold-Con1", 1}})));
  }
  SECTION("invalid_state and hold_expired") {
    auto h = f.service.hold(req("Con1", {{"gold-Con1", 1}})).value();
    REQUIRE(f.service.cancel(h.id));
    const Event now = f.repo->get_event("Con1").value();
    require_failed_cleanly(f, f.service.confirm(h.id, {}), errc::invalid_state, now);
    require_failed_cleanly(f, f.service.cancel(h.id), errc::invalid_state, now);
    auto h2 = f.service.hold(req("Con1", {{"gold-Con1", 1}})).value();
    f.clock.advance(11min);
    CHECK(f.service.confirm(h2.id, {}).error().code == errc::hold_expired);
    CHECK(f.repo->get_event("Con1").value() == now);  // the stock came back
    CHECK(f.service.get_booking(h2.id).value().status == BookingStatus::expired);
    // Expired by the sweeper or on touch, the answer is the same.
    require_failed_cleanly(f, f.service.confirm(h2.id, {}), errc::hold_expired, now);
    require_failed_cleanly(f, f.service.cancel(h2.id), errc::hold_expired, now);
    auto swept = f.service.hold(req("Con1", {{"gold-Con1", 1}})).value();
    f.clock.advance(11min);
    REQUIRE(f.service.expire_due().value() == 2);  // alice's hold and this one
    const Event after_sweep = f.repo->get_event("Con1").value();
    require_failed_cleanly(f, f.service.confirm(swept.id, {}), errc::hold_expired, after_sweep);
    require_failed_cleanly(f, f.service.cancel(swept.id), errc::hold_expired, after_sweep);
  }
  SECTION("duplicate_key") { CHECK(f.service.create_event(e).error().code == errc::duplicate_key); }
  require_conserved(*f.repo, "Con1");
}

TEMPLATE_TEST_CASE("a confirmed booking carries its payment and can be refunded", "[service]",
                   ALL_BACKENDS) {
  TestType b;
  Fixture f(b.repo);
  REQUIRE(f.service.create_event(sample_event("Con1", {{"gold", 10}})));
  auto h = f.service.hold(req("Con1", {{"gold-Con1", 3}}, "u1"));
  REQUIRE(h);
  CHECK(h.value().total == Money{3 * 500'000'000LL, "IDR"});
  CHECK(h.value().expires_at == kT0 + 10min);
  CHECK(h.value().id.size() == 32);
  auto c = f.service.confirm(h.value().id, {"card", "pay-123"});
  REQUIRE(c);
  CHECK(c.value().status == BookingStatus::confirmed);
  CHECK(f.service.get_booking(h.value().id).value().payment_reference == "pay-123");
  CHECK(f.repo->get_event("Con1").value().tiers[0].stock == TierStock{10, 7, 0, 3});
  CHECK(f.service.cancel(h.value().id).value().status == BookingStatus::cancelled);
  CHECK(f.repo->get_event("Con1").value().tiers[0].stock == TierStock{10, 10, 0, 0});
}

TEMPLATE_TEST_CASE("booking ids are unguessable and sort by the time they were made", "[service]",
                   ALL_BACKENDS) {
  // The bookings table is keyed by id: ids made one after another must sort together, so that
  // holds append to the table instead of each writing a random page of it.
  TestType b;
  Fixture f(b.repo);
  REQUIRE(f.service.create_event(sample_event("Con1", {{"gold", 100}})));
  std::vector<std::string> ids;
  for (int i = 0; i < 20; ++i) {
    auto h = f.service.hold(req("Con1", {{"gold-Con1", 1}}));
    REQUIRE(h);
    ids.push_back(h.value().id);
    if (i % 5 == 4) f.clock.advance(1ms);
  }
  std::set<std::string> distinct(ids.begin(), ids.end());
  CHECK(distinct.size() == ids.size());
  const auto t0_ms = kT0.time_since_epoch().count();
  char prefix[13];
  std::snprintf(prefix, sizeof prefix, "%012llx", static_cast<unsigned long long>(t0_ms));
  for (std::size_t i = 0; i < ids.size(); ++i) {
    INFO(ids[i]);
    REQUIRE(ids[i].size() == 32);
    CHECK(ids[i].find_first_not_of("0123456789abcdef") == std::string::npos);
    if (i < 5) CHECK(ids[i].substr(0, 12) == prefix);  // the clock's milliseconds, in hex
    // Made in a later millisecond: sorts after every id made before it.
    if (i % 5 == 0 && i > 0) {
      for (std::size_t j = 0; j < i; ++j) CHECK(ids[j] < ids[i]);
    }
  }
  // Within one millisecond the other 80 bits are random: five ids share no longer prefix.
  std::size_t common = 32;
  for (std::size_t i = 1; i < 5; ++i) {
    std::size_t k = 0;
    while (k < 32 && ids[0][k] == ids[i][k]) ++k;
    common = std::min(common, k);
  }
  CHECK(common < 20);
}

TEST_CASE("the demo event is valid and on sale now", "[service]") {
  Event demo = demo_event(kT0);
  CHECK(validate_new_event(demo));
  CHECK(demo.key == "Con10124");
  CHECK(demo.tiers.size() == 3);
  for (const Tier& t : demo.tiers) CHECK((t.start <= kT0 && kT0 < t.end));
}
