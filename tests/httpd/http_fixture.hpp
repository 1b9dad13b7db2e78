// An in-process bookingd on a free port, with a manual clock, and an httplib client for it.
#pragma once

#include <httplib.h>

#include <boost/json.hpp>
#include <thread>

#include "http_server.hpp"
#include "support.hpp"

namespace booking::test {

struct HttpResult {
  int status = 0;
  boost::json::value body;
  httplib::Headers headers;
};

class HttpFixture {
 public:
  explicit HttpFixture(std::unique_ptr<EventRepository> repo = make_memory_repository(),
                       ServiceOptions options = {}, httpd::HttpOptions http = {});
  ~HttpFixture();

  HttpResult get(const std::string& path);
  HttpResult post(const std::string& path, const std::string& body,
                  const std::string& content_type = "application/json",
                  const httplib::Headers& headers = {});
  HttpResult patch(const std::string& path, const std::string& body,
                   const std::string& content_type = "application/json",
                   const httplib::Headers& headers = {});
  HttpResult send(const std::string& method, const std::string& path);

  // A new client of this server (one per thread: httplib clients are not thread-safe).
  std::unique_ptr<httplib::Client> client() const;

  std::unique_ptr<EventRepository> repo;
  std::unique_ptr<LockProvider> locks = make_memory_lock_provider();
  ManualClock clock{kT0};
  BookingService service;
  httpd::HttpServer server;
  int port = 0;

 private:
  HttpResult wrap(const httplib::Result& r);
  std::thread runner_;
  std::unique_ptr<httplib::Client> client_;
};

}  // namespace booking::test
