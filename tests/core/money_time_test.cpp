#include <booking/money.hpp>
#include <booking/time.hpp>
#include <catch2/catch.hpp>

using namespace booking;
using namespace std::chrono_literals;

TEST_CASE("major units parse exactly into minor units", "[money]") {
  CHECK(parse_major_units("5000000", 2).value() == 500'000'000);
  CHECK(parse_major_units("12.5", 2).value() == 1250);
  CHECK(parse_major_units("12.50", 2).value() == 1250);
  CHECK(parse_major_units("0.01", 2).value() == 1);
  CHECK(parse_major_units("1500", 0).value() == 1500);
  CHECK(parse_major_units("1e3", 2).value() == 100'000);
  CHECK(parse_major_units("1.25E1", 2).value() == 1250);
  CHECK(parse_major_units("0", 2).value() == 0);
}

TEST_CASE("amounts with too many decimals, negatives, overflow or junk are rejected", "[money]") {
  for (const char* bad : {"12.345", "-1", "1.5", "abc", "", "1.", ".5", "1e", "1e400",
                          "92233720368547758.08", "99999999999999999999", "1 "}) {
    INFO(bad);
    int decimals = std::string_view(bad) == "1.5" ? 0 : 2;
    auto r = parse_major_units(bad, decimals);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == errc::validation_failed);
  }
}

TEST_CASE("minor units print as the shortest exact major amount", "[money]") {
  CHECK(format_major_units(500'000'000, 2) == "5000000");
  CHECK(format_major_units(1250, 2) == "12.5");
  CHECK(format_major_units(1250, 2, true) == "12.50");
  CHECK(format_major_units(5, 2) == "0.05");
  CHECK(format_major_units(1500, 0) == "1500");
  CHECK(format_major_units(1, 3) == "0.001");
}

TEST_CASE("money prints for people with separators and every decimal", "[money]") {
  CHECK(format_money({500'000'000, "IDR"}) == "5,000,000.00 IDR");
  CHECK(format_money({1250, "USD"}) == "12.50 USD");
  CHECK(format_money({1500, "JPY"}) == "1,500 JPY");
  CHECK(format_money({99, "JPY"}) == "99 JPY");
  CHECK(format_money({100'000, "USD"}) == "1,000.00 USD");
  CHECK(format_money({-123'456'789, "USD"}) == "-1,234,567.89 USD");
  CHECK(format_integer(0) == "0");
  CHECK(format_integer(999) == "999");
  CHECK(format_integer(1000) == "1,000");
  CHECK(format_integer(-1234567) == "-1,234,567");
}

TEST_CASE("currencies know their decimals", "[money]") {
  CHECK(find_currency("IDR").value().decimals == 2);
  CHECK(find_currency("USD").value().decimals == 2);
  CHECK(find_currency("JPY").value().decimals == 0);
  CHECK_FALSE(find_currency("XXX"));
  CHECK_FALSE(find_currency("usd"));
}

TEST_CASE("instants with any offset are normalized to UTC", "[time]") {
  auto a = parse_instant("2026-11-11T21:00:00+07:00");
  REQUIRE(a);
  CHECK(format_instant(a.value()) == "2026-11-11T14:00:00.000+00:00");
  CHECK(parse_instant("2026-11-11T14:00:00Z").value() == a.value());
  CHECK(parse_instant("2026-11-11T14:00:00.000+00:00").value() == a.value());
  CHECK(parse_instant("2026-11-11T09:30:00-04:30").value() == a.value());
  CHECK(parse_instant("2026-11-11T14:00:00.250Z").value() == a.value() + 250ms);
}

TEST_CASE("instants without an offset or malformed are rejected", "[time]") {
  for (const char* bad : {"2026-11-11T14:00:00", "2026-11-11", "yesterday", "2026-13-01T00:00:00Z",
                          "2026-11-11T14:00:00+07:00junk", "", "0000-01-01T00:00:00Z",
                          "2026-11-11T21:000:ms050+07:00", "2026-11-11T21:00:00.1234Z",
                          "2026-11-11 21:00:00+07:00", "2026-11-11T21:00:00+7:00"}) {
    INFO(bad);
    CHECK_FALSE(parse_instant(bad));
  }
}

TEST_CASE("durations parse from human units", "[time]") {
  CHECK(parse_duration("10m").value() == 10min);
  CHECK(parse_duration("2s").value() == 2s);
  CHECK(parse_duration("500ms").value() == 500ms);
  CHECK(parse_duration("1h30m").value() == 90min);
  CHECK(parse_duration("30d").value() == std::chrono::hours(720));
  CHECK(parse_duration("90").value() == 90s);
  for (const char* bad : {"", "0s", "-1s", "10x", "m", "99999999999999999999h"}) {
    INFO(bad);
    CHECK_FALSE(parse_duration(bad));
  }
}

TEST_CASE("a manual clock moves only when told", "[time]") {
  ManualClock c(Instant(1000ms));
  CHECK(c.now() == Instant(1000ms));
  c.advance(5s);
  CHECK(c.now() == Instant(6000ms));
}

TEST_CASE("an instant keeps the offset it was written in, and prints in it", "[time]") {
  auto z = parse_zoned_instant("2027-02-23T20:00:00+07:00").value();
  CHECK(z.offset_minutes == 420);
  CHECK(format_instant(z.at) == "2027-02-23T13:00:00.000+00:00");
  CHECK(format_instant(z.at, 420) == "2027-02-23T20:00:00.000+07:00");
  CHECK(format_instant(z.at, -150) == "2027-02-23T10:30:00.000-02:30");
  CHECK(parse_zoned_instant("2027-02-23T13:00:00Z").value().offset_minutes == 0);
  CHECK(parse_zoned_instant("2027-02-23T13:00:00-0330").value().offset_minutes == -210);
  CHECK(format_utc_offset(-210) == "-03:30");
  CHECK_FALSE(parse_zoned_instant("2027-02-23T13:00:00+19:00"));
}

TEST_CASE("instants print exactly at the edges of days, years and the epoch", "[time]") {
  CHECK(format_instant(Instant(0ms)) == "1970-01-01T00:00:00.000+00:00");
  CHECK(format_instant(Instant(-1ms)) == "1969-12-31T23:59:59.999+00:00");
  CHECK(format_instant(parse_instant("2000-02-29T23:59:59.999Z").value()) ==
        "2000-02-29T23:59:59.999+00:00");
  CHECK(format_instant(parse_instant("9999-12-31T23:59:59.999Z").value()) ==
        "9999-12-31T23:59:59.999+00:00");
  CHECK(format_instant(parse_instant("2026-12-31T23:30:00Z").value(), 60) ==
        "2027-01-01T00:30:00.000+01:00");
  // Every instant round-trips through its text, whatever its offset.
  for (std::int64_t ms = 0; ms < 86'400'000LL * 365 * 300; ms += 86'400'000LL * 17 + 3'599'999) {
    const Instant t{std::chrono::milliseconds(ms)};
    for (std::int32_t offset : {0, 330, -600}) {
      INFO(ms << " " << offset);
      REQUIRE(parse_instant(format_instant(t, offset)).value() == t);
    }
  }
}
