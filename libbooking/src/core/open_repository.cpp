#include <booking/event_repository.hpp>

#include "core/text.hpp"

namespace booking {

namespace {
class DecidedHold final : public PendingHold {
 public:
  explicit DecidedHold(result<Booking> outcome) : outcome_(std::move(outcome)) {}
  result<Booking> wait() override { return std::move(outcome_); }

 private:
  result<Booking> outcome_;
};
}  // namespace

std::unique_ptr<PendingHold> EventRepository::submit_hold(HoldPlan plan) {
  return std::make_unique<DecidedHold>(insert_hold(plan));
}

bool is_postgres_url(std::string_view db) noexcept {
  return db.starts_with("postgresql://") || db.starts_with("postgres://");
}

std::string printable_db(std::string_view db) {
  return is_postgres_url(db) ? detail::redact_url(db) : std::string(db);
}

result<std::unique_ptr<EventRepository>> open_repository(const std::string& db,
                                                         RepositoryOptions options) {
  if (db.empty()) return make_error(errc::validation_failed, "--db must not be empty");
  if (is_postgres_url(db)) return make_postgres_repository(db, options.postgres);
  return make_sqlite_repository(db, options.sqlite);
}

}  // namespace booking
