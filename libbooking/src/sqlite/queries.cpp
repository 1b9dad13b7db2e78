#include "sqlite/queries.hpp"

#include <array>
#include <booking/json_codec.hpp>
#include <boost/json.hpp>
#include <map>

#include "core/repository_rules.hpp"
#include "core/text.hpp"
#include "sqlite/rows.hpp"

namespace booking::detail {

std::int64_t ms(Instant t) { return t.time_since_epoch().count(); }
Instant instant(std::int64_t v) { return Instant(std::chrono::milliseconds(v)); }

void bind_optional(SQLite::Statement& st, int i, const std::optional<std::string>& v) {
  if (v) {
    st.bind(i, *v);
  } else {
    st.bind(i);
  }
}
void bind_optional(SQLite::Statement& st, int i, const std::optional<std::int64_t>& v) {
  if (v) {
    st.bind(i, static_cast<int64_t>(*v));
  } else {
    st.bind(i);
  }
}
std::optional<std::string> optional_text(const SQLite::Column& col) {
  if (col.isNull()) return std::nullopt;
  return col.getString();
}
std::optional<std::int64_t> optional_int(const SQLite::Column& col) {
  if (col.isNull()) return std::nullopt;
  return col.getInt64();
}

namespace {

// A booking's lines as stored in its row: [[tier_key, qty, unit_price_minor], ...].
std::string encode_lines(const std::vector<BookingLine>& lines) {
  boost::json::array out;
  out.reserve(lines.size());
  for (const BookingLine& l : lines) {
    out.push_back(
        boost::json::array{boost::json::string_view(l.tier_key), l.qty, l.unit_price_minor});
  }
  return boost::json::serialize(out);
}

std::vector<BookingLine> decode_lines(const std::string& text) {
  std::vector<BookingLine> lines;
  const boost::json::value parsed = boost::json::parse(text);
  for (const auto& v : parsed.as_array()) {
    const auto& l = v.as_array();
    lines.push_back(BookingLine{std::string(l.at(0).as_string()), l.at(1).to_number<std::int64_t>(),
                                l.at(2).to_number<std::int64_t>()});
  }
  return lines;
}

bool exists(Connection& c, const char* sql, const std::string& key) {
  auto& st = c.prepare(sql);
  st.bind(1, key);
  return st.executeStep();
}

// A new tier with all its tickets available.
void insert_tier_row(Connection& c, std::int64_t event_id, std::size_t position, const Tier& t) {
  auto& st = c.prepare(
      "INSERT INTO tiers (key, event_id, position, category, price_minor, currency, capacity, "
      "available, held, sold, start_ms, end_ms, max_per_order, max_per_user) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, 0, ?, ?, ?, ?)");
  st.bind(1, t.key);
  st.bind(2, static_cast<int64_t>(event_id));
  st.bind(3, static_cast<int64_t>(position));
  st.bind(4, t.category);
  st.bind(5, static_cast<int64_t>(t.price.minor));
  st.bind(6, t.price.currency);
  st.bind(7, static_cast<int64_t>(t.capacity));
  st.bind(8, static_cast<int64_t>(t.capacity));
  st.bind(9, static_cast<int64_t>(ms(t.start)));
  st.bind(10, static_cast<int64_t>(ms(t.end)));
  bind_optional(st, 11, t.max_per_order);
  bind_optional(st, 12, t.max_per_user);
  st.exec();
}

void insert_wave_row(Connection& c, std::int64_t event_id, const ReleaseWave& w) {
  auto& st = c.prepare("INSERT INTO waves (event_id, start_ms, end_ms, lim) VALUES (?, ?, ?, ?)");
  st.bind(1, static_cast<int64_t>(event_id));
  st.bind(2, static_cast<int64_t>(ms(w.start)));
  st.bind(3, static_cast<int64_t>(ms(w.end)));
  st.bind(4, static_cast<int64_t>(w.limit));
  st.exec();
}

}  // namespace

result<std::int64_t> insert_event(Connection& c, const Event& e, Instant now) {
  if (exists(c, "SELECT 1 FROM events WHERE key = ?", e.key)) return duplicate_key_error(e.key);
  for (const Tier& t : e.tiers) {
    if (exists(c, "SELECT 1 FROM tiers WHERE key = ?", t.key)) return duplicate_key_error(t.key);
  }
  auto& ins = c.prepare(
      "INSERT INTO events (key, name, type, promoter, date_ms, venue, address, utc_offset_min) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
  ins.bind(1, e.key);
  ins.bind(2, e.name);
  ins.bind(3, e.type);
  bind_optional(ins, 4, e.promoter);
  ins.bind(5, static_cast<int64_t>(ms(e.date)));
  ins.bind(6, e.location.venue);
  ins.bind(7, e.location.address);
  ins.bind(8, static_cast<int>(e.utc_offset_minutes));
  ins.exec();
  std::int64_t id = c.db().getLastInsertRowid();

  auto& fts = c.prepare("INSERT INTO events_fts (rowid, name) VALUES (?, ?)");
  fts.bind(1, static_cast<int64_t>(id));
  fts.bind(2, e.name);
  fts.exec();

  for (std::size_t i = 0; i < e.tiers.size(); ++i) insert_tier_row(c, id, i, e.tiers[i]);
  for (const ReleaseWave& w : e.waves) insert_wave_row(c, id, w);
  const Event stored = stored_new_event(e, id);
  append_change(c,
                {ChangeType::event_created, now == Instant{} ? system_clock().now() : now, e.key,
                 nullptr, current_actor()},
                &stored);
  return id;
}

namespace {
std::optional<Event> load_event_where(Connection& c, const char* sql, auto bind) {
  auto& st = c.prepare(sql);
  bind(st);
  if (!st.executeStep()) return std::nullopt;
  Event e;
  e.id = st.getColumn(0).getInt64();
  e.key = st.getColumn(1).getString();
  e.name = st.getColumn(2).getString();
  e.type = st.getColumn(3).getString();
  e.promoter = optional_text(st.getColumn(4));
  e.date = instant(st.getColumn(5).getInt64());
  e.location = {st.getColumn(6).getString(), st.getColumn(7).getString()};
  e.utc_offset_minutes = st.getColumn(8).getInt();
  e.status = parse_event_status(st.getColumn(9).getString()).value_or(EventStatus::on_sale);
  e.version = st.getColumn(10).getInt64();

  auto& tiers = c.prepare(
      "SELECT key, category, price_minor, currency, capacity, available, held, sold, start_ms, "
      "end_ms, max_per_order, max_per_user FROM tiers WHERE event_id = ? ORDER BY position");
  tiers.bind(1, static_cast<int64_t>(e.id));
  while (tiers.executeStep()) {
    Tier t;
    t.key = tiers.getColumn(0).getString();
    t.category = tiers.getColumn(1).getString();
    t.price = Money{tiers.getColumn(2).getInt64(), tiers.getColumn(3).getString()};
    t.capacity = tiers.getColumn(4).getInt64();
    t.stock = TierStock{t.capacity, tiers.getColumn(5).getInt64(), tiers.getColumn(6).getInt64(),
                        tiers.getColumn(7).getInt64()};
    t.start = instant(tiers.getColumn(8).getInt64());
    t.end = instant(tiers.getColumn(9).getInt64());
    t.max_per_order = optional_int(tiers.getColumn(10));
    t.max_per_user = optional_int(tiers.getColumn(11));
    e.tiers.push_back(std::move(t));
  }
  auto& waves = c.prepare(
      "SELECT start_ms, end_ms, lim, booked FROM waves WHERE event_id = ? ORDER BY start_ms");
  waves.bind(1, static_cast<int64_t>(e.id));
  while (waves.executeStep()) {
    e.waves.push_back(ReleaseWave{instant(waves.getColumn(0).getInt64()),
                                  instant(waves.getColumn(1).getInt64()),
                                  waves.getColumn(2).getInt64(), waves.getColumn(3).getInt64()});
  }
  return e;
}

constexpr const char* kEventColumns =
    "SELECT id, key, name, type, promoter, date_ms, venue, address, utc_offset_min, status, "
    "version FROM events ";
}  // namespace

std::optional<Event> load_event(Connection& c, std::string_view key) {
  static const std::string sql = std::string(kEventColumns) + "WHERE key = ?";
  return load_event_where(c, sql.c_str(),
                          [&](SQLite::Statement& st) { st.bind(1, std::string(key)); });
}

std::vector<Event> search(Connection& c, const SearchQuery& q) {
  // Three characters or more: the trigram index answers a quoted phrase as a case-insensitive
  // substring, in rowid order, so a page costs what it returns. (LIKE with an ESCAPE clause is
  // never offered to FTS5 and would scan.) Shorter queries scan with LIKE.
  SQLite::Statement* query = nullptr;
  if (q.name.empty()) {
    query = &c.prepare("SELECT id FROM events ORDER BY id LIMIT ? OFFSET ?");
  } else if (detail::utf8_length(q.name).value_or(0) >= 3) {
    std::string phrase = "\"";
    for (char ch : q.name) {
      phrase += ch;
      if (ch == '"') phrase += '"';
    }
    phrase += '"';
    query = &c.prepare(
        "SELECT rowid FROM events_fts WHERE events_fts MATCH ? ORDER BY rowid LIMIT ? OFFSET ?");
    query->bind(1, phrase);
  } else {
    std::string pattern = "%";
    for (char ch : q.name) {
      if (ch == '%' || ch == '_' || ch == '\\') pattern += '\\';
      pattern += ch;
    }
    pattern += '%';
    query = &c.prepare(
        "SELECT rowid FROM events_fts WHERE name LIKE ? ESCAPE '\\' ORDER BY rowid "
        "LIMIT ? OFFSET ?");
    query->bind(1, pattern);
  }
  SQLite::Statement& st = *query;
  const int first = q.name.empty() ? 1 : 2;
  st.bind(first, static_cast<int64_t>(q.limit));
  st.bind(first + 1, static_cast<int64_t>(q.offset));
  std::vector<std::int64_t> ids;
  while (st.executeStep()) ids.push_back(st.getColumn(0).getInt64());
  std::vector<Event> out;
  static const std::string sql = std::string(kEventColumns) + "WHERE id = ?";
  for (std::int64_t id : ids) {
    auto e = load_event_where(c, sql.c_str(),
                              [&](SQLite::Statement& s) { s.bind(1, static_cast<int64_t>(id)); });
    if (e) out.push_back(std::move(*e));
  }
  return out;
}

Booking read_booking(SQLite::Statement& st) {
  Booking b;
  b.id = st.getColumn(0).getString();
  b.event_key = st.getColumn(1).getString();
  b.user_id = optional_text(st.getColumn(2));
  b.status = parse_booking_status(st.getColumn(3).getString()).value_or(BookingStatus::held);
  b.total = Money{st.getColumn(4).getInt64(), st.getColumn(5).getString()};
  b.created_at = instant(st.getColumn(6).getInt64());
  b.expires_at = instant(st.getColumn(7).getInt64());
  b.payment_method = optional_text(st.getColumn(8));
  b.payment_reference = optional_text(st.getColumn(9));
  b.idempotency_key = optional_text(st.getColumn(10));
  b.lines = decode_lines(st.getColumn(11).getString());
  b.client = optional_text(st.getColumn(12));
  return b;
}

std::optional<Booking> load_booking(Connection& c, std::string_view id) {
  static const std::string sql = std::string(kBookingColumns) + "WHERE id = ?";
  auto& st = c.prepare(sql.c_str());
  st.bind(1, std::string(id));
  if (!st.executeStep()) return std::nullopt;
  return read_booking(st);
}

std::vector<Booking> list_bookings(Connection& c, const BookingQuery& q) {
  // The connection caches statements by the address of their text: one text per combination of
  // filters, made once.
  static const std::array<std::string, 16> shapes = [] {
    std::array<std::string, 16> out;
    for (std::size_t m = 0; m < out.size(); ++m) {
      std::string sql = std::string(kBookingColumns) + "WHERE 1 = 1";
      if (m & 1) sql += " AND event_id = (SELECT id FROM events WHERE key = :event)";
      if (m & 2) sql += " AND status = :status";
      if (m & 4) sql += " AND user_id = :user";
      if (m & 8) sql += " AND (created_ms < :ms OR (created_ms = :ms AND id < :id))";
      out[m] = sql + " ORDER BY created_ms DESC, id DESC LIMIT :limit";
    }
    return out;
  }();
  const std::size_t shape =
      (q.event_key ? 1 : 0) | (q.status ? 2 : 0) | (q.user_id ? 4 : 0) | (q.before ? 8 : 0);
  auto& st = c.prepare(shapes[shape].c_str());
  if (q.event_key) st.bind(":event", *q.event_key);
  if (q.status) st.bind(":status", std::string(to_string(*q.status)));
  if (q.user_id) st.bind(":user", *q.user_id);
  if (q.before) {
    st.bind(":ms", static_cast<int64_t>(ms(q.before->first)));
    st.bind(":id", q.before->second);
  }
  st.bind(":limit", static_cast<int64_t>(q.limit));
  std::vector<Booking> out;
  while (st.executeStep()) out.push_back(read_booking(st));
  return out;
}

std::vector<BookingTotal> booking_totals(Connection& c, std::string_view key) {
  auto& st = c.prepare(
      "SELECT json_extract(l.value, '$[0]'), b.status, SUM(json_extract(l.value, '$[1]')), "
      "SUM(json_extract(l.value, '$[1]') * json_extract(l.value, '$[2]')), COUNT(*) "
      "FROM bookings b, json_each(b.lines) AS l "
      "WHERE b.event_id = (SELECT id FROM events WHERE key = ?) GROUP BY 1, 2");
  st.bind(1, std::string(key));
  std::vector<BookingTotal> out;
  while (st.executeStep()) {
    out.push_back(BookingTotal{
        st.getColumn(0).getString(),
        parse_booking_status(st.getColumn(1).getString()).value_or(BookingStatus::held),
        st.getColumn(2).getInt64(), st.getColumn(3).getInt64(), st.getColumn(4).getInt64()});
  }
  return out;
}

std::size_t export_bookings(Connection& c, std::string_view key, const BookingSink& sink) {
  // One statement stepped row by row (its read transaction is one snapshot of the event), in
  // the order of the index bookings(event_id, created_ms, id).
  static const std::string sql =
      std::string(kBookingColumns) +
      "WHERE event_id = (SELECT id FROM events WHERE key = ?) ORDER BY created_ms, id";
  auto& st = c.prepare(sql.c_str());
  st.bind(1, std::string(key));
  std::size_t n = 0;
  while (st.executeStep()) {
    if (!sink(read_booking(st))) break;
    ++n;
  }
  st.reset();
  return n;
}

std::optional<IdempotencyRecord> find_idempotency(Connection& c, std::string_view key) {
  auto& st =
      c.prepare("SELECT id, request_hash, created_ms FROM bookings WHERE idempotency_key = ?");
  st.bind(1, std::string(key));
  if (!st.executeStep()) return std::nullopt;
  return IdempotencyRecord{st.getColumn(0).getString(), st.getColumn(1).getString(),
                           instant(st.getColumn(2).getInt64())};
}

std::size_t purge_idempotency(Connection& c, std::int64_t cutoff_ms, std::size_t max) {
  auto& st = c.prepare(
      "UPDATE bookings SET idempotency_key = NULL, request_hash = NULL WHERE id IN ("
      "SELECT id FROM bookings WHERE idempotency_key IS NOT NULL AND created_ms <= ? LIMIT ?)");
  st.bind(1, static_cast<int64_t>(cutoff_ms));
  st.bind(2, static_cast<int64_t>(max));
  return static_cast<std::size_t>(st.exec());
}

std::optional<std::int64_t> Transaction::find_event_id(std::string_view key) {
  auto& st = c_.prepare("SELECT id FROM events WHERE key = ?");
  st.bind(1, std::string(key));
  if (!st.executeStep()) return std::nullopt;
  return st.getColumn(0).getInt64();
}

namespace {
std::optional<EventState> event_state(SQLite::Statement& st) {
  if (!st.executeStep()) return std::nullopt;
  return EventState{st.getColumn(0).getInt64(),
                    parse_event_status(st.getColumn(1).getString()).value_or(EventStatus::on_sale),
                    st.getColumn(2).getInt64()};
}
}  // namespace

// SQLite has one writer at a time: the write transaction already excludes every other change.
std::optional<EventState> Transaction::load_event_state(std::int64_t event_id) {
  if (batching_) {
    if (auto it = states_.find(event_id); it != states_.end()) return it->second;
  }
  auto& st = c_.prepare("SELECT id, status, version FROM events WHERE id = ?");
  st.bind(1, static_cast<int64_t>(event_id));
  auto state = event_state(st);
  if (batching_ && state) states_.emplace(event_id, *state);
  return state;
}

std::optional<EventState> Transaction::lock_event(std::string_view key) {
  auto& st = c_.prepare("SELECT id, status, version FROM events WHERE key = ?");
  st.bind(1, std::string(key));
  return event_state(st);
}

void Transaction::set_event_state(const EventState& s) {
  auto& st = c_.prepare("UPDATE events SET status = ?, version = ? WHERE id = ?");
  st.bind(1, std::string(to_string(s.status)));
  st.bind(2, static_cast<int64_t>(s.version));
  st.bind(3, static_cast<int64_t>(s.id));
  st.exec();
}

void Transaction::update_event_fields(std::int64_t event_id, const Event& e) {
  auto& st = c_.prepare(
      "UPDATE events SET name = ?, type = ?, promoter = ?, date_ms = ?, venue = ?, address = ?, "
      "utc_offset_min = ? WHERE id = ?");
  st.bind(1, e.name);
  st.bind(2, e.type);
  bind_optional(st, 3, e.promoter);
  st.bind(4, static_cast<int64_t>(ms(e.date)));
  st.bind(5, e.location.venue);
  st.bind(6, e.location.address);
  st.bind(7, static_cast<int>(e.utc_offset_minutes));
  st.bind(8, static_cast<int64_t>(event_id));
  st.exec();
  auto& fts = c_.prepare("UPDATE events_fts SET name = ? WHERE rowid = ?");
  fts.bind(1, e.name);
  fts.bind(2, static_cast<int64_t>(event_id));
  fts.exec();
}

bool Transaction::tier_exists(std::string_view key) {
  return exists(c_, "SELECT 1 FROM tiers WHERE key = ?", std::string(key));
}

void Transaction::update_tier(std::int64_t event_id, const Tier& t, std::int64_t capacity_delta) {
  auto& st = c_.prepare(
      "UPDATE tiers SET category = ?, price_minor = ?, currency = ?, start_ms = ?, end_ms = ?, "
      "max_per_order = ?, max_per_user = ?, capacity = capacity + ?9, available = available + ?9 "
      "WHERE key = ? AND event_id = ?");
  st.bind(1, t.category);
  st.bind(2, static_cast<int64_t>(t.price.minor));
  st.bind(3, t.price.currency);
  st.bind(4, static_cast<int64_t>(ms(t.start)));
  st.bind(5, static_cast<int64_t>(ms(t.end)));
  bind_optional(st, 6, t.max_per_order);
  bind_optional(st, 7, t.max_per_user);
  st.bind(9, static_cast<int64_t>(capacity_delta));
  st.bind(10, t.key);
  st.bind(11, static_cast<int64_t>(event_id));
  st.exec();
}

void Transaction::insert_tier(std::int64_t event_id, const Tier& t) {
  auto& count = c_.prepare("SELECT COALESCE(MAX(position) + 1, 0) FROM tiers WHERE event_id = ?");
  count.bind(1, static_cast<int64_t>(event_id));
  count.executeStep();
  const auto position = static_cast<std::size_t>(count.getColumn(0).getInt64());
  count.reset();
  insert_tier_row(c_, event_id, position, t);
}

void Transaction::replace_waves(std::int64_t event_id, const std::vector<ReleaseWave>& waves) {
  // Waves that are gone: their bookings count against none, then the rows go.
  std::string starts = "[";
  for (const ReleaseWave& w : waves) {
    if (starts.size() > 1) starts += ',';
    starts += std::to_string(ms(w.start));
  }
  starts += ']';
  auto& unlink = c_.prepare(
      "UPDATE bookings SET wave_id = NULL WHERE event_id = ?1 AND wave_id IN (SELECT id FROM "
      "waves WHERE event_id = ?1 AND start_ms NOT IN (SELECT value FROM json_each(?2)))");
  unlink.bind(1, static_cast<int64_t>(event_id));
  unlink.bind(2, starts);
  unlink.exec();
  auto& drop = c_.prepare(
      "DELETE FROM waves WHERE event_id = ?1 AND start_ms NOT IN "
      "(SELECT value FROM json_each(?2))");
  drop.bind(1, static_cast<int64_t>(event_id));
  drop.bind(2, starts);
  drop.exec();
  for (const ReleaseWave& w : waves) {
    auto& keep =
        c_.prepare("UPDATE waves SET end_ms = ?, lim = ? WHERE event_id = ? AND start_ms = ?");
    keep.bind(1, static_cast<int64_t>(ms(w.end)));
    keep.bind(2, static_cast<int64_t>(w.limit));
    keep.bind(3, static_cast<int64_t>(event_id));
    keep.bind(4, static_cast<int64_t>(ms(w.start)));
    if (keep.exec() == 0) insert_wave_row(c_, event_id, w);
  }
}

std::vector<std::string> Transaction::live_booking_ids(std::int64_t event_id, std::size_t max) {
  auto& st = c_.prepare(
      "SELECT id FROM bookings WHERE event_id = ? AND status IN ('HELD', 'CONFIRMED') LIMIT ?");
  st.bind(1, static_cast<int64_t>(event_id));
  st.bind(2, static_cast<int64_t>(max));
  std::vector<std::string> ids;
  while (st.executeStep()) ids.push_back(st.getColumn(0).getString());
  return ids;
}

std::optional<IdempotencyRecord> Transaction::find_idempotency(std::string_view key) {
  return detail::find_idempotency(c_, key);
}

std::int64_t Transaction::count_user_tickets(std::string_view user, std::int64_t event_id,
                                             std::string_view tier) {
  auto& st = c_.prepare(
      "SELECT COALESCE(SUM(json_extract(l.value, '$[1]')), 0) "
      "FROM bookings b, json_each(b.lines) AS l "
      "WHERE b.user_id = ? AND b.event_id = ? AND json_extract(l.value, '$[0]') = ? "
      "AND b.status IN ('HELD', 'CONFIRMED')");
  st.bind(1, std::string(user));
  st.bind(2, static_cast<int64_t>(event_id));
  st.bind(3, std::string(tier));
  st.executeStep();
  return st.getColumn(0).getInt64();
}

std::int64_t Transaction::count_client_held(std::string_view client) {
  auto& st = c_.prepare(
      "SELECT COALESCE(SUM(json_extract(l.value, '$[1]')), 0) "
      "FROM bookings b, json_each(b.lines) AS l WHERE b.client = ? AND b.status = 'HELD'");
  st.bind(1, std::string(client));
  st.executeStep();
  return st.getColumn(0).getInt64();
}

void Transaction::forget_idempotency(std::string_view key) {
  auto& st = c_.prepare(
      "UPDATE bookings SET idempotency_key = NULL, request_hash = NULL WHERE idempotency_key = ?");
  st.bind(1, std::string(key));
  st.exec();
}

namespace {
std::optional<TierCounters> read_tier(Connection& c, std::int64_t event_id, std::string_view tier) {
  auto& st =
      c.prepare("SELECT capacity, available, held, sold FROM tiers WHERE key = ? AND event_id = ?");
  st.bind(1, std::string(tier));
  st.bind(2, static_cast<int64_t>(event_id));
  if (!st.executeStep()) return std::nullopt;
  return TierCounters{st.getColumn(0).getInt64(), st.getColumn(1).getInt64(),
                      st.getColumn(2).getInt64(), st.getColumn(3).getInt64()};
}
}  // namespace

BatchTier* Transaction::batch_tier(std::int64_t event_id, std::string_view tier) {
  if (!batching_) return nullptr;
  if (BatchTier* t = tiers_.find(event_id, tier)) return t;
  if (tiers_.find(tier)) return nullptr;  // another event's tier: the SQL answers as it would
  auto counters = read_tier(c_, event_id, tier);
  return counters ? &tiers_.add(std::string(tier), event_id, *counters) : nullptr;
}

void Transaction::flush_batch() {
  for (auto& [key, t] : tiers_) {
    if (!t.changed) continue;
    auto& st = c_.prepare(
        "UPDATE tiers SET available = available + ?, held = held + ?, sold = sold + ? "
        "WHERE key = ? AND event_id = ?");
    const StockDelta d = t.delta();
    st.bind(1, static_cast<int64_t>(d.available));
    st.bind(2, static_cast<int64_t>(d.held));
    st.bind(3, static_cast<int64_t>(d.sold));
    st.bind(4, key);
    st.bind(5, static_cast<int64_t>(t.event_id));
    st.exec();
    st.reset();
  }
  tiers_.clear();
  states_.clear();
  batching_ = false;
}

std::optional<TierCounters> Transaction::load_tier(std::int64_t event_id, std::string_view tier) {
  if (BatchTier* t = batch_tier(event_id, tier)) return t->counters;
  return read_tier(c_, event_id, tier);
}

std::optional<WaveCounters> Transaction::load_wave(std::int64_t event_id, Instant start) {
  auto& st = c_.prepare("SELECT id, lim, booked FROM waves WHERE event_id = ? AND start_ms = ?");
  st.bind(1, static_cast<int64_t>(event_id));
  st.bind(2, static_cast<int64_t>(ms(start)));
  if (!st.executeStep()) return std::nullopt;
  return WaveCounters{st.getColumn(0).getInt64(), st.getColumn(1).getInt64(),
                      st.getColumn(2).getInt64()};
}

bool Transaction::take_stock(std::int64_t event_id, std::string_view tier, std::int64_t qty) {
  if (BatchTier* t = batch_tier(event_id, tier)) return t->take(qty);
  auto& st = c_.prepare(
      "UPDATE tiers SET available = available - ?1, held = held + ?1 "
      "WHERE key = ?2 AND event_id = ?3 AND available >= ?1");
  st.bind(1, static_cast<int64_t>(qty));
  st.bind(2, std::string(tier));
  st.bind(3, static_cast<int64_t>(event_id));
  return st.exec() > 0;
}

void Transaction::add_stock(std::string_view tier, const StockDelta& d) {
  if (BatchTier* t = batching_ ? tiers_.find(tier) : nullptr) {
    t->add(d);
    return;
  }
  auto& st = c_.prepare(
      "UPDATE tiers SET available = available + ?, held = held + ?, sold = sold + ? "
      "WHERE key = ?");
  st.bind(1, static_cast<int64_t>(d.available));
  st.bind(2, static_cast<int64_t>(d.held));
  st.bind(3, static_cast<int64_t>(d.sold));
  st.bind(4, std::string(tier));
  st.exec();
}

void Transaction::add_wave_booked(std::int64_t wave_id, std::int64_t delta) {
  auto& st = c_.prepare("UPDATE waves SET booked = booked + ? WHERE id = ?");
  st.bind(1, static_cast<int64_t>(delta));
  st.bind(2, static_cast<int64_t>(wave_id));
  st.exec();
}

void Transaction::insert_booking(const Booking& b, std::int64_t event_id,
                                 std::optional<std::int64_t> wave_id,
                                 const std::string& fingerprint) {
  auto& ins = c_.prepare(
      "INSERT INTO bookings (id, event_id, event_key, user_id, status, total_minor, currency, "
      "created_ms, expires_ms, wave_id, idempotency_key, request_hash, lines, client) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  ins.bind(1, b.id);
  ins.bind(2, static_cast<int64_t>(event_id));
  ins.bind(3, b.event_key);
  bind_optional(ins, 4, b.user_id);
  ins.bind(5, std::string(to_string(b.status)));
  ins.bind(6, static_cast<int64_t>(b.total.minor));
  ins.bind(7, b.total.currency);
  ins.bind(8, static_cast<int64_t>(ms(b.created_at)));
  ins.bind(9, static_cast<int64_t>(ms(b.expires_at)));
  bind_optional(ins, 10, wave_id);
  bind_optional(ins, 11, b.idempotency_key);
  if (b.idempotency_key) {
    ins.bind(12, fingerprint);
  } else {
    ins.bind(12);
  }
  ins.bind(13, encode_lines(b.lines));
  bind_optional(ins, 14, b.client);
  ins.exec();
}

std::optional<StoredBooking> Transaction::load_booking(std::string_view id) {
  auto b = detail::load_booking(c_, id);
  if (!b) return std::nullopt;
  auto& st = c_.prepare("SELECT event_id, wave_id FROM bookings WHERE id = ?");
  st.bind(1, std::string(id));
  st.executeStep();
  return StoredBooking{std::move(*b), st.getColumn(0).getInt64(), optional_int(st.getColumn(1))};
}

void Transaction::append_change(const ChangeRecord& record) { detail::append_change(c_, record); }

void Transaction::update_booking(const Booking& b) {
  auto& st = c_.prepare(
      "UPDATE bookings SET status = ?, payment_method = ?, payment_ref = ? WHERE id = ?");
  st.bind(1, std::string(to_string(b.status)));
  bind_optional(st, 2, b.payment_method);
  bind_optional(st, 3, b.payment_reference);
  st.bind(4, b.id);
  st.exec();
}

std::size_t expire_batch(Connection& c, std::int64_t now_ms, std::size_t max) {
  // Set-based: a temp table of the due ids, then one aggregated UPDATE per table. 100,000
  // holds expire in a few statements instead of 300,000.
  c.db().exec("CREATE TEMP TABLE IF NOT EXISTS due_ids (id TEXT PRIMARY KEY) WITHOUT ROWID");
  c.db().exec("DELETE FROM temp.due_ids");
  auto& pick = c.prepare(
      "INSERT INTO temp.due_ids SELECT id FROM bookings WHERE status = 'HELD' AND expires_ms <= ? "
      "ORDER BY expires_ms LIMIT ?");
  pick.bind(1, static_cast<int64_t>(now_ms));
  pick.bind(2, static_cast<int64_t>(max));
  int n = pick.exec();
  if (n == 0) return 0;
  c.prepare(
       "UPDATE tiers SET held = held - s.q, available = available + s.q FROM "
       "(SELECT json_extract(l.value, '$[0]') AS k, SUM(json_extract(l.value, '$[1]')) AS q "
       " FROM temp.due_ids d JOIN bookings b ON b.id = d.id, json_each(b.lines) AS l "
       " GROUP BY k) AS s "
       "WHERE tiers.key = s.k")
      .exec();
  c.prepare(
       "UPDATE waves SET booked = booked - s.q FROM "
       "(SELECT b.wave_id AS w, SUM(json_extract(l.value, '$[1]')) AS q "
       " FROM temp.due_ids d JOIN bookings b ON b.id = d.id, json_each(b.lines) AS l "
       " WHERE b.wave_id IS NOT NULL GROUP BY b.wave_id) AS s "
       "WHERE waves.id = s.w")
      .exec();
  c.prepare("UPDATE bookings SET status = 'EXPIRED' WHERE id IN (SELECT id FROM temp.due_ids)")
      .exec();
  auto& record = c.prepare(
      "INSERT INTO changes (at_ms, type, event_key, book_id, actor) "
      "SELECT ?, 'booking.expired', b.event_key, b.id, ? "
      "FROM temp.due_ids d JOIN bookings b ON b.id = d.id ORDER BY b.expires_ms, b.id");
  record.bind(1, static_cast<int64_t>(now_ms));
  record.bind(2, current_actor());
  record.exec();
  return static_cast<std::size_t>(n);
}

}  // namespace booking::detail
