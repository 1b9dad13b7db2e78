#include <booking/event_repository.hpp>

namespace booking {

bool is_postgres_url(std::string_view db) noexcept {
  return db.starts_with("postgresql://") || db.starts_with("postgres://");
}

result<std::unique_ptr<EventRepository>> open_repository(const std::string& db,
                                                         RepositoryOptions options) {
  if (db.empty()) return make_error(errc::validation_failed, "--db must not be empty");
  if (is_postgres_url(db)) return make_postgres_repository(db, options.postgres);
  return make_sqlite_repository(db, options.sqlite);
}

}  // namespace booking
