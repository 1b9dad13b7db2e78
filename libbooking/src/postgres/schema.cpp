#include "postgres/schema.hpp"

#include <array>
#include <optional>

#include "core/repository_rules.hpp"

namespace booking::detail::pg {

namespace {

// Migration N brings the schema from version N to N+1; never edit a shipped one, append.
// pg_trgm is a trusted extension: a database owner may create it without superuser rights.
constexpr std::array<Migration, 7> kMigrations{{
    {R"sql(
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE TABLE events (
  id        BIGSERIAL PRIMARY KEY,
  key       TEXT NOT NULL UNIQUE,
  name      TEXT NOT NULL,
  type      TEXT NOT NULL,
  promoter  TEXT,
  date_ms   BIGINT NOT NULL,
  venue     TEXT NOT NULL DEFAULT '',
  address   TEXT NOT NULL DEFAULT ''
);
-- Case-insensitive substring search (ILIKE '%x%') is served by a trigram index.
CREATE INDEX events_name_trgm ON events USING gin (name gin_trgm_ops);
CREATE TABLE tiers (
  key            TEXT PRIMARY KEY,
  event_id       BIGINT NOT NULL REFERENCES events(id),
  position       INTEGER NOT NULL,
  category       TEXT NOT NULL,
  price_minor    BIGINT NOT NULL CHECK (price_minor >= 0),
  currency       TEXT NOT NULL,
  capacity       BIGINT NOT NULL CHECK (capacity >= 0),
  available      BIGINT NOT NULL CHECK (available >= 0),
  held           BIGINT NOT NULL CHECK (held >= 0),
  sold           BIGINT NOT NULL CHECK (sold >= 0),
  start_ms       BIGINT NOT NULL,
  end_ms         BIGINT NOT NULL,
  max_per_order  BIGINT,
  max_per_user   BIGINT,
  -- the conservation invariant, enforced by the database itself
  CHECK (capacity = available + held + sold)
);
CREATE INDEX tiers_event ON tiers(event_id, position);
CREATE TABLE waves (
  id        BIGSERIAL PRIMARY KEY,
  event_id  BIGINT NOT NULL REFERENCES events(id),
  start_ms  BIGINT NOT NULL,
  end_ms    BIGINT NOT NULL,
  lim       BIGINT NOT NULL CHECK (lim >= 1),
  booked    BIGINT NOT NULL DEFAULT 0 CHECK (booked >= 0 AND booked <= lim),
  UNIQUE (event_id, start_ms)
);
CREATE TABLE bookings (
  id               TEXT PRIMARY KEY,
  event_id         BIGINT NOT NULL REFERENCES events(id),
  event_key        TEXT NOT NULL,
  user_id          TEXT,
  status           TEXT NOT NULL CHECK (status IN ('HELD','CONFIRMED','CANCELLED','EXPIRED')),
  total_minor      BIGINT NOT NULL,
  currency         TEXT NOT NULL,
  created_ms       BIGINT NOT NULL,
  expires_ms       BIGINT NOT NULL,
  payment_method   TEXT,
  payment_ref      TEXT,
  wave_id          BIGINT REFERENCES waves(id),
  idempotency_key  TEXT,
  request_hash     TEXT
);
CREATE INDEX bookings_due ON bookings(expires_ms) WHERE status = 'HELD';
CREATE INDEX bookings_user ON bookings(user_id, event_id) WHERE user_id IS NOT NULL;
CREATE UNIQUE INDEX bookings_idempotency ON bookings(idempotency_key)
  WHERE idempotency_key IS NOT NULL;
CREATE TABLE booking_lines (
  booking_id        TEXT NOT NULL REFERENCES bookings(id),
  position          INTEGER NOT NULL,
  tier_key          TEXT NOT NULL REFERENCES tiers(key),
  qty               BIGINT NOT NULL CHECK (qty > 0),
  unit_price_minor  BIGINT NOT NULL,
  PRIMARY KEY (booking_id, position)
);
)sql",
     false},
    // 2: the UTC offset an event's date was given in (for showing its local time), and
    // booking_meta, where 'readable_by' records the oldest schema that can use this database.
    {R"sql(
ALTER TABLE events ADD COLUMN utc_offset_min INTEGER NOT NULL DEFAULT 0;
CREATE TABLE booking_meta (name TEXT PRIMARY KEY, value BIGINT NOT NULL);
)sql",
     true},
    // 3: API tokens (only their SHA-256 is stored), an index to find idempotency keys by age
    // (they expire), and the anonymous client a hold was made for (its held-ticket limit).
    {R"sql(
CREATE TABLE api_tokens (
  name        TEXT PRIMARY KEY,
  role        TEXT NOT NULL CHECK (role IN ('admin', 'sales')),
  hash        TEXT NOT NULL UNIQUE,
  created_ms  BIGINT NOT NULL,
  revoked_ms  BIGINT
);
CREATE INDEX bookings_idempotency_age ON bookings(created_ms) WHERE idempotency_key IS NOT NULL;
ALTER TABLE bookings ADD COLUMN client TEXT;
CREATE INDEX bookings_client_held ON bookings(client) WHERE status = 'HELD' AND client IS NOT NULL;
)sql",
     true},
    // 4: an event's sale status and the version of its definition.
    {R"sql(
ALTER TABLE events ADD COLUMN status TEXT NOT NULL DEFAULT 'on_sale'
  CHECK (status IN ('on_sale', 'closed', 'cancelled'));
ALTER TABLE events ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
CREATE INDEX bookings_event ON bookings(event_id, created_ms, id);
)sql",
     true},
    // 5: booking lists of one event and status, or of one user, newest first from an index
    // (an event's few CONFIRMED bookings among a million HELD ones took a scan of them all).
    {R"sql(
CREATE INDEX bookings_event_status ON bookings(event_id, status, created_ms, id);
DROP INDEX bookings_user;
CREATE INDEX bookings_user ON bookings(user_id, event_id, created_ms, id) WHERE user_id IS NOT NULL;
)sql",
     true},
    // 6: the change feed. Positions come from feed_state's one row, taken as the last statement
    // of a transaction and locked until it commits: they follow commit order. A booking's
    // change refers to the booking (its data is rebuilt from it); an event's carries its
    // definition.
    {R"sql(
CREATE TABLE changes (
  seq        BIGINT PRIMARY KEY,
  at_ms      BIGINT NOT NULL,
  type       TEXT NOT NULL,
  event_key  TEXT NOT NULL,
  book_id    TEXT,
  actor      TEXT NOT NULL,
  data       TEXT
);
CREATE TABLE feed_state (id INTEGER PRIMARY KEY CHECK (id = 1), last_seq BIGINT NOT NULL);
INSERT INTO feed_state VALUES (1, 0);
-- Webhook delivery: the position delivered per URL, and the lease of the instance delivering
-- (its expiry on the database's clock: instances' clocks may differ).
CREATE TABLE webhooks (
  url               TEXT PRIMARY KEY,
  position          BIGINT NOT NULL,
  lease_owner       TEXT,
  lease_until_ms    BIGINT NOT NULL DEFAULT 0,
  failing_since_ms  BIGINT,
  paused            BOOLEAN NOT NULL DEFAULT false
);
)sql",
     true},
    // 7: a booking's lines no longer check their booking and tier by foreign key. Each line's
    // check took a key-share lock on its tier's row, the row every instance's batches update,
    // and on the booking just inserted: ~20 us per line in PostgreSQL and a multixact when
    // instances overlap; three instances on one tier sold ~5 % more without them. Nothing
    // else writes lines: they are inserted with their booking, in the transaction that read
    // and updated the tier, and neither bookings nor tiers are ever deleted. (SQLite keeps a
    // booking's lines in its row, with no such check either.)
    {R"sql(
ALTER TABLE booking_lines DROP CONSTRAINT IF EXISTS booking_lines_booking_id_fkey;
ALTER TABLE booking_lines DROP CONSTRAINT IF EXISTS booking_lines_tier_key_fkey;
)sql",
     true},
}};

// An arbitrary constant naming libbooking's migration advisory lock.
constexpr const char* kMigrationLock = "SELECT pg_advisory_xact_lock(7426351093)";

}  // namespace

void migrate(Connection& c) {
  // Several instances may start at the same moment: the advisory lock lets one apply the
  // migrations while the others wait, then find nothing left to do. DDL is transactional.
  c.exec_simple("BEGIN");
  c.exec_simple(kMigrationLock);
  c.exec_simple("CREATE TABLE IF NOT EXISTS booking_schema (version INTEGER NOT NULL)");
  Result v = c.exec("SELECT COALESCE(MAX(version), 0) FROM booking_schema");
  const std::int64_t version = v.int64(0, 0);
  std::optional<std::int64_t> readable;
  if (c.exec("SELECT to_regclass('booking_meta') IS NOT NULL").text(0, 0) == "t") {
    Result r = c.exec("SELECT value FROM booking_meta WHERE name = 'readable_by'");
    if (r.rows() > 0) readable = r.int64(0, 0);
  }
  require_known_schema(version, kMigrations.size(), readable);
  if (static_cast<std::size_t>(version) >= kMigrations.size()) {
    c.exec_simple("COMMIT");
    return;
  }
  for (auto n = static_cast<std::size_t>(version); n < kMigrations.size(); ++n) {
    c.exec_simple(kMigrations[n].sql);
    c.exec("INSERT INTO booking_schema (version) VALUES ($1)",
           {param(static_cast<std::int64_t>(n + 1))});
  }
  c.exec(
      "INSERT INTO booking_meta (name, value) VALUES ('readable_by', $1) "
      "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
      {param(readable_by(kMigrations, kMigrations.size()))});
  c.exec_simple("COMMIT");
}

}  // namespace booking::detail::pg
