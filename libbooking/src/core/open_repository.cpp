#include <booking/event_repository.hpp>

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
  std::string out(db);
  if (!is_postgres_url(db)) return out;
  // postgresql://user:password@host... : the userinfo ends at the last '@' before the path.
  const std::size_t start = out.find("://") + 3;
  const std::size_t path = out.find_first_of("/?", start);
  const std::size_t at = out.rfind('@', path == std::string::npos ? out.size() : path);
  if (at == std::string::npos || at < start) return out;
  const std::size_t colon = out.find(':', start);
  if (colon == std::string::npos || colon > at) return out;
  out.replace(colon + 1, at - colon - 1, "***");
  return out;
}

result<std::unique_ptr<EventRepository>> open_repository(const std::string& db,
                                                         RepositoryOptions options) {
  if (db.empty()) return make_error(errc::validation_failed, "--db must not be empty");
  if (is_postgres_url(db)) return make_postgres_repository(db, options.postgres);
  return make_sqlite_repository(db, options.sqlite);
}

}  // namespace booking
