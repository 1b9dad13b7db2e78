// The web pages' side of bookingd, through real HTTP: the embedded files and their headers, the
// availability a storefront polls, the storefront's settings, and following the feed from now.
// (The pages themselves run in Chromium: tests/web/web_test.py.)
#include <boost/json.hpp>
#include <regex>
#include <thread>

#include "httpd/http_fixture.hpp"
#include "web_assets.hpp"
#include "web_routes.hpp"

using namespace booking;
using namespace booking::test;
using namespace std::chrono_literals;
namespace json = boost::json;

namespace {

std::string header(const httplib::Result& r, const char* name) { return r->get_header_value(name); }

std::string event_body(const std::string& key, std::int64_t qty) {
  return R"({"key": ")" + key + R"(", "name": "Show )" + key + R"(", "type": "Concert",
    "date": "2027-02-01T20:00:00+07:00", "location": {"venue": "Hall", "address": "Street 1"},
    "eventGroups": [{"key": "gold-)" +
         key + R"(", "category": "Gold", "price": 50,
      "currency": "EUR", "qty": )" +
         std::to_string(qty) + R"(, "startDate": "2020-01-01T00:00:00Z",
      "endDate": "2030-01-01T00:00:00Z"}]})";
}

}  // namespace

TEST_CASE("the web pages are served from the binary with a strict CSP, nosniff and revalidation",
          "[http][web]") {
  HttpFixture f;
  auto c = f.client();
  for (const char* page : {"/", "/admin"}) {
    INFO(page);
    auto r = c->Get(page);
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(header(r, "Content-Type") == "text/html; charset=utf-8");
    const std::string csp = header(r, "Content-Security-Policy");
    CHECK(csp.find("default-src 'none'") != std::string::npos);
    CHECK(csp.find("script-src 'self'") != std::string::npos);
    CHECK(csp.find("style-src 'self'") != std::string::npos);
    CHECK(csp.find("connect-src 'self'") != std::string::npos);
    CHECK(csp.find("frame-ancestors 'none'") != std::string::npos);
    CHECK(csp.find("unsafe") == std::string::npos);
    CHECK(header(r, "X-Content-Type-Options") == "nosniff");
    CHECK(header(r, "Cache-Control") == "no-cache");
    // No inline script: every <script> has a src, and no element has an on... handler.
    CHECK_FALSE(std::regex_search(r->body, std::regex("<script(?![^>]*\\bsrc=)")));
    CHECK_FALSE(std::regex_search(r->body, std::regex("\\son[a-z]+=")));
    // No inline style either (style-src 'self'): no style attribute or element.
    CHECK_FALSE(std::regex_search(r->body, std::regex("\\sstyle=|<style")));
    // Each file a page names is served, with its media type.
    std::smatch m;
    std::string rest = r->body;
    int named = 0;
    while (std::regex_search(rest, m, std::regex("(?:src|href)=\"(/assets/[^\"]+)\""))) {
      auto file = c->Get(m[1].str());
      REQUIRE(file);
      INFO(m[1].str());
      CHECK(file->status == 200);
      CHECK_FALSE(header(file, "Content-Type").empty());
      CHECK(header(file, "X-Content-Type-Options") == "nosniff");
      ++named;
      rest = m.suffix();
    }
    CHECK(named == 2);  // the stylesheet and the page's module
    // Revalidation: the ETag gets a 304 without a body; another gets the page.
    const std::string etag = header(r, "ETag");
    REQUIRE(etag.size() > 2);
    auto same = c->Get(page, {{"If-None-Match", etag}});
    CHECK(same->status == 304);
    CHECK(same->body.empty());
    CHECK(c->Get(page, {{"If-None-Match", "W/" + etag}})->status == 304);
    CHECK(c->Get(page, {{"If-None-Match", "\"other\""}})->status == 200);
  }
  // Every embedded script is served as JavaScript (a module imported by another included).
  for (const auto& a : httpd::web_assets()) {
    if (!a.name.ends_with(".js")) continue;
    auto r = c->Get("/assets/" + std::string(a.name));
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(header(r, "Content-Type") == "text/javascript; charset=utf-8");
    CHECK(r->body == a.body);
  }
  CHECK(c->Get("/assets/missing.js")->status == 404);
  CHECK(c->Get("/assets/index.html")->status == 404);  // pages are served at their own paths
  CHECK(c->Get("/assets/..%2Findex.html")->status == 404);
  CHECK(c->Get("/admin/x")->status == 404);
}

TEST_CASE("the availability a storefront polls follows the stock, with ETag and 304",
          "[http][web]") {
  HttpFixture f;
  REQUIRE(f.post("/v1/api/events", event_body("Av", 10)).status == 201);
  auto c = f.client();
  auto first = c->Get("/v1/api/events/Av/availability");
  REQUIRE(first);
  REQUIRE(first->status == 200);
  auto body = json::parse(first->body).at("data");
  CHECK(body.at("status") == "on_sale");
  CHECK(body.at("version") == 1);
  CHECK(body.at("eventGroups").at(0).at("qty") == 10);
  CHECK(body.at("eventGroups").at(0).at("capacity") == 10);
  const std::string etag = header(first, "ETag");
  CHECK(c->Get("/v1/api/events/Av/availability", {{"If-None-Match", etag}})->status == 304);

  REQUIRE(
      f.post("/v1/api/books", R"({"key":"Av","groupKeys":[{"key":"gold-Av","qty":3}]})").status ==
      201);
  // Answers are at most 250 ms old: within a moment the stock and the ETag have moved.
  std::this_thread::sleep_for(300ms);
  auto moved = c->Get("/v1/api/events/Av/availability", {{"If-None-Match", etag}});
  REQUIRE(moved->status == 200);
  CHECK(header(moved, "ETag") != etag);
  auto g = json::parse(moved->body).at("data").at("eventGroups").at(0);
  CHECK(g.at("qty") == 7);
  CHECK(g.at("held") == 3);
  CHECK(c->Get("/v1/api/events/Nope/availability")->status == 404);
}

TEST_CASE(
    "the storefront's settings: the checkout URL, and a demo payment only for a caller "
    "that may confirm",
    "[http][web]") {
  SECTION("defaults: no pay button") {
    HttpFixture f;
    auto s = f.get("/v1/api/storefront").body.at("data");
    CHECK(s.at("checkoutUrl").is_null());
    CHECK(s.at("demoPayment") == false);
  }
  SECTION("the server's clock, for the booking page's countdown") {
    HttpFixture f;
    f.clock.advance(std::chrono::milliseconds(1234));
    auto s = f.get("/v1/api/storefront").body.at("data");
    CHECK(s.at("serverTime").as_string() == format_instant(kT0 + std::chrono::milliseconds(1234)));
  }
  SECTION("--checkout-url and --demo in open mode") {
    httpd::HttpOptions http;
    http.checkout_url = "https://pay.example.com/c?b={bookId}";
    http.demo_payment = true;
    HttpFixture f(make_memory_repository(), {}, http);
    auto s = f.get("/v1/api/storefront").body.at("data");
    CHECK(s.at("checkoutUrl") == "https://pay.example.com/c?b={bookId}");
    CHECK(s.at("demoPayment") == true);
  }
  CHECK(httpd::check_checkout_url("https://pay.example.com/c?b={bookId}"));
  CHECK(httpd::check_checkout_url("/pay/{bookId}"));
  CHECK_FALSE(httpd::check_checkout_url("https://pay.example.com/c"));
  CHECK_FALSE(httpd::check_checkout_url("javascript:alert(1)//{bookId}"));
  CHECK_FALSE(httpd::check_checkout_url("//evil.example/{bookId}"));
  CHECK_FALSE(httpd::check_checkout_url("https://x/{bookId}\"><b"));
}

TEST_CASE("in open mode the storefront sells a tier with maxPerUser: the address is the buyer",
          "[http][web]") {
  HttpFixture f;  // open mode: no token exists, loopback
  REQUIRE(f.post("/v1/api/events", R"({"key": "Lim", "name": "Limited", "type": "Concert",
    "date": "2027-02-01T20:00:00+07:00", "location": {"venue": "Hall", "address": "Street 1"},
    "eventGroups": [{"key": "gold-Lim", "category": "Gold", "price": 50, "currency": "EUR",
      "qty": 100, "startDate": "2020-01-01T00:00:00Z", "endDate": "2030-01-01T00:00:00Z",
      "maxPerUser": 3}]})")
              .status == 201);
  const std::string two = R"({"key": "Lim", "groupKeys": [{"key": "gold-Lim", "qty": 2}]})";
  auto first = f.post("/v1/api/books", two);
  REQUIRE(first.status == 201);
  auto second = f.post("/v1/api/books", two);  // 4 > 3 for this address
  REQUIRE(second.status == 409);
  CHECK(second.body.at("error").at("code") == "per_user_limit");
  // A userId (open mode may give one) is a buyer of its own.
  CHECK(f.post("/v1/api/books",
               R"({"key": "Lim", "userId": "u9", "groupKeys": [{"key": "gold-Lim", "qty": 3}]})")
            .status == 201);
  auto booking =
      f.get("/v1/api/books/" + std::string(first.body.at("data").at("bookId").as_string()));
  CHECK(booking.body.at("data").at("userId") == "client:127.0.0.1");
}

TEST_CASE("the change feed can be followed from now on with after=latest", "[http][web]") {
  HttpFixture f;
  REQUIRE(f.post("/v1/api/events", event_body("Lt", 10)).status == 201);
  REQUIRE(
      f.post("/v1/api/books", R"({"key":"Lt","groupKeys":[{"key":"gold-Lt","qty":1}]})").status ==
      201);
  auto latest = f.get("/v1/api/changes?after=latest");
  REQUIRE(latest.status == 200);
  CHECK(latest.body.at("data").as_array().empty());
  const auto last = latest.body.at("last").as_int64();
  CHECK(last == 2);  // event.created, booking.held
  REQUIRE(
      f.post("/v1/api/books", R"({"key":"Lt","groupKeys":[{"key":"gold-Lt","qty":1}]})").status ==
      201);
  auto next = f.get("/v1/api/changes?after=" + std::to_string(last));
  REQUIRE(next.body.at("data").as_array().size() == 1);
  CHECK(next.body.at("data").at(0).at("type") == "booking.held");
  CHECK(f.get("/v1/api/changes?after=soon").status == 422);
}
