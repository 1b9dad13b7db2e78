// Many threads racing for one hot tier: exactly the capacity is sold, never more.
#include <random>
#include <set>
#include <thread>

#include "process.hpp"
#include "support.hpp"

using namespace booking;
using namespace booking::test;

TEMPLATE_TEST_CASE("64 threads booking one hot tier sell exactly its capacity", "[service][race]",
                   ALL_BACKENDS) {
  TestType b;
  Fixture f(b.repo);
  constexpr std::int64_t kCapacity = 500;
  REQUIRE(f.service.create_event(sample_event("Hot", {{"gold", kCapacity}})));

  struct Outcome {
    std::vector<std::string> ids;
    std::int64_t booked = 0;
    std::vector<std::string> unexpected;
  };
  std::vector<Outcome> outcomes(64);
  std::vector<std::thread> threads;
  for (int t = 0; t < 64; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(t));
      std::uniform_int_distribution<int> qty(1, 4);
      Outcome& out = outcomes[static_cast<std::size_t>(t)];
      int sold_out_answers = 0;
      while (sold_out_answers < 3) {
        HoldRequest r;
        r.event_key = "Hot";
        r.lines = {{"gold-Hot", qty(rng)}};
        auto h = f.service.hold(r);
        if (h) {
          out.ids.push_back(h.value().id);
          out.booked += h.value().ticket_count();
        } else if (h.error().code == errc::insufficient_stock) {
          ++sold_out_answers;
        } else {
          out.unexpected.push_back(std::string(to_string(h.error().code)) + ": " +
                                   h.error().message);
        }
      }
    });
  }
  for (auto& t : threads) t.join();

  std::int64_t booked = 0;
  std::set<std::string> ids;
  std::size_t id_count = 0;
  for (const auto& o : outcomes) {
    CHECK(o.unexpected.empty());
    for (const auto& u : o.unexpected) UNSCOPED_INFO(u);
    booked += o.booked;
    ids.insert(o.ids.begin(), o.ids.end());
    id_count += o.ids.size();
  }
  CHECK(ids.size() == id_count);
  const Tier tier = f.repo->get_event("Hot").value().tiers[0];
  // Only a shortage answers insufficient_stock and stock only shrinks here, so a thread that
  // heard it three times for quantities of 1-4 saw fewer than 4 tickets left.
  CHECK(booked == kCapacity - tier.stock.available);
  CHECK(tier.stock.held == booked);
  CHECK(tier.stock.available < 4);
  require_conserved(*f.repo, "Hot");
}
