// One conformance suite, run against every EventRepository.
#include "process.hpp"
#include "support.hpp"

using namespace booking;
using namespace booking::test;
using namespace std::chrono_literals;

namespace {
HoldPlan plan_for(const std::string& event, std::vector<std::pair<std::string, std::int64_t>> lines,
                  const std::string& id = random_token()) {
  HoldPlan p;
  p.booking.id = id;
  p.booking.event_key = event;
  p.booking.total = Money{0, "IDR"};
  p.booking.created_at = kT0;
  p.booking.expires_at = kT0 + 10min;
  for (auto& [k, q] : lines) {
    p.booking.lines.push_back({k, q, 100});
    p.max_per_user.push_back(std::nullopt);
  }
  return p;
}
}  // namespace

TEMPLATE_TEST_CASE("a stored event reads back with full stock", "[repo]", ALL_BACKENDS) {
  TestType b;
  Event e = sample_event("Con1", {{"gold", 10}, {"sil", 5}});
  e.promoter = "P";
  e.utc_offset_minutes = 5 * 60 + 30;  // India: kept for showing local times
  e.waves = {ReleaseWave{kT0, kT0 + 1h, 7, 0}};
  auto stored = b.repo->create_event(e);
  REQUIRE(stored);
  CHECK(stored.value().id > 0);
  auto got = b.repo->get_event("Con1");
  REQUIRE(got);
  CHECK(got.value() == stored.value());
  CHECK(got.value().tiers[1].stock == TierStock{5, 5, 0, 0});
  CHECK(got.value().waves[0].limit == 7);
  CHECK(got.value().utc_offset_minutes == 330);
  CHECK(b.repo->get_event("nope").error().code == errc::not_found);
}

TEMPLATE_TEST_CASE("duplicate event or tier keys are refused and nothing is stored", "[repo]",
                   ALL_BACKENDS) {
  TestType b;
  REQUIRE(b.repo->create_event(sample_event("Con1", {{"gold", 10}})));
  CHECK(b.repo->create_event(sample_event("Con1", {{"sil", 10}})).error().code ==
        errc::duplicate_key);
  Event other = sample_event("Con2", {{"x", 1}});
  other.tiers[0].key = "gold-Con1";
  CHECK(b.repo->create_event(other).error().code == errc::duplicate_key);
  CHECK(b.repo->get_event("Con2").error().code == errc::not_found);
}

TEMPLATE_TEST_CASE("a batch of events is stored all or nothing", "[repo]", ALL_BACKENDS) {
  TestType b;
  REQUIRE(b.repo->create_event(sample_event("Taken", {{"t", 1}})));
  std::vector<Event> batch{sample_event("A1", {{"a", 1}}), sample_event("Taken", {{"z", 1}})};
  CHECK(b.repo->create_events(batch).error().code == errc::duplicate_key);
  CHECK(b.repo->get_event("A1").error().code == errc::not_found);
  batch.pop_back();
  batch.push_back(sample_event("B1", {{"b", 1}}));
  CHECK(b.repo->create_events(batch).value() == 2);
  CHECK(b.repo->get_event("B1"));
}

TEMPLATE_TEST_CASE("search is a case-insensitive substring match with paging", "[repo]",
                   ALL_BACKENDS) {
  TestType b;
  for (int i = 0; i < 30; ++i) {
    // Appended, not "E" + std::to_string(i): GCC 12 at -O3 warns about that with a false
    // -Wrestrict positive (its bug 105329).
    std::string key = "E";
    key += std::to_string(i);
    Event e = sample_event(key, {{"t", 1}});
    e.name = i % 3 == 0 ? "Blink 182 night " : "Jazz evening ";
    e.name += std::to_string(i);
    REQUIRE(b.repo->create_event(e));
  }
  Event odd = sample_event("Odd", {{"t", 1}});
  odd.name = "100% _real_ 'quotes'";
  REQUIRE(b.repo->create_event(odd));

  auto page = b.repo->search_events({"bLiNk", 4, 0});
  REQUIRE(page);
  REQUIRE(page.value().size() == 4);
  CHECK(page.value()[0].key == "E0");
  CHECK(page.value()[3].key == "E9");
  CHECK(b.repo->search_events({"BLINK", 100, 8}).value().size() == 2);
  CHECK(b.repo->search_events({"ja", 100, 0}).value().size() == 20);
  CHECK(b.repo->search_events({"", 5, 0}).value().size() == 5);
  CHECK(b.repo->search_events({"%", 100, 0}).value().size() == 1);
  CHECK(b.repo->search_events({"_real_", 100, 0}).value().size() == 1);
  CHECK(b.repo->search_events({"'; DROP TABLE events;--", 10, 0}).value().empty());
  CHECK(b.repo->search_events({"xyz", 10, 0}).value().empty());
}

TEMPLATE_TEST_CASE("the stock take is conditional in storage", "[repo]", ALL_BACKENDS) {
  TestType b;
  REQUIRE(b.repo->create_event(sample_event("Con1", {{"gold", 5}, {"sil", 5}})));
  REQUIRE(b.repo->insert_hold(plan_for("Con1", {{"gold-Con1", 4}})));
  // second line fits, first doesn't: nothing of either is taken
  auto r = b.repo->insert_hold(plan_for("Con1", {{"sil-Con1", 2}, {"gold-Con1", 2}}));
  REQUIRE_FALSE(r);
  CHECK(r.error().code == errc::insufficient_stock);
  CHECK(r.error().details.at("available").as_object().at("gold-Con1").as_int64() == 1);
  auto e = b.repo->get_event("Con1").value();
  CHECK(e.tiers[0].stock == TierStock{5, 1, 4, 0});
  CHECK(e.tiers[1].stock == TierStock{5, 5, 0, 0});
}

TEMPLATE_TEST_CASE("bookings move stock between held, sold and available", "[repo]", ALL_BACKENDS) {
  TestType b;
  REQUIRE(b.repo->create_event(sample_event("Con1", {{"gold", 10}})));
  auto p1 = plan_for("Con1", {{"gold-Con1", 3}});
  auto p2 = plan_for("Con1", {{"gold-Con1", 2}});
  REQUIRE(b.repo->insert_hold(p1));
  REQUIRE(b.repo->insert_hold(p2));
  auto c = b.repo->confirm(p1.booking.id, "card", "ref-1", kT0 + 1min);
  REQUIRE(c);
  CHECK(c.value().status == BookingStatus::confirmed);
  CHECK(c.value().payment_reference == "ref-1");
  CHECK(b.repo->get_event("Con1").value().tiers[0].stock == TierStock{10, 5, 2, 3});
  CHECK(b.repo->cancel(p1.booking.id, kT0 + 2min).value().status == BookingStatus::cancelled);
  CHECK(b.repo->get_event("Con1").value().tiers[0].stock == TierStock{10, 8, 2, 0});
  CHECK(b.repo->cancel(p1.booking.id, kT0 + 2min).error().code == errc::invalid_state);
  CHECK(b.repo->confirm(p1.booking.id, "card", "", kT0).error().code == errc::invalid_state);
  // past its deadline a hold can't be confirmed: it expires, once
  CHECK(b.repo->confirm(p2.booking.id, "card", "", kT0 + 11min).error().code == errc::hold_expired);
  CHECK(b.repo->get_booking(p2.booking.id).value().status == BookingStatus::expired);
  CHECK(b.repo->get_event("Con1").value().tiers[0].stock == TierStock{10, 10, 0, 0});
  CHECK(b.repo->expire_due(kT0 + 1h, 100).value() == 0);
  require_conserved(*b.repo, "Con1");
}

TEMPLATE_TEST_CASE("per-user and wave limits are enforced in storage", "[repo]", ALL_BACKENDS) {
  TestType b;
  Event e = sample_event("Con1", {{"gold", 100}});
  e.waves = {ReleaseWave{kT0 - 1h, kT0 + 1h, 5, 0}};
  REQUIRE(b.repo->create_event(e));
  auto user_plan = [&](std::int64_t qty) {
    auto p = plan_for("Con1", {{"gold-Con1", qty}});
    p.booking.user_id = "alice";
    p.max_per_user = {3};
    p.wave_start = kT0 - 1h;
    return p;
  };
  auto first = user_plan(2);
  REQUIRE(b.repo->insert_hold(first));
  CHECK(b.repo->insert_hold(user_plan(2)).error().code == errc::per_user_limit);
  auto bob = plan_for("Con1", {{"gold-Con1", 4}});
  bob.wave_start = kT0 - 1h;
  CHECK(b.repo->insert_hold(bob).error().code == errc::wave_limit_reached);
  bob.booking.lines[0].qty = 3;
  REQUIRE(b.repo->insert_hold(bob));
  CHECK(b.repo->get_event("Con1").value().waves[0].booked == 5);
  // a cancelled booking gives its tickets back to the user and the wave
  REQUIRE(b.repo->cancel(first.booking.id, kT0));
  CHECK(b.repo->get_event("Con1").value().waves[0].booked == 3);
  REQUIRE(b.repo->insert_hold(user_plan(2)));
  require_conserved(*b.repo, "Con1");
}

TEMPLATE_TEST_CASE("idempotency keys are unique in storage", "[repo]", ALL_BACKENDS) {
  TestType b;
  REQUIRE(b.repo->create_event(sample_event("Con1", {{"gold", 10}})));
  auto p = plan_for("Con1", {{"gold-Con1", 1}});
  p.booking.idempotency_key = "k1";
  p.request_fingerprint = "fp";
  REQUIRE(b.repo->insert_hold(p));
  auto rec = b.repo->find_idempotency_key("k1").value();
  REQUIRE(rec);
  CHECK(rec->booking_id == p.booking.id);
  CHECK(rec->request_fingerprint == "fp");
  auto again = plan_for("Con1", {{"gold-Con1", 1}});
  again.booking.idempotency_key = "k1";
  CHECK(b.repo->insert_hold(again).error().code == errc::duplicate_key);
  CHECK(b.repo->get_event("Con1").value().tiers[0].stock.held == 1);
  CHECK_FALSE(b.repo->find_idempotency_key("k2").value());
}

// submit_hold fixes the order; for SQLite nothing is stored until a wait(), and then the first
// wait() commits every queued hold in one transaction, each judged as if alone, in order.
TEMPLATE_TEST_CASE("submitted holds are judged in submission order, each all or nothing",
                   "[repo][group-commit]", ALL_BACKENDS) {
  TestType b;
  Event e = sample_event("Con1", {{"gold", 10}, {"sil", 10}});
  e.waves = {ReleaseWave{kT0 - 1h, kT0 + 1h, 12, 0}};
  REQUIRE(b.repo->create_event(e));
  auto in_wave = [](HoldPlan p) {
    p.wave_start = kT0 - 1h;
    return p;
  };
  auto alice = [&](std::int64_t qty) {
    auto p = in_wave(plan_for("Con1", {{"gold-Con1", qty}}));
    p.booking.user_id = "alice";
    p.max_per_user = {4};
    return p;
  };
  auto keyed = in_wave(plan_for("Con1", {{"sil-Con1", 1}}));
  keyed.booking.idempotency_key = "k1";
  keyed.request_fingerprint = "fp";
  auto reused = in_wave(plan_for("Con1", {{"sil-Con1", 1}}));
  reused.booking.idempotency_key = "k1";

  std::vector<HoldPlan> plans{
      alice(3),                                               // ok: gold 7 left, wave 9
      plan_for("Con1", {{"sil-Con1", 2}, {"gold-Con1", 8}}),  // short of gold: takes nothing
      alice(2),  // alice would have 5 of 4, counting the hold before
      keyed,     // ok: wave 8
      reused,    // duplicate_key, raced in the same batch
      in_wave(plan_for("Con1", {{"sil-Con1", 9}})),  // the wave has 8 left
      in_wave(plan_for("Con1", {{"sil-Con1", 8}})),  // ok: the wave is full
  };
  std::vector<std::unique_ptr<PendingHold>> pending;
  for (const auto& p : plans) pending.push_back(b.repo->submit_hold(p));
  if constexpr (std::is_same_v<TestType, SqliteBackend>) {  // queued, not yet committed
    CHECK(b.repo->get_event("Con1").value().tiers[0].stock.held == 0);
  }
  std::vector<result<Booking>> out;
  for (auto& p : pending) out.push_back(p->wait());

  REQUIRE(out[0]);
  CHECK(out[1].error().code == errc::insufficient_stock);
  CHECK(out[1].error().details.at("available").as_object().at("gold-Con1").as_int64() == 7);
  CHECK(out[2].error().code == errc::per_user_limit);
  REQUIRE(out[3]);
  CHECK(out[4].error().code == errc::duplicate_key);
  CHECK(out[5].error().code == errc::wave_limit_reached);
  REQUIRE(out[6]);
  CHECK(out[6].value().id == plans[6].booking.id);

  auto stored = b.repo->get_event("Con1").value();
  CHECK(stored.tiers[0].stock == TierStock{10, 7, 3, 0});
  CHECK(stored.tiers[1].stock == TierStock{10, 1, 9, 0});
  CHECK(stored.waves[0].booked == 12);
  CHECK(b.repo->find_idempotency_key("k1").value()->booking_id == keyed.booking.id);
  for (std::size_t i : {1, 2, 4, 5}) {
    CHECK(b.repo->get_booking(plans[i].booking.id).error().code == errc::not_found);
  }
  CHECK(b.repo->count_active_holds().value() == 3);
  require_conserved(*b.repo, "Con1");
}

TEMPLATE_TEST_CASE("a submitted hold is stored even if nobody waits for it", "[repo][group-commit]",
                   ALL_BACKENDS) {
  TestType b;
  REQUIRE(b.repo->create_event(sample_event("Con1", {{"gold", 10}})));
  auto p = plan_for("Con1", {{"gold-Con1", 2}});
  b.repo->submit_hold(p).reset();  // destroyed at once: it still takes its turn
  CHECK(b.repo->get_booking(p.booking.id).value().status == BookingStatus::held);
  CHECK(b.repo->get_event("Con1").value().tiers[0].stock == TierStock{10, 8, 2, 0});
}

// SQLite judges a batch's stock in memory; a hold whose write fails (here: a booking id already
// taken, which random ids never repeat in practice) sends the batch back to be judged hold by
// hold, each in a SAVEPOINT: it fails alone, and the others of its batch are stored.
TEST_CASE("a hold whose write fails in a SQLite batch fails alone",
          "[repo][group-commit][sqlite]") {
  SqliteBackend b;
  REQUIRE(b.repo->create_event(sample_event("Con1", {{"gold", 10}, {"sil", 10}})));
  std::vector<HoldPlan> plans{
      plan_for("Con1", {{"gold-Con1", 2}}), plan_for("Con1", {{"sil-Con1", 3}}),
      plan_for("Con1", {{"sil-Con1", 4}}), plan_for("Con1", {{"gold-Con1", 1}})};
  plans[2].booking.id = plans[0].booking.id;
  std::vector<std::unique_ptr<PendingHold>> pending;
  for (const auto& p : plans) pending.push_back(b.repo->submit_hold(p));
  std::vector<result<Booking>> out;
  for (auto& p : pending) out.push_back(p->wait());  // the first wait commits all four at once
  REQUIRE(out[0]);
  REQUIRE(out[1]);
  REQUIRE_FALSE(out[2]);
  CHECK(out[2].error().code == errc::internal);
  REQUIRE(out[3]);
  const auto stored = b.repo->get_event("Con1").value();
  CHECK(stored.tiers[0].stock == TierStock{10, 7, 3, 0});
  CHECK(stored.tiers[1].stock == TierStock{10, 7, 3, 0});
  CHECK(b.repo->get_booking(plans[0].booking.id).value().total == out[0].value().total);
  CHECK(b.repo->count_active_holds().value() == 3);
  require_conserved(*b.repo, "Con1");
}
