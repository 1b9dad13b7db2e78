// Every endpoint and every error code of the HTTP API (docs/api.md) through real HTTP.
#include <atomic>
#include <booking/export.hpp>
#include <booking/json_codec.hpp>
#include <boost/json.hpp>
#include <set>
#include <thread>

#include "httpd/http_fixture.hpp"
#include "process.hpp"

using namespace booking;
using namespace booking::test;
using namespace std::chrono_literals;
namespace json = boost::json;

namespace {

std::string event_body(const std::string& key, std::int64_t qty, const std::string& extra = "") {
  return R"({"key": ")" + key + R"(", "name": "Show )" + key + R"(", "type": "Concert",
    "date": "2027-02-01T20:00:00+07:00", "location": {"venue": "Hall", "address": "Street 1"},
    "eventGroups": [
      {"key": "gold-)" +
         key + R"(", "category": "Gold", "price": 5000000, "currency": "IDR",
       "qty": )" +
         std::to_string(qty) + R"(, "startDate": "2027-01-01T00:00:00Z",
       "endDate": "2027-02-01T00:00:00Z", "maxPerOrder": 5, "maxPerUser": 6},
      {"key": "sil-)" +
         key + R"(", "category": "Silver", "price": 3000000.5, "currency": "IDR",
       "qty": 10, "startDate": "2027-01-01T00:00:00Z", "endDate": "2027-02-01T00:00:00Z"}
    ])" + extra +
         "}";
}

std::string hold_body(const std::string& key, std::int64_t qty, const std::string& user = "u1") {
  return R"({"key": ")" + key + R"(", "groupKeys": [{"key": "gold-)" + key + R"(", "qty": )" +
         std::to_string(qty) + R"(}], "userId": ")" + user + R"("})";
}

const json::object& data(const HttpResult& r) { return r.body.as_object().at("data").as_object(); }
std::string code(const HttpResult& r) {
  return std::string(r.body.as_object().at("error").as_object().at("code").as_string());
}

// The event as the API shows it, to compare before and after a failed request.
std::string snapshot(HttpFixture& f, const std::string& key) {
  return json::serialize(f.get("/v1/api/events/" + key).body);
}

}  // namespace

TEST_CASE("every endpoint answers its success path", "[http]") {
  HttpFixture f;
  auto created = f.post("/v1/api/events", event_body("Con1", 100));
  REQUIRE(created.status == 201);
  CHECK(data(created).at("key").as_string() == "Con1");
  CHECK(data(created).at("eventGroups").as_array()[1].as_object().at("price").as_double() ==
        3000000.5);

  auto search = f.get("/v1/api/events?name=SHOW&limit=5&offset=0");
  REQUIRE(search.status == 200);
  CHECK(search.body.at("data").as_array().size() == 1);
  CHECK_FALSE(search.body.as_object().contains("next"));  // the last page
  REQUIRE(f.post("/v1/api/events", event_body("Con2", 10)).status == 201);
  auto paged = f.get("/v1/api/events?name=SHOW&limit=1");
  REQUIRE(paged.status == 200);
  CHECK(paged.body.at("data").as_array().size() == 1);
  const std::string next(paged.body.at("next").as_string());
  CHECK(next == "/v1/api/events?name=SHOW&limit=1&offset=1");
  auto second = f.get(next);
  CHECK(second.body.at("data").as_array().at(0).at("key").as_string() == "Con2");
  CHECK_FALSE(second.body.as_object().contains("next"));

  auto one = f.get("/v1/api/events/Con1");
  REQUIRE(one.status == 200);
  CHECK(data(one).at("eventGroups").as_array()[0].as_object().at("qty").as_int64() == 100);

  auto held = f.post("/v1/api/books", hold_body("Con1", 3));
  REQUIRE(held.status == 201);
  const std::string id(data(held).at("bookId").as_string());
  CHECK(data(held).at("status").as_string() == "HELD");
  CHECK(data(held).at("price").as_int64() == 15'000'000);
  CHECK(data(held).at("currency").as_string() == "IDR");
  CHECK(data(held).at("expiresAt").as_string() == "2027-01-15T08:10:00.000+00:00");

  auto gold = f.get("/v1/api/events/Con1").body.at("data").at("eventGroups").as_array()[0];
  CHECK(gold.at("qty").as_int64() == 97);
  CHECK(gold.at("held").as_int64() == 3);

  auto got = f.get("/v1/api/books/" + id);
  REQUIRE(got.status == 200);
  CHECK(data(got).at("groupKeys").as_array()[0].at("qty").as_int64() == 3);

  auto confirmed =
      f.post("/v1/api/books/" + id + "/confirm", R"({"paymentMethod": "card", "reference": "r9"})");
  REQUIRE(confirmed.status == 200);
  CHECK(data(confirmed).at("status").as_string() == "CONFIRMED");
  CHECK(data(confirmed).at("reference").as_string() == "r9");

  auto cancelled = f.post("/v1/api/books/" + id + "/cancel", "");
  REQUIRE(cancelled.status == 200);
  CHECK(data(cancelled).at("status").as_string() == "CANCELLED");

  CHECK(f.get("/healthz").status == 200);
  auto metrics = f.get("/metrics");
  REQUIRE(metrics.status == 200);
  const std::string text(metrics.body.as_string());
  CHECK(text.find("booking_holds_total{outcome=\"ok\"} 1") != std::string::npos);
  CHECK(text.find("booking_tickets_available{event=\"Con1\",tier=\"gold-Con1\"} 100") !=
        std::string::npos);
  CHECK(text.find("booking_lock_wait_seconds_count 1") != std::string::npos);
  CHECK(text.find("# TYPE booking_lock_wait_seconds_max gauge") != std::string::npos);
  CHECK(f.get("/openapi.json").body.at("openapi").as_string() == "3.0.3");
}

TEST_CASE("every error code comes in the envelope with storage unchanged", "[http]") {
  ServiceOptions options;
  options.lock_wait.wait = 20ms;
  httpd::HttpOptions http;
  http.max_body = 4096;
  HttpFixture f(make_memory_repository(), options, http);
  REQUIRE(f.post("/v1/api/events",
                 event_body("Con1", 8,
                            R"(, "eventSchedules": [{"startDate": "2027-01-20T00:00:00Z",
                                "endDate": "2027-01-21T00:00:00Z", "limit": 2}])"))
              .status == 201);
  const std::string before = snapshot(f, "Con1");

  auto expect = [&](const HttpResult& r, int status, const std::string& c) {
    INFO(json::serialize(r.body));
    CHECK(r.status == status);
    CHECK(code(r) == c);
    CHECK(r.body.at("error").as_object().contains("message"));
    CHECK(snapshot(f, "Con1") == before);
  };
  expect(f.post("/v1/api/books", "{nope"), 400, "invalid_json");
  expect(f.post("/v1/api/books", std::string(10000, '[')), 413, "payload_too_large");
  expect(f.post("/v1/api/books", std::string(2000, '[') + std::string(2000, ']')), 400,
         "invalid_json");
  expect(f.post("/v1/api/books", hold_body("Con1", 1), "text/plain"), 415,
         "unsupported_media_type");
  auto invalid =
      f.post("/v1/api/books", R"({"key": "Con1", "groupKeys": [{"key": "x", "qty": -1}]})");
  expect(invalid, 422, "validation_failed");
  CHECK(invalid.body.at("error").at("details").as_object().contains("groupKeys[0].qty"));
  expect(f.post("/v1/api/books", hold_body("Nope", 1)), 404, "not_found");
  expect(f.get("/v1/api/books/0123456789abcdef0123456789abcdef"), 404, "not_found");
  expect(f.get("/v1/api/events/Nope"), 404, "not_found");
  expect(f.get("/no/such/route"), 404, "not_found");
  expect(f.send("DELETE", "/v1/api/events"), 405, "method_not_allowed");
  expect(f.post("/v1/api/events", event_body("Con1", 5)), 409, "duplicate_key");
  expect(f.post("/v1/api/books", hold_body("Con1", 6)), 409, "per_user_limit");
  auto short_of_stock = f.post("/v1/api/books", hold_body("Con1", 5, "u2"));
  REQUIRE(short_of_stock.status == 201);  // 3 left
  const std::string after_hold = snapshot(f, "Con1");
  auto insufficient = f.post("/v1/api/books", hold_body("Con1", 4, "u3"));
  CHECK(insufficient.status == 409);
  CHECK(code(insufficient) == "insufficient_stock");
  CHECK(insufficient.body.at("error").at("details").at("available").at("gold-Con1").as_int64() ==
        3);
  CHECK(snapshot(f, "Con1") == after_hold);

  // an idempotent repeat books nothing new; another body under the same key conflicts
  httplib::Headers idem{{"Idempotency-Key", "key-1"}};
  auto first = f.post("/v1/api/books", hold_body("Con1", 1, "u4"), "application/json", idem);
  REQUIRE(first.status == 201);
  const std::string after_first = snapshot(f, "Con1");
  auto again = f.post("/v1/api/books", hold_body("Con1", 1, "u4"), "application/json", idem);
  CHECK(again.status == 201);
  CHECK(data(again).at("bookId") == data(first).at("bookId"));
  CHECK(snapshot(f, "Con1") == after_first);
  auto conflict = f.post("/v1/api/books", hold_body("Con1", 2, "u4"), "application/json", idem);
  CHECK(conflict.status == 422);
  CHECK(code(conflict) == "idempotency_conflict");
  CHECK(snapshot(f, "Con1") == after_first);

  const std::string id(data(first).at("bookId").as_string());
  REQUIRE(f.post("/v1/api/books/" + id + "/cancel", "").status == 200);
  const std::string after_cancel = snapshot(f, "Con1");
  auto state = f.post("/v1/api/books/" + id + "/confirm", "{}");
  CHECK(state.status == 409);
  CHECK(code(state) == "invalid_state");

  auto held = f.post("/v1/api/books", hold_body("Con1", 1, "u5"));
  REQUIRE(held.status == 201);
  const std::string with_hold = snapshot(f, "Con1");
  f.clock.advance(11min);
  auto expired = f.post(
      "/v1/api/books/" + std::string(data(held).at("bookId").as_string()) + "/confirm", "{}");
  CHECK(expired.status == 410);
  CHECK(code(expired) == "hold_expired");
  CHECK(snapshot(f, "Con1") == after_cancel);  // the expired hold's ticket came back

  // the wave opens on Jan 20 with 2 tickets
  f.clock.set(parse_instant("2027-01-20T01:00:00Z").value());
  auto wave = f.post("/v1/api/books", hold_body("Con1", 3, "u6"));
  CHECK(wave.status == 409);
  CHECK(code(wave) == "wave_limit_reached");

  f.clock.set(parse_instant("2027-03-01T00:00:00Z").value());
  auto closed = f.post("/v1/api/books", hold_body("Con1", 1, "u7"));
  CHECK(closed.status == 409);
  CHECK(code(closed) == "sale_not_open");
  CHECK(snapshot(f, "Con1") == after_cancel);

  f.clock.set(kT0);
  auto other = f.locks->acquire(std::vector<std::string>{tier_lock_key("gold-Con1")}, 10s,
                                std::chrono::steady_clock::now() + 1s);
  REQUIRE(other);
  auto busy = f.post("/v1/api/books", hold_body("Con1", 1, "u8"));
  CHECK(busy.status == 503);
  CHECK(code(busy) == "lock_timeout");
  auto retry_after = busy.headers.find("Retry-After");
  REQUIRE(retry_after != busy.headers.end());
  CHECK(retry_after->second == "1");
  CHECK(snapshot(f, "Con1") == after_cancel);
  (void)f.locks->release(other.value());

  auto bad_query = f.get("/v1/api/events?limit=abc");
  CHECK(bad_query.status == 422);
  CHECK(f.get("/v1/api/events?limit=0").status == 422);
}

TEST_CASE("the OpenAPI document lists exactly the routes served", "[http]") {
  HttpFixture f;
  auto doc = f.get("/openapi.json");
  REQUIRE(doc.status == 200);
  std::set<std::string> documented;
  for (const auto& [path, item] : doc.body.at("paths").as_object()) {
    for (const auto& [method, op] : item.as_object()) {
      std::string m(method);
      for (char& c : m) c = static_cast<char>(std::toupper(c));
      documented.insert(m + " " + std::string(path));
    }
  }
  std::set<std::string> served;
  for (const auto& r : httpd::routes()) served.insert(r.method + " " + r.path);
  CHECK(documented == served);
  // Each operation states who may call it, as the route table does.
  CHECK(doc.body.at("components").at("securitySchemes").at("bearer").at("scheme") == "bearer");
  for (const auto& r : httpd::routes()) {
    std::string m = r.method;
    for (char& c : m) c = static_cast<char>(std::tolower(c));
    const auto& op = doc.body.at("paths").at(r.path).at(m).as_object();
    INFO(r.method << " " << r.path);
    const auto& security = op.at("security").as_array();
    CHECK(security.size() == (r.role.empty() ? 2u : 1u));  // {} makes the token optional
    if (!r.role.empty()) CHECK(op.at("x-role").as_string() == r.role);
  }
  CHECK(doc.body.at("paths").at("/metrics").at("get").at("x-role") == "admin");
  CHECK(doc.body.at("paths").at("/v1/api/books/{bookId}/confirm").at("post").at("x-role") ==
        "sales");
  // A price may be posted as a number or as a decimal string, and the document says both.
  const auto& price_in = doc.body.at("components").at("schemas").at("PriceInput").at("oneOf");
  CHECK(price_in.at(0).at("type").as_string() == "number");
  CHECK(price_in.at(1).at("type").as_string() == "string");
  Event e = sample_event("Str", {{"gold", 5}}, "USD");
  boost::json::object body = to_json(e);
  body.erase("id");
  body.at("eventGroups").as_array()[0].as_object()["price"] = "25.50";
  body.at("eventGroups").as_array()[0].as_object()["qty"] = 5;
  body.at("eventGroups").as_array()[0].as_object()["capacity"] = 5;
  auto created = f.post("/v1/api/events", boost::json::serialize(body));
  INFO(created.body);
  REQUIRE(created.status == 201);
  CHECK(created.body.at("data").at("eventGroups").at(0).at("price").as_double() == 25.5);
}

TEMPLATE_TEST_CASE(
    "an operator closes, reopens and cancels a sale over HTTP, with ETag and "
    "If-Match",
    "[http][sale]", ALL_BACKENDS) {
  TestType b;
  HttpFixture f(std::move(b.repo));
  REQUIRE(f.service.create_event(sample_event("Op", {{"gold", 10}})));
  const std::string hold = R"({"key":"Op","groupKeys":[{"key":"gold-Op","qty":2}]})";
  auto first = f.post("/v1/api/books", hold);
  REQUIRE(first.status == 201);
  auto got = f.get("/v1/api/events/Op");
  CHECK(got.body.at("data").at("status") == "on_sale");
  CHECK(got.body.at("data").at("version") == 1);
  CHECK(httplib::detail::get_header_value(got.headers, "ETag", 0, "") == std::string("\"1\""));

  auto closed = f.post("/v1/api/events/Op/close", "", "application/json", {{"If-Match", "\"1\""}});
  REQUIRE(closed.status == 200);
  CHECK(closed.body.at("data").at("status") == "closed");
  CHECK(httplib::detail::get_header_value(closed.headers, "ETag", 0, "") == std::string("\"2\""));
  auto refused = f.post("/v1/api/books", hold);
  CHECK(refused.status == 409);
  CHECK(refused.body.at("error").at("code") == "sale_closed");
  // A stale If-Match loses; so does nonsense.
  auto stale = f.post("/v1/api/events/Op/reopen", "", "application/json", {{"If-Match", "\"1\""}});
  CHECK(stale.status == 412);
  CHECK(stale.body.at("error").at("code") == "precondition_failed");
  CHECK(f.post("/v1/api/events/Op/reopen", "", "application/json", {{"If-Match", "abc"}}).status ==
        412);
  CHECK(f.post("/v1/api/events/Op/reopen", "").status == 200);
  CHECK(f.post("/v1/api/books", hold).status == 201);

  auto cancelled = f.post("/v1/api/events/Op/cancel", "");
  REQUIRE(cancelled.status == 200);
  CHECK(cancelled.body.at("data").at("status") == "cancelled");
  CHECK(cancelled.body.at("data").at("bookingsCancelled") == 2);
  auto booking =
      f.get("/v1/api/books/" + std::string(first.body.at("data").at("bookId").as_string()));
  CHECK(booking.body.at("data").at("status") == "CANCELLED");
  CHECK(f.post("/v1/api/events/Op/reopen", "").status == 409);
  CHECK(f.post("/v1/api/events/Nope/close", "").status == 404);
  auto e = f.get("/v1/api/events/Op").body.at("data");
  CHECK(e.at("eventGroups").at(0).at("qty") == 10);
}

TEMPLATE_TEST_CASE("bookings are listed in cursor pages and the report adds up, over HTTP",
                   "[http][sale]", ALL_BACKENDS) {
  TestType b;
  HttpFixture f(std::move(b.repo));
  REQUIRE(f.service.create_event(sample_event("Ls", {{"gold", 10}})));
  for (int i = 0; i < 5; ++i) {
    REQUIRE(
        f.post("/v1/api/books", R"({"key":"Ls","groupKeys":[{"key":"gold-Ls","qty":1}]})").status ==
        201);
    f.clock.advance(std::chrono::seconds(1));
  }
  std::set<std::string> seen;
  std::string path = "/v1/api/books?event=Ls&limit=2";
  for (int i = 0; i < 5 && !path.empty(); ++i) {
    auto page = f.get(path);
    REQUIRE(page.status == 200);
    for (const auto& b : page.body.at("data").as_array()) {
      CHECK(seen.insert(std::string(b.at("bookId").as_string())).second);
    }
    const auto& o = page.body.as_object();
    path = o.contains("next")
               ? "/v1/api/books?event=Ls&limit=2&cursor=" + std::string(o.at("next").as_string())
               : "";
  }
  CHECK(seen.size() == 5);
  CHECK(f.get("/v1/api/books?limit=500").status == 422);
  CHECK(f.get("/v1/api/books?cursor=zzz").status == 422);
  auto report = f.get("/v1/api/events/Ls/report");
  REQUIRE(report.status == 200);
  CHECK(report.body.at("data").at("tiers").at(0).at("held") == 5);
  CHECK(report.body.at("data").at("totals").at(0).at("currency") == "IDR");
  CHECK(f.get("/v1/api/events/Nope/report").status == 404);
}

TEMPLATE_TEST_CASE("an operator changes an event with PATCH: merge patch, ETag, 412, 422",
                   "[http][sale]", ALL_BACKENDS) {
  TestType b;
  HttpFixture f(std::move(b.repo));
  REQUIRE(f.service.create_event(sample_event("Pt", {{"gold", 10}})));
  REQUIRE(
      f.post("/v1/api/books", R"({"key":"Pt","groupKeys":[{"key":"gold-Pt","qty":4}]})").status ==
      201);
  const std::string merge = "application/merge-patch+json";
  auto changed = f.patch("/v1/api/events/Pt", R"j({
      "name": "Pt (second date)", "promoter": null, "location": {"venue": "Arena"},
      "eventGroups": [
        {"key": "gold-Pt", "capacity": 25, "price": "99.5", "maxPerOrder": null},
        {"key": "vip-Pt", "category": "VIP", "currency": "IDR", "price": 1000, "capacity": 3,
         "startDate": "2027-01-01T00:00:00Z", "endDate": "2027-03-01T00:00:00Z"}]})j",
                         merge, {{"If-Match", "\"1\""}});
  INFO(changed.body);
  REQUIRE(changed.status == 200);
  CHECK(httplib::detail::get_header_value(changed.headers, "ETag", 0, "") == std::string("\"2\""));
  const auto& e = changed.body.at("data");
  CHECK(e.at("version") == 2);
  CHECK(e.at("name") == "Pt (second date)");
  CHECK(e.at("promoter").is_null());
  CHECK(e.at("location").at("venue") == "Arena");
  const auto& gold = e.at("eventGroups").at(0);
  CHECK(gold.at("capacity") == 25);
  CHECK(gold.at("qty") == 21);  // available moved by +15; 4 still held
  CHECK(gold.at("held") == 4);
  CHECK(gold.at("price").as_double() == 99.5);
  CHECK(gold.at("maxPerOrder").is_null());
  CHECK(e.at("eventGroups").at(1).at("key") == "vip-Pt");
  CHECK(json::serialize(e) == json::serialize(f.get("/v1/api/events/Pt").body.at("data")));

  // A stale If-Match loses, and changes nothing.
  const std::string before = snapshot(f, "Pt");
  auto stale = f.patch("/v1/api/events/Pt", R"({"name": "x"})", merge, {{"If-Match", "\"1\""}});
  CHECK(stale.status == 412);
  CHECK(code(stale) == "precondition_failed");
  // 422 names each bad field; nothing is stored.
  auto bad = f.patch("/v1/api/events/Pt", R"({"key": "Other", "eventGroups": [
      {"key": "gold-Pt", "capacity": 3, "currency": "EUR", "price": 1},
      {"key": "vip-Pt", "endDate": "2026-01-01T00:00:00Z"},
      {"key": "new-Pt", "currency": "ZZZ"}],
      "eventSchedules": [
        {"startDate": "2027-01-01T00:00:00Z", "endDate": "2027-01-10T00:00:00Z", "limit": 5},
        {"startDate": "2027-01-05T00:00:00Z", "endDate": "2027-01-20T00:00:00Z", "limit": 5}]})",
                     "application/json");
  CHECK(bad.status == 422);
  CHECK(code(bad) == "validation_failed");
  const auto& details = bad.body.at("error").at("details").as_object();
  for (const char* field :
       {"key", "eventGroups[0].capacity", "eventGroups[0].currency", "eventGroups[1].endDate",
        "eventGroups[2].currency", "eventGroups[2].category", "eventSchedules[1]"}) {
    INFO(field);
    CHECK(details.contains(field));
  }
  auto qty = f.patch("/v1/api/events/Pt", R"({"eventGroups": [{"key": "gold-Pt", "qty": 5}]})");
  CHECK(qty.status == 422);
  CHECK(qty.body.at("error").at("details").as_object().contains("eventGroups[0].qty"));
  CHECK(f.patch("/v1/api/events/Pt", "{", merge).status == 400);
  CHECK(f.patch("/v1/api/events/Pt", R"({"name":"x"})", "text/plain").status == 415);
  CHECK(f.patch("/v1/api/events/Pt", "[]").status == 422);
  CHECK(snapshot(f, "Pt") == before);
  CHECK(f.patch("/v1/api/events/Nope", R"({"name": "x"})").status == 404);

  // Two operators with the same If-Match and different changes: exactly one wins, each round.
  for (int round = 0; round < 5; ++round) {
    const std::string etag = httplib::detail::get_header_value(
        f.client()->Get("/v1/api/events/Pt")->headers, "ETag", 0, "");
    std::atomic<int> ok{0};
    std::atomic<int> lost{0};
    std::vector<std::thread> operators;
    for (int i = 0; i < 2; ++i) {
      operators.emplace_back([&, i] {
        auto r = f.client()->Patch("/v1/api/events/Pt", {{"If-Match", etag}},
                                   R"({"eventGroups": [{"key": "gold-Pt", "capacity": )" +
                                       std::to_string(30 + 2 * round + i) + "}]}",
                                   "application/merge-patch+json");
        if (r && r->status == 200) ++ok;
        if (r && r->status == 412) ++lost;
      });
    }
    for (auto& t : operators) t.join();
    INFO("round " << round << " etag " << etag);
    CHECK(ok == 1);
    CHECK(lost == 1);
  }
  require_conserved(*f.repo, "Pt");
  // A cancelled event cannot change.
  REQUIRE(f.post("/v1/api/events/Pt/cancel", "").status == 200);
  auto gone = f.patch("/v1/api/events/Pt", R"({"name": "x"})");
  CHECK(gone.status == 409);
  CHECK(code(gone) == "invalid_state");
}

TEMPLATE_TEST_CASE("the CSV export streams every booking line, oldest first, over HTTP",
                   "[http][sale][export]", ALL_BACKENDS) {
  TestType b;
  HttpFixture f(std::move(b.repo));
  REQUIRE(f.service.create_event(sample_event("Ex", {{"gold", 100000}, {"sil", 100000}})));
  // More bookings than one storage page (PostgreSQL fetches 2,000 at a time) and more bytes
  // than one chunk; from several threads, so that holds share commits.
  constexpr int kThreads = 4;
  constexpr int kEach = 520;
  std::vector<std::thread> buyers;
  for (int t = 0; t < kThreads; ++t) {
    buyers.emplace_back([&f, t] {
      for (int i = 0; i < kEach; ++i) {
        HoldRequest r;
        r.event_key = "Ex";
        r.lines = {{"gold-Ex", 1 + i % 3}};
        if (i % 10 == 0) r.lines.push_back({"sil-Ex", 1});
        std::string user(1, 'u');
        user += std::to_string(t);  // (not "u" + ...: GCC 12 warns falsely, -Wrestrict)
        r.user_id = t == 0 && i == 0 ? "=cmd|' /C calc'!A0" : user;
        REQUIRE(f.service.hold(r));
      }
    });
  }
  for (auto& t : buyers) t.join();
  std::int64_t lines = 0;
  for (int i = 0; i < kEach; ++i) lines += i % 10 == 0 ? 2 : 1;
  lines *= kThreads;

  auto client = f.client();
  std::string body;
  auto r = client->Get("/v1/api/events/Ex/bookings.csv", [&](const char* data, std::size_t n) {
    body.append(data, n);
    return true;
  });
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->get_header_value("Content-Type") == "text/csv; charset=utf-8");
  CHECK(r->get_header_value("Transfer-Encoding") == "chunked");
  CHECK(r->get_header_value("Content-Disposition") == "attachment; filename=\"Ex-bookings.csv\"");
  std::vector<std::string> rows;
  for (std::size_t at = 0; at < body.size();) {
    const std::size_t end = body.find("\r\n", at);
    REQUIRE(end != std::string::npos);
    rows.push_back(body.substr(at, end - at));
    at = end + 2;
  }
  REQUIRE(!rows.empty());
  CHECK(rows[0] + "\r\n" == std::string(csv_header()));
  CHECK(static_cast<std::int64_t>(rows.size()) == lines + 1);
  // Oldest first: createdAt (column 8) never goes back; a formula in a userId is defused.
  std::string last;
  int defused = 0;
  for (std::size_t i = 1; i < rows.size(); ++i) {
    std::vector<std::string> cells;
    std::string cell;
    bool quoted = false;
    for (char ch : rows[i]) {
      if (ch == '"') quoted = !quoted;
      if (ch == ',' && !quoted) {
        cells.push_back(cell);
        cell.clear();
      } else {
        cell += ch;
      }
    }
    cells.push_back(cell);
    REQUIRE(cells.size() == 11);
    CHECK(cells[7] >= last);
    last = cells[7];
    if (cells[2].find("calc") != std::string::npos) {
      CHECK(cells[2] == "'=cmd|' /C calc'!A0");
      ++defused;
    }
  }
  CHECK(defused == 2);  // that booking has two lines

  // A client that stops reading after the first chunk ends the export; the server goes on.
  int chunks = 0;
  auto cut = f.client()->Get("/v1/api/events/Ex/bookings.csv",
                             [&](const char*, std::size_t) { return ++chunks < 2; });
  CHECK_FALSE(cut);
  CHECK(f.get("/healthz").status == 200);
  CHECK(f.get("/v1/api/events/Nope/bookings.csv").status == 404);
}
