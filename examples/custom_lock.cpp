// A LockProvider written by a user: it wraps another provider and logs how long each wait took.
// Any class implementing the four methods of booking::LockProvider plugs into the service.
#include <atomic>
#include <booking/booking_service.hpp>
#include <iostream>
#include <thread>

class LoggingLocks final : public booking::LockProvider {
 public:
  explicit LoggingLocks(std::unique_ptr<booking::LockProvider> inner) : inner_(std::move(inner)) {}

  booking::result<booking::LeaseInfo> acquire(
      std::span<const std::string> keys, std::chrono::milliseconds ttl,
      std::chrono::steady_clock::time_point deadline) override {
    auto start = std::chrono::steady_clock::now();
    auto lease = inner_->acquire(keys, ttl, deadline);
    auto waited = std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::steady_clock::now() - start);
    ++acquired_;
    if (waited > std::chrono::microseconds(200)) {
      std::cout << "waited " << waited.count() << " us for " << keys.front() << "\n";
    }
    return lease;
  }
  booking::result<booking::ReleaseOutcome> release(const booking::LeaseInfo& lease) override {
    return inner_->release(lease);
  }
  booking::result<void> extend(booking::LeaseInfo& lease, std::chrono::milliseconds ttl) override {
    return inner_->extend(lease, ttl);
  }
  std::string describe() const override { return "logging(" + inner_->describe() + ")"; }

  int acquired() const { return acquired_; }

 private:
  std::unique_ptr<booking::LockProvider> inner_;
  std::atomic<int> acquired_{0};
};

int main() {
  auto repo = booking::make_memory_repository();
  LoggingLocks locks(booking::make_memory_lock_provider());
  booking::BookingService service(*repo, locks, booking::system_clock());
  service.create_event(booking::demo_event(booking::system_clock().now())).value();

  std::vector<std::thread> buyers;
  for (int i = 0; i < 8; ++i) {
    buyers.emplace_back([&] {
      booking::HoldRequest one;
      one.event_key = "Con10124";
      one.lines = {{"sil-Con10124", 1}};
      for (int k = 0; k < 10; ++k) (void)service.hold(one);
    });
  }
  for (auto& t : buyers) t.join();
  const auto stock = service.get_event("Con10124").value().tiers[1].stock;
  // Holds that wait for the same tiers in one process share a lease (they are submitted in
  // rounds), so there are at most as many leases as holds, and usually fewer.
  std::cout << locks.describe() << ": " << stock.held << " tickets held under " << locks.acquired()
            << " leases\n";
  return stock.held == 80 && locks.acquired() >= 1 && locks.acquired() <= 80 ? 0 : 1;
}
