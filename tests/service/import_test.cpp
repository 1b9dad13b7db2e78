// The import policy and the expiry sweeper: what the library gives an embedding program.
#include <atomic>
#include <booking/expiry_sweeper.hpp>
#include <booking/import.hpp>
#include <booking/json_codec.hpp>
#include <sstream>
#include <thread>

#include "process.hpp"
#include "support.hpp"

using namespace booking;
using namespace booking::test;
using namespace std::chrono_literals;

namespace {
std::string line_of(const Event& e) {
  boost::json::object o = to_json(e);  // the GET shape: a tier's qty is what is available
  o.erase("id");
  auto& groups = o.at("eventGroups").as_array();
  for (std::size_t i = 0; i < groups.size(); ++i) {
    groups[i].as_object()["qty"] = e.tiers[i].capacity;
    groups[i].as_object()["capacity"] = e.tiers[i].capacity;
  }
  return to_text(o);
}
}  // namespace

TEMPLATE_TEST_CASE("import stores good lines in batches and reports the others by line",
                   "[service][import]", ALL_BACKENDS) {
  TestType b;
  Fixture f(b.repo);
  std::stringstream in;
  in << line_of(sample_event("A", {{"t", 1}})) << "\n"
     << "{\"key\": \n"                                  // line 2: bad JSON
     << line_of(sample_event("B", {{"t", 2}})) << "\n"  // line 3
     << "\n"
     << line_of(sample_event("A", {{"u", 1}})) << "\n";  // line 5: key A again
  std::vector<std::pair<std::size_t, std::size_t>> progress;
  ImportOptions options;
  options.batch = 2;
  options.progress = [&](std::size_t done, std::size_t total) {
    progress.push_back({done, total});
  };
  auto r = import_events(f.service, in, options);
  REQUIRE(r);
  CHECK(r.value().imported == 2);
  REQUIRE(r.value().problems.size() == 2);
  CHECK(r.value().problems[0].line == 2);
  CHECK(r.value().problems[0].problem.code == errc::invalid_json);
  CHECK(r.value().problems[0].problem.details.at("line").as_int64() == 1);
  CHECK(r.value().problems[1].line == 5);
  CHECK(r.value().problems[1].problem.code == errc::duplicate_key);
  CHECK(progress == std::vector<std::pair<std::size_t, std::size_t>>{{2, 3}, {3, 3}});
  CHECK(f.service.get_event("B").value().tiers[0].capacity == 2);

  // Again, skipping what exists: nothing new, nothing reported but the bad JSON.
  in.clear();
  in.seekg(0);
  options.skip_existing = true;
  auto again = import_events(f.service, in, options);
  REQUIRE(again);
  CHECK(again.value().imported == 0);
  CHECK(again.value().existing == 3);
  CHECK(again.value().problems.size() == 1);

  // Strict: one bad line and nothing is stored.
  std::stringstream strict_in;
  strict_in << line_of(sample_event("C", {{"t", 1}})) << "\n{}\n";
  options.strict = true;
  auto strict = import_events(f.service, strict_in, options);
  REQUIRE(strict);
  CHECK(strict.value().imported == 0);
  CHECK(strict.value().problems.size() == 1);
  CHECK(f.service.get_event("C").error().code == errc::not_found);
}

TEST_CASE("the expiry sweeper returns due holds' stock on its own and stops on request",
          "[service][expiry]") {
  auto repo = make_memory_repository();
  Fixture f(repo);
  REQUIRE(f.service.create_event(sample_event("Sw", {{"gold", 10}})));
  HoldRequest r;
  r.event_key = "Sw";
  r.lines = {{"gold-Sw", 3}};
  REQUIRE(f.service.hold(r));
  std::atomic<std::size_t> expired{0};
  SweeperOptions options;
  options.interval = 5ms;
  options.on_expired = [&](std::size_t n) { expired += n; };
  ExpirySweeper sweeper(f.service, options);
  f.clock.advance(11min);  // the hold is due: the next sweep takes it
  for (int i = 0; i < 400 && expired == 0; ++i) std::this_thread::sleep_for(5ms);
  CHECK(expired == 1);
  CHECK(f.service.get_event("Sw").value().tiers[0].stock.available == 10);
  sweeper.stop();
  sweeper.stop();  // idempotent
  REQUIRE(f.service.hold(r));
  f.clock.advance(11min);
  std::this_thread::sleep_for(30ms);
  CHECK(expired == 1);  // stopped: nothing expires by itself any more
  CHECK(f.service.count_active_holds().value() == 1);
}
