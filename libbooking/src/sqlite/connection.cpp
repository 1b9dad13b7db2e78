#include "sqlite/connection.hpp"

#include <sqlite3.h>

#include <array>

#include "core/repository_rules.hpp"

namespace booking::detail {

Connection::Connection(const std::string& path, int flags, int busy_timeout_ms)
    : db_(path, flags, busy_timeout_ms) {}

SQLite::Statement& Connection::prepare(const char* sql) {
  auto& slot = cache_[sql];
  if (!slot) {
    slot = std::make_unique<SQLite::Statement>(db_, sql);
  } else {
    slot->reset();
    slot->clearBindings();
  }
  used_.push_back(slot.get());
  return *slot;
}

void Connection::reset_statements() noexcept {
  for (SQLite::Statement* st : used_) {
    try {
      st->reset();
    } catch (...) {  // NOLINT(bugprone-empty-catch): reset reports the last step's error again
    }
  }
  used_.clear();
}

WriteTransaction::WriteTransaction(Connection& c) : c_(c) {
  if (c_.gate_) {
    if (!c_.gate_->lock(std::chrono::steady_clock::now() + c_.gate_wait_)) {
      throw SQLite::Exception("another process has been writing for longer than the busy timeout",
                              SQLITE_BUSY);
    }
    gated_ = true;
  }
  try {
    c_.db().exec("BEGIN IMMEDIATE");
  } catch (...) {
    end();
    throw;
  }
}

WriteTransaction::~WriteTransaction() {
  c_.reset_statements();
  if (!done_) {
    try {
      c_.db().exec("ROLLBACK");
    } catch (...) {  // NOLINT(bugprone-empty-catch): a failed rollback leaves no transaction
    }
  }
  end();
}

void WriteTransaction::commit() {
  c_.reset_statements();
  c_.db().exec("COMMIT");
  done_ = true;
  end();
}

void WriteTransaction::end() noexcept {
  if (gated_) c_.gate_->unlock();
  gated_ = false;
}

namespace {
// Migration N brings the schema from user_version N to N+1. Never edit a shipped migration;
// append a new one.
constexpr std::array<Migration, 7> kMigrations{{
    {R"sql(
CREATE TABLE events (
  id        INTEGER PRIMARY KEY,
  key       TEXT NOT NULL UNIQUE,
  name      TEXT NOT NULL,
  type      TEXT NOT NULL,
  promoter  TEXT,
  date_ms   INTEGER NOT NULL,
  venue     TEXT NOT NULL DEFAULT '',
  address   TEXT NOT NULL DEFAULT ''
);
-- Case-insensitive substring search: the trigram tokenizer serves LIKE '%x%' from its index.
CREATE VIRTUAL TABLE events_fts USING fts5(name, tokenize = 'trigram');
CREATE TABLE tiers (
  key            TEXT PRIMARY KEY,
  event_id       INTEGER NOT NULL REFERENCES events(id),
  position       INTEGER NOT NULL,
  category       TEXT NOT NULL,
  price_minor    INTEGER NOT NULL CHECK (price_minor >= 0),
  currency       TEXT NOT NULL,
  capacity       INTEGER NOT NULL CHECK (capacity >= 0),
  available      INTEGER NOT NULL CHECK (available >= 0),
  held           INTEGER NOT NULL CHECK (held >= 0),
  sold           INTEGER NOT NULL CHECK (sold >= 0),
  start_ms       INTEGER NOT NULL,
  end_ms         INTEGER NOT NULL,
  max_per_order  INTEGER,
  max_per_user   INTEGER,
  -- the conservation invariant, enforced by the database itself
  CHECK (capacity = available + held + sold)
);
CREATE INDEX tiers_event ON tiers(event_id, position);
CREATE TABLE waves (
  id        INTEGER PRIMARY KEY,
  event_id  INTEGER NOT NULL REFERENCES events(id),
  start_ms  INTEGER NOT NULL,
  end_ms    INTEGER NOT NULL,
  lim       INTEGER NOT NULL CHECK (lim >= 1),
  booked    INTEGER NOT NULL DEFAULT 0 CHECK (booked >= 0 AND booked <= lim),
  UNIQUE (event_id, start_ms)
);
CREATE TABLE bookings (
  id               TEXT PRIMARY KEY,
  event_id         INTEGER NOT NULL REFERENCES events(id),
  event_key        TEXT NOT NULL,
  user_id          TEXT,
  status           TEXT NOT NULL CHECK (status IN ('HELD','CONFIRMED','CANCELLED','EXPIRED')),
  total_minor      INTEGER NOT NULL,
  currency         TEXT NOT NULL,
  created_ms       INTEGER NOT NULL,
  expires_ms       INTEGER NOT NULL,
  payment_method   TEXT,
  payment_ref      TEXT,
  wave_id          INTEGER REFERENCES waves(id),
  idempotency_key  TEXT,
  request_hash     TEXT
) WITHOUT ROWID;
CREATE INDEX bookings_due ON bookings(expires_ms) WHERE status = 'HELD';
CREATE INDEX bookings_user ON bookings(user_id, event_id) WHERE user_id IS NOT NULL;
CREATE UNIQUE INDEX bookings_idempotency ON bookings(idempotency_key)
  WHERE idempotency_key IS NOT NULL;
CREATE TABLE booking_lines (
  booking_id        TEXT NOT NULL REFERENCES bookings(id),
  position          INTEGER NOT NULL,
  tier_key          TEXT NOT NULL REFERENCES tiers(key),
  qty               INTEGER NOT NULL CHECK (qty > 0),
  unit_price_minor  INTEGER NOT NULL,
  PRIMARY KEY (booking_id, position)
) WITHOUT ROWID;
)sql",
     false},
    // 2: a booking's lines move into its row, as [[tier_key, qty, unit_price_minor], ...]: one
    // B-tree page less per hold (a random leaf of booking_lines), measured +20 % holds/s.
    {R"sql(
ALTER TABLE bookings ADD COLUMN lines TEXT NOT NULL DEFAULT '[]';
UPDATE bookings SET lines = (
  SELECT json_group_array(json_array(tier_key, qty, unit_price_minor))
  FROM (SELECT tier_key, qty, unit_price_minor FROM booking_lines
        WHERE booking_id = bookings.id ORDER BY position));
DROP TABLE booking_lines;
)sql",
     false},
    // 3: the UTC offset an event's date was given in (for showing its local time), and
    // booking_meta, where 'readable_by' records the oldest schema that can use this database.
    {R"sql(
ALTER TABLE events ADD COLUMN utc_offset_min INTEGER NOT NULL DEFAULT 0;
CREATE TABLE booking_meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
)sql",
     true},
    // 4: API tokens (only their SHA-256 is stored), an index to find idempotency keys by age
    // (they expire), and the anonymous client a hold was made for (its held-ticket limit).
    {R"sql(
CREATE TABLE api_tokens (
  name        TEXT PRIMARY KEY,
  role        TEXT NOT NULL CHECK (role IN ('admin', 'sales')),
  hash        TEXT NOT NULL UNIQUE,
  created_ms  INTEGER NOT NULL,
  revoked_ms  INTEGER
) WITHOUT ROWID;
CREATE INDEX bookings_idempotency_age ON bookings(created_ms) WHERE idempotency_key IS NOT NULL;
ALTER TABLE bookings ADD COLUMN client TEXT;
CREATE INDEX bookings_client_held ON bookings(client) WHERE status = 'HELD' AND client IS NOT NULL;
)sql",
     true},
    // 5: an event's sale status and the version of its definition.
    {R"sql(
ALTER TABLE events ADD COLUMN status TEXT NOT NULL DEFAULT 'on_sale'
  CHECK (status IN ('on_sale', 'closed', 'cancelled'));
ALTER TABLE events ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
CREATE INDEX bookings_event ON bookings(event_id, created_ms, id);
)sql",
     true},
    // 6: booking lists of one event and status, or of one user, newest first from an index
    // (an event's few CONFIRMED bookings among a million HELD ones took a scan of them all).
    {R"sql(
CREATE INDEX bookings_event_status ON bookings(event_id, status, created_ms, id);
DROP INDEX bookings_user;
CREATE INDEX bookings_user ON bookings(user_id, event_id, created_ms, id) WHERE user_id IS NOT NULL;
)sql",
     true},
    // 7: the change feed. The seq is the rowid (one writer at a time: commit order); pruning
    // always keeps the newest change, so a seq is never handed out twice (AUTOINCREMENT would
    // guarantee that too, for one more page written per transaction). A booking's change
    // refers to the booking (its data is rebuilt from it); an event's carries its definition.
    {R"sql(
CREATE TABLE changes (
  seq        INTEGER PRIMARY KEY,
  at_ms      INTEGER NOT NULL,
  type       TEXT NOT NULL,
  event_key  TEXT NOT NULL,
  book_id    TEXT,
  actor      TEXT NOT NULL,
  data       TEXT
);
-- Webhook delivery: the position delivered per URL, and the lease of the instance delivering.
CREATE TABLE webhooks (
  url               TEXT PRIMARY KEY,
  position          INTEGER NOT NULL,
  lease_owner       TEXT,
  lease_until_ms    INTEGER NOT NULL DEFAULT 0,
  failing_since_ms  INTEGER,
  paused            INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
)sql",
     true},
}};

// What the database says about the oldest schema that can use it, if it says.
std::optional<std::int64_t> stored_readable_by(Connection& c) {
  if (!c.db().tableExists("booking_meta")) return std::nullopt;
  SQLite::Statement st(c.db(), "SELECT value FROM booking_meta WHERE name = 'readable_by'");
  if (!st.executeStep()) return std::nullopt;
  return st.getColumn(0).getInt64();
}
}  // namespace

void migrate(Connection& c) {
  int version = c.db().execAndGet("PRAGMA user_version").getInt();
  require_known_schema(version, kMigrations.size(), stored_readable_by(c));
  if (static_cast<std::size_t>(version) >= kMigrations.size()) return;
  WriteTransaction tx(c);  // serializes migrations of several processes opening at once
  version = c.db().execAndGet("PRAGMA user_version").getInt();
  require_known_schema(version, kMigrations.size(), stored_readable_by(c));
  if (static_cast<std::size_t>(version) >= kMigrations.size()) return;
  for (auto v = static_cast<std::size_t>(version); v < kMigrations.size(); ++v) {
    c.db().exec(kMigrations[v].sql);
    c.db().exec("PRAGMA user_version = " + std::to_string(v + 1));
  }
  SQLite::Statement mark(c.db(),
                         "INSERT INTO booking_meta (name, value) VALUES ('readable_by', ?) "
                         "ON CONFLICT (name) DO UPDATE SET value = excluded.value");
  mark.bind(1, static_cast<int64_t>(readable_by(kMigrations, kMigrations.size())));
  mark.exec();
  tx.commit();
}

}  // namespace booking::detail
