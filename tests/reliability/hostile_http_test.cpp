// Hostile requests against the real bookingd: each gets a 4xx envelope or a closed connection,
// the daemon stays up, and stock is untouched.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "guarded_server.hpp"
#include "httpd/daemon.hpp"

using namespace booking;
using namespace booking::test;
using namespace std::chrono_literals;
namespace json = boost::json;

namespace {

// A socket connected to 127.0.0.1:port whose reads give up after 3 s.
int connect_loopback(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  timeval tv{3, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  return fd;
}

// Sends raw bytes (optionally slowly) and returns whatever the server answered before closing.
std::string raw_exchange(int port, const std::vector<std::string>& chunks,
                         std::chrono::milliseconds pause = 0ms) {
  int fd = connect_loopback(port);
  for (const auto& c : chunks) {
    if (::send(fd, c.data(), c.size(), MSG_NOSIGNAL) < 0) break;
    if (pause.count()) std::this_thread::sleep_for(pause);
  }
  ::shutdown(fd, SHUT_WR);
  std::string answer;
  char buf[4096];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) answer.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  return answer;
}

int status_of(const std::string& answer) {
  if (!answer.starts_with("HTTP/1.1 ")) return 0;  // closed without an answer
  return std::stoi(answer.substr(9, 3));
}

std::string post(const std::string& body, const std::string& extra_headers = "") {
  return "POST /v1/api/books HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" +
         extra_headers + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

}  // namespace

TEST_CASE("hostile requests get a 4xx or a closed connection, and change nothing",
          "[reliability][hostile]") {
  TempDir dir;
  Daemon d({"--db", dir.file("h.db")});
  auto c = d.client();
  REQUIRE(c.Post("/v1/api/events", live_event_json("Hz", 50), "application/json")->status == 201);
  const std::string before = c.Get("/v1/api/events/Hz")->body;

  struct Case {
    std::string name;
    std::vector<std::string> chunks;
    std::chrono::milliseconds pause{0};
  };
  const std::string good = hold_json("Hz");
  std::vector<Case> cases{
      {"truncated body", {post(good).substr(0, post(good).size() - 10)}},
      {"truncated headers", {"POST /v1/api/books HTTP/1.1\r\nHost: x\r\nContent-Le"}},
      {"slow body, then cut", {post(good).substr(0, 120), "{", "\"k"}, 300ms},
      {"huge header", {post(good, "X-Junk: " + std::string(200'000, 'a') + "\r\n")}},
      {"huge body", {post(std::string(100'000, ' ') + good)}},
      {"invalid UTF-8", {post("{\"key\": \"Hz\xff\xfe\", \"groupKeys\": []}")}},
      {"10,000 levels", {post(std::string(10'000, '[') + std::string(10'000, ']'))}},
      {"beyond int64",
       {post(R"({"key":"Hz","groupKeys":[{"key":"gold-Hz","qty":99999999999999999999999}]})")}},
      {"negative quantity", {post(R"({"key":"Hz","groupKeys":[{"key":"gold-Hz","qty":-5}]})")}},
      {"duplicate keys",
       {post(R"({"key":"Nope","key":"Hz","groupKeys":[{"key":"gold-Hz","qty":1}]})")}},
      {"not JSON", {post("<xml/>")}},
      {"wrong content type",
       {"POST /v1/api/books HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: "
        "2\r\n\r\n{}"}},
      {"garbage request line", {"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http\r\n\r\n"}},
      {"SQL in a key",
       {post(R"({"key":"Hz'; DROP TABLE tiers;--","groupKeys":[{"key":"gold-Hz","qty":1}]})")}},
      {"path traversal", {"GET /v1/api/books/..%2f..%2fetc%2fpasswd HTTP/1.1\r\nHost: x\r\n\r\n"}},
  };
  for (const auto& k : cases) {
    INFO(k.name);
    std::string answer = raw_exchange(d.port, k.chunks, k.pause);
    int status = status_of(answer);
    INFO("answer: " << answer.substr(0, 300));
    CHECK((status == 0 || (status >= 400 && status < 500)));
    if (status >= 400) CHECK(answer.find("\"error\":{\"code\":") != std::string::npos);
    REQUIRE(d.alive());
  }
  CHECK(c.Get("/v1/api/events/Hz")->body == before);
  CHECK(c.Get("/healthz")->status == 200);
  // the search engine takes SQL-looking text as text
  auto found = c.Get("/v1/api/events?name=%27%3B%20DROP%20TABLE%20events%3B--");
  REQUIRE(found);
  CHECK(found->status == 200);
  CHECK(c.Post("/v1/api/books", good, "application/json")->status == 201);
}

TEST_CASE("booking ids are the hold's millisecond and 80 random bits", "[reliability]") {
  TempDir dir;
  Daemon d({"--db", dir.file("ids.db")});
  auto c = d.client();
  REQUIRE(c.Post("/v1/api/events", live_event_json("Ids", 1000), "application/json")->status ==
          201);
  const auto ms_now = [] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
  const long long before = ms_now();
  std::set<std::string> ids;
  std::set<std::string> random_parts;
  for (int i = 0; i < 200; ++i) {
    auto r = c.Post("/v1/api/books", hold_json("Ids"), "application/json");
    REQUIRE(r->status == 201);
    std::string id(json::parse(r->body).at("data").at("bookId").as_string());
    INFO(id);
    REQUIRE(id.size() == 32);
    CHECK(id.find_first_not_of("0123456789abcdef") == std::string::npos);
    const long long made = std::stoll(id.substr(0, 12), nullptr, 16);
    CHECK(made >= before);
    CHECK(made <= ms_now());
    ids.insert(id);
    random_parts.insert(id.substr(12));
  }
  CHECK(ids.size() == 200);
  CHECK(random_parts.size() == 200);
  // the 80 bits after the time share no structure: sorted, neighbours share no prefix beyond
  // chance (200 random values: a shared prefix of 8 hex digits has odds of about 1 in 10^7)
  std::size_t shared_prefix = 0;
  for (auto it = std::next(random_parts.begin()); it != random_parts.end(); ++it) {
    auto prev = std::prev(it);
    std::size_t p = 0;
    while (p < 20 && (*prev)[p] == (*it)[p]) ++p;
    shared_prefix = std::max(shared_prefix, p);
  }
  CHECK(shared_prefix < 8);
}

namespace {

// The responses in `answer`, in order: each its head and its body, as framed by Content-Length.
std::vector<std::pair<std::string, std::string>> split_responses(std::string answer,
                                                                 const std::vector<bool>& bodies) {
  std::vector<std::pair<std::string, std::string>> out;
  for (bool has_body : bodies) {
    const auto end = answer.find("\r\n\r\n");
    if (end == std::string::npos) break;
    std::string head = answer.substr(0, end + 4);
    std::size_t length = 0;
    if (const auto at = head.find("Content-Length: "); at != std::string::npos) {
      length = std::stoul(head.substr(at + 16));
    }
    if (!has_body) length = 0;  // a HEAD's answer announces the body it does not send
    out.emplace_back(head, answer.substr(end + 4, length));
    answer.erase(0, end + 4 + length);
  }
  if (!answer.empty()) out.emplace_back("(left over)", answer);
  return out;
}

}  // namespace

// The daemon holds a response's header block back until its body is written, so the two leave
// in one segment; a response without a body must still leave, on a kept-alive connection too.
TEST_CASE("kept-alive answers arrive whole and in order, bodiless ones too", "[reliability]") {
  TempDir dir;
  Daemon d({"--db", dir.file("io.db")});
  auto c = d.client();
  REQUIRE(c.Post("/v1/api/events", live_event_json("Io", 10), "application/json")->status == 201);
  auto first = c.Get("/v1/api/events/Io/availability");
  REQUIRE(first->status == 200);
  const std::string etag = first->get_header_value("ETag");
  REQUIRE(!etag.empty());

  // Pipelined in one send: a body, a HEAD, a 304, a hold, a 404; then end of input.
  const std::string get = "GET /v1/api/events/Io HTTP/1.1\r\nHost: x\r\n\r\n";
  const std::string head = "HEAD /v1/api/events/Io HTTP/1.1\r\nHost: x\r\n\r\n";
  const std::string not_modified = "GET /v1/api/events/Io/availability HTTP/1.1\r\nHost: x\r\n" +
                                   std::string("If-None-Match: ") + etag + "\r\n\r\n";
  const std::string missing = "GET /v1/api/events/Nope HTTP/1.1\r\nHost: x\r\n\r\n";
  const auto answers = split_responses(
      raw_exchange(d.port, {get + head + not_modified + post(hold_json("Io")) + missing}),
      {true, false, true, true, true});
  REQUIRE(answers.size() == 5);
  CHECK(status_of(answers[0].first) == 200);
  CHECK(json::parse(answers[0].second).at("data").at("key") == "Io");
  CHECK(status_of(answers[1].first) == 200);
  CHECK(answers[1].first.find("Content-Length: " + std::to_string(answers[0].second.size())) !=
        std::string::npos);
  CHECK(status_of(answers[2].first) == 304);
  CHECK(answers[2].second.empty());
  CHECK(status_of(answers[3].first) == 201);
  CHECK(json::parse(answers[3].second).at("data").at("status") == "HELD");
  CHECK(status_of(answers[4].first) == 404);
  CHECK(json::parse(answers[4].second).at("error").at("code") == "not_found");

  // One request, one read: the head and the body come together, and the connection stays open.
  int fd = connect_loopback(d.port);
  for (int i = 0; i < 3; ++i) {
    const std::string req = post(hold_json("Io"));
    REQUIRE(::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size()));
    char buf[8192];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    REQUIRE(n > 0);
    const auto one = split_responses(std::string(buf, static_cast<std::size_t>(n)), {true});
    REQUIRE(one.size() == 1);
    CHECK(status_of(one[0].first) == 201);
    CHECK(json::parse(one[0].second).at("data").at("status") == "HELD");
  }
  // A bodiless answer is not kept waiting for a body, nor for the client's next request.
  const std::string head_only = "HEAD /v1/api/events/Io HTTP/1.1\r\nHost: x\r\n\r\n";
  REQUIRE(::send(fd, head_only.data(), head_only.size(), MSG_NOSIGNAL) ==
          static_cast<ssize_t>(head_only.size()));
  char buf[8192];
  const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
  REQUIRE(n > 0);
  const std::string answer(buf, static_cast<std::size_t>(n));
  CHECK(status_of(answer) == 200);
  CHECK(answer.ends_with("\r\n\r\n"));
  // ... so it came while the connection was kept alive (held, it would leave only as the
  // connection closed, after the keep-alive timeout): a next request still gets its answer.
  const std::string again = "GET /v1/api/events/Io HTTP/1.1\r\nHost: x\r\n\r\n";
  REQUIRE(::send(fd, again.data(), again.size(), MSG_NOSIGNAL) ==
          static_cast<ssize_t>(again.size()));
  const ssize_t m = ::recv(fd, buf, sizeof buf, 0);
  REQUIRE(m > 0);
  CHECK(status_of(std::string(buf, static_cast<std::size_t>(m))) == 200);
  ::close(fd);
}

// A hold's answer is written by the thread that committed it, not by httplib: the same bytes
// httplib would write, in order with the connection's other answers, logged and counted.
TEST_CASE("hold answers written by the committing thread look like httplib's, in order, logged",
          "[reliability]") {
  TempDir dir;
  const std::string log = dir.file("d.log");
  Daemon d({"--db", dir.file("d.db"), "--log-level", "info"}, log);
  auto c = d.client();
  REQUIRE(c.Post("/v1/api/events", live_event_json("Df", 3), "application/json")->status == 201);

  // Three holds pipelined with reads between them: answered in order, the fourth hold sold out.
  const std::string get = "GET /v1/api/events/Df HTTP/1.1\r\nHost: x\r\n\r\n";
  const std::string h = post(hold_json("Df"));
  const auto answers = split_responses(raw_exchange(d.port, {h + get + h + h + get + h}),
                                       {true, true, true, true, true, true});
  REQUIRE(answers.size() == 6);
  std::vector<std::string> ids;
  for (std::size_t i : {0, 2, 3}) {
    INFO(answers[i].first);
    const std::string body = answers[i].second;
    const std::string head =
        "HTTP/1.1 201 Created\r\nContent-Length: " + std::to_string(body.size()) +
        "\r\nContent-Type: application/json\r\nKeep-Alive: timeout=1, "
        "max=1000000\r\n\r\n";
    CHECK(answers[i].first == head);
    ids.emplace_back(json::parse(body).at("data").at("bookId").as_string());
  }
  CHECK(json::parse(answers[1].second).at("data").at("eventGroups").at(0).at("held") == 1);
  CHECK(json::parse(answers[4].second).at("data").at("eventGroups").at(0).at("held") == 3);
  CHECK(answers[5].first.starts_with("HTTP/1.1 409 Conflict\r\nContent-Length: "));
  CHECK(json::parse(answers[5].second).at("error").at("code") == "insufficient_stock");

  // Connection: close is honoured: the answer says so and the connection ends after it.
  const std::string closing =
      raw_exchange(d.port, {post(hold_json("Df"), "Connection: close\r\n") + get});
  CHECK(closing.starts_with("HTTP/1.1 409 Conflict\r\n"));
  CHECK(closing.find("Connection: close\r\n") != std::string::npos);
  CHECK(split_responses(closing, {true, true}).size() == 1);  // the GET was not answered

  // Logged and counted as httplib's own answers are.
  const std::string metrics = c.Get("/metrics")->body;
  CHECK(metrics.find(
            R"(booking_http_requests_total{route="/v1/api/books",method="POST",status="201"} 3)") !=
        std::string::npos);
  CHECK(metrics.find(R"(booking_holds_total{outcome="ok"} 3)") != std::string::npos);
  d.stop();
  const std::string logged = read_file(log);
  for (const std::string& id : ids) {
    CHECK(logged.find("POST /v1/api/books 201 ") != std::string::npos);
    CHECK(logged.find("bookId=" + id) != std::string::npos);
  }
  CHECK(logged.find("POST /v1/api/books 409 ") != std::string::npos);
}

TEST_CASE(
    "a deferred answer the socket cannot take at once arrives whole, and the connection "
    "goes on",
    "[reliability]") {
  // An answer written by another thread (GuardedServer::defer) larger than the socket's
  // buffers: that thread writes what fits, the connection's thread the rest, at once, and not
  // when the client's next request (which waits for this answer) or the keep-alive time comes.
  httpd::GuardedServer server;
  server.set_keep_alive_timeout(30);
  const std::string big(8 << 20, 'x');
  std::vector<std::thread> answerers;
  std::mutex mu;
  server.Get("/big", [&](const httplib::Request& req, httplib::Response&) {
    // No assertion here: Catch2's are for the test's own thread. Without a deferred response
    // httplib answers this request itself, empty, and the checks on the answer fail.
    auto answer = server.defer(req);
    if (!answer) return;
    std::lock_guard lock(mu);
    answerers.emplace_back([answer, &big] {
      httplib::Response res;
      res.status = 200;
      res.set_content(big, "text/plain");
      answer->send(std::move(res));
    });
  });
  server.Get("/small", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("small", "text/plain");
  });
  const int port = server.bind_to_any_port("127.0.0.1");
  REQUIRE(port > 0);
  std::thread serving([&] { server.listen_after_bind(); });
  const int fd = connect_loopback(port);
  auto read_answer = [&](std::size_t body_size) {
    const auto deadline = std::chrono::steady_clock::now() + 3s;
    std::string got;
    char buf[65536];
    std::size_t head_end = std::string::npos;
    while (head_end == std::string::npos || got.size() < head_end + 4 + body_size) {
      if (std::chrono::steady_clock::now() > deadline) break;
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      got.append(buf, static_cast<std::size_t>(n));
      if (head_end == std::string::npos) head_end = got.find("\r\n\r\n");
    }
    return got;
  };
  const std::string get_big = "GET /big HTTP/1.1\r\nHost: t\r\n\r\n";
  CHECK(::send(fd, get_big.data(), get_big.size(), MSG_NOSIGNAL) ==
        static_cast<ssize_t>(get_big.size()));
  const auto asked = std::chrono::steady_clock::now();
  const std::string first = read_answer(big.size());
  CHECK(std::chrono::steady_clock::now() - asked < 3s);
  INFO(first.size() << " bytes: " << first.substr(0, 200));
  CHECK(first.starts_with("HTTP/1.1 200 OK\r\n"));
  CHECK(first.find("Content-Length: " + std::to_string(big.size()) + "\r\n") != std::string::npos);
  CHECK(first.size() == first.find("\r\n\r\n") + 4 + big.size());
  CHECK(first.ends_with(std::string(1000, 'x')));
  const std::string get_small = "GET /small HTTP/1.1\r\nHost: t\r\n\r\n";
  CHECK(::send(fd, get_small.data(), get_small.size(), MSG_NOSIGNAL) ==
        static_cast<ssize_t>(get_small.size()));
  const std::string second = read_answer(5);
  CHECK(second.starts_with("HTTP/1.1 200 OK\r\n"));
  CHECK(second.ends_with("\r\n\r\nsmall"));
  ::close(fd);
  server.shut_down();
  serving.join();
  for (auto& t : answerers) t.join();
}

TEST_CASE("idle connections hold no worker thread, and a whole inline request needs none at all",
          "[reliability]") {
  // One worker thread (and two loops). Before the event loop each kept-alive connection held a
  // worker until it closed, so a second client waited out the first one's keep-alive time.
  httpd::GuardedServer server;
  server.set_worker_threads(1);
  server.set_loop_threads(2);
  server.set_keep_alive_timeout(30);
  server.set_inline_requests({"POST /inline ", "POST /empty "}, {"X-Not-Inline"});
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  server.Get("/small", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("small", "text/plain");
  });
  server.Get("/slow", [&](const httplib::Request&, httplib::Response& res) {
    std::unique_lock lock(mu);
    cv.wait_for(lock, 10s, [&] { return release; });
    res.set_content("slow", "text/plain");
  });
  server.Post("/inline", [](const httplib::Request& req, httplib::Response& res) {
    res.set_content("inline " + req.body, "text/plain");
  });
  server.Post("/empty", [](const httplib::Request&, httplib::Response& res) { res.status = 200; });
  const int port = server.bind_to_any_port("127.0.0.1");
  REQUIRE(port > 0);
  std::thread serving([&] { server.listen_after_bind(); });

  auto ask = [](int fd, const std::string& request) {
    REQUIRE(::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
            static_cast<ssize_t>(request.size()));
  };
  auto answer = [](int fd, int count = 1) {  // `count` answers, or what came within 3 s
    std::string got;
    auto whole = [&] {
      std::size_t at = 0;
      for (int i = 0; i < count; ++i) {
        const auto head_end = got.find("\r\n\r\n", at);
        const auto length = got.find("Content-Length: ", at);
        if (head_end == std::string::npos || length > head_end) return false;
        at = head_end + 4 + std::stoul(got.substr(length + 16));
        if (got.size() < at) return false;
      }
      return true;
    };
    char buf[4096];
    while (!whole()) {
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      got.append(buf, static_cast<std::size_t>(n));
    }
    return got;
  };
  const std::string small = "GET /small HTTP/1.1\r\nHost: t\r\n\r\n";
  std::vector<int> fds;
  for (int i = 0; i < 20; ++i) {  // twenty kept-alive clients, served one after another
    fds.push_back(connect_loopback(port));
    ask(fds.back(), small);
    CHECK(answer(fds.back()).ends_with("\r\n\r\nsmall"));
  }
  // The only worker is busy with a slow request; an inline request on another connection is
  // answered anyway, whole or in two parts (a part waits for the worker: the loop never reads).
  const int slow = fds[0];
  ask(slow, "GET /slow HTTP/1.1\r\nHost: t\r\n\r\n");
  std::this_thread::sleep_for(100ms);  // the worker takes it
  const auto asked = std::chrono::steady_clock::now();
  ask(fds[1], "POST /inline HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi");
  CHECK(answer(fds[1]).ends_with("\r\n\r\ninline hi"));
  CHECK(std::chrono::steady_clock::now() - asked < 1s);
  ask(fds[2], "POST /inline HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nin");
  ask(fds[3], small);  // needs the worker too
  std::this_thread::sleep_for(200ms);
  ask(fds[2], "two");
  {
    std::lock_guard lock(mu);
    release = true;
  }
  cv.notify_all();
  CHECK(answer(slow).ends_with("\r\n\r\nslow"));
  CHECK(answer(fds[2]).ends_with("\r\n\r\ninline intwo"));
  CHECK(answer(fds[3]).ends_with("\r\n\r\nsmall"));
  // A head whose lines end in a bare LF (httplib reads them as lines too), or with a header
  // named as not inline, is left to a worker, which waits for its body.
  ask(fds[5], "POST /inline HTTP/1.1\r\nHost: t\nContent-Length: 3\r\n\r\n");
  ask(fds[6], "POST /inline HTTP/1.1\r\nX-Not-Inline: 1\r\nContent-Length: 3\r\n\r\n");
  std::this_thread::sleep_for(100ms);
  ask(fds[5], "abc");
  ask(fds[6], "def");
  CHECK(answer(fds[5]).ends_with("\r\n\r\ninline abc"));
  CHECK(answer(fds[6]).ends_with("\r\n\r\ninline def"));
  // A bodiless answer handled on the loop leaves at once (its header block is not held back
  // for a body that never comes).
  const auto empty_asked = std::chrono::steady_clock::now();
  ask(fds[7], "POST /empty HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
  const std::string empty = answer(fds[7]);
  CHECK(empty.starts_with("HTTP/1.1 200 OK\r\n"));
  CHECK(empty.find("Content-Length: 0\r\n") != std::string::npos);
  CHECK(std::chrono::steady_clock::now() - empty_asked < 1s);
  // Two inline requests in one send: answered in order.
  const std::string twice = "POST /inline HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\na";
  ask(fds[4], twice + twice);
  const std::string both = answer(fds[4], 2);
  CHECK(both.starts_with("HTTP/1.1 200 OK\r\n"));
  CHECK(both.find("\r\n\r\ninline aHTTP/1.1 200 OK\r\n") != std::string::npos);
  CHECK(both.ends_with("\r\n\r\ninline a"));
  for (int fd : fds) ::close(fd);
  server.shut_down();
  serving.join();
}
