// Following the change feed from a program: a consumer thread reads every change in order,
// waiting for new ones, and remembers where it stopped (a real consumer stores that position
// with its own work, so that a restart resumes there; at least once).
#include <atomic>
#include <booking/booking_service.hpp>
#include <booking/feed.hpp>
#include <booking/json_codec.hpp>
#include <chrono>
#include <iostream>
#include <thread>

int main() {
  auto repo = booking::make_memory_repository();  // or an SQLite file shared with bookingd
  auto locks = booking::make_memory_lock_provider();
  booking::BookingService service(*repo, *locks, booking::system_clock());

  std::atomic<bool> stop{false};
  std::int64_t position = 0;  // the last seq handled
  int confirmed = 0;
  std::thread consumer([&] {
    while (!stop) {
      // Answers as soon as a change after `position` commits, or empty after 1 s.
      auto page = service.wait_changes(position, 100, std::chrono::seconds(1), &stop);
      if (!page) {
        std::cerr << page.error().message << "\n";  // feed_expired: re-read the state, resume
        return;
      }
      for (const booking::Change& change : page.value()) {
        if (change.type == booking::ChangeType::booking_confirmed) {
          ++confirmed;  // e.g. e-mail the tickets to change.data["userId"]
        }
        std::cout << change.seq << " " << booking::to_string(change.type) << " " << change.event_key
                  << "\n";
        position = change.seq;
      }
    }
  });

  service.create_event(booking::demo_event(booking::system_clock().now())).value();
  booking::HoldRequest request;
  request.event_key = "Con10124";
  request.lines = {{"gold-Con10124", 2}};
  auto hold = service.hold(request).value();
  service.confirm(hold.id, {"card", "pay-42"}).value();

  while (position < 3) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  stop = true;
  consumer.join();
  std::cout << "followed " << position << " changes, " << confirmed << " confirmed\n";
}
