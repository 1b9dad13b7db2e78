// Minimal embed (the README's example): in-memory storage, one event, a hold, a payment.
#include <booking/booking_service.hpp>
#include <iostream>

int main() {
  auto repo = booking::make_memory_repository();        // or make_sqlite_repository("x.db")
  auto locks = booking::make_memory_lock_provider();    // or make_lock_provider("file:/run/x")
  booking::BookingService service(*repo, *locks, booking::system_clock());
  service.create_event(booking::demo_event(booking::system_clock().now())).value();

  booking::HoldRequest request;
  request.event_key = "Con10124";
  request.lines = {{"gold-Con10124", 2}};
  request.user_id = "alice";
  auto hold = service.hold(request);                    // booking::result<Booking>
  if (!hold) {
    std::cerr << booking::to_string(hold.error().code) << ": " << hold.error().message << "\n";
    return booking::exit_code(hold.error().code);
  }
  auto paid = service.confirm(hold.value().id, {"card", "pay-42"});
  std::cout << booking::to_string(paid.value().status) << " "
            << booking::format_money(paid.value().total) << "\n";  // CONFIRMED 10,000,000.00 IDR
}
