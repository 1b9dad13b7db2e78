// Minimal embed: an in-memory repository, one event, a hold, a payment.
#include <booking/booking_service.hpp>

#include <iostream>

int main() {
  auto repo = booking::make_memory_repository();
  auto locks = booking::make_memory_lock_provider();
  booking::BookingService service(*repo, *locks, booking::system_clock());

  if (auto e = service.create_event(booking::demo_event(booking::system_clock().now())); !e) {
    std::cerr << e.error().message << "\n";
    return 1;
  }
  booking::HoldRequest request{"Con10124", {{"gold-Con10124", 2}}, "alice", std::nullopt};
  auto hold = service.hold(request);
  if (!hold) {
    std::cerr << booking::to_string(hold.error().code) << ": " << hold.error().message << "\n";
    return 1;
  }
  auto paid = service.confirm(hold.value().id, {"card", "pay-42"});
  std::cout << "booking " << hold.value().id << " is "
            << booking::to_string(paid.value().status) << ", total "
            << booking::format_major_units(paid.value().total.minor, 2) << " "
            << paid.value().total.currency << "\n";
  return paid ? 0 : 1;
}
