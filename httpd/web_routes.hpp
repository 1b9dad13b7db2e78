// The web pages bookingd serves (section "Web pages" of the README): the storefront at `/`, the
// operator's page at `/admin`, their files under `/assets/`, and the two small API routes the
// storefront polls: an event's availability (answered from a cache, with ETag/304, so a thousand
// open pages cost a few storage reads a second) and the storefront's settings.
#pragma once

#include <httplib.h>

#include <booking/booking_service.hpp>
#include <chrono>
#include <mutex>
#include <string>
#include <unordered_map>

namespace booking::httpd {

struct WebOptions {
  // Where the pay button sends a buyer: a URL with {bookId}; empty: no pay button.
  std::string checkout_url;
  // bookingd --demo: a caller allowed to confirm (in open mode, anyone) gets a demo payment
  // button that confirms the booking directly.
  bool demo_payment = false;
  // How long an availability answer is reused.
  std::chrono::milliseconds availability_ttl{250};
};

class WebRoutes {
 public:
  WebRoutes(BookingService& service, WebOptions options);

  // Serves the embedded file `name` with its security and caching headers (304 when the
  // request's If-None-Match names its ETag); false if there is no such file.
  bool file(const httplib::Request& req, httplib::Response& res, std::string_view name) const;
  // GET /v1/api/events/{key}/availability
  void availability(const httplib::Request& req, httplib::Response& res);
  // GET /v1/api/storefront; `may_confirm`: the caller could confirm a booking.
  void storefront(httplib::Response& res, bool may_confirm) const;

 private:
  struct Cached {
    std::string body;
    std::string etag;
    std::chrono::steady_clock::time_point at;
  };

  BookingService& service_;
  const WebOptions options_;
  std::mutex mutex_;
  std::unordered_map<std::string, Cached> cache_;  // by event key; found events only
};

// Checks a --checkout-url: http(s):// or a path, with {bookId}.
result<void> check_checkout_url(const std::string& url);

}  // namespace booking::httpd
