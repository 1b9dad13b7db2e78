// Flash sale: 50 buyers (threads) race for 1,000 tickets of one tier on SQLite with the file lock,
// as several processes would. Prints who got what and proves nothing was oversold.
#include <booking/booking_service.hpp>

#include <atomic>
#include <filesystem>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <thread>

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  const fs::path dir = argc > 1 ? fs::path(argv[1]) : fs::temp_directory_path() / "flash-sale";
  fs::remove_all(dir);
  fs::create_directories(dir);
  auto repo = booking::make_sqlite_repository((dir / "sale.db").string());
  auto locks = booking::make_lock_provider("file:" + (dir / "locks").string());
  if (!repo || !locks) {
    std::cerr << (repo ? locks.error().message : repo.error().message) << "\n";
    return 1;
  }
  booking::BookingService service(*repo.value(), *locks.value(), booking::system_clock());

  booking::Event sale = booking::demo_event(booking::system_clock().now());
  sale.key = "Flash1";
  sale.name = "Flash sale";
  sale.tiers.resize(1);
  sale.tiers[0].key = "gold-Flash1";
  sale.tiers[0].capacity = 1000;
  sale.tiers[0].max_per_order = 6;
  if (auto e = service.create_event(sale); !e) {
    std::cerr << e.error().message << "\n";
    return 1;
  }

  std::mutex mu;
  std::map<std::string, std::int64_t> got;  // buyer -> tickets
  std::map<std::string, int> refusals;      // error code -> count
  std::vector<std::thread> buyers;
  for (int b = 0; b < 50; ++b) {
    buyers.emplace_back([&, b] {
      std::mt19937 rng(static_cast<unsigned>(b));
      const std::string buyer = "buyer" + std::to_string(b);
      for (bool sold_out = false; !sold_out;) {
        booking::HoldRequest r;
        r.event_key = "Flash1";
        r.lines = {{"gold-Flash1", 1 + static_cast<int>(rng() % 6)}};
        r.user_id = buyer;
        auto h = service.hold(r);
        std::lock_guard lock(mu);
        if (h) {
          got[buyer] += h.value().ticket_count();
        } else {
          ++refusals[std::string(booking::to_string(h.error().code))];
          sold_out = h.error().code == booking::errc::insufficient_stock && r.lines[0].qty == 1;
        }
      }
    });
  }
  for (auto& t : buyers) t.join();

  std::int64_t total = 0;
  for (const auto& [buyer, n] : got) {
    std::cout << buyer << " holds " << n << "\n";
    total += n;
  }
  for (const auto& [code, n] : refusals) std::cout << n << " requests refused: " << code << "\n";
  const booking::TierStock s = service.get_event("Flash1").value().tiers[0].stock;
  std::cout << "held " << total << " of 1000; stock: available " << s.available << ", held "
            << s.held << ", sold " << s.sold << "\n";
  const bool ok = total == s.held && s.capacity == s.available + s.held + s.sold &&
                  s.available >= 0 && total <= 1000;
  std::cout << (ok ? "no oversell" : "OVERSOLD") << "\n";
  return ok ? 0 : 1;
}
