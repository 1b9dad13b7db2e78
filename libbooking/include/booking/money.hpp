// Money is never floating point: an integer count of a currency's minor unit.
#pragma once

#include <booking/error.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace booking {

// An ISO 4217 currency this library knows, with the number of decimals of its minor unit.
struct Currency {
  std::string_view code;  // "IDR"
  int decimals = 2;       // IDR, USD: 2; JPY: 0
};

// Looks up an ISO 4217 code (upper case). validation_failed when unknown.
result<Currency> find_currency(std::string_view code);

// An amount in minor units of `currency`.
struct Money {
  std::int64_t minor = 0;
  std::string currency;

  friend bool operator==(const Money&, const Money&) = default;
};

// Parses a decimal amount in major units ("12.5", "5000000", "1e3") into minor units of a
// currency with `decimals`. Negative amounts, more decimals than allowed, malformed text and
// values beyond int64 minor units are rejected with validation_failed.
result<std::int64_t> parse_major_units(std::string_view text, int decimals);

// Exact decimal text of a minor amount in major units: 500000000 (IDR) -> "5000000",
// 1250 (USD) -> "12.5". With `fixed`, always prints every decimal ("12.50").
std::string format_major_units(std::int64_t minor, int decimals, bool fixed = false);

// For people: every decimal of the currency and thousands separators, then the code:
// "5,000,000.00 IDR", "1,500 JPY".
std::string format_money(const Money& money);

// An integer with thousands separators: 1234567 -> "1,234,567".
std::string format_integer(std::int64_t n);

// Checked arithmetic on minor units; validation_failed on overflow.
result<std::int64_t> checked_mul(std::int64_t a, std::int64_t b);
result<std::int64_t> checked_add(std::int64_t a, std::int64_t b);

}  // namespace booking
