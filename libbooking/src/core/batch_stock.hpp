// A group commit's stock, judged in memory.
//
// Inside one write transaction that excludes every other writer of a tier (SQLite's one writer;
// PostgreSQL's row lock), the tier's counters read once are the truth until COMMIT. The holds of
// a batch then take and give back stock in these counters instead of running a conditional
// UPDATE each, and storage writes the difference once at the end of the batch (one UPDATE per
// tier). The rules (core/rules.cpp) do not change: only the storage primitives they call answer
// from here. Storage's CHECK constraints still refuse counters that would go negative.
#pragma once

#include <booking/storage.hpp>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

namespace booking::detail {

struct BatchTier {
  std::int64_t event_id = 0;
  TierCounters read;      // as storage had them when the batch read the row
  TierCounters counters;  // after the batch's takes and give-backs so far
  bool changed = false;

  // What the batch changed, to be added to the row.
  StockDelta delta() const {
    return {counters.available - read.available, counters.held - read.held,
            counters.sold - read.sold};
  }
  // take_stock: `qty` from available to held, if there are that many.
  bool take(std::int64_t qty) {
    if (counters.available < qty) return false;
    counters.available -= qty;
    counters.held += qty;
    changed = true;
    return true;
  }
  // add_stock.
  void add(const StockDelta& d) {
    counters.available += d.available;
    counters.held += d.held;
    counters.sold += d.sold;
    changed = true;
  }
};

// Tier key -> its counters in this batch. Tier keys are unique across events; `find` still
// checks the event, as the SQL it replaces does.
class BatchTiers {
 public:
  BatchTier* find(std::int64_t event_id, std::string_view tier) {
    auto it = tiers_.find(std::string(tier));
    return it != tiers_.end() && it->second.event_id == event_id ? &it->second : nullptr;
  }
  BatchTier* find(std::string_view tier) {
    auto it = tiers_.find(std::string(tier));
    return it != tiers_.end() ? &it->second : nullptr;
  }
  BatchTier& add(std::string tier, std::int64_t event_id, const TierCounters& read) {
    return tiers_[std::move(tier)] = BatchTier{event_id, read, read, false};
  }
  bool empty() const noexcept { return tiers_.empty(); }
  void clear() noexcept { tiers_.clear(); }
  auto begin() { return tiers_.begin(); }
  auto end() { return tiers_.end(); }
  auto begin() const { return tiers_.begin(); }
  auto end() const { return tiers_.end(); }

 private:
  std::unordered_map<std::string, BatchTier> tiers_;
};

}  // namespace booking::detail
