// Seeds a database with one event and N HELD bookings through the library's own write path
// (BookingService holds from several threads, group-committed), for the benchmarks of running a
// sale: the export and booking lists of a large event. The holds last 30 days, so a bookingd
// started on the database afterwards does not expire them during the run.
//
//   seed_bookings --db PATH|URL --event KEY --bookings N [--threads 8]
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <booking/booking_service.hpp>
#include <booking/event_repository.hpp>
#include <booking/lock_provider.hpp>
#include <chrono>
#include <iostream>
#include <thread>

using namespace booking;

int main(int argc, char** argv) {
  std::string db;
  std::string key = "Sale";
  long bookings = 1'000'000;
  int threads = 8;
  CLI::App app{"seed_bookings: one event with N held bookings, through BookingService"};
  app.add_option("--db", db, "SQLite path or PostgreSQL URL")->required();
  app.add_option("--event", key, "event key");
  app.add_option("--bookings", bookings, "held bookings to make");
  app.add_option("--threads", threads, "holding threads");
  CLI11_PARSE(app, argc, argv);

  auto repo = open_repository(db);
  if (!repo) {
    std::cerr << repo.error().message << "\n";
    return 1;
  }
  auto locks = make_memory_lock_provider();
  ServiceOptions options;
  options.hold_ttl = std::chrono::hours(24 * 30);
  BookingService service(*repo.value(), *locks, system_clock(), options);
  Event e = demo_event(system_clock().now());
  e.key = key;
  e.name = "Seeded " + key;
  e.tiers.resize(2);
  for (std::size_t i = 0; i < e.tiers.size(); ++i) {
    e.tiers[i].key = fmt::format("t{}-{}", i, key);
    e.tiers[i].capacity = bookings;
    e.tiers[i].max_per_order.reset();
    e.tiers[i].max_per_user.reset();
  }
  if (auto created = service.create_event(e); !created) {
    std::cerr << created.error().message << "\n";
    return 1;
  }
  const auto start = std::chrono::steady_clock::now();
  std::atomic<long> next{0};
  std::atomic<long> failed{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&] {
      for (long i = next++; i < bookings; i = next++) {
        HoldRequest r;
        r.event_key = key;
        r.lines = {{e.tiers[static_cast<std::size_t>(i % 2)].key, 1 + i % 3}};
        r.user_id = fmt::format("user{}", i % 5000);
        if (!service.hold(r)) ++failed;
      }
    });
  }
  for (auto& w : workers) w.join();
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << fmt::format(R"({{"bookings": {}, "failed": {}, "seconds": {:.1f}}})", bookings,
                           failed.load(), secs)
            << std::endl;
  return failed == 0 ? 0 : 1;
}
