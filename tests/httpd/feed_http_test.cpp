// The change feed over real HTTP on every storage: pages, long polls, server-sent events with
// Last-Event-ID, the cap on subscribers, and a stop that ends open streams.
#include <atomic>
#include <boost/json.hpp>
#include <thread>

#include "httpd/http_fixture.hpp"
#include "process.hpp"

using namespace booking;
using namespace booking::test;
using namespace std::chrono_literals;
namespace json = boost::json;

namespace {
const std::string kHold = R"({"key":"Fh","groupKeys":[{"key":"gold-Fh","qty":1}]})";

// The events of a server-sent event stream: (id, event name, data).
struct SseEvent {
  std::int64_t id = 0;
  std::string type;
  json::value data;
};

// Parses complete events out of `buffer` (consumed), ignoring comments.
std::vector<SseEvent> parse_sse(std::string& buffer) {
  std::vector<SseEvent> out;
  for (std::size_t end; (end = buffer.find("\n\n")) != std::string::npos;) {
    const std::string block = buffer.substr(0, end);
    buffer.erase(0, end + 2);
    SseEvent e;
    bool any = false;
    std::size_t at = 0;
    while (at <= block.size()) {
      std::size_t nl = block.find('\n', at);
      if (nl == std::string::npos) nl = block.size();
      const std::string line = block.substr(at, nl - at);
      at = nl + 1;
      if (line.starts_with("id: ")) e.id = std::stoll(line.substr(4)), any = true;
      if (line.starts_with("event: ")) e.type = line.substr(7);
      if (line.starts_with("data: ")) e.data = json::parse(line.substr(6));
    }
    if (any) out.push_back(std::move(e));
  }
  return out;
}

// Reads the stream from `path` (with Last-Event-ID `last` if > 0) until `n` events came.
std::vector<SseEvent> read_stream(HttpFixture& f, const std::string& path, std::size_t n,
                                  std::int64_t last = 0) {
  std::vector<SseEvent> got;
  std::string buffer;
  httplib::Headers headers;
  if (last > 0) headers.emplace("Last-Event-ID", std::to_string(last));
  auto client = f.client();
  client->Get(path.c_str(), headers, [&](const char* data, std::size_t size) {
    buffer.append(data, size);
    for (auto& e : parse_sse(buffer)) got.push_back(std::move(e));
    return got.size() < n;
  });
  if (got.size() > n) got.resize(n);  // one chunk may carry more than asked for
  return got;
}
}  // namespace

TEMPLATE_TEST_CASE("the change feed pages and long-polls over HTTP", "[http][feed]", ALL_BACKENDS) {
  TestType b;
  HttpFixture f(std::move(b.repo));
  REQUIRE(f.service.create_event(sample_event("Fh", {{"gold", 100}})));
  REQUIRE(f.post("/v1/api/books", kHold).status == 201);
  auto page = f.get("/v1/api/changes?after=0&limit=10");
  REQUIRE(page.status == 200);
  const auto& data = page.body.at("data").as_array();
  REQUIRE(data.size() == 2);
  CHECK(data[0].at("type") == "event.created");
  CHECK(data[1].at("type") == "booking.held");
  CHECK(data[1].at("actor") == "anonymous");
  CHECK(data[1].at("data").at("status") == "HELD");
  const std::int64_t last = page.body.at("last").as_int64();
  CHECK(last == data[1].at("seq").as_int64());

  // A long poll answers as soon as a change commits.
  std::thread writer([&f] {
    std::this_thread::sleep_for(150ms);
    auto c = f.client();
    c->Post("/v1/api/books", kHold, "application/json");
  });
  const auto t0 = std::chrono::steady_clock::now();
  auto woke = f.get("/v1/api/changes?wait=10&after=" + std::to_string(last));
  const auto waited = std::chrono::steady_clock::now() - t0;
  writer.join();
  INFO(woke.body);
  REQUIRE(woke.status == 200);
  REQUIRE(woke.body.at("data").as_array().size() == 1);
  CHECK(waited >= 100ms);
  CHECK(waited < 2s);
  // Nothing new: empty at the deadline, `last` unchanged.
  const std::int64_t now_last = woke.body.at("last").as_int64();
  auto idle = f.get("/v1/api/changes?wait=1&after=" + std::to_string(now_last));
  REQUIRE(idle.status == 200);
  CHECK(idle.body.at("data").as_array().empty());
  CHECK(idle.body.at("last").as_int64() == now_last);

  CHECK(f.get("/v1/api/changes?wait=61").status == 422);
  CHECK(f.get("/v1/api/changes?after=-1").status == 422);
  CHECK(f.get("/v1/api/changes?limit=1001").status == 422);
  CHECK(f.get("/v1/api/changes?after=x").status == 422);
}

TEMPLATE_TEST_CASE("server-sent events resume after Last-Event-ID without a gap", "[http][feed]",
                   ALL_BACKENDS) {
  TestType b;
  HttpFixture f(std::move(b.repo));
  REQUIRE(f.service.create_event(sample_event("Fh", {{"gold", 100}})));
  for (int i = 0; i < 3; ++i) REQUIRE(f.post("/v1/api/books", kHold).status == 201);
  auto first = read_stream(f, "/v1/api/changes/stream?after=0", 2);
  REQUIRE(first.size() == 2);
  CHECK(first[0].type == "event.created");
  CHECK(first[1].type == "booking.held");
  CHECK(first[1].data.at("seq").as_int64() == first[1].id);
  // More changes while disconnected; a reconnect with Last-Event-ID continues right after.
  for (int i = 0; i < 2; ++i) REQUIRE(f.post("/v1/api/books", kHold).status == 201);
  auto rest = read_stream(f, "/v1/api/changes/stream?after=0", 4, first[1].id);
  REQUIRE(rest.size() == 4);
  std::int64_t expect = first[1].id;
  for (const auto& e : rest) {
    CHECK(e.id > expect);
    expect = e.id;
    CHECK(e.type == "booking.held");
  }
  const auto all = f.service.changes(0, 100).value();
  CHECK(all.size() == 6);
  CHECK(rest.back().id == all.back().seq);

  // A live stream gets a change committed while it is open.
  std::thread writer([&f] {
    std::this_thread::sleep_for(150ms);
    f.client()->Post("/v1/api/books", kHold, "application/json");
  });
  auto live = read_stream(f, "/v1/api/changes/stream?after=" + std::to_string(all.back().seq), 1);
  writer.join();
  REQUIRE(live.size() == 1);
  CHECK(live[0].id > all.back().seq);
  auto bad = f.client()->Get("/v1/api/changes/stream", {{"Last-Event-ID", "abc"}});
  REQUIRE(bad);
  CHECK(bad->status == 422);
}

TEST_CASE("subscribers beyond --max-streams get 503, and a stop ends open streams at once",
          "[http][feed]") {
  httpd::HttpOptions http;
  http.max_streams = 1;
  auto f = std::make_unique<HttpFixture>(make_memory_repository(), ServiceOptions{}, http);
  REQUIRE(f->service.create_event(sample_event("Fh", {{"gold", 100}})));
  std::atomic<bool> streaming{false};
  std::atomic<bool> ended{false};
  std::thread subscriber([&] {
    auto client = f->client();
    client->Get("/v1/api/changes/stream?after=0", [&](const char*, std::size_t) {
      streaming = true;
      return true;
    });
    ended = true;
  });
  while (!streaming) std::this_thread::sleep_for(5ms);
  auto refused = f->get("/v1/api/changes?wait=5");
  CHECK(refused.status == 503);
  CHECK(refused.body.at("error").at("code") == "lock_timeout");
  CHECK(f->get("/v1/api/changes").status == 200);        // a page without wait is no stream
  CHECK(f->post("/v1/api/books", kHold).status == 201);  // holds are not held up
  const auto t0 = std::chrono::steady_clock::now();
  f.reset();  // stops the server with the stream open
  subscriber.join();
  CHECK(ended);
  CHECK(std::chrono::steady_clock::now() - t0 < 3s);
}
