// Instants and durations. Instants are UTC with millisecond precision.
#pragma once

#include <booking/error.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace booking {

using Instant = std::chrono::sys_time<std::chrono::milliseconds>;

// Parses ISO 8601 with an offset ("2026-11-11T21:00:00+07:00", "...T14:00:00.000Z").
// validation_failed when malformed or without an offset.
result<Instant> parse_instant(std::string_view text);

// An instant and the UTC offset it was written with, in minutes east of UTC (+07:00 is 420).
struct ZonedInstant {
  Instant at;
  std::int32_t offset_minutes = 0;
};

// parse_instant, keeping the offset ("Z" is +00:00).
result<ZonedInstant> parse_zoned_instant(std::string_view text);

// Prints UTC with milliseconds: "2026-11-11T14:00:00.000+00:00".
std::string format_instant(Instant t);
// Prints `t` as the local time at `offset_minutes`: "2026-11-11T21:00:00.000+07:00".
std::string format_instant(Instant t, std::int32_t offset_minutes);
// An offset as ISO 8601 writes it: 420 -> "+07:00", -150 -> "-02:30".
std::string format_utc_offset(std::int32_t offset_minutes);

// Parses a duration such as "10m", "2s", "500ms", "1h30m", "30d", "90" (seconds). Must be > 0.
result<std::chrono::milliseconds> parse_duration(std::string_view text);

// The source of "now" for the library; injected so that tests move time.
// Implementations must be thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual Instant now() const = 0;
};

// The wall clock (std::chrono::system_clock). Thread-safe; lives forever.
const Clock& system_clock();

// A clock that only moves when told to. Thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(Instant start) : now_(start.time_since_epoch().count()) {}
  Instant now() const override { return Instant(std::chrono::milliseconds(now_.load())); }
  void advance(std::chrono::milliseconds d) { now_ += d.count(); }
  void set(Instant t) { now_ = t.time_since_epoch().count(); }

 private:
  std::atomic<std::int64_t> now_;
};

}  // namespace booking
