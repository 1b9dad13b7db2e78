// The codec of event patches (RFC 7396 merge patches of the GET shape).
#include <booking/json_codec.hpp>

#include "json/reader.hpp"

namespace booking {

namespace json = boost::json;
using detail::price_text;
using detail::Reader;
using detail::validation;

namespace {
// Reads the members of one object of a merge patch, where a member may be absent (keep), null
// (remove, where that is allowed) or a value.
class PatchReader {
 public:
  PatchReader(const json::object& obj, std::string prefix, json::object& problems)
      : obj_(obj), prefix_(std::move(prefix)), problems_(problems) {}

  void fail(std::string_view field, std::string message) {
    std::string key = prefix_ + std::string(field);
    if (!problems_.contains(key)) problems_[key] = std::move(message);
  }
  const json::value* member(std::string_view field) {
    auto it = obj_.find(field);
    return it == obj_.end() ? nullptr : &it->value();
  }
  // A field that cannot be removed: absent keeps it, null is refused.
  const json::value* required(std::string_view field) {
    const json::value* v = member(field);
    if (v && v->is_null()) {
      fail(field, "cannot be removed");
      return nullptr;
    }
    return v;
  }
  std::optional<std::string> text(std::string_view field) {
    const json::value* v = required(field);
    if (!v) return std::nullopt;
    if (!v->is_string()) {
      fail(field, "must be a string");
      return std::nullopt;
    }
    return std::string(v->get_string());
  }
  std::optional<std::int64_t> integer(const json::value& v, std::string_view field) {
    if (v.is_int64()) return v.get_int64();
    if (v.is_double()) {
      double d = v.get_double();
      if (d > -9e15 && d < 9e15 && d == static_cast<double>(static_cast<std::int64_t>(d))) {
        return static_cast<std::int64_t>(d);
      }
    }
    fail(field, v.is_uint64() ? "is too large" : "must be an integer");
    return std::nullopt;
  }
  std::optional<Instant> instant(std::string_view field, std::int32_t* offset = nullptr) {
    auto s = text(field);
    if (!s) return std::nullopt;
    auto t = parse_zoned_instant(*s);
    if (!t) {
      fail(field, t.error().message);
      return std::nullopt;
    }
    if (offset) *offset = t.value().offset_minutes;
    return t.value().at;
  }
  // A limit: null removes it.
  std::optional<std::optional<std::int64_t>> limit(std::string_view field) {
    const json::value* v = member(field);
    if (!v) return std::nullopt;
    if (v->is_null()) return std::optional<std::int64_t>{};
    auto n = integer(*v, field);
    if (!n) return std::nullopt;
    return std::optional<std::int64_t>{*n};
  }
  // Every member must be one of `known`; read-only members of the GET shape are named as such.
  void only(std::initializer_list<std::string_view> known,
            std::initializer_list<std::pair<std::string_view, const char*>> read_only) {
    for (const auto& kv : obj_) {
      const std::string_view key = kv.key();
      if (std::find(known.begin(), known.end(), key) != known.end()) continue;
      auto ro = std::find_if(read_only.begin(), read_only.end(),
                             [&](const auto& p) { return p.first == key; });
      fail(key.substr(0, 64), ro != read_only.end() ? ro->second : "unknown field");
    }
  }

 private:
  const json::object& obj_;
  std::string prefix_;
  json::object& problems_;
};

TierPatch tier_patch_from_json(const json::value& v, const std::string& prefix,
                               json::object& problems) {
  TierPatch t;
  if (!v.is_object()) {
    problems[prefix] = "must be an object";
    return t;
  }
  PatchReader r(v.get_object(), prefix + ".", problems);
  if (auto key = r.text("key")) {
    t.key = *key;
  } else if (!r.member("key")) {
    r.fail("key", "is required (it names the event group to change or add)");
  }
  t.category = r.text("category");
  t.currency = r.text("currency");
  if (const json::value* price = r.required("price")) {
    t.price = price_text(*price);
    if (!t.price) r.fail("price", "must be a number");
  }
  if (const json::value* capacity = r.required("capacity")) {
    t.capacity = r.integer(*capacity, "capacity");
  }
  t.start = r.instant("startDate");
  t.end = r.instant("endDate");
  t.max_per_order = r.limit("maxPerOrder");
  t.max_per_user = r.limit("maxPerUser");
  r.only({"key", "category", "currency", "price", "capacity", "startDate", "endDate", "maxPerOrder",
          "maxPerUser"},
         {{"qty", "is the available count (read-only); a patch sets capacity"},
          {"held", "is read-only"},
          {"sold", "is read-only"}});
  return t;
}
}  // namespace

result<EventPatch> event_patch_from_json(const json::value& v) {
  if (!v.is_object()) {
    return make_error(errc::validation_failed, "the patch must be a JSON object",
                      {{"", "must be an object"}});
  }
  json::object problems;
  PatchReader r(v.get_object(), "", problems);
  EventPatch p;
  p.key = r.text("key");
  p.name = r.text("name");
  p.type = r.text("type");
  if (const json::value* promoter = r.member("promoter")) {
    if (promoter->is_null()) {
      p.promoter = std::optional<std::string>{};
    } else if (promoter->is_string()) {
      p.promoter = std::optional<std::string>{std::string(promoter->get_string())};
    } else {
      r.fail("promoter", "must be a string or null");
    }
  }
  std::int32_t offset = 0;
  if ((p.date = r.instant("date", &offset))) p.utc_offset_minutes = offset;
  if (auto text = r.text("utcOffset")) {
    auto parsed = parse_zoned_instant("2000-01-01T00:00:00" + *text);
    if (parsed) {
      p.utc_offset_minutes = parsed.value().offset_minutes;
    } else {
      r.fail("utcOffset", "must be an offset such as +07:00");
    }
  }
  if (const json::value* loc = r.member("location")) {
    if (loc->is_null()) {
      p.venue = "";
      p.address = "";
    } else if (loc->is_object()) {
      PatchReader lr(loc->get_object(), "location.", problems);
      for (auto [field, out] : {std::pair{"venue", &p.venue}, std::pair{"address", &p.address}}) {
        const json::value* m = lr.member(field);
        if (!m) continue;
        if (m->is_null()) {
          *out = "";
        } else if (m->is_string()) {
          *out = std::string(m->get_string());
        } else {
          lr.fail(field, "must be a string or null");
        }
      }
      lr.only({"venue", "address"}, {});
    } else {
      r.fail("location", "must be an object or null");
    }
  }
  if (const json::value* groups = r.required("eventGroups")) {
    if (!groups->is_array()) {
      r.fail("eventGroups", "must be an array of event group patches");
    } else if (groups->get_array().size() > 100) {
      r.fail("eventGroups", "at most 100 event groups");
    } else {
      const json::array& a = groups->get_array();
      for (std::size_t i = 0; i < a.size(); ++i) {
        p.tiers.push_back(
            tier_patch_from_json(a[i], "eventGroups[" + std::to_string(i) + "]", problems));
      }
    }
  }
  if (const json::value* schedules = r.member("eventSchedules")) {
    p.waves.emplace();  // null: no waves
    if (schedules->is_array() && schedules->get_array().size() <= 100) {
      p.waves = detail::waves_from_json(schedules->get_array(), problems);
    } else if (!schedules->is_null()) {
      r.fail("eventSchedules", "must be an array of at most 100 schedules, or null");
    }
  }
  r.only({"key", "name", "type", "promoter", "date", "utcOffset", "location", "eventGroups",
          "eventSchedules"},
         {{"id", "is read-only"},
          {"status", "is changed by POST .../close, .../reopen and .../cancel"},
          {"version", "is read-only; send it as If-Match"}});
  if (!problems.empty()) return validation(std::move(problems), "invalid patch");
  return p;
}

}  // namespace booking
