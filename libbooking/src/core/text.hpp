// Small text helpers shared inside the library.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace booking::detail {

// Number of code points in valid UTF-8 (no overlongs, no surrogates), or nullopt.
std::optional<std::size_t> utf8_length(std::string_view s) noexcept;

// ASCII lower case (keys and codes are ASCII).
std::string ascii_lower(std::string_view s);

// 16 bytes from the OS CSPRNG (getrandom), as 32 lower-case hex characters.
std::string random_hex128();

// 128 bits as 32 lower-case hex characters like random_hex128, whose first 48 are the time in
// milliseconds since 1970 (big-endian; clamped at 0) and the other 80 from the CSPRNG: still
// unguessable (2^80 per millisecond), but ids made one after another sort together, so a
// B-tree keyed by them is appended to instead of written at a random page per insert.
std::string time_ordered_hex128(std::int64_t unix_ms);

// `text` with the password of a SCHEME://USER:PASSWORD@HOST... URL replaced by "***"; any other
// text unchanged. For every message and log line that names a database or lock URL.
std::string redact_url(std::string_view text);

}  // namespace booking::detail
