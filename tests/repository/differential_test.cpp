// The differential test: one random sequence of operations against every repository gives the
// same answers, error codes, messages and details included. The rules exist once (core), so a
// backend that drifts from the others is a bug in its primitives.
#include <booking/json_codec.hpp>
#include <boost/json.hpp>
#include <map>
#include <random>

#include "process.hpp"
#include "support.hpp"

using namespace booking;
using namespace booking::test;
using namespace std::chrono_literals;

namespace {

// Tiers a (maxPerUser 4), b, c (maxPerOrder 3); a wave of 14 tickets open for the first hour.
Event differential_event() {
  Event e = sample_event("D", {{"a", 12}, {"b", 8}, {"c", 5}});
  e.tiers[0].max_per_user = 4;
  e.tiers[2].max_per_order = 3;
  e.waves.push_back(ReleaseWave{kT0 - 1h, kT0 + 1h, 14, 0});
  return e;
}

// Booking ids are random: each is named by the order in which the sequence first saw it.
class Names {
 public:
  std::string operator()(const std::string& id) {
    auto [it, fresh] = names_.try_emplace(id, "#" + std::to_string(names_.size()));
    return it->second;
  }

 private:
  std::map<std::string, std::string> names_;
};

std::string describe(const result<Booking>& r, Names& name) {
  if (!r) {
    return "error " + std::string(to_string(r.error().code)) + ": " + r.error().message + " " +
           boost::json::serialize(r.error().details);
  }
  const Booking& b = r.value();
  std::string s = name(b.id) + " " + std::string(to_string(b.status)) + " " +
                  b.user_id.value_or("-") + " " + std::to_string(b.total.minor) + " " +
                  format_instant(b.expires_at) + " " + b.payment_reference.value_or("-");
  for (const BookingLine& l : b.lines) s += " " + l.tier_key + "=" + std::to_string(l.qty);
  return s;
}

std::string stock_of(EventRepository& repo) {
  std::string s;
  const Event e = repo.get_event("D").value();
  for (const Tier& t : e.tiers) {
    s += t.key + ":" + std::to_string(t.stock.available) + "/" + std::to_string(t.stock.held) +
         "/" + std::to_string(t.stock.sold) + " ";
  }
  for (const ReleaseWave& w : e.waves) s += "wave:" + std::to_string(w.booked);
  return s;
}

// Runs the sequence of `seed` on `repo` and returns one line per step.
std::vector<std::string> run_sequence(std::unique_ptr<EventRepository>& repo, unsigned seed) {
  Fixture f(repo);
  std::vector<std::string> said;
  REQUIRE(f.service.create_event(differential_event()));
  std::mt19937 rng(seed);
  auto pick = [&](int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng); };
  const std::vector<std::string> tiers{"a-D", "b-D", "c-D"};
  const std::vector<std::optional<std::string>> users{std::nullopt, "u1", "u2", "u3"};
  std::vector<std::string> ids;
  std::vector<HoldRequest> keyed;  // requests sent with an idempotency key
  Names name;
  for (int step = 0; step < 400; ++step) {
    const int op = pick(20);
    std::string line = std::to_string(step) + " ";
    if (op < 8) {  // a hold, sometimes a retry of a keyed one or a key reused for another
      HoldRequest r;
      if (!keyed.empty() && pick(4) == 0) {
        r = keyed[static_cast<std::size_t>(pick(static_cast<int>(keyed.size())))];
        if (pick(3) == 0) r.lines[0].qty += 1;  // same key, another request
      } else {
        r.event_key = "D";
        const int first = pick(3);
        r.lines.push_back({tiers[static_cast<std::size_t>(first)], 1 + pick(4)});
        if (pick(3) == 0) r.lines.push_back({tiers[static_cast<std::size_t>((first + 1) % 3)], 1});
        r.user_id = users[static_cast<std::size_t>(pick(4))];
        if (pick(2)) {
          r.idempotency_key = "k" + std::to_string(step);
          keyed.push_back(r);
        }
      }
      auto h = f.service.hold(r);
      if (h) ids.push_back(h.value().id);
      line += "hold " + describe(h, name);
    } else if (op < 10 && !keyed.empty()) {  // storage asked to store a key twice
      const HoldRequest& r = keyed[static_cast<std::size_t>(pick(static_cast<int>(keyed.size())))];
      HoldPlan plan;
      plan.booking.id = std::string(32, 'f');
      plan.booking.event_key = "D";
      plan.booking.idempotency_key = r.idempotency_key;
      plan.booking.lines = {{r.lines[0].tier_key, 100, 1}};
      plan.booking.total = Money{100, "IDR"};
      plan.max_per_user = {std::nullopt};
      line += "insert_hold again " + describe(repo->insert_hold(plan), name);
    } else if (op < 14 && !ids.empty()) {
      const std::string& id = ids[static_cast<std::size_t>(pick(static_cast<int>(ids.size())))];
      line += "confirm " + describe(f.service.confirm(id, {"card", pick(2) ? "r1" : "r2"}), name);
    } else if (op < 16 && !ids.empty()) {
      const std::string& id = ids[static_cast<std::size_t>(pick(static_cast<int>(ids.size())))];
      line += "cancel " + describe(f.service.cancel(id), name);
    } else if (op < 18) {
      const auto by = std::chrono::seconds(pick(400));
      f.clock.advance(by);
      line += "advance " + std::to_string(by.count()) + " s";
    } else {
      auto n = f.service.expire_due();
      line += "expire " + (n ? std::to_string(n.value()) : std::string("failed"));
    }
    said.push_back(line + " | " + stock_of(*repo));
  }
  return said;
}

}  // namespace

TEST_CASE("memory, SQLite and PostgreSQL give the same answers to the same operations",
          "[repository][differential][postgres]") {
  for (unsigned seed : {1u, 2u, 3u, 4u}) {
    INFO("seed " << seed);
    MemoryBackend memory;
    SqliteBackend sqlite;
    const auto expected = run_sequence(memory.repo, seed);
    const auto from_sqlite = run_sequence(sqlite.repo, seed);
#if BOOKING_TEST_POSTGRES
    PostgresBackend postgres;
    const auto from_postgres = run_sequence(postgres.repo, seed);
#endif
    for (std::size_t i = 0; i < expected.size(); ++i) {
      INFO("memory:     " << expected[i]);
      REQUIRE(from_sqlite.at(i) == expected[i]);
#if BOOKING_TEST_POSTGRES
      REQUIRE(from_postgres.at(i) == expected[i]);
#endif
    }
  }
}
