// Responses of bookingd, shared by its route handlers: the JSON envelope, the one mapping of an
// error to its HTTP answer, and the request's parameters and body.
#pragma once

#include <httplib.h>

#include <booking/error.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "access.hpp"

namespace booking::httpd {

// Per-request context for the access log and metrics. httplib serves one request at a time on
// a worker thread, from pre-routing through the logger, so thread-local state is per request.
struct RequestContext {
  std::chrono::steady_clock::time_point start;
  std::string id;  // quoted in a 5xx answer and in the log line of its cause
  std::string route;
  std::string booking_id;
  Caller caller;
  std::optional<std::size_t> cancelled;  // bookings an event cancellation cancelled
  // The response is written by another thread (GuardedServer::defer), which also logs it.
  bool deferred = false;
};
extern thread_local RequestContext t_request;

// A request id: this process's random prefix and a counter.
std::string next_request_id();

void send_json(httplib::Response& res, int status, const boost::json::value& body);
// {"data": data}.
void send_data(httplib::Response& res, int status, boost::json::value data);
// The one place an error becomes an HTTP response (handlers and the error handler alike): the
// status is always http_status(code). A 5xx tells the client only a generic message and the
// request id; the cause goes to the log under that id.
void send_error(httplib::Response& res, const error& e);
// The media type of a Content-Type header, lower case, without parameters.
std::string media_type(const std::string& content_type);
// The JSON body of a request: 415 for a media type other than application/json (or `also`),
// 400 for malformed JSON. An empty body is JSON null.
result<boost::json::value> json_body(const httplib::Request& req, std::string_view also = {});
// The version an If-Match names ("3", W/"3" or 3); none without the header. `*` matches any.
result<std::optional<std::int64_t>> parse_if_match(const httplib::Request& req);
// An integer query parameter, `fallback` when absent; validation_failed when not an integer.
result<std::int64_t> query_int(const httplib::Request& req, const char* name,
                               std::int64_t fallback);

}  // namespace booking::httpd
