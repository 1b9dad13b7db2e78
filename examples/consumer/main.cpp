// Links the installed library through find_package(booking) and books one ticket.
#include <booking/booking_service.hpp>
#include <booking/version.hpp>

#include <iostream>

int main() {
  auto repo = booking::make_memory_repository();
  auto locks = booking::make_memory_lock_provider();
  booking::BookingService service(*repo, *locks, booking::system_clock());
  if (!service.create_event(booking::demo_event(booking::system_clock().now()))) return 1;
  auto hold = service.hold({"Con10124", {{"gold-Con10124", 1}}, "consumer", std::nullopt});
  if (!hold) return 1;
  std::cout << "libbooking " << booking::version << " linked: held "
            << hold.value().id << "\n";
  return 0;
}
