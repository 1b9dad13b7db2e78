// The OpenAPI 3 document of bookingd. A test checks that its paths and methods are exactly the
// routes the server serves.
#include <booking/version.hpp>
#include <boost/json.hpp>
#include <cctype>

#include "http_server.hpp"

namespace booking::httpd {

namespace {
const char* const kDocument = R"json({
  "openapi": "3.0.3",
  "info": {"title": "bookingd", "version": ")json" BOOKING_VERSION R"json(",
           "description": "Sells limited tickets to events without overselling. Success bodies are {\"data\": ...}; failures are {\"error\": {\"code\", \"message\", \"details\"}}."},
  "paths": {
    "/healthz": {"get": {"summary": "Liveness", "responses": {"200": {"description": "alive"}}}},
    "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "text exposition format", "content": {"text/plain": {}}}}}},
    "/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3 document"}}}},
    "/v1/api/events": {
      "post": {"summary": "Create an event",
               "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/EventInput"}}}},
               "responses": {"201": {"description": "created", "content": {"application/json": {"schema": {"type": "object", "properties": {"data": {"$ref": "#/components/schemas/Event"}}}}}},
                             "400": {"$ref": "#/components/responses/Error"}, "409": {"$ref": "#/components/responses/Error"},
                             "413": {"$ref": "#/components/responses/Error"}, "415": {"$ref": "#/components/responses/Error"},
                             "422": {"$ref": "#/components/responses/Error"}}},
      "get": {"summary": "Search events by name (case-insensitive substring)",
              "parameters": [{"name": "name", "in": "query", "schema": {"type": "string"}},
                             {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 20}, "description": "a page carries at most 100 events and 1 MiB; `next` continues it"},
                             {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0, "default": 0}}],
              "responses": {"200": {"description": "matching events", "content": {"application/json": {"schema": {"type": "object", "properties": {"data": {"type": "array", "items": {"$ref": "#/components/schemas/Event"}}}}}}},
                            "422": {"$ref": "#/components/responses/Error"}}}},
    "/v1/api/events/{key}": {
      "get": {"summary": "One event with stock per event group",
              "parameters": [{"name": "key", "in": "path", "required": true, "schema": {"type": "string"}}],
              "responses": {"200": {"description": "the event", "content": {"application/json": {"schema": {"type": "object", "properties": {"data": {"$ref": "#/components/schemas/Event"}}}}}},
                            "404": {"$ref": "#/components/responses/Error"}}},
      "patch": {"summary": "Change an event: an RFC 7396 merge patch of its fields; eventGroups are patched by key (a new key adds a tier; a tier's total is `capacity`, and available moves by the difference); eventSchedules, when present, replaces the waves. Prices apply to new holds only.",
                "parameters": [{"$ref": "#/components/parameters/EventKey"}, {"$ref": "#/components/parameters/IfMatch"}],
                "requestBody": {"required": true, "content": {"application/merge-patch+json": {"schema": {"$ref": "#/components/schemas/EventPatch"}}, "application/json": {"schema": {"$ref": "#/components/schemas/EventPatch"}}}},
                "responses": {"200": {"$ref": "#/components/responses/EventChanged"},
                              "400": {"$ref": "#/components/responses/Error"}, "404": {"$ref": "#/components/responses/Error"},
                              "409": {"$ref": "#/components/responses/Error"}, "412": {"$ref": "#/components/responses/Error"},
                              "415": {"$ref": "#/components/responses/Error"}, "422": {"$ref": "#/components/responses/Error"}}}},
    "/v1/api/events/{key}/close": {
      "post": {"summary": "Stop the sale: no new holds (409 sale_closed); bookings can still be confirmed and cancelled",
               "parameters": [{"$ref": "#/components/parameters/EventKey"}, {"$ref": "#/components/parameters/IfMatch"}],
               "responses": {"200": {"$ref": "#/components/responses/EventChanged"},
                             "404": {"$ref": "#/components/responses/Error"}, "409": {"$ref": "#/components/responses/Error"},
                             "412": {"$ref": "#/components/responses/Error"}}}},
    "/v1/api/events/{key}/reopen": {
      "post": {"summary": "Reopen a closed sale (a cancelled event cannot be reopened: 409 invalid_state)",
               "parameters": [{"$ref": "#/components/parameters/EventKey"}, {"$ref": "#/components/parameters/IfMatch"}],
               "responses": {"200": {"$ref": "#/components/responses/EventChanged"},
                             "404": {"$ref": "#/components/responses/Error"}, "409": {"$ref": "#/components/responses/Error"},
                             "412": {"$ref": "#/components/responses/Error"}}}},
    "/v1/api/events/{key}/cancel": {
      "post": {"summary": "Cancel the event for good: its status at once, then every HELD and CONFIRMED booking in batches; data.bookingsCancelled says how many",
               "parameters": [{"$ref": "#/components/parameters/EventKey"}, {"$ref": "#/components/parameters/IfMatch"}],
               "responses": {"200": {"$ref": "#/components/responses/EventChanged"},
                             "404": {"$ref": "#/components/responses/Error"}, "412": {"$ref": "#/components/responses/Error"}}}},
    "/v1/api/events/{key}/availability": {
      "get": {"summary": "An event's stock per tier, status and version: what a storefront polls. Answered from a cache at most 250 ms old, with an ETag that changes with the stock; If-None-Match gets 304 while it is unchanged.",
              "parameters": [{"$ref": "#/components/parameters/EventKey"}, {"name": "If-None-Match", "in": "header", "schema": {"type": "string"}}],
              "responses": {"200": {"description": "stock per tier", "headers": {"ETag": {"schema": {"type": "string"}}},
                                    "content": {"application/json": {"schema": {"type": "object", "properties": {"data": {"type": "object", "properties": {
                                      "key": {"type": "string"}, "status": {"type": "string", "enum": ["on_sale", "closed", "cancelled"]}, "version": {"type": "integer"},
                                      "eventGroups": {"type": "array", "items": {"type": "object", "properties": {"key": {"type": "string"}, "qty": {"type": "integer"}, "capacity": {"type": "integer"}, "held": {"type": "integer"}, "sold": {"type": "integer"}}}}}}}}}}},
                            "304": {"description": "unchanged since the ETag given"},
                            "404": {"$ref": "#/components/responses/Error"}}}},
    "/v1/api/storefront": {
      "get": {"summary": "The storefront's settings: where its pay button goes (--checkout-url, {bookId} filled in by the page), and whether this caller gets a demo payment (bookingd --demo, a caller that may confirm)",
              "responses": {"200": {"description": "settings", "content": {"application/json": {"schema": {"type": "object", "properties": {"data": {"type": "object", "properties": {"checkoutUrl": {"type": "string", "nullable": true}, "demoPayment": {"type": "boolean"}, "serverTime": {"type": "string", "format": "date-time"}}}}}}}}}}},
    "/v1/api/events/{key}/report": {
      "get": {"summary": "Per tier: capacity, available, held, sold, cancelled and expired tickets, confirmed revenue; totals per currency",
              "parameters": [{"$ref": "#/components/parameters/EventKey"}],
              "responses": {"200": {"description": "the report", "content": {"application/json": {"schema": {"type": "object", "properties": {"data": {"$ref": "#/components/schemas/Report"}}}}}},
                            "404": {"$ref": "#/components/responses/Error"}}}},
    "/v1/api/events/{key}/bookings.csv": {
      "get": {"summary": "Export the event's bookings as CSV, one row per booking line (bookId, status, userId, tier, qty, unitPrice, currency, createdAt, expiresAt, paymentMethod, paymentReference), oldest first, streamed from storage; RFC 4180 quoting, and a text cell starting with =, +, -, @, a tab or a CR gets a leading '",
              "parameters": [{"$ref": "#/components/parameters/EventKey"}],
              "responses": {"200": {"description": "the CSV, with a header row", "content": {"text/csv": {}}},
                            "404": {"$ref": "#/components/responses/Error"}}}},
    "/v1/api/changes": {
      "get": {"summary": "The change feed: changes numbered after `after`, oldest first; with wait=S, a long poll that answers as soon as one exists (or empty after S seconds). `last` is where to resume.",
              "parameters": [{"name": "after", "in": "query", "schema": {"oneOf": [{"type": "integer", "minimum": 0, "default": 0}, {"type": "string", "enum": ["latest"]}]}, "description": "the seq to read after, or latest: only changes made from now on"},
                             {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}},
                             {"name": "wait", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": 60, "default": 0}, "description": "seconds to wait for a change; counts against --max-streams"}],
              "responses": {"200": {"description": "a page", "content": {"application/json": {"schema": {"type": "object", "properties": {"data": {"type": "array", "items": {"$ref": "#/components/schemas/Change"}}, "last": {"type": "integer"}}}}}},
                            "410": {"$ref": "#/components/responses/Error"}, "422": {"$ref": "#/components/responses/Error"},
                            "503": {"$ref": "#/components/responses/Unavailable"}}}},
    "/v1/api/changes/stream": {
      "get": {"summary": "The change feed as server-sent events: `id:` is the seq, `event:` the type, `data:` the change; a comment every 15 s keeps an idle stream open. `Last-Event-ID` (sent by a reconnecting EventSource) resumes after it.",
              "parameters": [{"name": "after", "in": "query", "schema": {"oneOf": [{"type": "integer", "minimum": 0, "default": 0}, {"type": "string", "enum": ["latest"]}]}, "description": "the seq to read after, or latest: only changes made from now on"},
                             {"name": "Last-Event-ID", "in": "header", "schema": {"type": "integer"}}],
              "responses": {"200": {"description": "the stream", "content": {"text/event-stream": {}}},
                            "410": {"$ref": "#/components/responses/Error"}, "422": {"$ref": "#/components/responses/Error"},
                            "503": {"$ref": "#/components/responses/Unavailable"}}}},
    "/v1/api/books": {
      "get": {"summary": "Bookings, newest first, cursor-paginated",
              "parameters": [{"name": "event", "in": "query", "schema": {"type": "string"}},
                             {"name": "status", "in": "query", "schema": {"type": "string", "enum": ["HELD", "CONFIRMED", "CANCELLED", "EXPIRED"]}},
                             {"name": "userId", "in": "query", "schema": {"type": "string"}},
                             {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}},
                             {"name": "cursor", "in": "query", "schema": {"type": "string"}, "description": "the `next` of the previous page"}],
              "responses": {"200": {"description": "a page; `next` is absent on the last", "content": {"application/json": {"schema": {"type": "object", "properties": {"data": {"type": "array", "items": {"$ref": "#/components/schemas/Booking"}}, "next": {"type": "string"}}}}}},
                            "422": {"$ref": "#/components/responses/Error"}}},
      "post": {"summary": "Hold tickets",
               "parameters": [{"name": "Idempotency-Key", "in": "header", "schema": {"type": "string", "maxLength": 255}, "description": "A repeat with the same key and body returns the first result and books nothing new."}],
               "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/HoldRequest"}}}},
               "responses": {"201": {"description": "held", "content": {"application/json": {"schema": {"type": "object", "properties": {"data": {"$ref": "#/components/schemas/HoldResult"}}}}}},
                             "400": {"$ref": "#/components/responses/Error"}, "404": {"$ref": "#/components/responses/Error"},
                             "409": {"$ref": "#/components/responses/Error"}, "413": {"$ref": "#/components/responses/Error"},
                             "415": {"$ref": "#/components/responses/Error"}, "422": {"$ref": "#/components/responses/Error"},
                             "503": {"$ref": "#/components/responses/Unavailable"}}}},
    "/v1/api/books/{bookId}": {
      "get": {"summary": "One booking",
              "parameters": [{"$ref": "#/components/parameters/BookId"}],
              "responses": {"200": {"description": "the booking", "content": {"application/json": {"schema": {"type": "object", "properties": {"data": {"$ref": "#/components/schemas/Booking"}}}}}},
                            "404": {"$ref": "#/components/responses/Error"}}}},
    "/v1/api/books/{bookId}/confirm": {
      "post": {"summary": "Pay for a held booking",
               "parameters": [{"$ref": "#/components/parameters/BookId"}],
               "requestBody": {"required": false, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Payment"}}}},
               "responses": {"200": {"description": "confirmed", "content": {"application/json": {"schema": {"type": "object", "properties": {"data": {"$ref": "#/components/schemas/Booking"}}}}}},
                             "404": {"$ref": "#/components/responses/Error"}, "409": {"$ref": "#/components/responses/Error"},
                             "410": {"$ref": "#/components/responses/Error"}, "415": {"$ref": "#/components/responses/Error"},
                             "422": {"$ref": "#/components/responses/Error"}}}},
    "/v1/api/books/{bookId}/cancel": {
      "post": {"summary": "Cancel a held or confirmed booking; its tickets return to stock",
               "parameters": [{"$ref": "#/components/parameters/BookId"}],
               "responses": {"200": {"description": "cancelled", "content": {"application/json": {"schema": {"type": "object", "properties": {"data": {"$ref": "#/components/schemas/Booking"}}}}}},
                             "404": {"$ref": "#/components/responses/Error"}, "409": {"$ref": "#/components/responses/Error"},
                             "410": {"$ref": "#/components/responses/Error"}}}}
  },
  "components": {
    "parameters": {"BookId": {"name": "bookId", "in": "path", "required": true, "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"}},
                   "EventKey": {"name": "key", "in": "path", "required": true, "schema": {"type": "string"}},
                   "IfMatch": {"name": "If-Match", "in": "header", "schema": {"type": "string", "example": "\"3\""}, "description": "the ETag of GET /v1/api/events/{key}: the change is made only if the event is still at that version (412 precondition_failed otherwise)"}},
    "responses": {
      "Error": {"description": "an error envelope", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
      "Unavailable": {"description": "lock_timeout: retry after the Retry-After header", "headers": {"Retry-After": {"schema": {"type": "integer"}}}, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
      "EventChanged": {"description": "the event as stored now (status, version)", "headers": {"ETag": {"schema": {"type": "string"}}}, "content": {"application/json": {"schema": {"type": "object", "properties": {"data": {"$ref": "#/components/schemas/Event"}}}}}},
      "Unauthorized": {"description": "unauthorized: no token where one is needed, or an unknown or revoked one", "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}}, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
      "Forbidden": {"description": "forbidden: the token lacks the role", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
      "RateLimited": {"description": "rate_limited: too many holds from this address, or too many tickets held at once", "headers": {"Retry-After": {"schema": {"type": "integer"}}}, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    },
    "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "An API token made with `booking token create NAME --role admin|sales`. Without one, a caller is anonymous (or, on a loopback listen while no token exists, admin)."}},
    "schemas": {
      "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
        "code": {"type": "string", "enum": ["invalid_json", "not_found", "validation_failed", "duplicate_key", "insufficient_stock", "sale_not_open", "wave_limit_reached", "per_user_limit", "invalid_state", "hold_expired", "idempotency_conflict", "payload_too_large", "unsupported_media_type", "method_not_allowed", "bad_request", "uri_too_long", "lock_timeout", "internal", "unauthorized", "forbidden", "rate_limited", "sale_closed", "precondition_failed", "feed_expired"]},
        "message": {"type": "string"},
        "requestId": {"type": "string", "description": "on 5xx only: quote it to the operator, whose log has the cause under it"},
        "details": {"type": "object", "nullable": true, "description": "validation_failed: one entry per bad field; insufficient_stock: {available: {tierKey: n}}"}}}}},
      "Instant": {"type": "string", "format": "date-time", "example": "2026-11-11T14:00:00.000+00:00"},
      "Price": {"type": "number", "description": "major units of the currency; never more decimals than it allows", "example": 5000000},
      "PriceInput": {"description": "major units of the currency, as a JSON number or a decimal string (\"25.50\"); never more decimals than it allows, never negative", "oneOf": [{"type": "number", "minimum": 0, "example": 5000000}, {"type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?$", "example": "25.50"}]},
      "EventGroupInput": {"type": "object", "required": ["key", "category", "price", "currency", "qty", "startDate", "endDate"], "properties": {
        "key": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"}, "category": {"type": "string"},
        "price": {"$ref": "#/components/schemas/PriceInput"}, "currency": {"type": "string", "example": "IDR"},
        "qty": {"type": "integer", "minimum": 0, "description": "capacity"},
        "startDate": {"$ref": "#/components/schemas/Instant"}, "endDate": {"$ref": "#/components/schemas/Instant"},
        "maxPerOrder": {"type": "integer", "minimum": 1, "nullable": true}, "maxPerUser": {"type": "integer", "minimum": 1, "nullable": true}}},
      "EventGroup": {"allOf": [{"$ref": "#/components/schemas/EventGroupInput"}, {"type": "object", "properties": {
        "qty": {"type": "integer", "description": "tickets available now"}, "capacity": {"type": "integer"}, "held": {"type": "integer"}, "sold": {"type": "integer"}}}]},
      "Schedule": {"type": "object", "required": ["startDate", "endDate", "limit"], "properties": {
        "startDate": {"$ref": "#/components/schemas/Instant"}, "endDate": {"$ref": "#/components/schemas/Instant"},
        "limit": {"type": "integer", "minimum": 1}, "booked": {"type": "integer", "readOnly": true}}},
      "EventInput": {"type": "object", "required": ["key", "name", "type", "date", "eventGroups"], "properties": {
        "key": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"}, "name": {"type": "string", "minLength": 1, "maxLength": 200},
        "type": {"type": "string"}, "promoter": {"type": "string", "nullable": true}, "date": {"$ref": "#/components/schemas/Instant"},
        "location": {"type": "object", "properties": {"venue": {"type": "string"}, "address": {"type": "string"}}},
        "eventGroups": {"type": "array", "minItems": 1, "items": {"$ref": "#/components/schemas/EventGroupInput"}},
        "eventSchedules": {"type": "array", "items": {"$ref": "#/components/schemas/Schedule"}}}},
      "Event": {"allOf": [{"$ref": "#/components/schemas/EventInput"}, {"type": "object", "properties": {
        "id": {"type": "integer"}, "eventGroups": {"type": "array", "items": {"$ref": "#/components/schemas/EventGroup"}},
        "status": {"type": "string", "enum": ["on_sale", "closed", "cancelled"]},
        "version": {"type": "integer", "description": "+1 per change of the definition; also the ETag"},
        "bookingsCancelled": {"type": "integer", "description": "only in the answer to cancel"}}}]},
      "EventPatch": {"type": "object", "description": "RFC 7396: an absent field keeps its value; null removes promoter, location fields, maxPerOrder and maxPerUser", "properties": {
        "key": {"type": "string", "description": "if present, must be the event's own: keys never change"},
        "name": {"type": "string"}, "type": {"type": "string"}, "promoter": {"type": "string", "nullable": true},
        "date": {"$ref": "#/components/schemas/Instant"}, "utcOffset": {"type": "string", "example": "+07:00"},
        "location": {"type": "object", "nullable": true, "properties": {"venue": {"type": "string", "nullable": true}, "address": {"type": "string", "nullable": true}}},
        "eventGroups": {"type": "array", "maxItems": 100, "items": {"type": "object", "required": ["key"], "properties": {
          "key": {"type": "string", "description": "the tier to change; a key the event does not have adds a tier (then category, currency, price, capacity, startDate and endDate are required)"},
          "category": {"type": "string"}, "currency": {"type": "string"}, "price": {"$ref": "#/components/schemas/Price"},
          "capacity": {"type": "integer", "minimum": 0, "description": "total tickets; at least held + sold"},
          "startDate": {"$ref": "#/components/schemas/Instant"}, "endDate": {"$ref": "#/components/schemas/Instant"},
          "maxPerOrder": {"type": "integer", "minimum": 1, "nullable": true}, "maxPerUser": {"type": "integer", "minimum": 1, "nullable": true}}}},
        "eventSchedules": {"type": "array", "nullable": true, "description": "replaces the waves; a wave with an unchanged startDate keeps its booked count", "items": {"$ref": "#/components/schemas/Schedule"}}}},
      "Change": {"type": "object", "required": ["seq", "at", "type", "eventKey", "actor", "data"], "properties": {
        "seq": {"type": "integer", "description": "increases in commit order: after reading N, no change numbered below N appears later"},
        "at": {"$ref": "#/components/schemas/Instant"},
        "type": {"type": "string", "enum": ["event.created", "event.updated", "event.closed", "event.reopened", "event.cancelled", "booking.held", "booking.confirmed", "booking.cancelled", "booking.expired"]},
        "eventKey": {"type": "string"}, "bookId": {"type": "string"},
        "actor": {"type": "string", "description": "the token's name, anonymous, sweeper, cli or library"},
        "data": {"type": "object", "description": "the booking, or the event's definition (without live stock), right after the change"}}},
      "HoldRequest": {"type": "object", "required": ["key", "groupKeys"], "properties": {
        "key": {"type": "string", "description": "event key"}, "userId": {"type": "string"},
        "groupKeys": {"type": "array", "minItems": 1, "items": {"type": "object", "required": ["key", "qty"], "properties": {"key": {"type": "string"}, "qty": {"type": "integer", "minimum": 1}}}}}},
      "HoldResult": {"type": "object", "properties": {"bookId": {"type": "string"}, "price": {"$ref": "#/components/schemas/Price"},
        "currency": {"type": "string"}, "status": {"type": "string"}, "expiresAt": {"$ref": "#/components/schemas/Instant"}}},
      "Report": {"type": "object", "properties": {"eventKey": {"type": "string"},
        "tiers": {"type": "array", "items": {"type": "object", "properties": {"key": {"type": "string"}, "capacity": {"type": "integer"}, "available": {"type": "integer"}, "held": {"type": "integer"}, "sold": {"type": "integer"}, "cancelled": {"type": "integer"}, "expired": {"type": "integer"}, "revenue": {"$ref": "#/components/schemas/Price"}, "currency": {"type": "string"}}}},
        "totals": {"type": "array", "items": {"type": "object", "properties": {"currency": {"type": "string"}, "sold": {"type": "integer"}, "revenue": {"$ref": "#/components/schemas/Price"}}}}}},
      "Payment": {"type": "object", "properties": {"paymentMethod": {"type": "string", "default": "card"}, "reference": {"type": "string"}}},
      "Booking": {"type": "object", "properties": {
        "bookId": {"type": "string"}, "key": {"type": "string"}, "userId": {"type": "string", "nullable": true},
        "status": {"type": "string", "enum": ["HELD", "CONFIRMED", "CANCELLED", "EXPIRED"]},
        "price": {"$ref": "#/components/schemas/Price"}, "currency": {"type": "string"},
        "groupKeys": {"type": "array", "items": {"type": "object", "properties": {"key": {"type": "string"}, "qty": {"type": "integer"}, "price": {"$ref": "#/components/schemas/Price"}}}},
        "createdAt": {"$ref": "#/components/schemas/Instant"}, "expiresAt": {"$ref": "#/components/schemas/Instant"},
        "paymentMethod": {"type": "string", "nullable": true}, "reference": {"type": "string", "nullable": true}}}
    }
  }
})json";
}  // namespace

// The document above with each operation's security taken from the route table, so the
// permission table is written once.
const std::string& openapi_document() {
  static const std::string doc = [] {
    boost::json::value v = boost::json::parse(kDocument);
    auto& paths = v.at("paths").as_object();
    for (const Route& r : routes()) {
      std::string method = r.method;
      for (char& c : method) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      auto& op = paths.at(r.path).as_object().at(method).as_object();
      // (Inserting into `op` moves its values: each access below looks them up again.)
      op["responses"].as_object()["401"] = {{"$ref", "#/components/responses/Unauthorized"}};
      if (r.role.empty()) {
        // Anyone; a token is optional (and, when sent, must be valid).
        op["security"] = boost::json::array{boost::json::object{},
                                            boost::json::object{{"bearer", boost::json::array{}}}};
      } else {
        op["security"] = boost::json::array{boost::json::object{{"bearer", boost::json::array{}}}};
        op["x-role"] = r.role;
        op["responses"].as_object()["403"] = {{"$ref", "#/components/responses/Forbidden"}};
        std::string summary(op["summary"].as_string());
        op["summary"] = summary + " (" + r.role + " token)";
      }
    }
    auto& hold = paths.at("/v1/api/books").as_object().at("post").as_object();
    hold["description"] =
        "Anonymous callers may hold without userId (403 with one): their client address stands "
        "for the buyer, and is rate-limited and limited in tickets held at once (429). A sales "
        "or admin token may hold on behalf of a userId. Idempotency keys are scoped to the "
        "caller (token or client address) and expire after 24 h.";
    hold["responses"].as_object()["403"] = {{"$ref", "#/components/responses/Forbidden"}};
    hold["responses"].as_object()["429"] = {{"$ref", "#/components/responses/RateLimited"}};
    auto& cancel = paths.at("/v1/api/books/{bookId}/cancel").as_object().at("post").as_object();
    cancel["description"] =
        "Anyone with the booking id may cancel a HELD booking; a CONFIRMED one needs a sales or "
        "admin token (403 otherwise).";
    cancel["responses"].as_object()["403"] = {{"$ref", "#/components/responses/Forbidden"}};
    return boost::json::serialize(v);
  }();
  return doc;
}

}  // namespace booking::httpd
