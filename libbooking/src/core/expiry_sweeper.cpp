#include <booking/expiry_sweeper.hpp>
#include <booking/feed.hpp>
#include <condition_variable>
#include <mutex>

namespace booking {

ExpirySweeper::ExpirySweeper(BookingService& service, SweeperOptions options)
    : service_(service),
      options_(std::move(options)),
      thread_([this](const std::stop_token& stop) { run(stop); }) {}

ExpirySweeper::~ExpirySweeper() { stop(); }

void ExpirySweeper::stop() {
  if (!thread_.joinable()) return;
  thread_.request_stop();
  thread_.join();
}

void ExpirySweeper::run(const std::stop_token& stop) {
  ActorScope actor("sweeper");  // the feed records the expiries as the sweeper's
  std::mutex mu;
  std::condition_variable_any wake;  // only the stop token wakes it early
  while (!stop.stop_requested()) {
    auto n = service_.expire_due();
    if (!n) {
      if (options_.on_error) options_.on_error(n.error());
    } else if (n.value() > 0 && options_.on_expired) {
      options_.on_expired(n.value());
    }
    std::unique_lock lock(mu);
    wake.wait_for(lock, stop, options_.interval, [] { return false; });
  }
}

}  // namespace booking
