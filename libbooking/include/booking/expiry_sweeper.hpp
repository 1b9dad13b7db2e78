// Expires due holds in the background.
//
// A hold past its deadline gives its stock back only when something expires it: the sweeper
// (BookingService::expire_due on a timer), or a confirm or cancel that touches it. A program
// that embeds BookingService and takes holds should run one ExpirySweeper per process (several
// processes or instances on one database may each run one: every due hold expires once).
#pragma once

#include <booking/booking_service.hpp>
#include <chrono>
#include <cstddef>
#include <functional>
#include <thread>

namespace booking {

struct SweeperOptions {
  std::chrono::milliseconds interval{500};  // between sweeps
  // Called from the sweeper's thread after a sweep that expired holds, with how many.
  std::function<void(std::size_t)> on_expired;
  // Called from the sweeper's thread when a sweep failed (storage unreachable, ...).
  std::function<void(const error&)> on_error;
};

// Runs service.expire_due() at once and then every `interval`, on a thread of its own, until
// destroyed or stop() is called. The service must outlive it. Thread-safe.
class ExpirySweeper {
 public:
  explicit ExpirySweeper(BookingService& service, SweeperOptions options = {});
  ~ExpirySweeper();
  ExpirySweeper(const ExpirySweeper&) = delete;
  ExpirySweeper& operator=(const ExpirySweeper&) = delete;

  // Stops the thread and waits for a sweep in progress to finish. Idempotent.
  void stop();

 private:
  void run(const std::stop_token& stop);

  BookingService& service_;
  SweeperOptions options_;
  std::jthread thread_;  // last: starts once everything it uses exists
};

}  // namespace booking
