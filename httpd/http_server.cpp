#include "http_server.hpp"

#include <httplib.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <booking/export.hpp>
#include <booking/json_codec.hpp>
#include <boost/json.hpp>
#include <charconv>
#include <regex>

#include "access.hpp"
#include "feed_routes.hpp"
#include "guarded_server.hpp"
#include "metrics.hpp"
#include "respond.hpp"
#include "web_routes.hpp"

namespace booking::httpd {

namespace json = boost::json;

namespace {

struct RouteEntry {
  Route route;
  std::string regex;
  Need need;
};

// The routes and the permission table: who may call each route is its last column (a
// route's handler may refine it, e.g. a hold with userId needs sales).
const std::vector<RouteEntry>& route_table() {
  static const std::vector<RouteEntry> table{
      {{"GET", "/healthz", ""}, "/healthz", Need::anyone},
      {{"GET", "/metrics", "admin"}, "/metrics", Need::admin},
      {{"GET", "/openapi.json", ""}, "/openapi\\.json", Need::anyone},
      {{"POST", "/v1/api/events", "admin"}, "/v1/api/events", Need::admin},
      {{"GET", "/v1/api/events", ""}, "/v1/api/events", Need::anyone},
      {{"GET", "/v1/api/events/{key}", ""}, "/v1/api/events/([^/]+)", Need::anyone},
      {{"PATCH", "/v1/api/events/{key}", "admin"}, "/v1/api/events/([^/]+)", Need::admin},
      {{"POST", "/v1/api/events/{key}/close", "admin"},
       "/v1/api/events/([^/]+)/close",
       Need::admin},
      {{"POST", "/v1/api/events/{key}/reopen", "admin"},
       "/v1/api/events/([^/]+)/reopen",
       Need::admin},
      {{"POST", "/v1/api/events/{key}/cancel", "admin"},
       "/v1/api/events/([^/]+)/cancel",
       Need::admin},
      {{"GET", "/v1/api/events/{key}/availability", ""},
       "/v1/api/events/([^/]+)/availability",
       Need::anyone},
      {{"GET", "/v1/api/storefront", ""}, "/v1/api/storefront", Need::anyone},
      {{"GET", "/v1/api/events/{key}/report", "sales"},
       "/v1/api/events/([^/]+)/report",
       Need::sales},
      {{"GET", "/v1/api/events/{key}/bookings.csv", "sales"},
       "/v1/api/events/([^/]+)/bookings\\.csv",
       Need::sales},
      {{"GET", "/v1/api/changes", "sales"}, "/v1/api/changes", Need::sales},
      {{"GET", "/v1/api/changes/stream", "sales"}, "/v1/api/changes/stream", Need::sales},
      {{"POST", "/v1/api/books", ""}, "/v1/api/books", Need::anyone},
      {{"GET", "/v1/api/books", "sales"}, "/v1/api/books", Need::sales},
      {{"GET", "/v1/api/books/{bookId}", ""}, "/v1/api/books/([^/]+)", Need::anyone},
      {{"POST", "/v1/api/books/{bookId}/confirm", "sales"},
       "/v1/api/books/([^/]+)/confirm",
       Need::sales},
      {{"POST", "/v1/api/books/{bookId}/cancel", ""}, "/v1/api/books/([^/]+)/cancel", Need::anyone},
  };
  return table;
}

// Search pages are bounded whatever the query asks: at most this many events and bytes.
constexpr std::int64_t kMaxSearchPage = 100;
constexpr std::size_t kMaxSearchBytes = 1 << 20;

}  // namespace

class HttpServer::Impl {
 public:
  Impl(BookingService& service, HttpOptions options)
      : service_(service),
        options_(std::move(options)),
        metrics_(options_.metrics_tiers),
        access_(options_.tokens, options_.open_allowed, options_.trusted_proxies),
        hold_limiter_(options_.hold_rate, 2 * options_.hold_rate),
        feed_(service, options_.max_streams, stopping_),
        web_(service, WebOptions{options_.checkout_url, options_.demo_payment}) {
    ConnectionLimits limits;
    limits.request_timeout = options_.request_timeout;
    limits.max_connections_per_client = options_.max_connections_per_client;
    limits.exempt = options_.trusted_proxies;
    server_.set_limits(limits);
    server_.set_worker_threads(static_cast<std::size_t>(options_.threads));
    // A hold is checked in memory, queued, and answered by the committing thread, so the event
    // loop handles it without handing the connection to a worker. Not one with an
    // Idempotency-Key, which is looked up in storage first. (A hold of an event not cached yet
    // reads it, and the token list is re-read once a second: rare reads, left on the loop.)
    server_.set_inline_requests({"POST /v1/api/books "}, {"Idempotency-Key"});
    server_.set_tcp_nodelay(true);  // Nagle + delayed ACK cost ~44 ms per keep-alive request
    server_.set_keep_alive_max_count(1'000'000);
    // httplib 0.11 waits out an idle keep-alive connection without looking at stop(), so this
    // bounds how long a graceful shutdown waits for idle clients.
    server_.set_keep_alive_timeout(1);
    server_.set_payload_max_length(options_.max_body);
    server_.set_read_timeout(std::chrono::seconds(10));
    server_.set_socket_options([](socket_t sock) {
      // SO_REUSEADDR only: with httplib's default SO_REUSEPORT a second daemon would bind the
      // same port silently and steal half the connections.
      int yes = 1;
      ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    });
    service_.set_observer(
        {[this](std::chrono::nanoseconds d) { metrics_.lock_wait().observe(d); }});
    install_routes();
    install_hooks();
  }

  Metrics& metrics() { return metrics_; }

  result<int> bind() {
    int port = options_.port;
    bool ok = port == 0 ? (port = server_.bind_to_any_port(options_.host)) > 0
                        : server_.bind_to_port(options_.host, port);
    if (!ok) {
      return make_error(errc::internal, "cannot listen on " + options_.host + ":" +
                                            std::to_string(options_.port) +
                                            " (address in use or not local?)");
    }
    if (!server_.raise_backlog(options_.listen_backlog)) {
      return make_error(errc::internal, "cannot raise the listen backlog");
    }
    return port;
  }

  void run() { server_.listen_after_bind(); }
  bool is_running() const { return server_.is_running(); }
  void stop() {
    stopping_ = true;  // long polls and event streams end at once
    server_.shut_down();
  }

 private:
  template <class F>
  void on(const std::string& method, const std::string& path, F handler) {
    const RouteEntry* entry = nullptr;
    for (const auto& e : route_table()) {
      if (e.route.method == method && e.route.path == path) entry = &e;
    }
    auto wrapped = [this, entry, handler](const httplib::Request& req, httplib::Response& res) {
      t_request.route = entry->route.path;
      auto caller = access_.identify(req.remote_addr, req.get_header_value("Authorization"),
                                     req.get_header_value("X-Forwarded-For"));
      if (!caller) return send_error(res, caller.error());
      t_request.caller = std::move(caller).value();
      if (auto ok = AccessControl::permit(t_request.caller, entry->need); !ok) {
        return send_error(res, ok.error());
      }
      // The change feed records who made each change.
      ActorScope actor(t_request.caller.token ? t_request.caller.token->name : "anonymous");
      handler(req, res);
    };
    if (method == "GET") server_.Get(entry->regex, wrapped);
    if (method == "POST") server_.Post(entry->regex, wrapped);
    if (method == "PATCH") server_.Patch(entry->regex, wrapped);
  }

  void install_routes() {
    on("GET", "/healthz", [](const auto&, auto& res) {
      send_data(res, 200, json::object{{"status", "ok"}});
    });
    on("GET", "/metrics", [this](const auto&, auto& res) {
      res.set_content(metrics_.render(service_), "text/plain; version=0.0.4");
    });
    on("GET", "/openapi.json",
       [](const auto&, auto& res) { res.set_content(openapi_document(), "application/json"); });
    on("POST", "/v1/api/events", [this](const auto& req, auto& res) { create_event(req, res); });
    on("GET", "/v1/api/events", [this](const auto& req, auto& res) { search(req, res); });
    on("GET", "/v1/api/events/{key}", [this](const auto& req, auto& res) {
      auto event = service_.get_event(req.matches[1].str());
      if (event) res.set_header("ETag", "\"" + std::to_string(event.value().version) + "\"");
      reply(res, 200, event);
    });
    on("PATCH", "/v1/api/events/{key}", [this](const auto& req, auto& res) {
      auto body = json_body(req, "application/merge-patch+json");
      if (!body) return send_error(res, body.error());
      auto patch = event_patch_from_json(body.value());
      if (!patch) return send_error(res, patch.error());
      auto if_match = parse_if_match(req);
      if (!if_match) return send_error(res, if_match.error());
      auto event = service_.update_event(req.matches[1].str(), patch.value(), if_match.value());
      if (!event) return send_error(res, event.error());
      res.set_header("ETag", "\"" + std::to_string(event.value().version) + "\"");
      send_data(res, 200, to_json(event.value()));
    });
    on("POST", "/v1/api/events/{key}/close", [this](const auto& req, auto& res) {
      change_status(req, res, [this](const std::string& key, std::optional<std::int64_t> v) {
        return service_.close_event(key, v);
      });
    });
    on("POST", "/v1/api/events/{key}/reopen", [this](const auto& req, auto& res) {
      change_status(req, res, [this](const std::string& key, std::optional<std::int64_t> v) {
        return service_.reopen_event(key, v);
      });
    });
    on("POST", "/v1/api/events/{key}/cancel", [this](const auto& req, auto& res) {
      change_status(req, res,
                    [this](const std::string& key, std::optional<std::int64_t> v) -> result<Event> {
                      BOOKING_TRY(auto done, service_.cancel_event(key, v));
                      t_request.cancelled = done.bookings_cancelled;
                      return done.event;
                    });
    });
    on("POST", "/v1/api/books", [this](const auto& req, auto& res) { hold(req, res); });
    on("GET", "/v1/api/books", [this](const auto& req, auto& res) { list_bookings(req, res); });
    on("GET", "/v1/api/events/{key}/report", [this](const auto& req, auto& res) {
      auto report = service_.event_report(req.matches[1].str());
      if (!report) return send_error(res, report.error());
      send_data(res, 200, to_json(report.value()));
    });
    on("GET", "/v1/api/events/{key}/bookings.csv",
       [this](const auto& req, auto& res) { export_csv(req, res); });
    on("GET", "/v1/api/events/{key}/availability",
       [this](const auto& req, auto& res) { web_.availability(req, res); });
    on("GET", "/v1/api/storefront",
       [this](const auto&, auto& res) { web_.storefront(res, t_request.caller.has(Role::sales)); });
    // The web pages: not API routes (not in the OpenAPI document), served to anyone.
    auto page = [this](const char* route, const char* name) {
      return [this, route, name](const httplib::Request& req, httplib::Response& res) {
        t_request.route = route;
        web_.file(req, res, name);
      };
    };
    server_.Get("/", page("/", "index.html"));
    server_.Get("/admin", page("/admin", "admin.html"));
    server_.Get("/assets/([A-Za-z0-9_.-]+)",
                [this](const httplib::Request& req, httplib::Response& res) {
                  t_request.route = "/assets";
                  const std::string name = req.matches[1].str();
                  if (name.ends_with(".html") || !web_.file(req, res, name)) {
                    send_error(res, make_error(errc::not_found, "no such file"));
                  }
                });
    on("GET", "/v1/api/changes", [this](const auto& req, auto& res) { feed_.changes(req, res); });
    on("GET", "/v1/api/changes/stream",
       [this](const auto& req, auto& res) { feed_.stream(req, res); });
    on("GET", "/v1/api/books/{bookId}", [this](const auto& req, auto& res) {
      t_request.booking_id = req.matches[1].str();
      reply(res, 200, service_.get_booking(req.matches[1].str()));
    });
    on("POST", "/v1/api/books/{bookId}/confirm", [this](const auto& req, auto& res) {
      t_request.booking_id = req.matches[1].str();
      auto body = json_body(req);
      if (!body) return send_error(res, body.error());
      auto payment = payment_from_json(body.value());
      if (!payment) return send_error(res, payment.error());
      reply(res, 200, service_.confirm(req.matches[1].str(), payment.value()));
    });
    on("POST", "/v1/api/books/{bookId}/cancel", [this](const auto& req, auto& res) {
      t_request.booking_id = req.matches[1].str();
      auto body = json_body(req);
      if (!body) return send_error(res, body.error());
      // Anyone with the id may cancel a hold; a paid booking needs the organiser's token.
      const auto scope = t_request.caller.anonymous() ? CancelScope::held_only : CancelScope::any;
      reply(res, 200, service_.cancel(req.matches[1].str(), scope));
    });
  }

  // close, reopen, cancel: an empty or JSON body, an optional If-Match, the event as stored
  // (with its ETag) in the answer.
  template <class F>
  void change_status(const httplib::Request& req, httplib::Response& res, F change) {
    auto body = json_body(req);
    if (!body) return send_error(res, body.error());
    auto if_match = parse_if_match(req);
    if (!if_match) return send_error(res, if_match.error());
    t_request.cancelled.reset();
    auto event = change(req.matches[1].str(), if_match.value());
    if (!event) return send_error(res, event.error());
    res.set_header("ETag", "\"" + std::to_string(event.value().version) + "\"");
    json::object data = to_json(event.value());
    if (t_request.cancelled) data["bookingsCancelled"] = *t_request.cancelled;
    send_data(res, 200, std::move(data));
  }

  template <class T>
  void reply(httplib::Response& res, int status, const result<T>& r) {
    if (!r) return send_error(res, r.error());
    send_data(res, status, to_json(r.value()));
  }

  // Streams the CSV from storage as it is read, in chunks of about 64 KiB: a large event's
  // bookings never sit in memory. The export runs on this worker thread while the client
  // reads; a client that goes away stops it.
  void export_csv(const httplib::Request& req, httplib::Response& res) {
    const std::string key = req.matches[1].str();
    if (auto event = service_.get_event(key); !event) return send_error(res, event.error());
    res.set_header("Content-Disposition", "attachment; filename=\"" + key + "-bookings.csv\"");
    res.set_header("Cache-Control", "no-store");
    res.set_chunked_content_provider(
        "text/csv; charset=utf-8", [this, key](std::size_t, httplib::DataSink& sink) {
          std::string buffer(csv_header());
          bool open = true;
          auto exported = service_.export_bookings(key, [&](const Booking& b) {
            append_csv_rows(buffer, b);
            if (buffer.size() < (1 << 16)) return true;
            open = sink.write(buffer.data(), buffer.size());
            buffer.clear();
            return open;
          });
          if (!exported) {
            // The status is sent already: end the body short, and say why in the log.
            spdlog::error("requestId={} export of '{}' failed: {}", t_request.id, key,
                          log_safe(exported.error().message));
            return false;
          }
          if (open && !buffer.empty()) open = sink.write(buffer.data(), buffer.size());
          if (open) sink.done();
          return open;
        });
  }

  void create_event(const httplib::Request& req, httplib::Response& res) {
    auto body = json_body(req);
    if (!body) return send_error(res, body.error());
    auto event = event_from_json(body.value());
    if (!event) return send_error(res, event.error());
    reply(res, 201, service_.create_event(event.value()));
  }

  void list_bookings(const httplib::Request& req, httplib::Response& res) {
    BookingListRequest q;
    auto text = [&](const char* name) -> std::optional<std::string> {
      if (!req.has_param(name)) return std::nullopt;
      return req.get_param_value(name);
    };
    q.event_key = text("event");
    q.status = text("status");
    q.user_id = text("userId");
    q.cursor = text("cursor");
    auto limit = query_int(req, "limit", 20);
    if (!limit) return send_error(res, limit.error());
    q.limit = limit.value();
    auto page = service_.list_bookings(q);
    if (!page) return send_error(res, page.error());
    json::array out;
    for (const Booking& b : page.value().bookings) out.push_back(to_json(b));
    json::object body{{"data", std::move(out)}};
    if (page.value().next) body["next"] = *page.value().next;
    send_json(res, 200, body);
  }

  void search(const httplib::Request& req, httplib::Response& res) {
    SearchQuery q;
    q.name = req.get_param_value("name");
    auto limit = query_int(req, "limit", 20);
    auto offset = query_int(req, "offset", 0);
    if (!limit) return send_error(res, limit.error());
    if (!offset) return send_error(res, offset.error());
    q.limit = limit.value();
    q.offset = offset.value();
    // Validated as asked (limit 1-1000), then served in pages of at most 100 events and 1 MiB:
    // `next` continues where this page stopped.
    if (q.limit >= 1) q.limit = std::min(q.limit, kMaxSearchPage);
    auto page = service_.search_page(q);
    if (!page) return send_error(res, page.error());
    json::array out;
    std::size_t bytes = 0;
    bool more = page.value().more;
    for (const Event& e : page.value().events) {
      json::value v = to_json(e);
      const std::size_t size = json::serialize(v).size() + 1;
      if (!out.empty() && bytes + size > kMaxSearchBytes - 1024) {
        more = true;
        break;
      }
      bytes += size;
      out.push_back(std::move(v));
    }
    const auto served = static_cast<std::int64_t>(out.size());
    json::object body{{"data", std::move(out)}};
    if (more) {  // the next page, as a path and query to GET
      body["next"] = "/v1/api/events?name=" + httplib::detail::encode_query_param(q.name) +
                     "&limit=" + std::to_string(q.limit) +
                     "&offset=" + std::to_string(q.offset + served);
    }
    send_json(res, 200, body);
  }

  void hold(const httplib::Request& req, httplib::Response& res) {
    const auto start = std::chrono::steady_clock::now();
    const Caller& caller = t_request.caller;
    auto request = [&]() -> result<HoldRequest> {
      if (caller.anonymous() && options_.hold_rate > 0) {
        if (auto wait = hold_limiter_.take(caller.address)) {
          const auto secs = std::max<std::int64_t>(1, (wait->count() + 999) / 1000);
          return make_error(errc::rate_limited, "too many holds from this address; try again",
                            {{"retryAfter", secs}});
        }
      }
      BOOKING_TRY(auto body, json_body(req));
      if (body.is_null())
        return make_error(errc::invalid_json, "a booking request body is required");
      BOOKING_TRY(auto request, hold_request_from_json(body));
      if (request.user_id && !caller.has(Role::sales)) {
        // Otherwise a per-user limit could be bypassed by inventing user ids.
        return make_error(errc::forbidden,
                          "userId is honoured only from a sales or admin token; without one, "
                          "leave it out (the client address stands for the buyer)");
      }
      if (caller.anonymous() || (caller.open && !request.user_id)) {
        // The address stands for the buyer of a tier's maxPerUser when no userId says who it
        // is, in open mode too (so its storefront sells such tiers). Only an anonymous caller's
        // held tickets are limited (max_held_by_client); a hold with a client costs an index
        // entry, so open mode's holds with a userId (a load test's) have none.
        request.client = "client:" + caller.address;
      }
      if (caller.anonymous()) {
        if (options_.max_held_per_client > 0) {
          request.max_held_by_client = options_.max_held_per_client;
        }
      }
      if (req.has_header("Idempotency-Key")) {
        request.idempotency_key = req.get_header_value("Idempotency-Key");
        request.idempotency_scope = caller.scope();
      }
      return request;
    }();
    if (!request) return answer_hold(res, request.error(), start);
    // The thread that commits the hold writes its answer (and logs it), so this one need not
    // sleep until then and be woken: it goes back to waiting for the client's next request.
    // Whatever can throw comes before defer(): once deferred, the connection waits for `done`.
    // The answer to a hold accepted as planned is rendered here, before the hold is queued
    // (`planned`): the committing thread is the one every hold waits for, so it only writes it.
    struct Prepared {
      Booking booking;
      std::string bytes;
    };
    auto writer = std::make_shared<std::shared_ptr<DeferredResponse>>();  // set below
    auto prepared = std::make_shared<Prepared>();
    BookingService::HoldPlanned planned = [writer, prepared](const Booking& booking) {
      httplib::Response res;
      send_data(res, 201, hold_result_json(booking));
      prepared->bytes = (*writer)->render(std::move(res));
      prepared->booking = booking;
    };
    BookingService::HoldDone done = [this, start, writer, prepared, context = t_request,
                                     method = req.method, path = req.path,
                                     remote = req.remote_addr](result<Booking> answer) mutable {
      std::string out;
      try {
        // On the committing thread, as the request's own (send_error and the log read it).
        struct Scope {
          RequestContext mine;
          explicit Scope(RequestContext request)
              : mine(std::exchange(t_request, std::move(request))) {}
          ~Scope() { t_request = std::move(mine); }
        } scope(std::move(context));
        int status = 201;
        if (answer && !prepared->bytes.empty() && answer.value() == prepared->booking) {
          count_hold(answer, start);
          t_request.booking_id = answer.value().id;
          out = std::move(prepared->bytes);
        } else {
          httplib::Response res;
          answer_hold(res, answer, start);
          status = res.status;
          out = (*writer)->render(std::move(res));
        }
        log_request(method, path, remote, status);
      } catch (...) {  // bad_alloc: an answer still, or the connection would wait for it
        if (out.empty()) {
          httplib::Response failed;
          failed.status = 500;
          return (*writer)->send(std::move(failed));  // closes the connection if it cannot
        }
      }
      // Last: once it is sent, the connection may close and the server may be destroyed.
      (*writer)->send_bytes(std::move(out));
    };
    *writer = server_.defer(req);
    if (!*writer) return answer_hold(res, service_.hold(request.value()), start);
    t_request.deferred = true;
    service_.hold(request.value(), std::move(done), std::move(planned));
  }

  // The hold route's answer, counted.
  void answer_hold(httplib::Response& res, const result<Booking>& answer,
                   std::chrono::steady_clock::time_point start) {
    count_hold(answer, start);
    if (!answer) return send_error(res, answer.error());
    t_request.booking_id = answer.value().id;
    send_data(res, 201, hold_result_json(answer.value()));
  }

  void count_hold(const result<Booking>& answer, std::chrono::steady_clock::time_point start) {
    metrics_.count_hold(answer ? "ok" : to_string(answer.error().code),
                        std::chrono::steady_clock::now() - start);
  }

  // The access log line and the request count, for the request in t_request.
  void log_request(const std::string& method, const std::string& path, const std::string& remote,
                   int status) {
    const auto took = std::chrono::steady_clock::now() - t_request.start;
    metrics_.count_request(t_request.route.empty() ? "unmatched" : t_request.route, method, status);
    // Not even escaped when the line would be dropped (--log-level warn and above).
    if (!spdlog::should_log(spdlog::level::info)) return;
    // Everything from the request is escaped: a path cannot forge a line or a colour.
    spdlog::info("{} {} {} {:.2f}ms client={}{}{}{}{}", log_safe(method, 16), log_safe(path),
                 status, std::chrono::duration<double, std::milli>(took).count(),
                 log_safe(t_request.caller.address.empty() ? remote : t_request.caller.address, 64),
                 t_request.booking_id.empty() ? "" : " bookId=", log_safe(t_request.booking_id, 64),
                 status >= 500 ? " requestId=" : "", status >= 500 ? t_request.id : "");
  }

  void install_hooks() {
    server_.set_pre_routing_handler([](const httplib::Request& req, httplib::Response& res) {
      // Called once the headers are in and before the body is read.
      t_request =
          RequestContext{std::chrono::steady_clock::now(), next_request_id(), {}, {}, {}, {}};
      const auto lengths = req.get_header_value_count("Content-Length");
      bool conflicting = lengths > 0 && req.has_header("Transfer-Encoding");
      for (std::size_t i = 1; i < lengths; ++i) {
        conflicting |=
            req.get_header_value("Content-Length", i) != req.get_header_value("Content-Length", 0);
      }
      if (conflicting) {
        // Which length is meant is ambiguous (a request-smuggling pattern): refuse, and close
        // the connection, whose remaining bytes cannot be framed.
        res.set_header("Connection", "close");
        send_error(res, make_error(errc::bad_request,
                                   "conflicting Content-Length or Transfer-Encoding headers"));
        return httplib::Server::HandlerResponse::Handled;
      }
      if (lengths == 0 && !req.has_header("Transfer-Encoding") && req.method != "GET" &&
          req.method != "HEAD") {
        // httplib would read a body without a length until the client closes: a POST without
        // Content-Length is an empty body. (The request is ours until routing; not const.)
        const_cast<httplib::Request&>(req).headers.emplace("Content-Length", "0");
      }
      return httplib::Server::HandlerResponse::Unhandled;
    });
    server_.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request& req,
                                                                      httplib::Response& res) {
      if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
      if (res.status == 404) {
        // Compiled once: a flood of 404s must not compile regexes per request.
        static const std::vector<std::regex> patterns = [] {
          std::vector<std::regex> out;
          for (const auto& e : route_table()) out.emplace_back(e.regex);
          return out;
        }();
        std::string allow;
        for (std::size_t i = 0; i < patterns.size(); ++i) {
          if (std::regex_match(req.path, patterns[i])) {
            allow += (allow.empty() ? "" : ", ") + route_table()[i].route.method;
          }
        }
        if (!allow.empty()) {
          res.set_header("Allow", allow);
          send_error(res, make_error(errc::method_not_allowed, req.method + " is not allowed on " +
                                                                   req.path +
                                                                   " (allowed: " + allow + ")"));
          return httplib::Server::HandlerResponse::Handled;
        }
        send_error(res, make_error(errc::not_found, "no route for " + req.method + " " + req.path));
      } else if (res.status == 413) {
        send_error(res, make_error(errc::payload_too_large, "request is too large"));
      } else if (res.status == 414) {
        send_error(res, make_error(errc::uri_too_long, "request line is too long"));
      } else if (res.status < 500) {
        send_error(res, make_error(errc::bad_request, "malformed HTTP request"));
      } else {
        send_error(res, make_error(errc::internal, "request failed"));
      }
      return httplib::Server::HandlerResponse::Handled;
    }));
    server_.set_exception_handler(
        [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
          std::string what = "unknown";
          try {
            std::rethrow_exception(ep);
          } catch (const std::exception& e) {
            what = e.what();
          } catch (...) {
          }
          send_error(res, make_error(errc::internal, "handler threw: " + what));
        });
    server_.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
      if (t_request.deferred) return;  // logged by the thread that writes it
      log_request(req.method, req.path, req.remote_addr, res.status);
    });
  }

  BookingService& service_;
  HttpOptions options_;
  Metrics metrics_;
  AccessControl access_;
  RateLimiter hold_limiter_;
  std::atomic<bool> stopping_{false};
  FeedRoutes feed_;
  WebRoutes web_;
  GuardedServer server_;
};

const std::vector<Route>& routes() {
  static const std::vector<Route> out = [] {
    std::vector<Route> r;
    for (const auto& e : route_table()) r.push_back(e.route);
    return r;
  }();
  return out;
}

HttpServer::HttpServer(BookingService& service, HttpOptions options)
    : impl_(std::make_unique<Impl>(service, std::move(options))) {}
HttpServer::~HttpServer() = default;
void HttpServer::add_metrics(std::function<void(std::string&)> extra) {
  impl_->metrics().set_extra(std::move(extra));
}
result<int> HttpServer::bind() { return impl_->bind(); }
void HttpServer::run() { impl_->run(); }
void HttpServer::stop() { impl_->stop(); }
bool HttpServer::is_running() const { return impl_->is_running(); }
void HttpServer::count_expired(std::size_t n) { impl_->metrics().count_expired(n); }

}  // namespace booking::httpd
