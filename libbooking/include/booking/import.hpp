// Importing many events at once, from JSON Lines (one event object per line, the shape of
// POST /v1/api/events).
#pragma once

#include <booking/booking_service.hpp>
#include <cstddef>
#include <functional>
#include <istream>
#include <string>
#include <vector>

namespace booking {

struct ImportOptions {
  // Import nothing when any line is bad (one transaction for all); otherwise bad lines are
  // reported and skipped and the rest is imported in batches.
  bool strict = false;
  std::size_t batch = 1000;  // events per transaction
  // An event whose key is already stored counts as `existing`, not as a problem: re-running an
  // import adds what is missing.
  bool skip_existing = false;
  // Called after each batch with how many parsed events were handled so far and the total.
  std::function<void(std::size_t done, std::size_t total)> progress;
};

struct ImportProblem {
  std::size_t line = 0;  // 1-based line of the input
  error problem;
};

struct ImportReport {
  std::size_t imported = 0;
  std::size_t existing = 0;             // with skip_existing: events whose key was already stored
  std::vector<ImportProblem> problems;  // in line order
};

// Parses every line (blank lines are skipped) and stores the valid events through `service`.
// A batch refused for a duplicate key is retried event by event, so that only the offending
// lines are skipped. Bad lines are in the report; an error is returned when storage fails, or
// with strict when storing all at once is refused (duplicate_key): then nothing is imported.
result<ImportReport> import_events(BookingService& service, std::istream& in,
                                   const ImportOptions& options = {});

}  // namespace booking
