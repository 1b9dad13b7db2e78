// The JSON shapes of the HTTP API, shared by bookingd and the booking CLI so both print the
// same objects. Field names are camelCase; money is in major units; instants are ISO 8601.
#pragma once

#include <booking/booking.hpp>
#include <booking/booking_service.hpp>
#include <booking/error.hpp>
#include <booking/event.hpp>
#include <booking/event_repository.hpp>
#include <boost/json/value.hpp>
#include <string>
#include <string_view>

namespace booking {

// Parses a JSON text: invalid_json for malformed text, nesting over 64 levels, invalid UTF-8
// or an object with the same key twice.
result<boost::json::value> parse_json(std::string_view text);

// An event as the API returns it: per tier (eventGroups[]) qty = available now, plus
// capacity, held and sold.
boost::json::object to_json(const Event& event);
// A new event from the API's body (the GET shape without id; a tier's qty is its capacity).
// validation_failed naming every bad field; the result is also checked by
// validate_new_event.
result<Event> event_from_json(const boost::json::value& json);

// A change to an event (an RFC 7396 merge patch of the GET shape; tiers are patched by key
// and a tier's total is `capacity`): validation_failed naming every malformed field. What the
// patch does to the event is judged by apply_patch.
result<EventPatch> event_patch_from_json(const boost::json::value& json);

// A booking with its lines and status.
boost::json::object to_json(const Booking& booking);
// {eventKey, tiers: [{key, capacity, available, held, sold, cancelled, expired, revenue,
// currency}], totals: [{currency, sold, revenue}]}; revenue in major units like prices.
boost::json::object to_json(const EventReport& report);
// The answer to a hold: {bookId, price, currency, status, expiresAt}.
boost::json::object hold_result_json(const Booking& booking);
// {"key": EVENT, "groupKeys": [{"key": TIER, "qty": N}], "userId": U}.
result<HoldRequest> hold_request_from_json(const boost::json::value& json);
// {"paymentMethod": M, "reference": R}; both optional.
result<Payment> payment_from_json(const boost::json::value& json);

// {"error": {"code", "message", "details"}}.
boost::json::object error_json(const error& e);

// JSON text for the API and the CLI. Like boost::json::serialize, except that decimal numbers
// are printed as people write them (12.5; Boost.JSON 1.81 prints 1.25E1).
std::string to_text(const boost::json::value& v);

// A price in major units as a JSON number (5000000, 12.5).
boost::json::value money_json(std::int64_t minor, std::string_view currency);

}  // namespace booking
