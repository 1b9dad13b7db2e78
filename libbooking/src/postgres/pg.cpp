#include "postgres/pg.hpp"

#include <algorithm>
#include <charconv>

namespace booking::detail::pg {

namespace {
std::string trimmed(const char* message) {
  std::string s = message ? message : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}
}  // namespace

bool PgError::unavailable() const noexcept {
  // Class 08: connection exceptions; 57P01-57P03: the server is shutting down or starting;
  // 53300: too many connections.
  return broken_ || sqlstate_.starts_with("08") || sqlstate_ == "57P01" || sqlstate_ == "57P02" ||
         sqlstate_ == "57P03" || sqlstate_ == "53300";
}

int Result::affected() const {
  const char* n = PQcmdTuples(r_.get());
  int v = 0;
  std::from_chars(n, n + std::char_traits<char>::length(n), v);
  return v;
}

std::int64_t Result::int64(int row, int col) const {
  const char* s = PQgetvalue(r_.get(), row, col);
  std::int64_t v = 0;
  auto [end, ec] = std::from_chars(s, s + PQgetlength(r_.get(), row, col), v);
  if (ec != std::errc()) {
    throw PgError(std::string("not an integer: '") + s + "'", "XX000", "", false);
  }
  return v;
}

std::optional<std::string> Result::optional_text(int row, int col) const {
  if (null(row, col)) return std::nullopt;
  return text(row, col);
}

std::optional<std::int64_t> Result::optional_int64(int row, int col) const {
  if (null(row, col)) return std::nullopt;
  return int64(row, col);
}

Connection::Connection(const std::string& url, const ConnectOptions& options)
    : conn_(nullptr, &PQfinish) {
  // Our defaults first; `dbname` is expanded from the URL, whose own parameters win.
  // tcp_user_timeout and keepalives make a silently vanished server an error within seconds
  // instead of a call that hangs. lock_timeout bounds a wait for a row lock; and a session
  // left idle inside a transaction (a paused or stuck instance) is ended by the server, which
  // releases its row locks.
  const std::string timeout =
      std::to_string(std::max<std::int64_t>(options.connect_timeout.count(), 2));
  std::string server_options = "-c idle_in_transaction_session_timeout=60000 -c lock_timeout=";
  server_options += std::to_string(std::max<std::int64_t>(options.lock_wait.count(), 1));
  const char* keys[] = {"connect_timeout",
                        "tcp_user_timeout",
                        "keepalives_idle",
                        "options",
                        "application_name",
                        "dbname",
                        nullptr};
  const char* values[] = {timeout.c_str(), "10000",     "10",   server_options.c_str(),
                          "libbooking",    url.c_str(), nullptr};
  conn_.reset(PQconnectdbParams(keys, values, /*expand_dbname=*/1));
  if (!conn_ || PQstatus(conn_.get()) != CONNECTION_OK) {
    throw PgError("cannot connect to PostgreSQL: " +
                      trimmed(conn_ ? PQerrorMessage(conn_.get()) : "out of memory"),
                  "08001", "", true);
  }
  // Quiet: the server's NOTICEs (e.g. "extension already exists") are not ours to print.
  PQsetNoticeProcessor(
      conn_.get(), [](void*, const char*) {}, nullptr);
}

void Connection::fail(PGresult* r, std::string_view what) {
  Result owned(r);
  const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  const char* constraint = r ? PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME) : nullptr;
  const bool gone = broken();
  std::string message = trimmed(r ? PQresultErrorMessage(r) : nullptr);
  if (message.empty()) message = trimmed(PQerrorMessage(conn_.get()));
  throw PgError(std::string(what) + ": " + message, state ? state : (gone ? "08006" : "XX000"),
                constraint ? constraint : "", gone);
}

Result Connection::check(PGresult* r, std::string_view what) {
  const auto status = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) fail(r, what);
  return Result(r);
}

Result Connection::exec(const char* sql, const std::vector<Param>& params) {
  auto it = prepared_.find(sql);
  if (it == prepared_.end()) {
    // (Appended, not "s" + to_string(): GCC 12 at -O2 warns falsely on that, -Wrestrict.)
    std::string name(1, 's');
    name += std::to_string(prepared_.size());
    check(PQprepare(conn_.get(), name.c_str(), sql, static_cast<int>(params.size()), nullptr),
          "prepare");
    it = prepared_.emplace(sql, std::move(name)).first;
  }
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const Param& p : params) values.push_back(p ? p->c_str() : nullptr);
  return check(PQexecPrepared(conn_.get(), it->second.c_str(), static_cast<int>(values.size()),
                              values.data(), nullptr, nullptr, 0),
               "query");
}

Result Connection::exec_simple(const char* sql) { return check(PQexec(conn_.get(), sql), "query"); }

Pool::Pool(std::string url, int size, ConnectOptions options)
    : url_(std::move(url)), size_(std::max(size, 1)), options_(options) {}

Pool::Lease Pool::acquire() {
  std::unique_ptr<Connection> c;
  {
    std::unique_lock lock(mu_);
    freed_.wait(lock, [&] { return out_ < size_; });
    ++out_;
    if (!idle_.empty()) {
      c = std::move(idle_.back());
      idle_.pop_back();
    }
  }
  if (!c) {
    try {
      c = std::make_unique<Connection>(url_, options_);
    } catch (...) {
      give_back(nullptr);
      throw;
    }
  }
  return Lease(*this, std::move(c));
}

void Pool::give_back(std::unique_ptr<Connection> c) noexcept {
  {
    std::lock_guard lock(mu_);
    --out_;
    if (c && c->reusable()) idle_.push_back(std::move(c));
  }
  freed_.notify_one();
}

void Pool::drop_idle() noexcept {
  std::vector<std::unique_ptr<Connection>> stale;
  {
    std::lock_guard lock(mu_);
    stale.swap(idle_);
  }
}

}  // namespace booking::detail::pg
