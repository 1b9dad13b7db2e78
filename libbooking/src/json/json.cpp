// JSON codecs for the API shapes (docs/api.md), shared by bookingd and the CLI.
#include <algorithm>
#include <array>
#include <booking/json_codec.hpp>
#include <boost/json.hpp>
#include <boost/json/basic_parser_impl.hpp>
#include <charconv>
#include <map>
#include <set>
#include <vector>

#include "json/reader.hpp"

namespace booking {

namespace json = boost::json;
using detail::price_text;
using detail::Reader;
using detail::validation;

namespace {

Tier tier_from_json(const json::value& v, const std::string& prefix, json::object& problems) {
  Tier t;
  if (!v.is_object()) {
    problems[prefix] = "must be an object";
    return t;
  }
  Reader r(v.get_object(), prefix + ".", problems);
  t.key = r.string("key");
  t.category = r.string("category");
  t.price.currency = r.string("currency");
  t.price.minor = r.price("price", t.price.currency);
  // The GET shape carries both qty (available) and capacity; a new tier's capacity is
  // `capacity` when given, else `qty`.
  if (r.get("capacity")) {
    t.capacity = r.integer("capacity").value_or(0);
  } else {
    t.capacity = r.integer("qty").value_or(0);
  }
  t.start = r.instant("startDate");
  t.end = r.instant("endDate");
  t.max_per_order = r.integer("maxPerOrder", false);
  t.max_per_user = r.integer("maxPerUser", false);
  r.only({"key", "category", "price", "currency", "qty", "startDate", "endDate", "maxPerOrder",
          "maxPerUser"});
  return t;
}

}  // namespace

namespace {
// A basic_parser handler that only looks for an object with the same key twice. Boost.JSON
// 1.81 keeps one of them silently; a request that says two things must be refused instead.
struct DuplicateKeyFinder {
  static constexpr std::size_t max_array_size = -1;
  static constexpr std::size_t max_object_size = -1;
  static constexpr std::size_t max_string_size = -1;
  static constexpr std::size_t max_key_size = -1;
  std::vector<std::set<std::string, std::less<>>> objects;
  std::string key;
  std::string duplicate;

  using ec_t = boost::system::error_code;
  bool on_document_begin(ec_t&) { return true; }
  bool on_document_end(ec_t&) { return true; }
  bool on_array_begin(ec_t&) { return true; }
  bool on_array_end(std::size_t, ec_t&) { return true; }
  bool on_object_begin(ec_t&) {
    objects.emplace_back();
    return true;
  }
  bool on_object_end(std::size_t, ec_t&) {
    objects.pop_back();
    return true;
  }
  bool on_string_part(json::string_view, std::size_t, ec_t&) { return true; }
  bool on_string(json::string_view, std::size_t, ec_t&) { return true; }
  bool on_key_part(json::string_view s, std::size_t, ec_t&) {
    key.append(s.data(), s.size());
    return true;
  }
  bool on_key(json::string_view s, std::size_t, ec_t& ec) {
    key.append(s.data(), s.size());
    if (!objects.back().insert(key).second) {
      duplicate = key;
      ec = json::error::syntax;
      return false;
    }
    key.clear();
    return true;
  }
  bool on_number_part(json::string_view, ec_t&) { return true; }
  bool on_int64(std::int64_t, json::string_view, ec_t&) { return true; }
  bool on_uint64(std::uint64_t, json::string_view, ec_t&) { return true; }
  bool on_double(double, json::string_view, ec_t&) { return true; }
  bool on_bool(bool, ec_t&) { return true; }
  bool on_null(ec_t&) { return true; }
  bool on_comment_part(json::string_view, ec_t&) { return true; }
  bool on_comment(json::string_view, ec_t&) { return true; }
};
}  // namespace

result<json::value> parse_json(std::string_view text) {
  json::parse_options options;
  options.max_depth = 64;
  boost::system::error_code ec;
  json::stream_parser parser({}, options);
  const std::size_t used = parser.write_some(text.data(), text.size(), ec);
  if (!ec) parser.finish(ec);
  if (ec) {
    // Where it went wrong, as an editor counts: 1-based line and column (in bytes).
    const std::string_view read = text.substr(0, std::min(used, text.size()));
    const std::size_t line =
        1 + static_cast<std::size_t>(std::count(read.begin(), read.end(), '\n'));
    const std::size_t last_newline = read.rfind('\n');
    const std::size_t column =
        1 + (last_newline == std::string_view::npos ? read.size() : read.size() - last_newline - 1);
    return make_error(
        errc::invalid_json,
        "not valid JSON at line " + std::to_string(line) + ", column " + std::to_string(column) +
            ": " + ec.message(),
        {{"line", static_cast<std::int64_t>(line)}, {"column", static_cast<std::int64_t>(column)}});
  }
  json::value v = parser.release();
  json::basic_parser<DuplicateKeyFinder> finder(options);
  finder.write_some(false, text.data(), text.size(), ec);
  if (!finder.handler().duplicate.empty()) {
    return make_error(errc::invalid_json, "request body has the key '" +
                                              finder.handler().duplicate.substr(0, 64) +
                                              "' twice in one object");
  }
  return v;
}

namespace {
void write_text(std::string& out, const json::value& v) {
  switch (v.kind()) {
    case json::kind::object: {
      out += '{';
      bool first = true;
      for (const auto& kv : v.get_object()) {
        if (!first) out += ',';
        first = false;
        out += json::serialize(json::string(kv.key()));
        out += ':';
        write_text(out, kv.value());
      }
      out += '}';
      return;
    }
    case json::kind::array: {
      out += '[';
      bool first = true;
      for (const auto& e : v.get_array()) {
        if (!first) out += ',';
        first = false;
        write_text(out, e);
      }
      out += ']';
      return;
    }
    case json::kind::double_: {
      char buf[64];
      auto r = std::to_chars(buf, buf + sizeof buf, v.get_double());  // shortest round-trip
      out.append(buf, r.ptr);
      return;
    }
    default:
      out += json::serialize(v);
  }
}
}  // namespace

std::string to_text(const json::value& v) {
  std::string out;
  write_text(out, v);
  return out;
}

json::value money_json(std::int64_t minor, std::string_view currency) {
  int decimals = 2;
  if (auto c = find_currency(currency)) decimals = c.value().decimals;
  std::int64_t unit = 1;
  for (int i = 0; i < decimals; ++i) unit *= 10;
  if (minor % unit == 0) return minor / unit;
  // Exact for any amount below 2^53 minor units; the decimal text is what a client parses.
  return std::stod(format_major_units(minor, decimals));
}

json::object to_json(const Event& e) {
  json::object o;
  o["id"] = e.id;
  o["key"] = e.key;
  o["name"] = e.name;
  o["type"] = e.type;
  o["promoter"] = e.promoter ? json::value(*e.promoter) : json::value(nullptr);
  o["date"] = format_instant(e.date);
  o["utcOffset"] = format_utc_offset(e.utc_offset_minutes);
  o["location"] = {{"venue", e.location.venue}, {"address", e.location.address}};
  json::array groups;
  for (const Tier& t : e.tiers) {
    json::object g;
    g["key"] = t.key;
    g["category"] = t.category;
    g["price"] = money_json(t.price.minor, t.price.currency);
    g["currency"] = t.price.currency;
    g["qty"] = t.stock.available;
    g["capacity"] = t.stock.capacity;
    g["held"] = t.stock.held;
    g["sold"] = t.stock.sold;
    g["startDate"] = format_instant(t.start);
    g["endDate"] = format_instant(t.end);
    g["maxPerOrder"] = t.max_per_order ? json::value(*t.max_per_order) : json::value(nullptr);
    g["maxPerUser"] = t.max_per_user ? json::value(*t.max_per_user) : json::value(nullptr);
    groups.push_back(std::move(g));
  }
  o["eventGroups"] = std::move(groups);
  json::array schedules;
  for (const ReleaseWave& w : e.waves) {
    schedules.push_back({{"startDate", format_instant(w.start)},
                         {"endDate", format_instant(w.end)},
                         {"limit", w.limit},
                         {"booked", w.booked}});
  }
  o["eventSchedules"] = std::move(schedules);
  o["status"] = to_string(e.status);
  o["version"] = e.version;
  return o;
}

result<Event> event_from_json(const json::value& v) {
  if (!v.is_object()) {
    return make_error(errc::validation_failed, "the event must be a JSON object",
                      {{"", "must be an object"}});
  }
  json::object problems;
  Reader r(v.get_object(), "", problems);
  Event e;
  e.key = r.string("key");
  e.name = r.string("name");
  e.type = r.string("type");
  e.promoter = r.optional_string("promoter");
  if (auto zoned = r.zoned_instant("date")) {
    e.date = zoned->at;
    e.utc_offset_minutes = zoned->offset_minutes;
  }
  // A GET body posted back has the date in UTC and the local offset beside it.
  if (r.get("utcOffset")) {
    auto offset = parse_zoned_instant("2000-01-01T00:00:00" + r.string("utcOffset"));
    if (offset) {
      e.utc_offset_minutes = offset.value().offset_minutes;
    } else {
      r.fail("utcOffset", "must be an offset such as +07:00");
    }
  }
  if (const json::object* loc = r.object("location", false)) {
    Reader lr(*loc, "location.", problems);
    e.location.venue = lr.string("venue", false);
    e.location.address = lr.string("address", false);
    lr.only({"venue", "address"});
  }
  if (const json::array* groups = r.array("eventGroups", true)) {
    for (std::size_t i = 0; i < groups->size() && i <= 100; ++i) {
      e.tiers.push_back(
          tier_from_json((*groups)[i], "eventGroups[" + std::to_string(i) + "]", problems));
    }
  }
  if (const json::array* schedules = r.array("eventSchedules", false)) {
    e.waves = detail::waves_from_json(*schedules, problems);
  }
  r.only({"key", "name", "type", "promoter", "date", "utcOffset", "location", "eventGroups",
          "eventSchedules"});
  if (!problems.empty()) return validation(std::move(problems), "invalid event");
  BOOKING_TRY(validate_new_event(e));
  return e;
}

json::object to_json(const EventReport& r) {
  json::array tiers;
  std::map<std::string, std::pair<std::int64_t, std::int64_t>> totals;  // currency: sold, money
  for (const TierReport& t : r.tiers) {
    tiers.push_back({{"key", t.key},
                     {"capacity", t.capacity},
                     {"available", t.available},
                     {"held", t.held},
                     {"sold", t.sold},
                     {"cancelled", t.cancelled},
                     {"expired", t.expired},
                     {"revenue", money_json(t.revenue_minor, t.currency)},
                     {"currency", t.currency}});
    auto& total = totals[t.currency];
    total.first += t.sold;
    total.second += t.revenue_minor;
  }
  json::array sums;
  for (const auto& [currency, total] : totals) {
    sums.push_back({{"currency", currency},
                    {"sold", total.first},
                    {"revenue", money_json(total.second, currency)}});
  }
  return {{"eventKey", r.event_key}, {"tiers", std::move(tiers)}, {"totals", std::move(sums)}};
}

json::object to_json(const Booking& b) {
  json::object o;
  o["bookId"] = b.id;
  o["key"] = b.event_key;
  o["userId"] = b.user_id ? json::value(*b.user_id) : json::value(nullptr);
  o["status"] = to_string(b.status);
  o["price"] = money_json(b.total.minor, b.total.currency);
  o["currency"] = b.total.currency;
  json::array lines;
  for (const BookingLine& l : b.lines) {
    lines.push_back({{"key", l.tier_key},
                     {"qty", l.qty},
                     {"price", money_json(l.unit_price_minor, b.total.currency)}});
  }
  o["groupKeys"] = std::move(lines);
  o["createdAt"] = format_instant(b.created_at);
  o["expiresAt"] = format_instant(b.expires_at);
  o["paymentMethod"] = b.payment_method ? json::value(*b.payment_method) : json::value(nullptr);
  o["reference"] = b.payment_reference ? json::value(*b.payment_reference) : json::value(nullptr);
  return o;
}

json::object hold_result_json(const Booking& b) {
  return {{"bookId", b.id},
          {"price", money_json(b.total.minor, b.total.currency)},
          {"currency", b.total.currency},
          {"status", to_string(b.status)},
          {"expiresAt", format_instant(b.expires_at)}};
}

result<HoldRequest> hold_request_from_json(const json::value& v) {
  if (!v.is_object()) {
    return make_error(errc::validation_failed, "the booking request must be a JSON object",
                      {{"", "must be an object"}});
  }
  json::object problems;
  Reader r(v.get_object(), "", problems);
  HoldRequest req;
  req.event_key = r.string("key");
  req.user_id = r.optional_string("userId");
  if (const json::array* groups = r.array("groupKeys", true)) {
    if (groups->empty()) r.fail("groupKeys", "at least one event group is required");
    for (std::size_t i = 0; i < groups->size() && i <= 100; ++i) {
      std::string prefix = "groupKeys[" + std::to_string(i) + "]";
      if (!(*groups)[i].is_object()) {
        problems[prefix] = "must be an object";
        continue;
      }
      Reader gr((*groups)[i].get_object(), prefix + ".", problems);
      HoldLineRequest line;
      line.tier_key = gr.string("key");
      line.qty = gr.integer("qty").value_or(0);
      gr.only({"key", "qty"});
      req.lines.push_back(std::move(line));
    }
  }
  r.only({"key", "groupKeys", "userId"});
  if (!problems.empty()) return validation(std::move(problems), "invalid booking request");
  return req;
}

result<Payment> payment_from_json(const json::value& v) {
  Payment p;
  if (v.is_null()) return p;
  if (!v.is_object()) {
    return make_error(errc::validation_failed, "the payment must be a JSON object",
                      {{"", "must be an object"}});
  }
  json::object problems;
  Reader r(v.get_object(), "", problems);
  if (auto m = r.optional_string("paymentMethod")) p.method = *m;
  if (auto ref = r.optional_string("reference")) p.reference = *ref;
  r.only({"paymentMethod", "reference"});
  if (!problems.empty()) return validation(std::move(problems), "invalid payment");
  return p;
}

json::object error_json(const error& e) {
  json::object inner;
  inner["code"] = to_string(e.code);
  inner["message"] = e.message;
  inner["details"] = e.details.empty() ? json::value(nullptr) : json::value(e.details);
  return {{"error", std::move(inner)}};
}

}  // namespace booking
