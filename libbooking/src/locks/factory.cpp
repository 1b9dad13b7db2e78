// The one parser of --lock specs, shared by bookingd and the CLI.
#include <booking/lock_provider.hpp>

#include <charconv>

#include "core/text.hpp"

namespace booking {

namespace {
error bad_spec(std::string_view spec, std::string_view why) {
  return make_error(errc::validation_failed,
                    "invalid lock spec '" + detail::redact_url(spec.substr(0, 200)) + "': " +
                        std::string(why) +
                        " (expected memory, file:DIR or redis://[[USER]:PASSWORD@]HOST[:PORT][/DB])");
}

result<int> parse_int(std::string_view spec, std::string_view text, int lo, int hi,
                      std::string_view what) {
  int v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || p != text.data() + text.size() || v < lo || v > hi) {
    return bad_spec(spec, std::string(what) + " must be " + std::to_string(lo) + "-" +
                              std::to_string(hi));
  }
  return v;
}
}  // namespace

result<RedisLockOptions> parse_redis_spec(std::string_view spec) {
  constexpr std::string_view kScheme = "redis://";
  if (!spec.starts_with(kScheme)) return bad_spec(spec, "not a redis:// URL");
  std::string_view rest = spec.substr(kScheme.size());
  RedisLockOptions o;
  if (auto at = rest.rfind('@'); at != std::string_view::npos) {
    std::string_view auth = rest.substr(0, at);
    rest = rest.substr(at + 1);
    auto colon = auth.find(':');
    if (colon == std::string_view::npos) return bad_spec(spec, "credentials must be [USER]:PASSWORD");
    o.user = std::string(auth.substr(0, colon));
    o.password = std::string(auth.substr(colon + 1));
  }
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    BOOKING_TRY(o.db, parse_int(spec, rest.substr(slash + 1), 0, 15, "the database"));
    rest = rest.substr(0, slash);
  }
  if (auto colon = rest.rfind(':'); colon != std::string_view::npos) {
    BOOKING_TRY(o.port, parse_int(spec, rest.substr(colon + 1), 1, 65535, "the port"));
    rest = rest.substr(0, colon);
  }
  if (rest.empty() || rest.size() > 253) return bad_spec(spec, "missing host");
  for (char c : rest) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-';
    if (!ok) return bad_spec(spec, "invalid host");
  }
  o.host = std::string(rest);
  return o;
}

result<std::unique_ptr<LockProvider>> make_lock_provider(std::string_view spec) {
  if (spec == "memory") return make_memory_lock_provider();
  if (spec.starts_with("file:")) {
    std::string_view dir = spec.substr(5);
    if (dir.empty()) return bad_spec(spec, "file: needs a directory");
    if (dir.find('\0') != std::string_view::npos) return bad_spec(spec, "invalid directory");
    return make_file_lock_provider(std::string(dir));
  }
  if (spec.starts_with("redis://")) {
    BOOKING_TRY(auto options, parse_redis_spec(spec));
    return make_redis_lock_provider(std::move(options));
  }
  return bad_spec(spec, "unknown lock backend");
}

}  // namespace booking
