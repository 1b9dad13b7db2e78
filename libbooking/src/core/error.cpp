#include <booking/error.hpp>

namespace booking {

namespace {
struct CodeInfo {
  std::string_view name;
  int http;
  int exit;
};

constexpr CodeInfo info(errc code) noexcept {
  switch (code) {
    case errc::invalid_json: return {"invalid_json", 400, 2};
    case errc::not_found: return {"not_found", 404, 3};
    case errc::validation_failed: return {"validation_failed", 422, 2};
    case errc::duplicate_key: return {"duplicate_key", 409, 4};
    case errc::insufficient_stock: return {"insufficient_stock", 409, 4};
    case errc::sale_not_open: return {"sale_not_open", 409, 4};
    case errc::wave_limit_reached: return {"wave_limit_reached", 409, 4};
    case errc::per_user_limit: return {"per_user_limit", 409, 4};
    case errc::invalid_state: return {"invalid_state", 409, 4};
    case errc::hold_expired: return {"hold_expired", 410, 4};
    case errc::idempotency_conflict: return {"idempotency_conflict", 422, 2};
    case errc::payload_too_large: return {"payload_too_large", 413, 2};
    case errc::unsupported_media_type: return {"unsupported_media_type", 415, 2};
    case errc::method_not_allowed: return {"method_not_allowed", 405, 2};
    case errc::bad_request: return {"bad_request", 400, 2};
    case errc::uri_too_long: return {"uri_too_long", 414, 2};
    case errc::lock_timeout: return {"lock_timeout", 503, 5};
    case errc::internal: return {"internal", 500, 1};
    case errc::unauthorized: return {"unauthorized", 401, 2};
    case errc::forbidden: return {"forbidden", 403, 2};
    case errc::rate_limited: return {"rate_limited", 429, 5};
    case errc::sale_closed: return {"sale_closed", 409, 4};
    case errc::precondition_failed: return {"precondition_failed", 412, 4};
    case errc::feed_expired: return {"feed_expired", 410, 4};
  }
  return {"internal", 500, 1};
}
}  // namespace

std::string_view to_string(errc code) noexcept { return info(code).name; }
int http_status(errc code) noexcept { return info(code).http; }
int exit_code(errc code) noexcept { return info(code).exit; }

namespace {
class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "booking"; }
  std::string message(int code) const override {
    return std::string(to_string(static_cast<errc>(code)));
  }
};
}  // namespace

const std::error_category& booking_category() noexcept {
  static const Category category;
  return category;
}

}  // namespace booking
