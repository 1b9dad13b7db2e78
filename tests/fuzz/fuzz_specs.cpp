// libFuzzer target: the parsers of --lock specs, durations, instants and money amounts.
// The first byte picks the parser; the rest is its input.
#include <booking/event.hpp>
#include <booking/lock_provider.hpp>
#include <booking/money.hpp>
#include <booking/time.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 5) {
    case 0:
      (void)booking::parse_redis_spec(text);
      break;
    case 1:
      (void)booking::parse_duration(text);
      break;
    case 2:
      if (auto t = booking::parse_instant(text)) (void)booking::format_instant(t.value());
      break;
    case 3:
      for (int decimals : {0, 2, 3}) {
        if (auto m = booking::parse_major_units(text, decimals)) {
          (void)booking::format_major_units(m.value(), decimals);
          (void)booking::format_money({m.value(), "USD"});
        }
      }
      break;
    default:
      (void)booking::is_valid_key(text);
      (void)booking::find_currency(text);
  }
  return 0;
}
