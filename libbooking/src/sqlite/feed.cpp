// The change feed and webhook delivery state on SQLite (see EventRepository).
#include <booking/json_codec.hpp>
#include <boost/json/parse.hpp>

#include "sqlite/queries.hpp"
#include "sqlite/rows.hpp"

namespace booking::detail {

void append_change(Connection& c, const ChangeRecord& r, const Event* definition) {
  auto& st = c.prepare(
      "INSERT INTO changes (at_ms, type, event_key, book_id, actor, data) VALUES (?, ?, ?, ?, ?, "
      "?)");
  st.bind(1, static_cast<int64_t>(ms(r.at)));
  st.bind(2, std::string(to_string(r.type)));
  st.bind(3, std::string(r.event_key));
  if (r.booking) {
    st.bind(4, r.booking->id);  // its data is rebuilt from the booking when read
    st.bind(6);
  } else {
    std::optional<Event> stored;
    if (!definition) stored = load_event(c, r.event_key);
    if (stored) definition = &*stored;
    st.bind(4);
    st.bind(6, definition ? to_text(definition_json(*definition)) : std::string("{}"));
  }
  st.bind(5, std::string(r.actor));
  st.exec();
}

std::vector<Change> read_changes(Connection& c, std::int64_t after, std::size_t limit) {
  static const std::string sql =
      "SELECT b.id, b.event_key, b.user_id, b.status, b.total_minor, b.currency, b.created_ms, "
      "b.expires_ms, b.payment_method, b.payment_ref, b.idempotency_key, b.lines, b.client, "
      "c.seq, c.at_ms, c.type, c.event_key, c.book_id, c.actor, c.data "
      "FROM changes c LEFT JOIN bookings b ON b.id = c.book_id WHERE c.seq > ? ORDER BY c.seq "
      "LIMIT ?";
  auto& st = c.prepare(sql.c_str());
  st.bind(1, static_cast<int64_t>(after));
  st.bind(2, static_cast<int64_t>(limit));
  std::vector<Change> out;
  while (st.executeStep()) {
    Change ch;
    ch.seq = st.getColumn(13).getInt64();
    ch.at = instant(st.getColumn(14).getInt64());
    ch.type = parse_change_type(st.getColumn(15).getString()).value_or(ChangeType::booking_held);
    ch.event_key = st.getColumn(16).getString();
    ch.booking_id = optional_text(st.getColumn(17));
    ch.actor = st.getColumn(18).getString();
    if (!st.getColumn(0).isNull()) {
      ch.data = booking_change_data(read_booking(st), ch.type);
    } else if (!st.getColumn(19).isNull()) {
      auto parsed = boost::json::parse(st.getColumn(19).getString());
      if (parsed.is_object()) ch.data = std::move(parsed.as_object());
    }
    out.push_back(std::move(ch));
  }
  return out;
}

FeedBounds feed_bounds(Connection& c) {
  auto& st = c.prepare(
      "SELECT COALESCE((SELECT value FROM booking_meta WHERE name = 'feed_floor'), 0), "
      "COALESCE((SELECT MAX(seq) FROM changes), 0)");
  st.executeStep();
  FeedBounds b{st.getColumn(0).getInt64(), st.getColumn(1).getInt64()};
  st.reset();
  return b;
}

std::optional<WebhookState> lease_webhook(Connection& c, std::string_view url,
                                          std::string_view owner, std::int64_t now_ms,
                                          std::int64_t ttl_ms) {
  auto& take = c.prepare(
      "INSERT INTO webhooks (url, position, lease_owner, lease_until_ms) "
      "VALUES (?1, COALESCE((SELECT MAX(seq) FROM changes), 0), ?2, ?3 + ?4) "
      "ON CONFLICT (url) DO UPDATE SET lease_owner = excluded.lease_owner, "
      "lease_until_ms = excluded.lease_until_ms "
      "WHERE webhooks.lease_owner IS excluded.lease_owner OR webhooks.lease_until_ms < ?3");
  take.bind(1, std::string(url));
  take.bind(2, std::string(owner));
  take.bind(3, static_cast<int64_t>(now_ms));
  take.bind(4, static_cast<int64_t>(ttl_ms));
  take.exec();
  auto& read = c.prepare(
      "SELECT position, failing_since_ms, paused FROM webhooks WHERE url = ? AND lease_owner = ? "
      "AND lease_until_ms >= ?");
  read.bind(1, std::string(url));
  read.bind(2, std::string(owner));
  read.bind(3, static_cast<int64_t>(now_ms));
  if (!read.executeStep()) return std::nullopt;
  WebhookState w;
  w.position = read.getColumn(0).getInt64();
  if (auto since = optional_int(read.getColumn(1))) w.failing_since = instant(*since);
  w.paused = read.getColumn(2).getInt() != 0;
  read.reset();
  return w;
}

bool save_webhook(Connection& c, std::string_view url, std::string_view owner,
                  const WebhookState& w, std::int64_t now_ms) {
  auto& st = c.prepare(
      "UPDATE webhooks SET position = ?, failing_since_ms = ?, paused = ? "
      "WHERE url = ? AND lease_owner = ? AND lease_until_ms >= ?");
  st.bind(1, static_cast<int64_t>(w.position));
  bind_optional(st, 2,
                w.failing_since ? std::optional<std::int64_t>(ms(*w.failing_since)) : std::nullopt);
  st.bind(3, w.paused ? 1 : 0);
  st.bind(4, std::string(url));
  st.bind(5, std::string(owner));
  st.bind(6, static_cast<int64_t>(now_ms));
  return st.exec() > 0;
}

std::size_t prune_changes(Connection& c, std::int64_t cutoff_ms, std::size_t max) {
  // From the oldest, while they are old enough: one pass over the few rows that go. The
  // newest change always stays (its seq is what the next one counts from), and so does every
  // change a webhook has not received yet.
  auto& pick = c.prepare(
      "SELECT seq, at_ms FROM changes WHERE seq < (SELECT MAX(seq) FROM changes) "
      "AND seq <= COALESCE((SELECT MIN(position) FROM webhooks), seq) ORDER BY seq LIMIT ?");
  pick.bind(1, static_cast<int64_t>(max));
  std::int64_t upto = 0;
  std::size_t n = 0;
  while (pick.executeStep() && pick.getColumn(1).getInt64() < cutoff_ms) {
    upto = pick.getColumn(0).getInt64();
    ++n;
  }
  pick.reset();
  if (n == 0) return 0;
  auto& drop = c.prepare("DELETE FROM changes WHERE seq <= ?");
  drop.bind(1, static_cast<int64_t>(upto));
  drop.exec();
  auto& floor = c.prepare(
      "INSERT INTO booking_meta (name, value) VALUES ('feed_floor', ?) "
      "ON CONFLICT (name) DO UPDATE SET value = excluded.value");
  floor.bind(1, static_cast<int64_t>(upto));
  floor.exec();
  return n;
}

std::vector<std::pair<std::string, WebhookState>> list_webhooks(Connection& c) {
  auto& st = c.prepare("SELECT url, position, failing_since_ms, paused FROM webhooks ORDER BY url");
  std::vector<std::pair<std::string, WebhookState>> out;
  while (st.executeStep()) {
    WebhookState w;
    w.position = st.getColumn(1).getInt64();
    if (auto since = optional_int(st.getColumn(2))) w.failing_since = instant(*since);
    w.paused = st.getColumn(3).getInt() != 0;
    out.emplace_back(st.getColumn(0).getString(), w);
  }
  return out;
}

bool resume_webhook(Connection& c, std::string_view url) {
  auto& st = c.prepare("UPDATE webhooks SET paused = 0, failing_since_ms = NULL WHERE url = ?");
  st.bind(1, std::string(url));
  return st.exec() > 0;
}

}  // namespace booking::detail
