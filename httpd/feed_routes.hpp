// The change feed over HTTP: GET /v1/api/changes (a page, or a long poll with wait=) and
// GET /v1/api/changes/stream (server-sent events). Both hold a worker thread while they wait, so
// at most max_streams of them run at once (503 with Retry-After beyond): subscribers never take
// the workers that holds need.
#pragma once

#include <httplib.h>

#include <atomic>
#include <booking/booking_service.hpp>
#include <chrono>

namespace booking::httpd {

class FeedRoutes {
 public:
  // `stopping` becomes true when the server stops: waits and streams end at once.
  FeedRoutes(BookingService& service, int max_streams, const std::atomic<bool>& stopping,
             std::chrono::milliseconds keep_alive = std::chrono::seconds(15));

  void changes(const httplib::Request& req, httplib::Response& res);
  void stream(const httplib::Request& req, httplib::Response& res);
  // Long polls and streams running now.
  int open_streams() const noexcept { return streams_.load(); }

 private:
  result<std::int64_t> parse_after(const httplib::Request& req);
  // A slot among max_streams, released when the last copy is destroyed.
  std::shared_ptr<void> take_slot();

  BookingService& service_;
  const int max_streams_;
  const std::atomic<bool>& stopping_;
  const std::chrono::milliseconds keep_alive_;
  std::atomic<int> streams_{0};
};

}  // namespace booking::httpd
