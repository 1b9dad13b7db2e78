#include <algorithm>
#include <booking/import.hpp>
#include <booking/json_codec.hpp>
#include <span>

namespace booking {

namespace {

// True when `e` failed only because an event with its key is already stored.
bool already_stored(const error& e, const Event& event) {
  if (e.code != errc::duplicate_key) return false;
  const auto* key = e.details.if_contains("key");
  return key && key->is_string() && key->as_string() == event.key;
}

}  // namespace

result<ImportReport> import_events(BookingService& service, std::istream& in,
                                   const ImportOptions& options) {
  ImportReport report;
  std::vector<Event> events;
  std::vector<std::size_t> line_of;
  std::size_t line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto parsed = parse_json(line);
    auto event = parsed ? event_from_json(parsed.value()) : result<Event>(parsed.error());
    if (!event) {
      report.problems.push_back({line_no, event.error()});
      continue;
    }
    events.push_back(std::move(event).value());
    line_of.push_back(line_no);
  }
  if (options.strict) {
    if (!report.problems.empty()) return report;
    // One transaction: all or nothing. A duplicate key fails the whole import.
    BOOKING_TRY(report.imported, service.create_events(events));
    if (options.progress) options.progress(events.size(), events.size());
    return report;
  }
  std::vector<ImportProblem> late;  // found while storing, merged in line order at the end
  const std::size_t batch_size = std::max<std::size_t>(options.batch, 1);
  for (std::size_t start = 0; start < events.size(); start += batch_size) {
    const std::size_t n = std::min(batch_size, events.size() - start);
    std::span<const Event> batch(events.data() + start, n);
    if (auto stored = service.create_events(batch)) {
      report.imported += stored.value();
    } else if (stored.error().code == errc::duplicate_key) {
      for (std::size_t k = 0; k < n; ++k) {
        auto one = service.create_event(batch[k]);
        if (one) {
          ++report.imported;
        } else if (options.skip_existing && already_stored(one.error(), batch[k])) {
          ++report.existing;
        } else if (one.error().code == errc::duplicate_key ||
                   one.error().code == errc::validation_failed) {
          late.push_back({line_of[start + k], one.error()});
        } else {
          return one.error();
        }
      }
    } else {
      return stored.error();
    }
    if (options.progress) options.progress(start + n, events.size());
  }
  report.problems.insert(report.problems.end(), late.begin(), late.end());
  std::stable_sort(report.problems.begin(), report.problems.end(),
                   [](const ImportProblem& a, const ImportProblem& b) { return a.line < b.line; });
  return report;
}

}  // namespace booking
