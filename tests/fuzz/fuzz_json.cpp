// libFuzzer target: the JSON request decoding shared by bookingd and the CLI. Any input must
// give a value or an error, never a crash, a hang or undefined behaviour; what decodes must
// encode again.
#include <booking/json_codec.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto v = booking::parse_json(text);
  if (!v) return 0;
  if (auto e = booking::event_from_json(v.value())) {
    (void)booking::to_text(booking::to_json(e.value()));
  }
  (void)booking::hold_request_from_json(v.value());
  (void)booking::payment_from_json(v.value());
  (void)booking::to_text(v.value());
  return 0;
}
