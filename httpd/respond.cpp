#include "respond.hpp"

#include <spdlog/spdlog.h>

#include <atomic>
#include <booking/json_codec.hpp>
#include <boost/json.hpp>
#include <charconv>

namespace booking::httpd {

namespace json = boost::json;

thread_local RequestContext t_request;

// A request id: this process's random prefix and a counter.
std::string next_request_id() {
  static const std::string prefix = random_token().substr(0, 8);
  static std::atomic<std::uint64_t> counter{0};
  return prefix + "-" + std::to_string(++counter);
}

void send_json(httplib::Response& res, int status, const json::value& body) {
  res.status = status;
  res.set_content(to_text(body), "application/json");
}

void send_data(httplib::Response& res, int status, json::value data) {
  send_json(res, status, json::object{{"data", std::move(data)}});
}

// The one place an error becomes an HTTP response (handlers and the error handler alike): the
// status is always http_status(code). A 5xx tells the client only a generic message and the
// request id; the cause goes to the log under that id.
void send_error(httplib::Response& res, const error& e) {
  const int status = http_status(e.code);
  if (status >= 500) {
    spdlog::error("requestId={} {}: {}", t_request.id, to_string(e.code), log_safe(e.message));
    error generic = make_error(e.code, e.code == errc::lock_timeout
                                           ? "tickets are in high demand; try again"
                                           : "internal error; quote the requestId to the operator");
    json::object body = error_json(generic);
    body["error"].as_object()["requestId"] = t_request.id;
    send_json(res, status, body);
  } else {
    send_json(res, status, error_json(e));
  }
  if (e.code == errc::lock_timeout) res.set_header("Retry-After", "1");
  if (e.code == errc::unauthorized) res.set_header("WWW-Authenticate", "Bearer realm=\"bookingd\"");
  if (e.code == errc::rate_limited) {
    auto it = e.details.find("retryAfter");
    res.set_header("Retry-After", it != e.details.end() ? to_text(it->value()) : "60");
  }
}

// The media type of a Content-Type header, lower case, without parameters.
std::string media_type(const std::string& content_type) {
  std::string media = content_type.substr(0, content_type.find(';'));
  while (!media.empty() && media.back() == ' ') media.pop_back();
  for (char& c : media) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return media;
}

// The JSON body of a request: 415 for a media type other than application/json (or `also`),
// 400 for malformed JSON. An empty body is JSON null.
result<json::value> json_body(const httplib::Request& req, std::string_view also) {
  if (req.body.empty()) return json::value(nullptr);
  const std::string media = media_type(req.get_header_value("Content-Type"));
  if (media != "application/json" && (also.empty() || media != also)) {
    return make_error(errc::unsupported_media_type,
                      "request body must be application/json" +
                          (also.empty() ? std::string() : " or " + std::string(also)) + ", not '" +
                          req.get_header_value("Content-Type").substr(0, 100) + "'");
  }
  return parse_json(req.body);
}

// The version an If-Match names ("3", W/"3" or 3); none without the header. `*` matches any.
result<std::optional<std::int64_t>> parse_if_match(const httplib::Request& req) {
  if (!req.has_header("If-Match")) return std::optional<std::int64_t>{};
  std::string v = req.get_header_value("If-Match");
  if (v == "*") return std::optional<std::int64_t>{};
  if (v.starts_with("W/")) v = v.substr(2);
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  std::int64_t n = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc{} || p != v.data() + v.size() || n < 1) {
    return make_error(errc::precondition_failed,
                      "If-Match must be an ETag this server gave (\"3\"), got '" +
                          req.get_header_value("If-Match").substr(0, 64) + "'");
  }
  return std::optional<std::int64_t>{n};
}

result<std::int64_t> query_int(const httplib::Request& req, const char* name,
                               std::int64_t fallback) {
  if (!req.has_param(name)) return fallback;
  std::string text = req.get_param_value(name);
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || p != text.data() + text.size()) {
    return make_error(errc::validation_failed, std::string("invalid query parameter ") + name,
                      {{name, "must be an integer"}});
  }
  return v;
}

}  // namespace booking::httpd
