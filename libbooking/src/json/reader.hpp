// Reading the API's JSON objects field by field, collecting every bad field's reason: shared
// by the codecs of events, patches and holds.
#pragma once

#include <algorithm>
#include <array>
#include <booking/error.hpp>
#include <booking/event.hpp>
#include <booking/money.hpp>
#include <booking/time.hpp>
#include <boost/json.hpp>
#include <charconv>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace booking::detail {

namespace json = boost::json;

// A price as the client wrote it, in major units: a JSON number or a decimal string.
inline std::optional<std::string> price_text(const json::value& v) {
  if (v.is_int64()) return std::to_string(v.get_int64());
  if (v.is_uint64()) return std::to_string(v.get_uint64());
  if (v.is_double()) {
    // The shortest text that round-trips is the literal the client wrote for any price with
    // up to 15 significant digits, so decimals are judged on that text, not on binary noise.
    char buf[64];
    auto r = std::to_chars(buf, buf + sizeof buf, v.get_double());
    return std::string(buf, r.ptr);
  }
  if (v.is_string()) return std::string(v.get_string());
  return std::nullopt;
}

// Collects problems per field while reading an object, so one response names every bad field.
class Reader {
 public:
  Reader(const json::object& obj, std::string prefix, json::object& problems)
      : obj_(obj), prefix_(std::move(prefix)), problems_(problems) {}

  void fail(std::string_view field, std::string message) {
    std::string key = prefix_ + std::string(field);
    if (!problems_.contains(key)) problems_[key] = std::move(message);
  }

  const json::value* get(std::string_view field) {
    auto it = obj_.find(field);
    if (it == obj_.end() || it->value().is_null()) return nullptr;
    return &it->value();
  }

  std::string string(std::string_view field, bool required = true) {
    const json::value* v = get(field);
    if (!v) {
      if (required) fail(field, "is required");
      return {};
    }
    if (!v->is_string()) {
      fail(field, "must be a string");
      return {};
    }
    return std::string(v->get_string());
  }

  std::optional<std::string> optional_string(std::string_view field) {
    if (!get(field)) return std::nullopt;
    return string(field);
  }

  std::optional<std::int64_t> integer(std::string_view field, bool required = true) {
    const json::value* v = get(field);
    if (!v) {
      if (required) fail(field, "is required");
      return std::nullopt;
    }
    if (v->is_int64()) return v->get_int64();
    if (v->is_uint64()) {
      fail(field, "is too large");
      return std::nullopt;
    }
    if (v->is_double()) {
      double d = v->get_double();
      // Range first: converting an out-of-range double to an integer is undefined behaviour
      // (found by tests/fuzz/fuzz_json).
      if (d > -9e15 && d < 9e15 && d == static_cast<double>(static_cast<std::int64_t>(d))) {
        return static_cast<std::int64_t>(d);
      }
    }
    fail(field, "must be an integer");
    return std::nullopt;
  }

  Instant instant(std::string_view field) {
    auto t = zoned_instant(field);
    return t ? t->at : Instant{};
  }
  std::optional<ZonedInstant> zoned_instant(std::string_view field) {
    std::string s = string(field);
    if (s.empty()) return std::nullopt;
    auto t = parse_zoned_instant(s);
    if (!t) {
      fail(field, t.error().message);
      return std::nullopt;
    }
    return t.value();
  }

  // A price in major units: a JSON number or a decimal string, exact in minor units.
  std::int64_t price(std::string_view field, std::string_view currency) {
    const json::value* v = get(field);
    if (!v) {
      fail(field, "is required");
      return 0;
    }
    auto text = price_text(*v);
    if (!text) {
      fail(field, "must be a number");
      return 0;
    }
    auto cur = find_currency(currency);
    if (!cur) return 0;  // reported on the currency field
    auto minor = parse_major_units(*text, cur.value().decimals);
    if (!minor) {
      fail(field, minor.error().message);
      return 0;
    }
    return minor.value();
  }

  const json::object* object(std::string_view field, bool required) {
    const json::value* v = get(field);
    if (!v) {
      if (required) fail(field, "is required");
      return nullptr;
    }
    if (!v->is_object()) {
      fail(field, "must be an object");
      return nullptr;
    }
    return &v->get_object();
  }

  const json::array* array(std::string_view field, bool required) {
    const json::value* v = get(field);
    if (!v) {
      if (required) fail(field, "is required");
      return nullptr;
    }
    if (!v->is_array()) {
      fail(field, "must be an array");
      return nullptr;
    }
    return &v->get_array();
  }

  const std::string& prefix() const { return prefix_; }

  // Names every field of the object that is neither in `known` nor one of the read-only
  // fields of the GET shapes (ignored, so that a GET body can be posted back): a typo such as
  // "maxPerUsers" would otherwise be dropped without a word.
  void only(std::initializer_list<std::string_view> known) {
    static constexpr std::array<std::string_view, 7> kReadOnly{
        "id", "capacity", "held", "sold", "version", "status", "booked"};
    for (const auto& kv : obj_) {
      const std::string_view key = kv.key();
      if (std::find(known.begin(), known.end(), key) != known.end()) continue;
      if (std::find(kReadOnly.begin(), kReadOnly.end(), key) != kReadOnly.end()) continue;
      fail(key.substr(0, 64), "unknown field");
    }
  }

 private:
  const json::object& obj_;
  std::string prefix_;
  json::object& problems_;
};

// validation_failed whose message says each field with its reason ("name: is required; ...")
// and whose details map each field to its reason.
inline error validation(json::object problems, std::string_view what) {
  std::string fields;
  for (const auto& kv : problems) {
    if (!fields.empty()) fields += "; ";
    fields += std::string(kv.key());
    if (kv.value().is_string()) fields += ": " + std::string(kv.value().get_string());
  }
  return make_error(errc::validation_failed, std::string(what) + ": " + fields,
                    std::move(problems));
}

// The release waves of `schedules` (eventSchedules), at most 101 read (validation refuses
// more); bad fields go to `problems` as "eventSchedules[i].field".
inline std::vector<ReleaseWave> waves_from_json(const json::array& schedules,
                                                json::object& problems) {
  std::vector<ReleaseWave> waves;
  for (std::size_t i = 0; i < schedules.size() && i <= 100; ++i) {
    std::string prefix = "eventSchedules[" + std::to_string(i) + "]";
    if (!schedules[i].is_object()) {
      problems[prefix] = "must be an object";
      continue;
    }
    Reader wr(schedules[i].get_object(), prefix + ".", problems);
    ReleaseWave w;
    w.start = wr.instant("startDate");
    w.end = wr.instant("endDate");
    w.limit = wr.integer("limit").value_or(0);
    wr.only({"startDate", "endDate", "limit"});
    waves.push_back(w);
  }
  return waves;
}

}  // namespace booking::detail
