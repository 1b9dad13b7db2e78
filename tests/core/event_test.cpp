#include <booking/event.hpp>

#include "support.hpp"

using namespace booking;
using namespace std::chrono_literals;

TEST_CASE("a well-formed event validates", "[event]") {
  CHECK(validate_new_event(test::sample_event("Con1", {{"gold", 10}, {"sil", 5}})));
}

TEST_CASE("every bad field of an event is named", "[event]") {
  Event e = test::sample_event("Con1", {{"gold", 10}, {"gold", 5}});
  e.key = "bad key!";
  e.name = "";
  e.tiers[0].price.currency = "XXX";
  e.tiers[0].capacity = -1;
  e.tiers[0].end = e.tiers[0].start;
  e.tiers[0].max_per_user = 0;
  e.waves = {ReleaseWave{test::kT0, test::kT0 + 1h, 0, 0},
             ReleaseWave{test::kT0 + 30min, test::kT0 + 2h, 5, 0}};
  auto r = validate_new_event(e);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == errc::validation_failed);
  const auto& d = r.error().details;
  for (const char* field :
       {"key", "name", "eventGroups[0].currency", "eventGroups[0].qty",
        "eventGroups[0].endDate", "eventGroups[0].maxPerUser", "eventGroups[1].key",
        "eventSchedules[0].limit", "eventSchedules[1]"}) {
    INFO(field);
    CHECK(d.contains(field));
  }
}

TEST_CASE("an event needs at least one tier and valid UTF-8 text", "[event]") {
  Event e = test::sample_event("Con1", {});
  e.name = "\xff\xfe";
  auto r = validate_new_event(e);
  REQUIRE_FALSE(r);
  CHECK(r.error().details.contains("eventGroups"));
  CHECK(r.error().details.contains("name"));
}

TEST_CASE("keys allow letters, digits, dot, underscore and dash only", "[event]") {
  CHECK(is_valid_key("gold-Con10124"));
  CHECK(is_valid_key("a.b_c-D9"));
  CHECK_FALSE(is_valid_key(""));
  CHECK_FALSE(is_valid_key("../etc"));
  CHECK_FALSE(is_valid_key("a'; DROP TABLE events;--"));
  CHECK_FALSE(is_valid_key(std::string(65, 'a')));
}
