#include <booking/json_codec.hpp>
#include <boost/json.hpp>

#include "support.hpp"

using namespace booking;
namespace json = boost::json;

namespace {
const char* kEventJson = R"({
  "key": "Con10124", "name": "Blink 182 Goes to Indonesia", "type": "Concert",
  "promoter": "JFP", "date": "2027-03-01T20:00:00+07:00",
  "location": {"venue": "JIS", "address": "Jakarta"},
  "eventGroups": [
    {"key": "gold-Con10124", "category": "Gold", "price": 5000000, "currency": "IDR", "qty": 100,
     "startDate": "2027-01-01T00:00:00Z", "endDate": "2027-03-01T00:00:00Z", "maxPerOrder": 4},
    {"key": "usd-Con10124", "category": "Intl", "price": 12.5, "currency": "USD", "qty": 10,
     "startDate": "2027-01-01T00:00:00Z", "endDate": "2027-03-01T00:00:00Z"}
  ],
  "eventSchedules": [{"startDate": "2027-01-01T00:00:00Z", "endDate": "2027-01-02T00:00:00Z",
                      "limit": 50}]
})";
}

TEST_CASE("an event decodes from the API shape with exact prices and UTC instants", "[json]") {
  auto v = parse_json(kEventJson);
  REQUIRE(v);
  auto e = event_from_json(v.value());
  REQUIRE(e);
  CHECK(e.value().key == "Con10124");
  CHECK(e.value().tiers[0].price == Money{500'000'000, "IDR"});
  CHECK(e.value().tiers[1].price == Money{1250, "USD"});
  CHECK(e.value().tiers[0].capacity == 100);
  CHECK(e.value().tiers[0].max_per_order == 4);
  CHECK(format_instant(e.value().date) == "2027-03-01T13:00:00.000+00:00");
  CHECK(e.value().waves.size() == 1);
}

TEST_CASE("an event encodes with stock per event group and round-trips", "[json]") {
  Event e = event_from_json(parse_json(kEventJson).value()).value();
  e.tiers[0].stock = TierStock{100, 97, 2, 1};
  json::object o = to_json(e);
  const auto& g = o["eventGroups"].as_array()[0].as_object();
  CHECK(g.at("qty").as_int64() == 97);
  CHECK(g.at("capacity").as_int64() == 100);
  CHECK(g.at("held").as_int64() == 2);
  CHECK(g.at("sold").as_int64() == 1);
  CHECK(g.at("price").as_int64() == 5'000'000);
  CHECK(o["eventGroups"].as_array()[1].as_object().at("price").as_double() == 12.5);
  auto back = event_from_json(o);
  REQUIRE(back);
  CHECK(back.value().tiers[1].price == e.tiers[1].price);
  CHECK(back.value().tiers[0].capacity == 100);
}

TEST_CASE("bad event JSON names every bad field", "[json]") {
  auto v = parse_json(R"({"key": 5, "name": "x", "type": "Concert", "date": "soon",
    "eventGroups": [{"key": "a", "category": "A", "price": 12.345, "currency": "USD", "qty": 1,
                     "startDate": "2027-01-01T00:00:00Z", "endDate": "2027-01-01T00:00:00Z"},
                    {"key": "b", "category": "B", "price": -1, "currency": "IDR", "qty": "lots",
                     "startDate": "2027-01-01T00:00:00Z", "endDate": "2027-02-01T00:00:00Z"}]})");
  REQUIRE(v);
  auto e = event_from_json(v.value());
  REQUIRE_FALSE(e);
  CHECK(e.error().code == errc::validation_failed);
  const auto& d = e.error().details;
  for (const char* f :
       {"key", "date", "eventGroups[0].price", "eventGroups[1].price", "eventGroups[1].qty"}) {
    INFO(f);
    CHECK(d.contains(f));
  }
}

TEST_CASE("malformed and hostile JSON text is invalid_json", "[json]") {
  for (std::string bad :
       {std::string("{"), std::string("nope"), std::string(""), std::string(10'000, '['),
        std::string("{\"a\": \"\xff\"}"), std::string(R"({"key": "A", "key": "B"})"),
        std::string(R"({"a": {"k": 1, "k": 2}})")}) {
    auto r = parse_json(bad);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == errc::invalid_json);
  }
}

TEST_CASE("the same key in different objects is fine", "[json]") {
  CHECK(parse_json(R"({"k": {"k": 1}, "a": [{"k": 1}, {"k": 2}]})"));
}

TEST_CASE("a hold request decodes and rejects bad shapes", "[json]") {
  auto ok = hold_request_from_json(
      parse_json(
          R"({"key": "Con10124", "groupKeys": [{"key": "gold-Con10124", "qty": 3}], "userId": "u1"})")
          .value());
  REQUIRE(ok);
  CHECK(ok.value().lines[0].qty == 3);
  CHECK(ok.value().user_id == "u1");
  auto bad = hold_request_from_json(
      parse_json(R"({"key": "C", "groupKeys": [{"key": "g", "qty": 1.5}, 7]})").value());
  REQUIRE_FALSE(bad);
  CHECK(bad.error().details.contains("groupKeys[0].qty"));
  CHECK(bad.error().details.contains("groupKeys[1]"));
  auto huge = hold_request_from_json(
      parse_json(R"({"key": "C", "groupKeys": [{"key": "g", "qty": 99999999999999999999}]})")
          .value());
  REQUIRE_FALSE(huge);
  CHECK(huge.error().code == errc::validation_failed);
}

TEST_CASE("JSON text prints decimals as people write them", "[json]") {
  json::object o{
      {"price", money_json(1250, "USD")}, {"n", 5}, {"s", "a\"b"}, {"a", {1.5, nullptr}}};
  CHECK(to_text(o) == R"({"price":12.5,"n":5,"s":"a\"b","a":[1.5,null]})");
  CHECK(to_text(money_json(500'000'000, "IDR")) == "5000000");
  CHECK(to_text(money_json(1, "USD")) == "0.01");
}

TEST_CASE("errors encode as the API envelope", "[json]") {
  auto o = error_json(make_error(errc::insufficient_stock, "sold out", {{"available", 0}}));
  CHECK(o["error"].as_object()["code"].as_string() == "insufficient_stock");
  CHECK(o["error"].as_object()["details"].as_object()["available"].as_int64() == 0);
  CHECK(http_status(errc::insufficient_stock) == 409);
  CHECK(exit_code(errc::lock_timeout) == 5);
  CHECK(http_status(errc::hold_expired) == 410);
  std::error_code ec = errc::lock_timeout;
  CHECK(ec.category().name() == std::string("booking"));
  CHECK(ec.message() == "lock_timeout");
  CHECK(ec == make_error_code(errc::lock_timeout));
}

TEST_CASE("unknown fields are refused by name; the GET shape's read-only fields are ignored",
          "[json]") {
  auto typo = json::parse(kEventJson).as_object();
  typo["eventGroups"].as_array()[0].as_object()["maxPerUsers"] = 2;  // a typo of maxPerUser
  typo["location"].as_object()["city"] = "Jakarta";
  typo["id"] = 7;  // read-only: ignored
  auto refused = event_from_json(typo);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == errc::validation_failed);
  CHECK(refused.error().details.at("eventGroups[0].maxPerUsers").as_string() == "unknown field");
  CHECK(refused.error().details.at("location.city").as_string() == "unknown field");
  CHECK(refused.error().details.size() == 2);
  // The message says each field with its reason, for a reader without the details.
  CHECK(refused.error().message.find("eventGroups[0].maxPerUsers: unknown field") !=
        std::string::npos);

  auto hold = hold_request_from_json(
      json::parse(R"({"key": "E", "groupKeys": [{"key": "t", "qty": 1, "price": 5}],
                      "userID": "u1"})"));
  REQUIRE_FALSE(hold);
  CHECK(hold.error().details.at("groupKeys[0].price").as_string() == "unknown field");
  CHECK(hold.error().details.at("userID").as_string() == "unknown field");
  CHECK(payment_from_json(json::parse(R"({"method": "card"})")).error().details.contains("method"));

  // An event as GET returns it can be posted back.
  auto decoded = event_from_json(json::parse(kEventJson));
  REQUIRE(decoded);
  CHECK(event_from_json(to_json(decoded.value())));
}

TEST_CASE("invalid JSON says where, by line and column", "[json]") {
  auto r = parse_json("{\n  \"key\": \"x\",\n  \"qty\": ]\n}");
  REQUIRE_FALSE(r);
  CHECK(r.error().code == errc::invalid_json);
  CHECK(r.error().details.at("line").as_int64() == 3);
  CHECK(r.error().details.at("column").as_int64() == 10);
  CHECK(r.error().message.starts_with("not valid JSON at line 3, column 10"));
}

TEST_CASE("an event keeps its date's offset: utcOffset beside the UTC date", "[json]") {
  auto e = event_from_json(json::parse(kEventJson)).value();  // date given at +07:00
  CHECK(e.utc_offset_minutes == 420);
  json::object o = to_json(e);
  CHECK(o.at("date").as_string() == "2027-03-01T13:00:00.000+00:00");
  CHECK(o.at("utcOffset").as_string() == "+07:00");
  auto back = event_from_json(o).value();  // posted back: UTC date, offset beside it
  CHECK(back.utc_offset_minutes == 420);
  CHECK(back.date == e.date);
  o["utcOffset"] = "7 hours";
  CHECK(event_from_json(o).error().details.at("utcOffset").as_string() ==
        "must be an offset such as +07:00");
}
