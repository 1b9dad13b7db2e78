#include "feed_routes.hpp"

#include <booking/json_codec.hpp>
#include <boost/json.hpp>
#include <charconv>

#include "respond.hpp"

namespace booking::httpd {

namespace json = boost::json;

namespace {
constexpr std::int64_t kMaxWaitSeconds = 60;
constexpr std::int64_t kStreamPage = 100;

error too_many_streams(int max) {
  return make_error(errc::lock_timeout, "too many change feed subscribers (at most " +
                                            std::to_string(max) + "); try again shortly");
}

// One change as a server-sent event: its seq is the event id, its type the event name.
void append_event(std::string& out, const Change& c) {
  out += "id: ";
  out += std::to_string(c.seq);
  out += "\nevent: ";
  out += to_string(c.type);
  out += "\ndata: ";
  out += to_text(to_json(c));  // one line: JSON text has no raw newline
  out += "\n\n";
}
}  // namespace

FeedRoutes::FeedRoutes(BookingService& service, int max_streams, const std::atomic<bool>& stopping,
                       std::chrono::milliseconds keep_alive)
    : service_(service), max_streams_(max_streams), stopping_(stopping), keep_alive_(keep_alive) {}

std::shared_ptr<void> FeedRoutes::take_slot() {
  if (streams_.fetch_add(1) >= max_streams_) {
    streams_.fetch_sub(1);
    return nullptr;
  }
  // (Not a null pointer with a deleter: a shared_ptr holding null tests false.)
  return std::shared_ptr<void>(this, [this](void*) { streams_.fetch_sub(1); });
}

// `after`: a seq, or `latest` (the newest change now: follow from here on).
result<std::int64_t> FeedRoutes::parse_after(const httplib::Request& req) {
  if (req.get_param_value("after") == "latest") {
    BOOKING_TRY(auto bounds, service_.feed_bounds());
    return bounds.last;
  }
  return query_int(req, "after", 0);
}

void FeedRoutes::changes(const httplib::Request& req, httplib::Response& res) {
  auto after = parse_after(req);
  if (!after) return send_error(res, after.error());
  auto limit = query_int(req, "limit", 100);
  if (!limit) return send_error(res, limit.error());
  auto wait = query_int(req, "wait", 0);
  if (!wait) return send_error(res, wait.error());
  if (wait.value() < 0 || wait.value() > kMaxWaitSeconds) {
    return send_error(res, make_error(errc::validation_failed, "wait is 0 to 60 seconds",
                                      {{"wait", "must be between 0 and 60"}}));
  }
  result<std::vector<Change>> page = std::vector<Change>{};
  if (wait.value() == 0) {
    page = service_.changes(after.value(), limit.value());
  } else {
    auto slot = take_slot();
    if (!slot) {
      send_error(res, too_many_streams(max_streams_));
      res.set_header("Retry-After", "1");
      return;
    }
    page = service_.wait_changes(after.value(), limit.value(), std::chrono::seconds(wait.value()),
                                 &stopping_);
  }
  if (!page) return send_error(res, page.error());
  json::array data;
  for (const Change& c : page.value()) data.push_back(to_json(c));
  json::object body{{"data", std::move(data)}};
  // Where to resume: after the last change given, else where the caller was.
  body["last"] = page.value().empty() ? after.value() : page.value().back().seq;
  res.set_header("Cache-Control", "no-store");
  send_json(res, 200, body);
}

void FeedRoutes::stream(const httplib::Request& req, httplib::Response& res) {
  auto after = parse_after(req);
  if (!after) return send_error(res, after.error());
  std::int64_t from = after.value();
  if (req.has_header("Last-Event-ID")) {  // a reconnecting EventSource resumes after it
    const std::string id = req.get_header_value("Last-Event-ID");
    auto [p, ec] = std::from_chars(id.data(), id.data() + id.size(), from);
    if (ec != std::errc{} || p != id.data() + id.size()) {
      return send_error(res, make_error(errc::validation_failed, "invalid Last-Event-ID",
                                        {{"Last-Event-ID", "must be a change's seq"}}));
    }
  }
  // Refused before the stream starts (410, 422, 503), not inside it.
  if (auto first = service_.changes(from, 1); !first) return send_error(res, first.error());
  auto slot = take_slot();
  if (!slot) {
    send_error(res, too_many_streams(max_streams_));
    res.set_header("Retry-After", "1");
    return;
  }
  res.set_header("Cache-Control", "no-store");
  res.set_header("X-Accel-Buffering", "no");  // nginx: pass each event on at once
  res.set_chunked_content_provider(
      "text/event-stream", [this, slot, from](std::size_t, httplib::DataSink& sink) mutable {
        std::string out = ": changes after " + std::to_string(from) + "\n\n";
        if (!sink.write(out.data(), out.size())) return false;
        while (!stopping_.load()) {
          auto page = service_.wait_changes(from, kStreamPage, keep_alive_, &stopping_);
          out.clear();
          if (!page) {
            out = "event: error\ndata: " + to_text(error_json(page.error())) + "\n\n";
            sink.write(out.data(), out.size());
            return false;
          }
          for (const Change& c : page.value()) append_event(out, c);
          if (page.value().empty()) {
            out = ": keep-alive\n\n";  // idle streams stay open through proxies
          } else {
            from = page.value().back().seq;
          }
          if (!sink.write(out.data(), out.size())) return false;  // the client left
        }
        sink.done();
        return true;
      });
}

}  // namespace booking::httpd
