#include <booking/time.hpp>

// GCC 12 at -O2 reports a maybe-uninitialized seconds value inside date::from_stream (a false
// positive in the library's parser, which assigns it before use on every path that reads it).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <date/date.h>

#include <charconv>
#include <cstdio>
#include <sstream>

namespace booking {

namespace {
class SystemClock final : public Clock {
 public:
  Instant now() const override {
    return std::chrono::time_point_cast<std::chrono::milliseconds>(
        std::chrono::system_clock::now());
  }
};

error bad_instant(std::string_view text, std::string_view why) {
  return make_error(errc::validation_failed, "invalid instant '" + std::string(text.substr(0, 64)) +
                                                 "': " + std::string(why) +
                                                 " (expected ISO 8601 with an offset, e.g. "
                                                 "2026-11-11T21:00:00+07:00)");
}
}  // namespace

const Clock& system_clock() {
  static const SystemClock clock;
  return clock;
}

namespace {
// YYYY-MM-DDTHH:MM:SS[.f{1,3}](Z|+HH:MM|-HH:MM|+HHMM|-HHMM), checked before date::parse: on
// some malformed seconds fields the library computes NaN and converts it to an integer
// (undefined behaviour, found by tests/fuzz/fuzz_specs).
bool iso8601_shape(std::string_view s) {
  auto digits = [&](std::size_t at, std::size_t n) {
    if (at + n > s.size()) return false;
    for (std::size_t i = at; i < at + n; ++i) {
      if (s[i] < '0' || s[i] > '9') return false;
    }
    return true;
  };
  auto is = [&](std::size_t at, char c) { return at < s.size() && s[at] == c; };
  if (!(digits(0, 4) && is(4, '-') && digits(5, 2) && is(7, '-') && digits(8, 2) &&
        (is(10, 'T') || is(10, 't')) && digits(11, 2) && is(13, ':') && digits(14, 2) &&
        is(16, ':') && digits(17, 2))) {
    return false;
  }
  std::size_t i = 19;
  if (is(i, '.')) {
    std::size_t n = 0;
    while (digits(i + 1 + n, 1)) ++n;
    if (n < 1 || n > 3) return false;
    i += 1 + n;
  }
  std::string_view zone = s.substr(std::min(i, s.size()));
  if (zone == "Z" || zone == "z") return true;
  if (zone.size() != 6 && zone.size() != 5) return false;
  if (zone[0] != '+' && zone[0] != '-') return false;
  return zone.size() == 6 ? digits(i + 1, 2) && is(i + 3, ':') && digits(i + 4, 2)
                          : digits(i + 1, 4);
}
}  // namespace

result<Instant> parse_instant(std::string_view text) {
  BOOKING_TRY(auto zoned, parse_zoned_instant(text));
  return zoned.at;
}

result<ZonedInstant> parse_zoned_instant(std::string_view text) {
  if (text.size() < 20 || text.size() > 40) return bad_instant(text, "wrong length");
  if (!iso8601_shape(text)) return bad_instant(text, "not YYYY-MM-DDTHH:MM:SS[.mmm]+HH:MM");
  std::string s(text);
  if (s.back() == 'Z' || s.back() == 'z') {
    s.back() = '+';
    s += "00:00";
  }
  // date::parse's %Ez accepts "+07:00"; %z accepts "+0700".
  for (const char* format : {"%FT%T%Ez", "%FT%T%z"}) {
    std::istringstream in(s);
    Instant t{};
    std::chrono::minutes offset{0};
    in >> date::parse(format, t, offset);
    if (!in.fail() && in.peek() == std::char_traits<char>::eof()) {
      auto y = date::year_month_day(date::floor<date::days>(t)).year();
      if (y < date::year(1970) || y > date::year(9999)) {
        return bad_instant(text, "year outside 1970..9999");
      }
      if (offset < std::chrono::hours(-18) || offset > std::chrono::hours(18)) {
        return bad_instant(text, "offset beyond +/-18:00");
      }
      return ZonedInstant{t, static_cast<std::int32_t>(offset.count())};
    }
  }
  return bad_instant(text, "not a date-time with offset");
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

namespace {
// `t` as local time at `offset_minutes` without the offset ("2026-11-11T21:00:00.000").
// date::format streams through an ostringstream, a locale and a dozen virtual calls per
// instant (the top cost of a CSV export, measured), and every answer prints instants: years
// 0-9999 are written digit by digit here, others by date::format.
std::string format_local(Instant t, std::int32_t offset_minutes) {
  const auto local = t + std::chrono::minutes(offset_minutes);
  const auto day = std::chrono::floor<date::days>(local);
  const date::year_month_day ymd{day};
  const int year = static_cast<int>(ymd.year());
  if (year < 0 || year > 9999) {
    return date::format("%FT%T",
                        date::local_time<std::chrono::milliseconds>(local.time_since_epoch()));
  }
  auto ms = static_cast<unsigned>((local - day).count());
  char buf[23];
  auto put = [&buf](std::size_t at, unsigned v, std::size_t width) {
    for (std::size_t i = width; i-- > 0; v /= 10) buf[at + i] = static_cast<char>('0' + v % 10);
  };
  put(0, static_cast<unsigned>(year), 4);
  buf[4] = '-';
  put(5, static_cast<unsigned>(ymd.month()), 2);
  buf[7] = '-';
  put(8, static_cast<unsigned>(ymd.day()), 2);
  buf[10] = 'T';
  put(11, ms / 3'600'000, 2);
  buf[13] = ':';
  put(14, ms / 60'000 % 60, 2);
  buf[16] = ':';
  put(17, ms / 1000 % 60, 2);
  buf[19] = '.';
  put(20, ms % 1000, 3);
  return std::string(buf, sizeof buf);
}
}  // namespace

std::string format_instant(Instant t) { return format_local(t, 0) + "+00:00"; }

std::string format_utc_offset(std::int32_t offset_minutes) {
  const std::int32_t a = offset_minutes < 0 ? -offset_minutes : offset_minutes;
  char buf[8];
  std::snprintf(buf, sizeof buf, "%c%02d:%02d", offset_minutes < 0 ? '-' : '+', (a / 60) % 100,
                a % 60);
  return buf;
}

std::string format_instant(Instant t, std::int32_t offset_minutes) {
  return format_local(t, offset_minutes) + format_utc_offset(offset_minutes);
}

result<std::chrono::milliseconds> parse_duration(std::string_view text) {
  auto bad = [&] {
    return make_error(errc::validation_failed, "invalid duration '" +
                                                   std::string(text.substr(0, 40)) +
                                                   "' (expected e.g. 10m, 2s, 500ms, 1h30m, 30d)");
  };
  if (text.empty() || text.size() > 32) return bad();
  std::int64_t total_ms = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    std::int64_t n = 0;
    auto [p, ec] = std::from_chars(text.data() + i, text.data() + text.size(), n);
    if (ec != std::errc{} || n < 0) return bad();
    i = static_cast<std::size_t>(p - text.data());
    std::string_view rest = text.substr(i);
    std::int64_t unit = 1000;  // a bare number is seconds
    if (rest.starts_with("ms")) {
      unit = 1, i += 2;
    } else if (rest.starts_with("d")) {
      unit = 86'400'000, i += 1;
    } else if (rest.starts_with("h")) {
      unit = 3'600'000, i += 1;
    } else if (rest.starts_with("m")) {
      unit = 60'000, i += 1;
    } else if (rest.starts_with("s")) {
      unit = 1000, i += 1;
    } else if (!rest.empty()) {
      return bad();
    }
    std::int64_t part = 0;
    if (__builtin_mul_overflow(n, unit, &part) ||
        __builtin_add_overflow(total_ms, part, &total_ms)) {
      return bad();
    }
  }
  if (total_ms <= 0) return bad();
  return std::chrono::milliseconds(total_ms);
}

}  // namespace booking
