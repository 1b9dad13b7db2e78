// The SQL of the SQLite repository, one function per operation. Each runs on the connection it
// is given, inside whatever transaction the caller opened; none commits.
#pragma once

#include <booking/storage.hpp>

#include "core/batch_stock.hpp"
#include "sqlite/connection.hpp"

namespace booking::detail {

// Appends a change to the feed (EventRepository::read_changes and the rest); an event change
// carries `definition`, or the event as stored now when it is null.
void append_change(Connection& c, const ChangeRecord& record, const Event* definition = nullptr);
std::vector<Change> read_changes(Connection& c, std::int64_t after, std::size_t limit);
FeedBounds feed_bounds(Connection& c);
std::size_t prune_changes(Connection& c, std::int64_t cutoff_ms, std::size_t max);
// EventRepository::lease_webhook and save_webhook, on the host's clock at `now_ms`.
std::optional<WebhookState> lease_webhook(Connection& c, std::string_view url,
                                          std::string_view owner, std::int64_t now_ms,
                                          std::int64_t ttl_ms);
bool save_webhook(Connection& c, std::string_view url, std::string_view owner,
                  const WebhookState& state, std::int64_t now_ms);
std::vector<std::pair<std::string, WebhookState>> list_webhooks(Connection& c);
// false for an unknown URL.
bool resume_webhook(Connection& c, std::string_view url);

// Inserts an event with its tiers, waves, search entry and event.created change. duplicate_key
// if a key is taken.
result<std::int64_t> insert_event(Connection& c, const Event& e, Instant now);
std::optional<Event> load_event(Connection& c, std::string_view key);
std::vector<Event> search(Connection& c, const SearchQuery& q);

std::optional<Booking> load_booking(Connection& c, std::string_view id);
std::vector<Booking> list_bookings(Connection& c, const BookingQuery& query);
std::vector<BookingTotal> booking_totals(Connection& c, std::string_view key);
// EventRepository::export_bookings.
std::size_t export_bookings(Connection& c, std::string_view key, const BookingSink& sink);
std::optional<IdempotencyRecord> find_idempotency(Connection& c, std::string_view key);

// The rules' primitives on the writer connection, inside the caller's write transaction (the
// one writer makes every read current until commit: nothing needs a row lock).
class Transaction final : public StorageTransaction {
 public:
  explicit Transaction(Connection& c) : c_(c) {}

  // Batch mode, for a group commit's holds (core/batch_stock.hpp): an event's state and a
  // tier's counters are read once per batch, stock is taken and given back in memory, and
  // flush_batch writes each changed tier with one UPDATE. Bookings, changes and waves are
  // written as the rules go, so every read sees the batch's earlier holds.
  void begin_batch() { batching_ = true; }
  void flush_batch();
  std::optional<std::int64_t> find_event_id(std::string_view key) override;
  std::optional<EventState> load_event_state(std::int64_t event_id) override;
  std::optional<EventState> lock_event(std::string_view key) override;
  void set_event_state(const EventState& state) override;
  void update_event_fields(std::int64_t event_id, const Event& event) override;
  bool tier_exists(std::string_view key) override;
  void update_tier(std::int64_t event_id, const Tier& tier, std::int64_t capacity_delta) override;
  void insert_tier(std::int64_t event_id, const Tier& tier) override;
  void replace_waves(std::int64_t event_id, const std::vector<ReleaseWave>& waves) override;
  std::vector<std::string> live_booking_ids(std::int64_t event_id, std::size_t max) override;
  std::optional<IdempotencyRecord> find_idempotency(std::string_view key) override;
  std::int64_t count_user_tickets(std::string_view user, std::int64_t event_id,
                                  std::string_view tier) override;
  std::int64_t count_client_held(std::string_view client) override;
  void forget_idempotency(std::string_view key) override;
  std::optional<TierCounters> load_tier(std::int64_t event_id, std::string_view tier) override;
  std::optional<WaveCounters> load_wave(std::int64_t event_id, Instant start) override;
  bool take_stock(std::int64_t event_id, std::string_view tier, std::int64_t qty) override;
  void add_stock(std::string_view tier, const StockDelta& delta) override;
  void add_wave_booked(std::int64_t wave_id, std::int64_t delta) override;
  void insert_booking(const Booking& booking, std::int64_t event_id,
                      std::optional<std::int64_t> wave_id, const std::string& fingerprint) override;
  std::optional<StoredBooking> load_booking(std::string_view id) override;
  void update_booking(const Booking& booking) override;
  void append_change(const ChangeRecord& record) override;

 private:
  BatchTier* batch_tier(std::int64_t event_id, std::string_view tier);

  Connection& c_;
  bool batching_ = false;
  BatchTiers tiers_;
  std::unordered_map<std::int64_t, EventState> states_;  // read in this batch
};

// Forgets up to `max` idempotency keys first used at or before `cutoff_ms`; returns how many.
std::size_t purge_idempotency(Connection& c, std::int64_t cutoff_ms, std::size_t max);

// Expires up to `max` HELD bookings due at `now_ms`; returns how many (set-based).
std::size_t expire_batch(Connection& c, std::int64_t now_ms, std::size_t max);

}  // namespace booking::detail
