#include <algorithm>
#include <booking/booking_service.hpp>
#include <charconv>
#include <map>
#include <set>
#include <thread>

#include "core/lock_rounds.hpp"
#include "core/repository_rules.hpp"
#include "core/text.hpp"
#include "locks/lock_util.hpp"

namespace booking {

namespace {

namespace json = boost::json;

constexpr std::int64_t kMaxQtyPerLine = 100'000;

bool is_booking_id(std::string_view id) {
  return id.size() == 32 && std::all_of(id.begin(), id.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

error booking_not_found(std::string_view id) {
  return make_error(errc::not_found, "booking '" + std::string(id.substr(0, 64)) + "' not found");
}

bool printable_ascii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

// The shape checks of a hold: everything that needs no storage.
result<void> validate_shape(const HoldRequest& req) {
  json::object problems;
  if (!is_valid_key(req.event_key)) problems["key"] = "must match [A-Za-z0-9._-]{1,64}";
  if (req.lines.empty()) problems["groupKeys"] = "at least one event group is required";
  if (req.lines.size() > 100) problems["groupKeys"] = "at most 100 event groups per booking";
  std::set<std::string_view> seen;
  for (std::size_t i = 0; i < req.lines.size() && i < 100; ++i) {
    const auto& l = req.lines[i];
    const std::string f = "groupKeys[" + std::to_string(i) + "].";
    if (!is_valid_key(l.tier_key)) {
      problems[f + "key"] = "must match [A-Za-z0-9._-]{1,64}";
    } else if (!seen.insert(l.tier_key).second) {
      problems[f + "key"] = "duplicate event group in one booking";
    }
    if (l.qty < 1) problems[f + "qty"] = "must be >= 1";
    if (l.qty > kMaxQtyPerLine) problems[f + "qty"] = "must be at most 100000";
  }
  if (req.user_id) {
    auto n = detail::utf8_length(*req.user_id);
    if (!n || *n == 0 || *n > 128) problems["userId"] = "must be 1-128 characters of UTF-8";
  }
  if (req.idempotency_key && (req.idempotency_key->empty() || req.idempotency_key->size() > 255 ||
                              !printable_ascii(*req.idempotency_key))) {
    problems["idempotencyKey"] = "must be 1-255 printable ASCII characters";
  }
  if (problems.empty()) return boost::outcome_v2::success();
  return make_error(errc::validation_failed, "invalid booking request", std::move(problems));
}

// Identifies a request for idempotency: same event, user and lines (in any order).
std::string fingerprint(const HoldRequest& req) {
  std::map<std::string, std::int64_t> lines;
  for (const auto& l : req.lines) lines[l.tier_key] += l.qty;
  std::string fp = req.event_key + "|" + req.user_id.value_or("") + "|";
  for (const auto& [k, q] : lines) fp += k + "=" + std::to_string(q) + ";";
  return fp;
}

template <class F>
auto no_throw(F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const std::exception& e) {
    return make_error(errc::internal, std::string("internal error: ") + e.what());
  }
}

}  // namespace

std::string tier_lock_key(std::string_view tier_key) { return "tier:" + std::string(tier_key); }

BookingService::BookingService(EventRepository& repository, LockProvider& locks, const Clock& clock,
                               ServiceOptions options)
    : repo_(repository),
      locks_(locks),
      clock_(clock),
      options_(std::move(options)),
      rounds_(std::make_unique<detail::LockRounds>(
          [this](const std::vector<std::string>& keys, std::chrono::steady_clock::time_point t) {
            return lock_tiers(keys, t);
          },
          [this](HoldPlan plan) { return repo_.submit_hold(std::move(plan)); },
          [this] { wake_feed_waiters(); })) {}

// Answers every asynchronous hold first, while what their answers use still exists.
BookingService::~BookingService() { rounds_.reset(); }

result<Event> BookingService::create_event(const Event& event) {
  BOOKING_TRY(validate_new_event(event));
  return feed_changed(repo_.create_event(event, clock_.now()));
}

result<std::size_t> BookingService::create_events(std::span<const Event> events) {
  for (const Event& e : events) {
    BOOKING_TRY(validate_new_event(e));
  }
  return feed_changed(repo_.create_events(events, clock_.now()));
}

result<Event> BookingService::get_event(std::string_view key) {
  if (!is_valid_key(key)) {
    return make_error(errc::not_found, "event '" + std::string(key.substr(0, 64)) + "' not found");
  }
  return repo_.get_event(key);
}

namespace {
result<void> validate_search(const SearchQuery& query) {
  json::object problems;
  if (query.limit < 1 || query.limit > 1000) problems["limit"] = "must be 1-1000";
  if (query.offset < 0) problems["offset"] = "must be >= 0";
  auto n = detail::utf8_length(query.name);
  if (!n || *n > 200) problems["name"] = "must be at most 200 characters of UTF-8";
  if (std::any_of(query.name.begin(), query.name.end(),
                  [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; })) {
    problems["name"] = "must not contain control characters";
  }
  if (problems.empty()) return boost::outcome_v2::success();
  return make_error(errc::validation_failed, "invalid search", std::move(problems));
}
}  // namespace

result<std::vector<Event>> BookingService::search_events(const SearchQuery& query) {
  BOOKING_TRY(validate_search(query));
  return repo_.search_events(query);
}

result<SearchPage> BookingService::search_page(const SearchQuery& query) {
  BOOKING_TRY(validate_search(query));
  SearchQuery one_more = query;  // one event more than asked: is there a next page?
  ++one_more.limit;
  BOOKING_TRY(auto events, repo_.search_events(one_more));
  SearchPage page;
  page.more = static_cast<std::int64_t>(events.size()) > query.limit;
  if (page.more) events.pop_back();
  page.events = std::move(events);
  return page;
}

// What a hold request keeps from its start to its answer, through every planning attempt.
struct BookingService::HoldJob {
  HoldRequest req;
  std::string actor = current_actor();  // of the calling thread: a hold may be planned again
                                        // on the thread that answers asynchronous holds
  std::string fingerprint;
  Instant now{};
  Instant key_cutoff{};
  std::optional<std::string> stored_key;  // the idempotency key in its scope
  // Planned again (plan_again) until then.
  std::chrono::steady_clock::time_point plan_until;
  HoldDone done;           // asynchronous holds only
  HoldPlanned on_planned;  // asynchronous holds only, first plan only
};

// A hold planned from the event's definition, to submit under the lease on `keys`.
struct BookingService::PlannedHold {
  HoldPlan plan;
  std::vector<std::string> keys;
};

namespace {
// A hold planned from a definition that changed meanwhile is planned again, from a fresh read,
// until the hold's lock wait (2 s by default) has passed since it began: an event changed every
// few milliseconds (capacity raised under a sale) made 8 attempts too few on a loaded machine.
// The attempts are capped too, against a definition that changes faster than a hold commits.
constexpr int kPlanAttempts = 1000;

bool plan_again(const result<Booking>& answer, int attempt,
                std::chrono::steady_clock::time_point until) {
  return !answer && answer.error().code == errc::precondition_failed && attempt < kPlanAttempts &&
         std::chrono::steady_clock::now() < until;
}
}  // namespace

result<Booking> BookingService::replay(const IdempotencyRecord& rec, const std::string& fp) {
  if (rec.request_fingerprint != fp) {
    return make_error(errc::idempotency_conflict,
                      "idempotency key was already used for a different request");
  }
  return repo_.get_booking(rec.booking_id);
}

std::optional<result<Booking>> BookingService::begin_hold(HoldJob& job) {
  const HoldRequest& req = job.req;
  if (auto shape = validate_shape(req); !shape) return result<Booking>(shape.error());
  job.fingerprint = fingerprint(req);
  job.now = clock_.now();
  job.plan_until = std::chrono::steady_clock::now() + options_.lock_wait.wait;
  job.key_cutoff = job.now - options_.idempotency_ttl;
  if (req.idempotency_key) {
    job.stored_key = req.idempotency_scope.empty()
                         ? *req.idempotency_key
                         : req.idempotency_scope + "|" + *req.idempotency_key;
    auto rec = repo_.find_idempotency_key(*job.stored_key);
    if (!rec) return result<Booking>(rec.error());
    if (rec.value() && rec.value()->created_at > job.key_cutoff) {
      return replay(*rec.value(), job.fingerprint);
    }
  }
  return std::nullopt;
}

// The definition may be cached: storage checks its version inside the hold's transaction, and
// a hold planned from an outdated one is planned again (plan_again).
result<BookingService::PlannedHold> BookingService::plan_hold(const HoldJob& job) {
  const HoldRequest& req = job.req;
  const Instant now = job.now;
  const std::string& fp = job.fingerprint;
  const Instant key_cutoff = job.key_cutoff;
  const std::optional<std::string>& stored_key = job.stored_key;
  BOOKING_TRY(auto definition_ptr, definition(req.event_key));
  const Event& event = *definition_ptr;
  std::vector<const Tier*> tiers;
  for (const auto& l : req.lines) {
    auto it = std::find_if(event.tiers.begin(), event.tiers.end(),
                           [&](const Tier& t) { return t.key == l.tier_key; });
    if (it == event.tiers.end()) {
      return make_error(errc::not_found,
                        "event group '" + l.tier_key + "' not found in event '" + event.key + "'");
    }
    tiers.push_back(&*it);
  }
  const std::string& currency = tiers.front()->price.currency;
  for (const Tier* t : tiers) {
    if (t->price.currency != currency) {
      return make_error(errc::validation_failed,
                        "all event groups of one booking must have the same currency",
                        {{"groupKeys", "mixes " + currency + " and " + t->price.currency}});
    }
  }

  for (const Tier* t : tiers) {
    if (now < t->start || now >= t->end) {
      return make_error(errc::sale_not_open,
                        "sale of '" + t->key + "' is open from " + format_instant(t->start) +
                            " until " + format_instant(t->end),
                        {{"key", t->key},
                         {"startDate", format_instant(t->start)},
                         {"endDate", format_instant(t->end)}});
    }
  }

  HoldPlan plan;
  Booking& b = plan.booking;
  // Time-ordered: the bookings table is keyed by id, so each hold appends to its last
  // pages instead of writing a random page of it (see detail::time_ordered_hex128).
  b.id = detail::time_ordered_hex128(now.time_since_epoch().count());
  b.event_key = event.key;
  b.user_id = req.user_id;
  b.client = req.client;
  const bool user_limited = std::any_of(tiers.begin(), tiers.end(),
                                        [](const Tier* t) { return t->max_per_user.has_value(); });
  if (!b.user_id && user_limited) b.user_id = req.client;  // an anonymous buyer is its address
  b.status = BookingStatus::held;
  b.created_at = now;
  b.expires_at = now + options_.hold_ttl;
  b.idempotency_key = stored_key;
  b.total = Money{0, currency};
  plan.request_fingerprint = fp;
  plan.max_held_by_client = req.max_held_by_client;
  plan.idempotency_cutoff = key_cutoff;
  for (std::size_t i = 0; i < req.lines.size(); ++i) {
    const Tier& t = *tiers[i];
    const std::int64_t qty = req.lines[i].qty;
    if (t.max_per_order && qty > *t.max_per_order) {
      return make_error(
          errc::per_user_limit,
          "at most " + std::to_string(*t.max_per_order) + " tickets of '" + t.key + "' per order",
          {{"key", t.key}, {"maxPerOrder", *t.max_per_order}});
    }
    if (t.max_per_user && !b.user_id) {
      return make_error(errc::validation_failed,
                        "event group '" + t.key + "' limits tickets per user",
                        {{"userId", "is required"}});
    }
    plan.max_per_user.push_back(t.max_per_user);
    b.lines.push_back(BookingLine{t.key, qty, t.price.minor});
    BOOKING_TRY(auto line_total, checked_mul(t.price.minor, qty));
    BOOKING_TRY(b.total.minor, checked_add(b.total.minor, line_total));
  }
  if (const ReleaseWave* wave = open_wave(event, now)) plan.wave_start = wave->start;
  plan.event_id = event.id;
  plan.event_version = event.version;
  plan.actor = job.actor;

  // Per-user limits, the wave and stock are judged by storage, atomically and in that order.
  // The tier locks order the holds of a tier: a hold is submitted under them, which fixes its
  // place in storage's order, and they are released before its commit, so that a hot tier's
  // holds can share one (group commit) instead of queueing one commit at a time behind the
  // lock. The holds of this process that wait for the same tiers are submitted in rounds,
  // one lease each (core/lock_rounds.hpp). Correctness never rests on the locks: storage's
  // stock take is conditional.
  std::vector<std::string> keys;
  for (const Tier* t : tiers) keys.push_back(tier_lock_key(t->key));
  return PlannedHold{std::move(plan), std::move(keys)};
}

result<Booking> BookingService::settle_hold(const HoldJob& job, result<Booking> stored,
                                            std::chrono::nanoseconds lock_wait) {
  if (observer_.on_lock_wait) observer_.on_lock_wait(lock_wait);
  if (!stored && stored.error().code == errc::duplicate_key && job.stored_key) {
    // Another request with this key won the race: answer as its replay.
    BOOKING_TRY(auto rec, repo_.find_idempotency_key(*job.stored_key));
    if (rec) return replay(*rec, job.fingerprint);
  }
  return stored;
}

result<Booking> BookingService::hold(const HoldRequest& req) {
  return no_throw([&]() -> result<Booking> {
    HoldJob job;
    job.req = req;
    if (auto early = begin_hold(job)) return std::move(*early);
    for (int attempt = 1;; ++attempt) {
      auto answer = [&]() -> result<Booking> {
        BOOKING_TRY(auto planned, plan_hold(job));
        auto done = rounds_->hold(std::move(planned.keys), std::move(planned.plan),
                                  std::chrono::steady_clock::now() + options_.lock_wait.wait);
        return settle_hold(job, std::move(done.booking), done.lock_wait);
      }();
      if (!plan_again(answer, attempt, job.plan_until)) return answer;
      forget_definition(req.event_key);
    }
  });
}

void BookingService::hold(const HoldRequest& req, HoldDone done, HoldPlanned planned) {
  std::shared_ptr<HoldJob> job;
  try {
    job = std::make_shared<HoldJob>();
    job->req = req;
  } catch (const std::exception& e) {  // bad_alloc: still answered, as promised
    return done(make_error(errc::internal, std::string("internal error: ") + e.what()));
  }
  job->done = std::move(done);
  job->on_planned = std::move(planned);
  bool submitted = false;
  auto early = no_throw([&]() -> result<Booking> {
    if (auto answer = begin_hold(*job)) return std::move(*answer);
    submitted = true;
    hold_attempt(job, 1);
    return make_error(errc::internal, "");  // not an answer: hold_attempt answers
  });
  if (!submitted) job->done(std::move(early));
}

void BookingService::hold_attempt(std::shared_ptr<HoldJob> job, int attempt) {
  auto planned = no_throw([&] { return plan_hold(*job); });
  if (!planned) return job->done(planned.error());
  auto queued = no_throw([&]() -> result<void> {
    if (job->on_planned) {  // the caller's thread: re-plans run on the committing thread
      std::exchange(job->on_planned, {})(planned.value().plan.booking);
    }
    rounds_->hold(std::move(planned.value().keys), std::move(planned.value().plan),
                  std::chrono::steady_clock::now() + options_.lock_wait.wait,
                  [this, job, attempt](detail::LockRounds::Outcome outcome) {
                    auto answer = no_throw([&] {
                      return settle_hold(*job, std::move(outcome.booking), outcome.lock_wait);
                    });
                    if (plan_again(answer, attempt, job->plan_until)) {
                      forget_definition(job->req.event_key);
                      return hold_attempt(job, attempt + 1);
                    }
                    job->done(std::move(answer));
                  });
    return boost::outcome_v2::success();
  });
  if (!queued) job->done(queued.error());  // nothing was queued
}

result<BookingPage> BookingService::list_bookings(const BookingListRequest& req) {
  json::object problems;
  BookingQuery q;
  q.event_key = req.event_key;
  q.user_id = req.user_id;
  if (req.limit < 1 || req.limit > 100) problems["limit"] = "must be 1-100";
  if (req.status) {
    q.status = parse_booking_status(*req.status);
    if (!q.status) problems["status"] = "must be HELD, CONFIRMED, CANCELLED or EXPIRED";
  }
  if (req.cursor) {
    // "<created ms>-<id>": where the previous page ended.
    const std::string& c = *req.cursor;
    const auto dash = c.find('-');
    std::int64_t created = 0;
    const bool number = dash != std::string::npos &&
                        std::from_chars(c.data(), c.data() + dash, created).ptr == c.data() + dash;
    if (!number || !is_booking_id(std::string_view(c).substr(dash + 1))) {
      problems["cursor"] = "must be a `next` this API gave";
    } else {
      q.before = std::pair{Instant(std::chrono::milliseconds(created)), c.substr(dash + 1)};
    }
  }
  if (!problems.empty()) {
    return make_error(errc::validation_failed, "invalid booking list", std::move(problems));
  }
  q.limit = req.limit + 1;  // one more: is there a next page?
  BOOKING_TRY(auto found, repo_.list_bookings(q));
  BookingPage page;
  if (static_cast<std::int64_t>(found.size()) > req.limit) {
    found.resize(static_cast<std::size_t>(req.limit));
    const Booking& last = found.back();
    page.next = std::to_string(last.created_at.time_since_epoch().count()) + "-" + last.id;
  }
  page.bookings = std::move(found);
  return page;
}

result<EventReport> BookingService::event_report(std::string_view key) {
  if (!is_valid_key(key)) return detail::not_found_error("event", key);
  BOOKING_TRY(auto event, repo_.get_event(key));
  BOOKING_TRY(auto totals, repo_.booking_totals(key));
  EventReport r;
  r.event_key = event.key;
  for (const Tier& t : event.tiers) {
    TierReport& tr = r.tiers.emplace_back();
    tr.key = t.key;
    tr.capacity = t.stock.capacity;
    tr.available = t.stock.available;
    tr.held = t.stock.held;
    tr.sold = t.stock.sold;
    tr.currency = t.price.currency;
    for (const BookingTotal& total : totals) {
      if (total.tier_key != t.key) continue;
      if (total.status == BookingStatus::confirmed) tr.revenue_minor += total.money_minor;
      if (total.status == BookingStatus::cancelled) tr.cancelled += total.tickets;
      if (total.status == BookingStatus::expired) tr.expired += total.tickets;
    }
  }
  return r;
}

result<std::size_t> BookingService::export_bookings(std::string_view key, const BookingSink& sink) {
  if (!is_valid_key(key)) return detail::not_found_error("event", key);
  BOOKING_TRY(repo_.get_event(key));
  return repo_.export_bookings(key, sink);
}

void BookingService::forget_definition(const std::string& key) {
  std::unique_lock lock(definitions_mu_);
  definitions_.erase(key);
}

result<Event> BookingService::set_status(std::string_view key, EventStatus status,
                                         std::optional<std::int64_t> if_version) {
  if (!is_valid_key(key)) return detail::not_found_error("event", key);
  auto r = feed_changed(repo_.set_event_status(key, status, if_version, clock_.now()));
  forget_definition(std::string(key));
  return r;
}

result<Event> BookingService::update_event(std::string_view key, const EventPatch& patch,
                                           std::optional<std::int64_t> if_version) {
  if (!is_valid_key(key)) return detail::not_found_error("event", key);
  for (int attempt = 1;; ++attempt) {
    BOOKING_TRY(auto current, repo_.get_event(key));  // never the cached definition
    if (if_version && *if_version != current.version) {
      return make_error(errc::precondition_failed,
                        "event '" + current.key + "' is at version " +
                            std::to_string(current.version) + ", not " +
                            std::to_string(*if_version),
                        {{"version", current.version}});
    }
    if (current.status == EventStatus::cancelled) {
      return make_error(errc::invalid_state,
                        "event '" + current.key + "' is cancelled; it cannot change");
    }
    EventUpdate update;
    BOOKING_TRY(update.after, apply_patch(current, patch));
    for (std::size_t i = 0; i < patch.tiers.size(); ++i) {
      update.tier_fields[patch.tiers[i].key] = "eventGroups[" + std::to_string(i) + "]";
    }
    update.before = std::move(current);
    update.at = clock_.now();
    auto stored = feed_changed(repo_.update_event(update));
    forget_definition(std::string(key));
    // Changed by someone else between the read and the write: patch the newer event.
    if (!stored && stored.error().code == errc::precondition_failed && !if_version && attempt < 5) {
      continue;
    }
    return stored;
  }
}

result<Event> BookingService::close_event(std::string_view key,
                                          std::optional<std::int64_t> if_version) {
  return set_status(key, EventStatus::closed, if_version);
}

result<Event> BookingService::reopen_event(std::string_view key,
                                           std::optional<std::int64_t> if_version) {
  return set_status(key, EventStatus::on_sale, if_version);
}

result<EventCancellation> BookingService::cancel_event(std::string_view key,
                                                       std::optional<std::int64_t> if_version) {
  // First the status, for good and at once: no hold commits into the event after this.
  BOOKING_TRY(set_status(key, EventStatus::cancelled, if_version));
  // Then its bookings, in batches that each commit on their own: other events' holds never
  // wait long behind a big event. Running it again (after a crash) finishes the job.
  EventCancellation out;
  while (true) {
    BOOKING_TRY(auto batch, feed_changed(repo_.cancel_event_bookings(key, options_.expire_batch,
                                                                     clock_.now())));
    out.bookings_cancelled += batch.cancelled;
    if (batch.cancelled + batch.expired == 0) break;
  }
  BOOKING_TRY(out.event, repo_.get_event(key));
  return out;
}

result<std::shared_ptr<const Event>> BookingService::definition(const std::string& key) {
  {
    std::shared_lock lock(definitions_mu_);
    if (auto it = definitions_.find(key); it != definitions_.end()) return it->second;
  }
  BOOKING_TRY(auto event, repo_.get_event(key));
  auto shared = std::make_shared<const Event>(std::move(event));
  std::unique_lock lock(definitions_mu_);
  if (definitions_.size() >= 10'000) definitions_.clear();  // bounded; misses just re-read
  definitions_.emplace(key, shared);
  return shared;
}

result<Lease> BookingService::lock_tiers(const std::vector<std::string>& keys,
                                         std::chrono::steady_clock::time_point deadline) {
  auto lease = acquire_guard(locks_, keys, options_.lock_wait.lease_ttl, deadline);
  if (!lease && lease.error().code == errc::lock_timeout) {
    return make_error(errc::lock_timeout,
                      "tickets are in high demand, try again (" + lease.error().message + ")");
  }
  return lease;
}

result<Booking> BookingService::get_booking(std::string_view id) {
  if (!is_booking_id(id)) return booking_not_found(id);
  return repo_.get_booking(id);
}

result<Booking> BookingService::confirm(std::string_view id, const Payment& payment) {
  if (!is_booking_id(id)) return booking_not_found(id);
  json::object problems;
  auto m = detail::utf8_length(payment.method);
  if (!m || *m == 0 || *m > 64) problems["paymentMethod"] = "must be 1-64 characters";
  auto r = detail::utf8_length(payment.reference);
  if (!r || *r > 256) problems["reference"] = "must be at most 256 characters";
  if (!problems.empty()) {
    return make_error(errc::validation_failed, "invalid payment", std::move(problems));
  }
  return feed_changed(repo_.confirm(id, payment.method, payment.reference, clock_.now()));
}

result<Booking> BookingService::cancel(std::string_view id, CancelScope scope) {
  if (!is_booking_id(id)) return booking_not_found(id);
  return feed_changed(repo_.cancel(id, clock_.now(), scope));
}

result<std::size_t> BookingService::expire_due() {
  const Instant now = clock_.now();
  std::size_t total = 0;
  while (true) {
    BOOKING_TRY(auto n, repo_.expire_due(now, options_.expire_batch));
    total += n;
    if (n > 0) wake_feed_waiters();
    if (n < options_.expire_batch) break;
  }
  const Instant cutoff = now - options_.idempotency_ttl;
  while (true) {
    BOOKING_TRY(auto n, repo_.purge_idempotency_keys(cutoff, options_.expire_batch));
    if (n < options_.expire_batch) break;
  }
  while (true) {
    BOOKING_TRY(auto n, repo_.prune_changes(now - options_.feed_retention, options_.expire_batch));
    if (n < options_.expire_batch) return total;
  }
}

result<std::vector<Change>> BookingService::changes(std::int64_t after, std::int64_t limit) {
  if (after < 0 || limit < 1 || limit > 1000) {
    json::object problems;
    if (after < 0) problems["after"] = "must be >= 0";
    if (limit < 1 || limit > 1000) problems["limit"] = "must be between 1 and 1000";
    return make_error(errc::validation_failed, "invalid change feed request", problems);
  }
  BOOKING_TRY(auto bounds, repo_.feed_bounds());
  if (after < bounds.floor) {
    return make_error(errc::feed_expired,
                      "changes up to " + std::to_string(bounds.floor) +
                          " were pruned; resume after it, or read the current state again",
                      {{"floor", bounds.floor}});
  }
  return repo_.read_changes(after, static_cast<std::size_t>(limit));
}

result<FeedBounds> BookingService::feed_bounds() { return repo_.feed_bounds(); }

result<std::vector<Change>> BookingService::wait_changes(std::int64_t after, std::int64_t limit,
                                                         std::chrono::milliseconds wait,
                                                         const std::atomic<bool>* stop) {
  // This process's writes wake the waiters at once (holds once per round, after its answers:
  // a wake per hold made a subscriber read the feed again for each); another process's (the
  // CLI, another instance) are found by reading again every 25 ms.
  const auto deadline = std::chrono::steady_clock::now() + wait;
  while (true) {
    std::uint64_t seen = 0;
    {
      std::lock_guard lock(feed_mu_);
      seen = feed_generation_;
    }
    BOOKING_TRY(auto page, changes(after, limit));
    const auto now = std::chrono::steady_clock::now();
    if (!page.empty() || now >= deadline || (stop && stop->load())) return page;
    std::unique_lock lock(feed_mu_);
    feed_cv_.wait_until(lock, std::min(deadline, now + std::chrono::milliseconds(25)),
                        [&] { return feed_generation_ != seen || (stop && stop->load()); });
  }
}

void BookingService::wake_feed_waiters() {
  {
    std::lock_guard lock(feed_mu_);
    ++feed_generation_;
  }
  feed_cv_.notify_all();
}

Event demo_event(Instant now) {
  using namespace std::chrono;
  const Instant today = floor<days>(now);
  const Instant show = today + days(90) + hours(13);  // 20:00 in Jakarta (UTC+7)
  Event e;
  e.key = "Con10124";
  e.name = "Blink 182 Goes to Indonesia";
  e.type = "Concert";
  e.promoter = "Java Festival Production";
  e.date = show;
  e.utc_offset_minutes = 7 * 60;  // shown as 20:00 +07:00, Jakarta's time
  e.location = {"Jakarta International Stadium", "Jl. R.E. Martadinata, Jakarta Utara"};
  struct Row {
    const char* key;
    const char* category;
    std::int64_t price_idr;
    std::int64_t qty;
  };
  for (const Row& r :
       {Row{"gold-Con10124", "Gold", 5'000'000, 100}, Row{"sil-Con10124", "Silver", 3'000'000, 200},
        Row{"pla-Con10124", "Platinum", 7'500'000, 50}}) {
    Tier t;
    t.key = r.key;
    t.category = r.category;
    t.price = Money{r.price_idr * 100, "IDR"};
    t.capacity = r.qty;
    t.start = today - days(1);
    t.end = show;
    t.max_per_order = 10;
    e.tiers.push_back(std::move(t));
  }
  return e;
}

}  // namespace booking
