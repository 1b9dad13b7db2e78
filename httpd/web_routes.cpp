#include "web_routes.hpp"

#include <booking/json_codec.hpp>
#include <boost/json.hpp>
#include <functional>

#include "respond.hpp"
#include "web_assets.hpp"

namespace booking::httpd {

namespace json = boost::json;

namespace {

// The pages load only their own files and talk only to this server: no inline script or style,
// no framing, no form posting elsewhere.
constexpr const char* kContentSecurityPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

bool etag_matches(const httplib::Request& req, std::string_view etag) {
  if (!req.has_header("If-None-Match")) return false;
  const std::string list = req.get_header_value("If-None-Match");
  if (list == "*") return true;
  // A list of ETags; a weak one matches by its opaque part (RFC 9110 weak comparison).
  std::size_t pos = 0;
  while (pos < list.size()) {
    std::size_t end = list.find(',', pos);
    if (end == std::string::npos) end = list.size();
    std::string_view tag(list.data() + pos, end - pos);
    while (!tag.empty() && tag.front() == ' ') tag.remove_prefix(1);
    while (!tag.empty() && tag.back() == ' ') tag.remove_suffix(1);
    if (tag.starts_with("W/")) tag.remove_prefix(2);
    if (tag == etag) return true;
    pos = end + 1;
  }
  return false;
}

}  // namespace

WebRoutes::WebRoutes(BookingService& service, WebOptions options)
    : service_(service), options_(std::move(options)) {}

bool WebRoutes::file(const httplib::Request& req, httplib::Response& res,
                     std::string_view name) const {
  for (const WebAsset& a : web_assets()) {
    if (a.name != name) continue;
    res.set_header("Content-Security-Policy", kContentSecurityPolicy);
    res.set_header("X-Content-Type-Options", "nosniff");
    res.set_header("Referrer-Policy", "no-referrer");
    // Revalidated on every use: a new bookingd serves its own files at once, and an unchanged
    // file costs a 304 without a body.
    res.set_header("Cache-Control", "no-cache");
    res.set_header("ETag", std::string(a.etag));
    if (etag_matches(req, a.etag)) {
      res.status = 304;
      return true;
    }
    res.status = 200;
    res.set_content(a.body.data(), a.body.size(), std::string(a.content_type));
    return true;
  }
  return false;
}

void WebRoutes::availability(const httplib::Request& req, httplib::Response& res) {
  const std::string key = req.matches[1].str();
  const auto now = std::chrono::steady_clock::now();
  Cached answer;
  bool fresh = false;
  {
    std::lock_guard lock(mutex_);
    if (auto it = cache_.find(key);
        it != cache_.end() && now - it->second.at < options_.availability_ttl) {
      answer = it->second;
      fresh = true;
    }
  }
  if (!fresh) {
    auto event = service_.get_event(key);
    if (!event) return send_error(res, event.error());
    const Event& e = event.value();
    json::array groups;
    for (const Tier& t : e.tiers) {
      groups.push_back(json::object{{"key", t.key},
                                    {"qty", t.stock.available},
                                    {"capacity", t.stock.capacity},
                                    {"held", t.stock.held},
                                    {"sold", t.stock.sold}});
    }
    json::object data{{"key", e.key},
                      {"status", to_string(e.status)},
                      {"version", e.version},
                      {"eventGroups", std::move(groups)}};
    answer.body = json::serialize(json::object{{"data", std::move(data)}});
    answer.etag = "\"a" + std::to_string(std::hash<std::string>{}(answer.body)) + "\"";
    answer.at = now;
    std::lock_guard lock(mutex_);
    if (cache_.size() >= 4096) cache_.clear();  // bounded, whatever keys are asked for
    cache_[key] = answer;
  }
  res.set_header("ETag", answer.etag);
  res.set_header("Cache-Control", "no-cache");
  if (etag_matches(req, answer.etag)) {
    res.status = 304;
    return;
  }
  res.status = 200;
  res.set_content(std::move(answer.body), "application/json");
}

void WebRoutes::storefront(httplib::Response& res, bool may_confirm) const {
  json::object data{{"demoPayment", options_.demo_payment && may_confirm}};
  // The server's clock, so that a page can count down to an expiresAt by it and not by a
  // buyer's device, which may be minutes off.
  data["serverTime"] = format_instant(service_.clock().now());
  if (options_.checkout_url.empty()) {
    data["checkoutUrl"] = nullptr;
  } else {
    data["checkoutUrl"] = options_.checkout_url;
  }
  send_data(res, 200, std::move(data));
}

result<void> check_checkout_url(const std::string& url) {
  const bool absolute = url.starts_with("https://") || url.starts_with("http://");
  const bool path = url.starts_with("/") && !url.starts_with("//");
  if ((!absolute && !path) || url.find("{bookId}") == std::string::npos) {
    return make_error(errc::validation_failed,
                      "--checkout-url must be an http(s):// URL or a path containing {bookId}, "
                      "e.g. https://pay.example.com/checkout?booking={bookId}");
  }
  for (unsigned char c : url) {
    if (c < 0x21 || c == 0x7f || c == '"' || c == '<' || c == '>') {
      return make_error(errc::validation_failed,
                        "--checkout-url must not contain spaces, quotes or control characters");
    }
  }
  return boost::outcome_v2::success();
}

}  // namespace booking::httpd
