// make_postgres_repository in a build configured with BOOKING_WITH_POSTGRES=OFF (no libpq).
#include <booking/event_repository.hpp>

namespace booking {

result<std::unique_ptr<EventRepository>> make_postgres_repository(const std::string&,
                                                                  PostgresOptions) {
  return make_error(errc::validation_failed,
                    "this libbooking was built without PostgreSQL support "
                    "(BOOKING_WITH_POSTGRES=OFF); use an SQLite file path");
}

}  // namespace booking
