// make_redis_lock_provider in a build configured with BOOKING_WITH_REDIS=OFF (no hiredis).
#include <booking/lock_provider.hpp>

namespace booking {

result<std::unique_ptr<LockProvider>> make_redis_lock_provider(RedisLockOptions) {
  return make_error(errc::validation_failed,
                    "this libbooking was built without Redis support (BOOKING_WITH_REDIS=OFF); "
                    "use --lock memory or file:DIR");
}

}  // namespace booking
