// A helper process for cross-process tests.
//   booking_test_worker book DB LOCKSPEC EVENT TIER   books 1 ticket at a time until sold out;
//                                                    prints "booked N timeouts T"
//   booking_test_worker hold-lock LOCKSPEC KEY [MS]   takes the lock (waiting up to MS, default
//                                                    5000; exit 3 if not), prints "locked", sleeps
//   booking_test_worker count LOCKSPEC FILE N          N times under the lock: read the number in
//                                                    FILE, write it back plus one
#include <booking/booking_service.hpp>

#include <fstream>
#include <iostream>
#include <thread>

using namespace booking;

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if ((args.size() == 3 || args.size() == 4) && args[0] == "hold-lock") {
    auto locks = make_lock_provider(args[1]);
    if (!locks) return 2;
    const auto budget = std::chrono::milliseconds(args.size() == 4 ? std::stoi(args[3]) : 5000);
    auto lease = locks.value()->acquire(std::vector<std::string>{args[2]},
                                        std::chrono::hours(1),
                                        std::chrono::steady_clock::now() + budget);
    if (!lease) return 3;
    std::cout << "locked" << std::endl;
    std::this_thread::sleep_for(std::chrono::hours(1));
    return 0;
  }
  if (args.size() == 4 && args[0] == "count") {
    auto locks = make_lock_provider(args[1]);
    if (!locks) return 2;
    const int rounds = std::stoi(args[3]);
    for (int i = 0; i < rounds; ++i) {
      auto lease = acquire_guard(*locks.value(), std::vector<std::string>{"counter"},
                                 std::chrono::seconds(10),
                                 std::chrono::steady_clock::now() + std::chrono::seconds(10));
      if (!lease) return 3;
      long n = 0;
      std::ifstream(args[2]) >> n;
      std::ofstream(args[2], std::ios::trunc) << n + 1;
    }
    return 0;
  }
  if (args.size() == 5 && args[0] == "book") {
    auto repo = make_sqlite_repository(args[1]);
    auto locks = make_lock_provider(args[2]);
    if (!repo || !locks) {
      std::cerr << (repo ? locks.error().message : repo.error().message) << "\n";
      return 2;
    }
    BookingService service(*repo.value(), *locks.value(), system_clock());
    std::int64_t booked = 0;
    std::int64_t timeouts = 0;
    int sold_out = 0;
    while (sold_out < 3) {
      HoldRequest r;
      r.event_key = args[3];
      r.lines = {{args[4], 1}};
      auto h = service.hold(r);
      if (h) {
        booked += h.value().ticket_count();
      } else if (h.error().code == errc::insufficient_stock) {
        ++sold_out;
      } else if (h.error().code == errc::lock_timeout) {
        ++timeouts;
      } else {
        std::cerr << to_string(h.error().code) << ": " << h.error().message << "\n";
        return 4;
      }
    }
    std::cout << "booked " << booked << " timeouts " << timeouts << std::endl;
    return 0;
  }
  std::cerr << "usage: booking_test_worker book DB LOCK EVENT TIER | hold-lock LOCK KEY\n";
  return 2;
}
