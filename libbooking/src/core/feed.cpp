#include <array>
#include <booking/feed.hpp>
#include <booking/json_codec.hpp>
#include <utility>

namespace booking {

namespace {
constexpr std::array<std::pair<ChangeType, std::string_view>, 9> kTypes{{
    {ChangeType::event_created, "event.created"},
    {ChangeType::event_updated, "event.updated"},
    {ChangeType::event_closed, "event.closed"},
    {ChangeType::event_reopened, "event.reopened"},
    {ChangeType::event_cancelled, "event.cancelled"},
    {ChangeType::booking_held, "booking.held"},
    {ChangeType::booking_confirmed, "booking.confirmed"},
    {ChangeType::booking_cancelled, "booking.cancelled"},
    {ChangeType::booking_expired, "booking.expired"},
}};

thread_local std::string t_actor = "library";
}  // namespace

std::string_view to_string(ChangeType type) noexcept {
  for (const auto& [t, name] : kTypes) {
    if (t == type) return name;
  }
  return "booking.held";
}

std::optional<ChangeType> parse_change_type(std::string_view text) noexcept {
  for (const auto& [t, name] : kTypes) {
    if (name == text) return t;
  }
  return std::nullopt;
}

ChangeType booking_change(BookingStatus status) noexcept {
  switch (status) {
    case BookingStatus::held:
      return ChangeType::booking_held;
    case BookingStatus::confirmed:
      return ChangeType::booking_confirmed;
    case BookingStatus::cancelled:
      return ChangeType::booking_cancelled;
    case BookingStatus::expired:
      return ChangeType::booking_expired;
  }
  return ChangeType::booking_held;
}

boost::json::object to_json(const Change& c) {
  boost::json::object o;
  o["seq"] = c.seq;
  o["at"] = format_instant(c.at);
  o["type"] = to_string(c.type);
  o["eventKey"] = c.event_key;
  if (c.booking_id) o["bookId"] = *c.booking_id;
  o["actor"] = c.actor;
  o["data"] = c.data;
  return o;
}

boost::json::object booking_change_data(Booking booking, ChangeType type) {
  switch (type) {
    case ChangeType::booking_held:
      booking.status = BookingStatus::held;
      break;
    case ChangeType::booking_confirmed:
      booking.status = BookingStatus::confirmed;
      break;
    case ChangeType::booking_cancelled:
      booking.status = BookingStatus::cancelled;
      break;
    case ChangeType::booking_expired:
      booking.status = BookingStatus::expired;
      break;
    default:
      break;
  }
  if (booking.status == BookingStatus::held) {
    booking.payment_method.reset();
    booking.payment_reference.reset();
  }
  return to_json(booking);
}

boost::json::object definition_json(const Event& event) {
  boost::json::object o = to_json(event);
  for (auto& g : o["eventGroups"].as_array()) {
    auto& group = g.as_object();
    for (const char* live : {"qty", "held", "sold"}) group.erase(live);
  }
  for (auto& w : o["eventSchedules"].as_array()) w.as_object().erase("booked");
  return o;
}

ActorScope::ActorScope(std::string actor) : previous_(std::exchange(t_actor, std::move(actor))) {}
ActorScope::~ActorScope() { t_actor = std::move(previous_); }
const std::string& current_actor() noexcept { return t_actor; }

}  // namespace booking
