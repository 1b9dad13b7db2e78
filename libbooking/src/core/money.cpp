#include <booking/money.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <limits>

namespace booking {

namespace {
// ISO 4217 codes with their minor-unit decimals. A table rather than a locale or ICU lookup:
// ICU is a heavy dependency for ~50 rows, and the decimals must never change under us.
constexpr std::array<Currency, 48> kCurrencies{{
    {"AED", 2}, {"ARS", 2}, {"AUD", 2}, {"BHD", 3}, {"BRL", 2}, {"CAD", 2}, {"CHF", 2},
    {"CLP", 0}, {"CNY", 2}, {"COP", 2}, {"CZK", 2}, {"DKK", 2}, {"EGP", 2}, {"EUR", 2},
    {"GBP", 2}, {"HKD", 2}, {"HUF", 2}, {"IDR", 2}, {"ILS", 2}, {"INR", 2}, {"ISK", 0},
    {"JOD", 3}, {"JPY", 0}, {"KES", 2}, {"KRW", 0}, {"KWD", 3}, {"MXN", 2}, {"MYR", 2},
    {"NGN", 2}, {"NOK", 2}, {"NZD", 2}, {"OMR", 3}, {"PHP", 2}, {"PKR", 2}, {"PLN", 2},
    {"QAR", 2}, {"RON", 2}, {"SAR", 2}, {"SEK", 2}, {"SGD", 2}, {"THB", 2}, {"TND", 3},
    {"TRY", 2}, {"TWD", 2}, {"UGX", 0}, {"USD", 2}, {"VND", 0}, {"ZAR", 2},
}};


error overflow_error() {
  return make_error(errc::validation_failed, "amount is too large");
}
}  // namespace

result<Currency> find_currency(std::string_view code) {
  auto it = std::find_if(kCurrencies.begin(), kCurrencies.end(),
                         [&](const Currency& c) { return c.code == code; });
  if (it == kCurrencies.end()) {
    return make_error(errc::validation_failed,
                      "unknown currency '" + std::string(code) + "' (expected ISO 4217, e.g. USD)");
  }
  return *it;
}

result<std::int64_t> checked_mul(std::int64_t a, std::int64_t b) {
  std::int64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r)) return overflow_error();
  return r;
}

result<std::int64_t> checked_add(std::int64_t a, std::int64_t b) {
  std::int64_t r = 0;
  if (__builtin_add_overflow(a, b, &r)) return overflow_error();
  return r;
}

result<std::int64_t> parse_major_units(std::string_view text, int decimals) {
  auto bad = [&](std::string why) {
    return make_error(errc::validation_failed, "invalid amount '" +
                                                   std::string(text.substr(0, 40)) + "': " + why);
  };
  if (text.empty()) return bad("empty");
  if (text.front() == '-') return bad("must not be negative");
  // mantissa digits (integer and fraction) and a decimal exponent
  std::string digits;
  std::size_t i = 0;
  std::size_t int_digits = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
    digits += text[i++];
    ++int_digits;
  }
  std::size_t frac_digits = 0;
  if (i < text.size() && text[i] == '.') {
    ++i;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
      digits += text[i++];
      ++frac_digits;
    }
    if (frac_digits == 0) return bad("digits expected after '.'");
  }
  if (int_digits == 0) return bad("digits expected");
  long exponent = 0;
  if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    if (i < text.size() && text[i] == '+') ++i;
    auto [p, ec] = std::from_chars(text.data() + i, text.data() + text.size(), exponent);
    if (ec != std::errc{} || p == text.data() + i) return bad("malformed exponent");
    i = static_cast<std::size_t>(p - text.data());
    if (exponent > 400 || exponent < -400) return bad("out of range");
  }
  if (i != text.size()) return bad("unexpected characters");

  // value = digits * 10^-(scale)
  long scale = static_cast<long>(frac_digits) - exponent;
  digits.erase(0, std::min(digits.find_first_not_of('0'), digits.size()));
  while (scale > 0 && !digits.empty() && digits.back() == '0') {
    digits.pop_back();
    --scale;
  }
  if (digits.empty()) return std::int64_t{0};
  if (scale > decimals) {
    return bad("more than " + std::to_string(decimals) + " decimal places");
  }
  std::int64_t value = 0;
  for (char c : digits) {
    BOOKING_TRY(auto v, checked_mul(value, 10));
    BOOKING_TRY(value, checked_add(v, c - '0'));
  }
  for (long k = scale; k < decimals; ++k) {
    BOOKING_TRY(value, checked_mul(value, 10));
  }
  return value;
}

std::string format_major_units(std::int64_t minor, int decimals, bool fixed) {
  bool negative = minor < 0;
  // Work in unsigned so that INT64_MIN has a magnitude.
  std::uint64_t magnitude = negative ? 0 - static_cast<std::uint64_t>(minor)
                                     : static_cast<std::uint64_t>(minor);
  std::string s = std::to_string(magnitude);
  if (decimals > 0) {
    if (s.size() <= static_cast<std::size_t>(decimals)) {
      s.insert(0, static_cast<std::size_t>(decimals) + 1 - s.size(), '0');
    }
    std::string frac = s.substr(s.size() - static_cast<std::size_t>(decimals));
    s.resize(s.size() - static_cast<std::size_t>(decimals));
    if (!fixed) {
      while (!frac.empty() && frac.back() == '0') frac.pop_back();
    }
    if (!frac.empty()) {
      s += '.';
      s += frac;
    }
  }
  if (negative) s.insert(s.begin(), '-');
  return s;
}

namespace {
// "1234567" -> "1,234,567". Built forwards: GCC 12 at -O3 misreports string::insert
// (-Wrestrict, PR105651).
std::string group_thousands(std::string_view digits) {
  std::string out;
  out.reserve(digits.size() + digits.size() / 3);
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}
}  // namespace

std::string format_integer(std::int64_t n) {
  std::string digits = std::to_string(n);
  if (n >= 0) return group_thousands(digits);
  std::string out = "-";
  out += group_thousands(std::string_view(digits).substr(1));
  return out;
}

std::string format_money(const Money& money) {
  int decimals = 2;
  if (auto c = find_currency(money.currency)) decimals = c.value().decimals;
  const std::string text = format_major_units(money.minor, decimals, true);
  std::string_view rest = text;
  std::string out;
  if (!rest.empty() && rest.front() == '-') {
    out += '-';
    rest.remove_prefix(1);
  }
  const auto point = std::min(rest.find('.'), rest.size());
  out += group_thousands(rest.substr(0, point));
  out += rest.substr(point);
  out += ' ';
  out += money.currency;
  return out;
}

}  // namespace booking
