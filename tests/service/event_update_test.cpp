// Changing an event while it sells (EventPatch), on every storage: fields, tiers, capacity,
// prices, waves; bad patches store nothing; If-Match; a change racing holds and other patches.
#include <atomic>
#include <boost/json.hpp>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "process.hpp"
#include "support.hpp"

using namespace booking;
using namespace booking::test;
using namespace std::chrono_literals;

namespace {
HoldRequest gold(std::int64_t qty = 1) {
  HoldRequest r;
  r.event_key = "Upd";
  r.lines = {{"gold-Upd", qty}};
  return r;
}

TierPatch tier(const std::string& key) {
  TierPatch t;
  t.key = key;
  return t;
}

EventPatch capacity(const std::string& key, std::int64_t n) {
  EventPatch p;
  p.tiers.push_back(tier(key));
  p.tiers.back().capacity = n;
  return p;
}

const Tier& find_tier(const Event& e, const std::string& key) {
  for (const Tier& t : e.tiers) {
    if (t.key == key) return t;
  }
  FAIL("no tier " << key);
  throw;
}
}  // namespace

TEMPLATE_TEST_CASE("a patch changes fields, capacity and prices; bookings keep their prices",
                   "[update]", ALL_BACKENDS) {
  TestType b;
  Fixture f(b.repo);
  REQUIRE(f.service.create_event(sample_event("Upd", {{"gold", 10}, {"sil", 5}})));
  auto first = f.service.hold(gold(4)).value();
  auto paid = f.service.hold(gold(2)).value();
  REQUIRE(f.service.confirm(paid.id, Payment{"card", "p"}));

  EventPatch p;
  p.name = "Updated name";
  p.promoter = std::optional<std::string>{};  // removed
  p.venue = "New hall";
  p.tiers.push_back(tier("gold-Upd"));
  p.tiers.back().capacity = 20;
  p.tiers.back().price = "12.5";  // IDR has 2 decimals
  p.tiers.back().max_per_order = std::optional<std::int64_t>{3};
  p.tiers.push_back(tier("vip-Upd"));
  TierPatch& vip = p.tiers.back();
  vip.category = "VIP";
  vip.currency = "IDR";
  vip.price = "100";
  vip.capacity = 7;
  vip.start = kT0 - 1h;
  vip.end = kT0 + 24h;
  auto updated = f.service.update_event("Upd", p, 1);
  INFO((updated ? "" : updated.error().message));
  REQUIRE(updated);
  const Event& e = updated.value();
  CHECK(e.version == 2);
  CHECK(e.name == "Updated name");
  CHECK_FALSE(e.promoter);
  CHECK(e.location.venue == "New hall");
  REQUIRE(e.tiers.size() == 3);
  CHECK(e.tiers[2].key == "vip-Upd");  // added after the others
  const Tier& g = find_tier(e, "gold-Upd");
  CHECK(g.stock == TierStock{20, 14, 4, 2});  // available moved by +10
  CHECK(g.price.minor == 1250);
  CHECK(g.max_per_order == 3);
  CHECK(find_tier(e, "vip-Upd").stock == TierStock{7, 7, 0, 0});
  CHECK(e == f.service.get_event("Upd").value());  // as stored

  // New holds pay the new price; the bookings made before keep theirs.
  auto later = f.service.hold(gold(2)).value();
  CHECK(later.lines[0].unit_price_minor == 1250);
  CHECK(f.service.get_booking(first.id).value().lines[0].unit_price_minor == 500'000'000);
  CHECK(f.service.hold(gold(4)).error().code == errc::per_user_limit);  // maxPerOrder 3
  HoldRequest v;
  v.event_key = "Upd";
  v.lines = {{"vip-Upd", 7}};
  CHECK(f.service.hold(v));

  // Lowering to exactly held + sold leaves nothing available.
  auto lowered = f.service.update_event("Upd", capacity("gold-Upd", 8));
  REQUIRE(lowered);
  CHECK(find_tier(lowered.value(), "gold-Upd").stock == TierStock{8, 0, 6, 2});
  CHECK(f.service.hold(gold()).error().code == errc::insufficient_stock);
  // A patch that changes nothing is no new version.
  const auto version = lowered.value().version;
  CHECK(f.service.update_event("Upd", capacity("gold-Upd", 8)).value().version == version);
  CHECK(f.service.update_event("Upd", EventPatch{}).value().version == version);
  require_conserved(*f.repo, "Upd");
}

TEMPLATE_TEST_CASE("a bad patch names every bad field and stores nothing", "[update]",
                   ALL_BACKENDS) {
  TestType b;
  Fixture f(b.repo);
  Event ev = sample_event("Upd", {{"gold", 10}, {"sil", 5}});
  REQUIRE(f.service.create_event(ev));
  REQUIRE(f.service.create_event(sample_event("Other", {{"gold", 1}})));
  REQUIRE(f.service.hold(gold(6)));
  const Event before = f.service.get_event("Upd").value();

  EventPatch p;
  p.key = "Renamed";
  p.name = "";
  p.tiers.push_back(tier("gold-Upd"));
  p.tiers.back().capacity = 5;      // below the 6 held
  p.tiers.back().currency = "USD";  // tickets are held in IDR
  p.tiers.back().price = "1";
  p.tiers.push_back(tier("sil-Upd"));
  p.tiers.back().end = kT0 - 2 * 24h;  // before its start: an empty window
  p.tiers.push_back(tier("sil-Upd2"));
  p.tiers.back().currency = "XYZ";  // a new tier: unknown currency, the rest missing
  ReleaseWave w1{kT0 - 1h, kT0 + 1h, 5, 0};
  ReleaseWave w2{kT0, kT0 + 2h, 5, 0};  // overlaps w1
  p.waves = std::vector<ReleaseWave>{w1, w2};
  auto r = f.service.update_event("Upd", p);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == errc::validation_failed);
  const auto& d = r.error().details;
  for (const char* field :
       {"key", "name", "eventGroups[0].capacity", "eventGroups[0].currency",
        "eventGroups[1].endDate", "eventGroups[2].currency", "eventGroups[2].category",
        "eventGroups[2].price", "eventGroups[2].capacity", "eventSchedules[1]"}) {
    INFO(field);
    CHECK(d.contains(field));
  }
  CHECK(f.service.get_event("Upd").value() == before);

  // A new tier whose key another event has.
  EventPatch taken;
  taken.tiers.push_back(tier("gold-Other"));
  TierPatch& t = taken.tiers.back();
  t.category = "Gold";
  t.currency = "IDR";
  t.price = "1";
  t.capacity = 1;
  t.start = kT0 - 1h;
  t.end = kT0 + 1h;
  auto dup = f.service.update_event("Upd", taken);
  REQUIRE_FALSE(dup);
  CHECK(dup.error().code == errc::validation_failed);
  CHECK(dup.error().details.contains("eventGroups[0].key"));
  CHECK(f.service.get_event("Upd").value() == before);

  // The currency of a tier without held or sold tickets may change (with its price).
  EventPatch usd;
  usd.tiers.push_back(tier("sil-Upd"));
  usd.tiers.back().currency = "USD";
  usd.tiers.back().price = "20";
  auto changed = f.service.update_event("Upd", usd);
  REQUIRE(changed);
  CHECK(find_tier(changed.value(), "sil-Upd").price == Money{2000, "USD"});

  CHECK(f.service.update_event("Nope", usd).error().code == errc::not_found);
  REQUIRE(f.service.cancel_event("Upd"));
  CHECK(f.service.update_event("Upd", capacity("gold-Upd", 50)).error().code ==
        errc::invalid_state);
  require_conserved(*f.repo, "Upd");
}

TEMPLATE_TEST_CASE("waves are replaced; a kept wave keeps its count, a removed one counts none",
                   "[update]", ALL_BACKENDS) {
  TestType b;
  Fixture f(b.repo);
  Event ev = sample_event("Upd", {{"gold", 100}});
  ev.waves = {{kT0 - 1h, kT0 + 1h, 10, 0}, {kT0 + 2h, kT0 + 3h, 10, 0}};
  REQUIRE(f.service.create_event(ev));
  auto a = f.service.hold(gold(3)).value();
  auto c = f.service.hold(gold(2)).value();

  EventPatch low;
  low.waves = std::vector<ReleaseWave>{{kT0 - 1h, kT0 + 1h, 4, 0}};  // 5 booked
  auto refused = f.service.update_event("Upd", low);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().details.contains("eventSchedules[0].limit"));

  EventPatch keep;
  keep.waves = std::vector<ReleaseWave>{{kT0 - 1h, kT0 + 30min, 6, 0}, {kT0 + 5h, kT0 + 6h, 8, 0}};
  auto kept = f.service.update_event("Upd", keep);
  REQUIRE(kept);
  REQUIRE(kept.value().waves.size() == 2);
  CHECK(kept.value().waves[0].booked == 5);
  CHECK(kept.value().waves[0].limit == 6);
  CHECK(kept.value().waves[1].booked == 0);
  CHECK(f.service.hold(gold(2)).error().code == errc::wave_limit_reached);  // 5 + 2 > 6
  REQUIRE(f.service.cancel(a.id));
  CHECK(f.service.get_event("Upd").value().waves[0].booked == 2);

  // Without waves, the remaining booking counts against none when cancelled.
  EventPatch none;
  none.waves = std::vector<ReleaseWave>{};
  auto cleared = f.service.update_event("Upd", none);
  REQUIRE(cleared);
  CHECK(cleared.value().waves.empty());
  REQUIRE(f.service.cancel(c.id));
  EventPatch again;
  again.waves = std::vector<ReleaseWave>{{kT0 - 1h, kT0 + 1h, 1, 0}};
  auto fresh = f.service.update_event("Upd", again);
  REQUIRE(fresh);
  CHECK(fresh.value().waves[0].booked == 0);
  CHECK(f.service.hold(gold(1)));
  require_conserved(*f.repo, "Upd");
}

TEMPLATE_TEST_CASE("of patches racing with the same If-Match exactly one wins", "[update][race]",
                   ALL_BACKENDS) {
  TestType b;
  Fixture f(b.repo);
  REQUIRE(f.service.create_event(sample_event("Upd", {{"gold", 10}})));
  std::atomic<int> won{0};
  std::atomic<int> refused{0};
  std::vector<std::thread> operators;
  for (int i = 0; i < 6; ++i) {
    operators.emplace_back([&, i] {
      auto r = f.service.update_event("Upd", capacity("gold-Upd", 20 + i), 1);
      if (r) ++won;
      if (!r && r.error().code == errc::precondition_failed) ++refused;
    });
  }
  for (auto& t : operators) t.join();
  CHECK(won == 1);
  CHECK(refused == 5);
  CHECK(f.service.get_event("Upd").value().version == 2);
  // Without If-Match, each patch applies on top of the others: none is lost.
  operators.clear();
  for (int i = 0; i < 4; ++i) {
    operators.emplace_back([&, i] {
      EventPatch p;
      p.tiers.push_back(tier("t" + std::to_string(i) + "-Upd"));
      TierPatch& t = p.tiers.back();
      t.category = "T";
      t.currency = "IDR";
      t.price = "1";
      t.capacity = 1;
      t.start = kT0 - 1h;
      t.end = kT0 + 1h;
      CHECK(f.service.update_event("Upd", p));
    });
  }
  for (auto& t : operators) t.join();
  CHECK(f.service.get_event("Upd").value().tiers.size() == 5);
  require_conserved(*f.repo, "Upd");
}

TEMPLATE_TEST_CASE("capacity changes racing holds fail no hold and keep stock conserved",
                   "[update][race]", ALL_BACKENDS) {
  TestType b;
  Fixture f(b.repo);
  Fixture other(b.repo);  // another process or instance changes the event
  REQUIRE(f.service.create_event(sample_event("Upd", {{"gold", 400}})));
  std::atomic<bool> stop{false};
  std::atomic<int> held{0};
  std::mutex mu;
  std::vector<std::string> unexpected;  // reported on this thread: Catch2's macros are not
                                        // for other threads
  std::vector<std::thread> buyers;
  for (int t = 0; t < 4; ++t) {
    buyers.emplace_back([&] {
      while (!stop) {
        auto r = f.service.hold(gold());
        if (r) {
          ++held;
        } else if (r.error().code != errc::insufficient_stock) {
          std::lock_guard lock(mu);
          unexpected.push_back(std::string(to_string(r.error().code)) + ": " + r.error().message);
        }
      }
    });
  }
  // Raise and lower the capacity under the buyers; lowering below held + sold is refused.
  int changes = 0;
  for (int i = 0; i < 20; ++i) {
    const Event now = other.service.get_event("Upd").value();
    const TierStock s = now.tiers[0].stock;
    const std::int64_t target = i % 2 == 0 ? s.capacity + 50 : s.held + s.sold + 10;
    auto r = other.service.update_event("Upd", capacity("gold-Upd", target));
    if (r) {
      ++changes;
    } else {
      CHECK(r.error().code == errc::validation_failed);  // sold meanwhile: below held + sold
    }
    require_conserved(*b.repo, "Upd");
    std::this_thread::sleep_for(2ms);
  }
  stop = true;
  for (auto& t : buyers) t.join();
  for (const auto& u : unexpected) UNSCOPED_INFO(u);
  CHECK(unexpected.empty());
  CHECK(changes >= 10);  // every raise; a lowering may find more sold meanwhile
  CHECK(held > 0);
  const TierStock s = f.service.get_event("Upd").value().tiers[0].stock;
  CHECK(s.held == held);
  require_conserved(*b.repo, "Upd");
}

TEMPLATE_TEST_CASE("a price changed through another service is charged by the next hold",
                   "[update]", ALL_BACKENDS) {
  TestType b;
  Fixture mine(b.repo);
  Fixture theirs(b.repo);
  REQUIRE(mine.service.create_event(sample_event("Upd", {{"gold", 10}})));
  REQUIRE(mine.service.hold(gold()));  // caches the definition
  EventPatch p;
  p.tiers.push_back(tier("gold-Upd"));
  p.tiers.back().price = "7";
  REQUIRE(theirs.service.update_event("Upd", p));
  auto next = mine.service.hold(gold());
  REQUIRE(next);
  CHECK(next.value().lines[0].unit_price_minor == 700);
  require_conserved(*b.repo, "Upd");
}
