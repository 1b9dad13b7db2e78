#include "httpd/http_fixture.hpp"

#include <spdlog/spdlog.h>

namespace booking::test {

HttpFixture::HttpFixture(std::unique_ptr<EventRepository> r, ServiceOptions options,
                         httpd::HttpOptions http)
    : repo(std::move(r)), service(*repo, *locks, clock, options), server(service, [&] {
        http.port = 0;
        http.threads = std::max(http.threads, 8);
        return http;
      }()) {
  spdlog::set_level(spdlog::level::warn);  // no access log per request in test output
  auto bound = server.bind();
  REQUIRE(bound);
  port = bound.value();
  runner_ = std::thread([this] { server.run(); });
  while (!server.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  client_ = client();
}

HttpFixture::~HttpFixture() {
  client_.reset();
  server.stop();
  runner_.join();
}

std::unique_ptr<httplib::Client> HttpFixture::client() const {
  auto c = std::make_unique<httplib::Client>("127.0.0.1", port);
  c->set_keep_alive(true);
  c->set_tcp_nodelay(true);
  c->set_read_timeout(std::chrono::seconds(10));
  return c;
}

HttpResult HttpFixture::wrap(const httplib::Result& r) {
  REQUIRE(r);
  HttpResult out;
  out.status = r->status;
  out.headers = r->headers;
  boost::system::error_code ec;
  out.body = boost::json::parse(r->body, ec);
  if (ec) out.body = boost::json::string(r->body);
  return out;
}

HttpResult HttpFixture::get(const std::string& path) { return wrap(client_->Get(path.c_str())); }

HttpResult HttpFixture::post(const std::string& path, const std::string& body,
                             const std::string& content_type, const httplib::Headers& headers) {
  return wrap(client_->Post(path.c_str(), headers, body, content_type.c_str()));
}

HttpResult HttpFixture::patch(const std::string& path, const std::string& body,
                              const std::string& content_type, const httplib::Headers& headers) {
  return wrap(client_->Patch(path.c_str(), headers, body, content_type.c_str()));
}

HttpResult HttpFixture::send(const std::string& method, const std::string& path) {
  httplib::Request req;
  req.method = method;
  req.path = path;
  return wrap(client_->send(req));
}

}  // namespace booking::test
