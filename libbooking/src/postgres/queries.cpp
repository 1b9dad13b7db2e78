#include "postgres/queries.hpp"

#include <algorithm>
#include <booking/json_codec.hpp>
#include <boost/json/parse.hpp>
#include <map>
#include <set>
#include <unordered_map>

#include "core/repository_rules.hpp"

namespace booking::detail::pg {

std::int64_t ms(Instant t) { return t.time_since_epoch().count(); }
Instant instant(std::int64_t v) { return Instant(std::chrono::milliseconds(v)); }

bool exists(Connection& c, const char* sql, const std::string& key) {
  return c.exec(sql, {param(key)}).rows() > 0;
}

result<std::int64_t> insert_event(Connection& c, const Event& e) {
  if (exists(c, "SELECT 1 FROM events WHERE key = $1", e.key))
    return detail::duplicate_key_error(e.key);
  for (const Tier& t : e.tiers) {
    if (exists(c, "SELECT 1 FROM tiers WHERE key = $1", t.key))
      return detail::duplicate_key_error(t.key);
  }
  Result id = c.exec(
      "INSERT INTO events (key, name, type, promoter, date_ms, venue, address, utc_offset_min) "
      "VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
      {param(e.key), param(e.name), param(e.type), param(e.promoter), param(ms(e.date)),
       param(e.location.venue), param(e.location.address),
       param(std::int64_t{e.utc_offset_minutes})});
  const std::int64_t event_id = id.int64(0, 0);
  for (std::size_t i = 0; i < e.tiers.size(); ++i) {
    insert_tier_row(c, event_id, static_cast<std::int64_t>(i), e.tiers[i]);
  }
  for (const ReleaseWave& w : e.waves) insert_wave_row(c, event_id, w);
  return event_id;
}

void insert_tier_row(Connection& c, std::int64_t event_id, std::int64_t position, const Tier& t) {
  c.exec(
      "INSERT INTO tiers (key, event_id, position, category, price_minor, currency, capacity, "
      "available, held, sold, start_ms, end_ms, max_per_order, max_per_user) "
      "VALUES ($1, $2, $3, $4, $5, $6, $7, $7, 0, 0, $8, $9, $10, $11)",
      {param(t.key), param(event_id), param(position), param(t.category), param(t.price.minor),
       param(t.price.currency), param(t.capacity), param(ms(t.start)), param(ms(t.end)),
       param(t.max_per_order), param(t.max_per_user)});
}

void insert_wave_row(Connection& c, std::int64_t event_id, const ReleaseWave& w) {
  c.exec("INSERT INTO waves (event_id, start_ms, end_ms, lim) VALUES ($1, $2, $3, $4)",
         {param(event_id), param(ms(w.start)), param(ms(w.end)), param(w.limit)});
}

void replace_waves(Connection& c, std::int64_t event_id, const std::vector<ReleaseWave>& waves) {
  std::vector<std::string> starts;
  for (const ReleaseWave& w : waves) starts.push_back(std::to_string(ms(w.start)));
  const std::string kept = array_literal(starts);
  // Waves that are gone: their bookings count against none, then the rows go.
  c.exec(
      "UPDATE bookings SET wave_id = NULL WHERE event_id = $1 AND wave_id IN (SELECT id FROM "
      "waves WHERE event_id = $1 AND start_ms <> ALL($2::bigint[]))",
      {param(event_id), param(kept)});
  c.exec("DELETE FROM waves WHERE event_id = $1 AND start_ms <> ALL($2::bigint[])",
         {param(event_id), param(kept)});
  for (const ReleaseWave& w : waves) {
    Result r =
        c.exec("UPDATE waves SET end_ms = $1, lim = $2 WHERE event_id = $3 AND start_ms = $4",
               {param(ms(w.end)), param(w.limit), param(event_id), param(ms(w.start))});
    if (r.affected() == 0) insert_wave_row(c, event_id, w);
  }
}

// Events of `rows` (in kEventColumns order) with their tiers and waves: three queries for a
// whole page, not three per event.
std::vector<Event> load_events(Connection& c, const Result& rows) {
  std::vector<Event> out;
  std::string ids = "{";
  for (int r = 0; r < rows.rows(); ++r) {
    Event e;
    e.id = rows.int64(r, 0);
    e.key = rows.text(r, 1);
    e.name = rows.text(r, 2);
    e.type = rows.text(r, 3);
    e.promoter = rows.optional_text(r, 4);
    e.date = instant(rows.int64(r, 5));
    e.location = {rows.text(r, 6), rows.text(r, 7)};
    e.utc_offset_minutes = static_cast<std::int32_t>(rows.int64(r, 8));
    e.status = parse_event_status(rows.text(r, 9)).value_or(EventStatus::on_sale);
    e.version = rows.int64(r, 10);
    if (r) ids += ',';
    ids += std::to_string(e.id);
    out.push_back(std::move(e));
  }
  ids += "}";
  if (out.empty()) return out;
  auto find = [&](std::int64_t id) -> Event& {
    for (Event& e : out) {
      if (e.id == id) return e;
    }
    throw PgError("row for an event not asked for", "XX000", "", false);
  };
  Result tiers = c.exec(
      "SELECT event_id, key, category, price_minor, currency, capacity, available, held, sold, "
      "start_ms, end_ms, max_per_order, max_per_user FROM tiers WHERE event_id = ANY($1::bigint[]) "
      "ORDER BY event_id, position",
      {param(ids)});
  for (int r = 0; r < tiers.rows(); ++r) {
    Tier t;
    t.key = tiers.text(r, 1);
    t.category = tiers.text(r, 2);
    t.price = Money{tiers.int64(r, 3), tiers.text(r, 4)};
    t.capacity = tiers.int64(r, 5);
    t.stock = TierStock{t.capacity, tiers.int64(r, 6), tiers.int64(r, 7), tiers.int64(r, 8)};
    t.start = instant(tiers.int64(r, 9));
    t.end = instant(tiers.int64(r, 10));
    t.max_per_order = tiers.optional_int64(r, 11);
    t.max_per_user = tiers.optional_int64(r, 12);
    find(tiers.int64(r, 0)).tiers.push_back(std::move(t));
  }
  Result waves = c.exec(
      "SELECT event_id, start_ms, end_ms, lim, booked FROM waves "
      "WHERE event_id = ANY($1::bigint[]) ORDER BY event_id, start_ms",
      {param(ids)});
  for (int r = 0; r < waves.rows(); ++r) {
    find(waves.int64(r, 0))
        .waves.push_back(ReleaseWave{instant(waves.int64(r, 1)), instant(waves.int64(r, 2)),
                                     waves.int64(r, 3), waves.int64(r, 4)});
  }
  return out;
}

std::optional<StoredBooking> load_booking(Connection& c, std::string_view id, bool for_update) {
  Result r =
      c.exec(for_update ? "SELECT id, event_key, user_id, status, total_minor, currency, "
                          "created_ms, expires_ms, payment_method, payment_ref, "
                          "idempotency_key, event_id, wave_id, client FROM bookings WHERE id = $1 "
                          "FOR UPDATE"
                        : "SELECT id, event_key, user_id, status, total_minor, currency, "
                          "created_ms, expires_ms, payment_method, payment_ref, "
                          "idempotency_key, event_id, wave_id, client FROM bookings WHERE id = $1",
             {param(id)});
  if (r.rows() == 0) return std::nullopt;
  StoredBooking sb;
  Booking& b = sb.booking;
  b.id = r.text(0, 0);
  b.event_key = r.text(0, 1);
  b.user_id = r.optional_text(0, 2);
  b.status = parse_booking_status(r.text(0, 3)).value_or(BookingStatus::held);
  b.total = Money{r.int64(0, 4), r.text(0, 5)};
  b.created_at = instant(r.int64(0, 6));
  b.expires_at = instant(r.int64(0, 7));
  b.payment_method = r.optional_text(0, 8);
  b.payment_reference = r.optional_text(0, 9);
  b.idempotency_key = r.optional_text(0, 10);
  sb.event_id = r.int64(0, 11);
  sb.wave_id = r.optional_int64(0, 12);
  b.client = r.optional_text(0, 13);
  Result lines = c.exec(
      "SELECT tier_key, qty, unit_price_minor FROM booking_lines WHERE booking_id = $1 "
      "ORDER BY position",
      {param(b.id)});
  for (int i = 0; i < lines.rows(); ++i) {
    b.lines.push_back(BookingLine{lines.text(i, 0), lines.int64(i, 1), lines.int64(i, 2)});
  }
  return sb;
}

std::vector<Booking> read_bookings(Connection& c, const Result& r) {
  std::vector<Booking> out;
  std::map<std::string, std::size_t> at;
  std::vector<std::string> ids;
  for (int i = 0; i < r.rows(); ++i) {
    Booking b;
    b.id = r.text(i, 0);
    b.event_key = r.text(i, 1);
    b.user_id = r.optional_text(i, 2);
    b.status = parse_booking_status(r.text(i, 3)).value_or(BookingStatus::held);
    b.total = Money{r.int64(i, 4), r.text(i, 5)};
    b.created_at = instant(r.int64(i, 6));
    b.expires_at = instant(r.int64(i, 7));
    b.payment_method = r.optional_text(i, 8);
    b.payment_reference = r.optional_text(i, 9);
    b.idempotency_key = r.optional_text(i, 10);
    b.client = r.optional_text(i, 11);
    at[b.id] = out.size();
    ids.push_back(b.id);
    out.push_back(std::move(b));
  }
  if (ids.empty()) return out;
  Result lines = c.exec(
      "SELECT booking_id, tier_key, qty, unit_price_minor FROM booking_lines "
      "WHERE booking_id = ANY($1::text[]) ORDER BY booking_id, position",
      {param(array_literal(ids))});
  for (int i = 0; i < lines.rows(); ++i) {
    out[at.at(lines.text(i, 0))].lines.push_back(
        BookingLine{lines.text(i, 1), lines.int64(i, 2), lines.int64(i, 3)});
  }
  return out;
}

std::string nullable_array_literal(const std::vector<std::optional<std::string>>& items) {
  std::string out = "{";
  for (const auto& item : items) {
    if (out.size() > 1) out += ',';
    if (!item) {
      out += "NULL";
      continue;
    }
    out += '"';
    for (char ch : *item) {
      if (ch == '"' || ch == '\\') out += '\\';
      out += ch;
    }
    out += '"';
  }
  return out + "}";
}

void Transaction::append_change(const ChangeRecord& r, const Event* definition) {
  pending_.push_back(PendingChange{
      r.type, ms(r.at), std::string(r.event_key),
      r.booking ? std::optional(r.booking->id) : std::nullopt, std::string(r.actor),
      definition ? std::optional(to_text(definition_json(*definition))) : std::nullopt});
}

void Transaction::flush_changes() {
  if (pending_.empty()) return;
  const auto n = static_cast<std::int64_t>(pending_.size());
  std::vector<std::optional<std::string>> ats, types, keys, books, actors, data;
  std::unordered_map<std::string, std::string> definitions;  // event key -> its JSON
  for (const PendingChange& p : pending_) {
    ats.push_back(std::to_string(p.at_ms));
    types.push_back(std::string(to_string(p.type)));
    keys.push_back(p.event_key);
    books.push_back(p.booking_id);
    actors.push_back(p.actor);
    if (p.booking_id || p.data) {
      data.push_back(p.data);  // a booking's is rebuilt from the booking when read
      continue;
    }
    auto it = definitions.find(p.event_key);
    if (it == definitions.end()) {
      static const std::string sql = std::string(kEventColumns) + "WHERE key = $1";
      auto events = load_events(c_, c_.exec(sql.c_str(), {param(p.event_key)}));
      it = definitions
               .emplace(p.event_key,
                        events.empty() ? "{}" : to_text(definition_json(events.front())))
               .first;
    }
    data.push_back(it->second);
  }
  // The counter's row is locked from here until COMMIT (every instance's commits queue on it),
  // so the numbers are taken and the changes written in one statement: one round trip under
  // the lock, not two. The changes take last_seq - n + 1 .. last_seq in order.
  c_.exec(
      "WITH f AS (UPDATE feed_state SET last_seq = last_seq + $1 WHERE id = 1 RETURNING last_seq) "
      "INSERT INTO changes (seq, at_ms, type, event_key, book_id, actor, data) "
      "SELECT f.last_seq - $1 + u.ord, u.at, u.type, u.key, u.book, u.actor, u.data FROM f, "
      "unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[]) "
      "WITH ORDINALITY AS u(at, type, key, book, actor, data, ord)",
      {param(n), param(nullable_array_literal(ats)), param(nullable_array_literal(types)),
       param(nullable_array_literal(keys)), param(nullable_array_literal(books)),
       param(nullable_array_literal(actors)), param(nullable_array_literal(data))});
  pending_.clear();
}

std::vector<Change> read_changes(Connection& c, std::int64_t after, std::size_t limit) {
  Result rows = c.exec(
      "SELECT seq, at_ms, type, event_key, book_id, actor, data FROM changes WHERE seq > $1 "
      "ORDER BY seq LIMIT $2",
      {param(after), param(static_cast<std::int64_t>(limit))});
  std::vector<Change> out;
  std::vector<std::string> ids;
  for (int i = 0; i < rows.rows(); ++i) {
    Change ch;
    ch.seq = rows.int64(i, 0);
    ch.at = instant(rows.int64(i, 1));
    ch.type = parse_change_type(rows.text(i, 2)).value_or(ChangeType::booking_held);
    ch.event_key = rows.text(i, 3);
    ch.booking_id = rows.optional_text(i, 4);
    ch.actor = rows.text(i, 5);
    if (ch.booking_id) {
      ids.push_back(*ch.booking_id);
    } else if (auto text = rows.optional_text(i, 6)) {
      auto parsed = boost::json::parse(*text);
      if (parsed.is_object()) ch.data = std::move(parsed.as_object());
    }
    out.push_back(std::move(ch));
  }
  if (ids.empty()) return out;
  static const std::string sql = std::string(kBookingListColumns) + "WHERE id = ANY($1::text[])";
  std::unordered_map<std::string, Booking> bookings;
  for (Booking& b : read_bookings(c, c.exec(sql.c_str(), {param(array_literal(ids))}))) {
    std::string id = b.id;
    bookings.emplace(std::move(id), std::move(b));
  }
  for (Change& ch : out) {
    if (!ch.booking_id) continue;
    auto it = bookings.find(*ch.booking_id);
    if (it != bookings.end()) ch.data = booking_change_data(it->second, ch.type);
  }
  return out;
}

FeedBounds feed_bounds(Connection& c) {
  Result r = c.exec(
      "SELECT COALESCE((SELECT value FROM booking_meta WHERE name = 'feed_floor'), 0), "
      "COALESCE((SELECT last_seq FROM feed_state WHERE id = 1), 0)");
  return FeedBounds{r.int64(0, 0), r.int64(0, 1)};
}

std::size_t prune_changes(Connection& c, std::int64_t cutoff_ms, std::size_t max) {
  // From the oldest, while they are old enough: one pass over the few rows that go.
  // The newest change stays, and so does every change a webhook has not received yet.
  // Usually even the oldest is too young: a look at it alone saves fetching `max` rows.
  Result first = c.exec("SELECT at_ms FROM changes ORDER BY seq LIMIT 1");
  if (first.rows() == 0 || first.int64(0, 0) >= cutoff_ms) return 0;
  Result oldest = c.exec(
      "SELECT seq, at_ms FROM changes WHERE seq < (SELECT last_seq FROM feed_state WHERE id = 1) "
      "AND seq <= COALESCE((SELECT MIN(position) FROM webhooks), seq) ORDER BY seq LIMIT $1",
      {param(static_cast<std::int64_t>(max))});
  std::int64_t upto = 0;
  std::size_t n = 0;
  for (int i = 0; i < oldest.rows() && oldest.int64(i, 1) < cutoff_ms; ++i) {
    upto = oldest.int64(i, 0);
    ++n;
  }
  if (n == 0) return 0;
  c.exec("DELETE FROM changes WHERE seq <= $1", {param(upto)});
  c.exec(
      "INSERT INTO booking_meta (name, value) VALUES ('feed_floor', $1) "
      "ON CONFLICT (name) DO UPDATE SET value = GREATEST(booking_meta.value, excluded.value)",
      {param(upto)});
  return n;
}

namespace {
constexpr const char* kDbNowMs = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint";
}

std::optional<WebhookState> lease_webhook(Connection& c, std::string_view url,
                                          std::string_view owner, std::int64_t ttl_ms) {
  static const std::string take =
      std::string(
          "INSERT INTO webhooks (url, position, lease_owner, lease_until_ms) VALUES "
          "($1, (SELECT last_seq FROM feed_state WHERE id = 1), $2, ") +
      kDbNowMs +
      " + $3) ON CONFLICT (url) DO UPDATE SET lease_owner = excluded.lease_owner, "
      "lease_until_ms = excluded.lease_until_ms WHERE webhooks.lease_owner IS NOT DISTINCT FROM "
      "excluded.lease_owner OR webhooks.lease_until_ms < " +
      kDbNowMs + " RETURNING position, failing_since_ms, paused";
  Result r = c.exec(take.c_str(), {param(url), param(owner), param(ttl_ms)});
  if (r.rows() == 0) return std::nullopt;  // another owner's lease
  WebhookState w;
  w.position = r.int64(0, 0);
  if (auto since = r.optional_int64(0, 1)) w.failing_since = instant(*since);
  w.paused = r.text(0, 2) == "t";
  return w;
}

bool save_webhook(Connection& c, std::string_view url, std::string_view owner,
                  const WebhookState& w) {
  static const std::string sql =
      std::string(
          "UPDATE webhooks SET position = $1, failing_since_ms = $2, paused = $3 WHERE url = $4 "
          "AND lease_owner = $5 AND lease_until_ms >= ") +
      kDbNowMs;
  return c.exec(sql.c_str(),
                {param(w.position),
                 param(w.failing_since ? std::optional<std::int64_t>(ms(*w.failing_since))
                                       : std::nullopt),
                 param(w.paused ? "true" : "false"), param(url), param(owner)})
             .affected() > 0;
}

std::vector<std::pair<std::string, WebhookState>> list_webhooks(Connection& c) {
  Result r = c.exec("SELECT url, position, failing_since_ms, paused FROM webhooks ORDER BY url");
  std::vector<std::pair<std::string, WebhookState>> out;
  for (int i = 0; i < r.rows(); ++i) {
    WebhookState w;
    w.position = r.int64(i, 1);
    if (auto since = r.optional_int64(i, 2)) w.failing_since = instant(*since);
    w.paused = r.text(i, 3) == "t";
    out.emplace_back(r.text(i, 0), w);
  }
  return out;
}

bool resume_webhook(Connection& c, std::string_view url) {
  return c.exec("UPDATE webhooks SET paused = false, failing_since_ms = NULL WHERE url = $1",
                {param(url)})
             .affected() > 0;
}

std::optional<EventState> event_state(const Result& r) {
  if (r.rows() == 0) return std::nullopt;
  return EventState{r.int64(0, 0), parse_event_status(r.text(0, 1)).value_or(EventStatus::on_sale),
                    r.int64(0, 2)};
}

std::optional<IdempotencyRecord> find_idempotency_record(Connection& c, std::string_view key) {
  Result r = c.exec("SELECT id, request_hash, created_ms FROM bookings WHERE idempotency_key = $1",
                    {param(key)});
  if (r.rows() == 0) return std::nullopt;
  return IdempotencyRecord{r.text(0, 0), r.text(0, 1), instant(r.int64(0, 2))};
}

// Locks, in the one global order, every row the holds of `batch` may change: their events
// (shared), the per-user and per-client advisory locks (by hash), the tiers (by key), the waves of
// their events (by id). Two batches (or a batch and a confirm) then never wait for each other in a
// cycle, which PostgreSQL would only break after deadlock_timeout (1 s). A lone hold on one tier
// without waves or per-user limits needs none: its one UPDATE is its one lock.
LockedRows lock_rows(Connection& c, std::span<QueuedHold* const> batch, TierLock how) {
  std::set<std::string> tiers;
  std::vector<std::string> users;   // with events[i]: the (user, event) pairs of
  std::vector<std::string> events;  // per-user limited holds
  std::set<std::string> wave_events;
  std::set<std::int64_t> event_ids;
  for (const QueuedHold* h : batch) {
    const HoldPlan& plan = h->plan();
    if (plan.event_id != 0) event_ids.insert(plan.event_id);
    for (const BookingLine& l : plan.booking.lines) tiers.insert(l.tier_key);
    const bool limited = std::any_of(plan.max_per_user.begin(), plan.max_per_user.end(),
                                     [](const auto& m) { return m.has_value(); });
    if (plan.booking.user_id && limited) {
      users.push_back(*plan.booking.user_id);
      events.push_back(std::to_string(plan.event_id));
    }
    if (plan.booking.client && plan.max_held_by_client) {  // count_client_held's lock
      users.push_back(*plan.booking.client);
      events.push_back("0");
    }
    if (plan.wave_start) wave_events.insert(std::to_string(plan.event_id));
  }
  if (batch.size() == 1 && tiers.size() == 1 && users.empty() && wave_events.empty()) return {};
  // Events first, shared: an event's update or cancellation locks the event, then its tiers.
  std::vector<std::string> ids;
  for (std::int64_t id : event_ids) ids.push_back(std::to_string(id));
  LockedRows locked;
  Result states = c.exec(
      "SELECT id, status, version FROM events WHERE id = ANY($1::bigint[]) ORDER BY id "
      "FOR SHARE",
      {param(array_literal(ids))});
  for (int i = 0; i < states.rows(); ++i) {
    locked.events.push_back(EventState{
        states.int64(i, 0), parse_event_status(states.text(i, 1)).value_or(EventStatus::on_sale),
        states.int64(i, 2)});
  }
  if (!users.empty()) {
    // The subquery's ORDER BY feeds the aggregate in hash order: the locks are taken in it.
    c.exec(
        "SELECT COUNT(pg_advisory_xact_lock(h)) FROM (SELECT DISTINCT hashtextextended(u, e) AS h "
        "FROM unnest($1::text[], $2::bigint[]) AS t(u, e) ORDER BY h) s",
        {param(array_literal(users)), param(array_literal(events))});
  }
  Result rows = how == TierLock::now
                    ? c.exec(
                          "SELECT key, event_id, capacity, available, held, sold FROM tiers "
                          "WHERE key = ANY($1::text[]) ORDER BY key FOR UPDATE",
                          {param(array_literal(tiers))})
                    : c.exec(
                          "SELECT key, event_id, capacity, available, held, sold FROM tiers "
                          "WHERE key = ANY($1::text[])",
                          {param(array_literal(tiers))});
  if (!wave_events.empty()) {
    c.exec("SELECT id FROM waves WHERE event_id = ANY($1::bigint[]) ORDER BY id FOR UPDATE",
           {param(array_literal(wave_events))});
  }
  for (int i = 0; i < rows.rows(); ++i) {
    const TierCounters read{rows.int64(i, 2), rows.int64(i, 3), rows.int64(i, 4), rows.int64(i, 5)};
    locked.tiers.add(rows.text(i, 0), rows.int64(i, 1), read);
  }
  return locked;
}

bool plain_holds(std::span<QueuedHold* const> batch) {
  if (batch.size() < 2) return false;
  return std::all_of(batch.begin(), batch.end(), [&](const QueuedHold* h) {
    const HoldPlan& p = h->plan();
    return !p.booking.idempotency_key && !p.wave_start && !p.max_held_by_client &&
           std::none_of(p.max_per_user.begin(), p.max_per_user.end(),
                        [](const auto& m) { return m.has_value(); });
  });
}

void Transaction::flush_bookings() {
  if (new_bookings_.empty()) return;
  std::vector<std::optional<std::string>> ids, event_ids, event_keys, users, statuses, totals,
      currencies, created, expires, waves, keys, hashes, clients;
  std::vector<std::optional<std::string>> line_ids, positions, tiers, qtys, prices;
  for (const NewBooking& n : new_bookings_) {
    const Booking& b = n.booking;
    ids.push_back(b.id);
    event_ids.push_back(std::to_string(n.event_id));
    event_keys.push_back(b.event_key);
    users.push_back(b.user_id);
    statuses.push_back(std::string(to_string(b.status)));
    totals.push_back(std::to_string(b.total.minor));
    currencies.push_back(b.total.currency);
    created.push_back(std::to_string(ms(b.created_at)));
    expires.push_back(std::to_string(ms(b.expires_at)));
    waves.push_back(n.wave_id ? std::optional(std::to_string(*n.wave_id)) : std::nullopt);
    keys.push_back(b.idempotency_key);
    hashes.push_back(b.idempotency_key ? std::optional(n.fingerprint) : std::nullopt);
    clients.push_back(b.client);
    for (std::size_t i = 0; i < b.lines.size(); ++i) {
      line_ids.push_back(b.id);
      positions.push_back(std::to_string(i));
      tiers.push_back(b.lines[i].tier_key);
      qtys.push_back(std::to_string(b.lines[i].qty));
      prices.push_back(std::to_string(b.lines[i].unit_price_minor));
    }
  }
  // One statement, one round trip: the bookings, then (a data-modifying CTE always runs) their
  // lines.
  c_.exec(
      "WITH b AS (INSERT INTO bookings (id, event_id, event_key, user_id, status, total_minor, "
      "currency, created_ms, expires_ms, wave_id, idempotency_key, request_hash, client) SELECT * "
      "FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::bigint[], "
      "$7::text[], $8::bigint[], $9::bigint[], $10::bigint[], $11::text[], $12::text[], "
      "$13::text[])) "
      "INSERT INTO booking_lines (booking_id, position, tier_key, qty, unit_price_minor) "
      "SELECT * FROM unnest($14::text[], $15::int[], $16::text[], $17::bigint[], $18::bigint[])",
      {param(nullable_array_literal(ids)), param(nullable_array_literal(event_ids)),
       param(nullable_array_literal(event_keys)), param(nullable_array_literal(users)),
       param(nullable_array_literal(statuses)), param(nullable_array_literal(totals)),
       param(nullable_array_literal(currencies)), param(nullable_array_literal(created)),
       param(nullable_array_literal(expires)), param(nullable_array_literal(waves)),
       param(nullable_array_literal(keys)), param(nullable_array_literal(hashes)),
       param(nullable_array_literal(clients)), param(nullable_array_literal(line_ids)),
       param(nullable_array_literal(positions)), param(nullable_array_literal(tiers)),
       param(nullable_array_literal(qtys)), param(nullable_array_literal(prices))});
  new_bookings_.clear();
}

bool Transaction::flush_batch(TierLock how) {
  flush_bookings();
  if (how == TierLock::last) {
    // The counters were read without a lock: apply the batch's difference, on the condition
    // that the stock it took is still there (the row's latest version, after waiting for any
    // other writer). If it is not, the caller rolls back and judges the batch again under the
    // lock. The rows are updated in key order, the order every batch and confirm locks tiers
    // in, so two instances' batches never wait for each other in a cycle.
    std::map<std::string, const LockedTier*> changed;
    for (const auto& [key, t] : tiers_) {
      if (t.changed) changed.emplace(key, &t);
    }
    for (const auto& [key, tier] : changed) {
      const LockedTier& t = *tier;
      const StockDelta d = t.delta();
      if (c_.exec("UPDATE tiers SET available = available + $1, held = held + $2, "
                  "sold = sold + $3 WHERE key = $4 AND event_id = $5 AND available + $1 >= 0",
                  {param(d.available), param(d.held), param(d.sold), param(key), param(t.event_id)})
              .affected() == 0) {
        return false;
      }
    }
    tiers_.clear();
    batching_ = false;
    return true;
  }
  std::vector<std::string> keys, available, held, sold;
  for (const auto& [key, t] : tiers_) {
    if (!t.changed) continue;
    keys.push_back(key);
    available.push_back(std::to_string(t.counters.available));
    held.push_back(std::to_string(t.counters.held));
    sold.push_back(std::to_string(t.counters.sold));
  }
  if (!keys.empty()) {
    // The rows are locked by this transaction: the values judged here are theirs.
    c_.exec(
        "UPDATE tiers SET available = v.a, held = v.h, sold = v.s FROM unnest($1::text[], "
        "$2::bigint[], $3::bigint[], $4::bigint[]) AS v(k, a, h, s) WHERE tiers.key = v.k",
        {param(array_literal(keys)), param(array_literal(available)), param(array_literal(held)),
         param(array_literal(sold))});
  }
  tiers_.clear();
  batching_ = false;
  return true;
}

}  // namespace booking::detail::pg
