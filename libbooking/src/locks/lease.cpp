#include <booking/lock_provider.hpp>

#include <algorithm>

#include "core/text.hpp"

namespace booking {

result<ReleaseOutcome> Lease::release() noexcept {
  if (!provider_) return ReleaseOutcome::not_owner;
  LockProvider* p = std::exchange(provider_, nullptr);
  try {
    return p->release(info_);
  } catch (...) {
    return make_error(errc::internal, "lock release threw");
  }
}

void Lease::reset() noexcept { (void)release(); }

result<Lease> acquire_guard(LockProvider& provider, std::span<const std::string> keys,
                            std::chrono::milliseconds ttl,
                            std::chrono::steady_clock::time_point deadline) {
  BOOKING_TRY(auto info, provider.acquire(keys, ttl, deadline));
  return Lease(provider, std::move(info));
}

std::string random_token() { return detail::random_hex128(); }

namespace detail {
std::vector<std::string> sorted_unique(std::span<const std::string> keys) {
  std::vector<std::string> out(keys.begin(), keys.end());
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}
}  // namespace detail

}  // namespace booking
