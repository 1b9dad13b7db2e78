// A randomized model test: thousands of random operations (holds, confirms, cancels, expiry,
// capacity changes, closing, reopening and cancelling the event) against the service and a
// trivial reference model; after every step both agree and the conservation invariant holds.
#include <map>
#include <random>

#include "process.hpp"
#include "support.hpp"

using namespace booking;
using namespace booking::test;
using namespace std::chrono_literals;

namespace {

struct ModelBooking {
  BookingStatus status;
  std::vector<std::pair<std::string, std::int64_t>> lines;
  Instant expires;
};

struct Model {
  std::map<std::string, TierStock> tiers;
  EventStatus status = EventStatus::on_sale;
  std::map<std::string, ModelBooking> bookings;

  void move(ModelBooking& b, BookingStatus to) {
    for (auto& [k, q] : b.lines) {
      TierStock& s = tiers[k];
      (b.status == BookingStatus::held ? s.held : s.sold) -= q;
      (to == BookingStatus::confirmed ? s.sold : s.available) += q;
    }
    b.status = to;
  }
  // The outcome the model predicts for a confirm or cancel at `now` (every confirm pays with
  // the same reference, so confirming a CONFIRMED booking is a harmless retry).
  std::optional<errc> transition(ModelBooking& b, bool is_confirm, Instant now) {
    if (b.status == BookingStatus::held && b.expires <= now) {
      move(b, BookingStatus::expired);
      return errc::hold_expired;
    }
    if (b.status == BookingStatus::expired) return errc::hold_expired;
    if (is_confirm && b.status == BookingStatus::confirmed) return std::nullopt;
    if (b.status == BookingStatus::held) {
      move(b, is_confirm ? BookingStatus::confirmed : BookingStatus::cancelled);
      return std::nullopt;
    }
    if (!is_confirm && b.status == BookingStatus::confirmed) {
      move(b, BookingStatus::cancelled);
      return std::nullopt;
    }
    return errc::invalid_state;
  }
};

}  // namespace

TEMPLATE_TEST_CASE("random operations agree with a reference model", "[service][model]",
                   ALL_BACKENDS) {
  TestType b;
  Fixture f(b.repo);
  const std::vector<std::string> keys{"a-M", "b-M", "c-M"};
  REQUIRE(f.service.create_event(sample_event("M", {{"a", 40}, {"b", 25}, {"c", 10}})));
  Model m;
  m.tiers = {{"a-M", {40, 40, 0, 0}}, {"b-M", {25, 25, 0, 0}}, {"c-M", {10, 10, 0, 0}}};
  std::vector<std::string> ids;

  std::mt19937 rng(GENERATE(1u, 2u, 3u));
  auto pick = [&](int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng); };
  for (int step = 0; step < 1500; ++step) {
    const Instant now = f.clock.now();
    const int op = pick(14);
    INFO("step " << step << " op " << op);
    if (op < 4) {  // hold one or two tiers
      HoldRequest r;
      r.event_key = "M";
      std::vector<std::pair<std::string, std::int64_t>> lines;
      int first = pick(3);
      lines.push_back({keys[static_cast<std::size_t>(first)], 1 + pick(5)});
      if (pick(2)) lines.push_back({keys[static_cast<std::size_t>((first + 1) % 3)], 1 + pick(3)});
      for (auto& [k, q] : lines) r.lines.push_back({k, q});
      bool fits = m.status == EventStatus::on_sale;
      for (auto& [k, q] : lines) fits = fits && m.tiers[k].available >= q;
      auto h = f.service.hold(r);
      REQUIRE(bool(h) == fits);
      if (h) {
        ModelBooking mb{BookingStatus::held, lines, now + 10min};
        for (auto& [k, q] : lines) {
          m.tiers[k].available -= q;
          m.tiers[k].held += q;
        }
        m.bookings[h.value().id] = mb;
        ids.push_back(h.value().id);
      } else {
        REQUIRE(h.error().code ==
                (m.status == EventStatus::on_sale ? errc::insufficient_stock : errc::sale_closed));
      }
    } else if (op < 7 && !ids.empty()) {  // confirm or cancel a random booking
      const std::string& id = ids[static_cast<std::size_t>(pick(static_cast<int>(ids.size())))];
      bool is_confirm = op < 6;
      auto expected = m.transition(m.bookings[id], is_confirm, now);
      auto got = is_confirm ? f.service.confirm(id, {}) : f.service.cancel(id);
      REQUIRE(bool(got) == !expected.has_value());
      if (!got) REQUIRE(got.error().code == *expected);
      REQUIRE(f.service.get_booking(id).value().status == m.bookings[id].status);
    } else if (op < 9) {
      f.clock.advance(std::chrono::seconds(pick(240)));
    } else if (op < 11) {  // a new capacity, sometimes below what is held and sold
      const std::string& k = keys[static_cast<std::size_t>(pick(3))];
      TierStock& s = m.tiers[k];
      const std::int64_t capacity = pick(static_cast<int>(s.capacity) + 20);
      EventPatch p;
      p.tiers.push_back(TierPatch{});
      p.tiers.back().key = k;
      p.tiers.back().capacity = capacity;
      auto got = f.service.update_event("M", p);
      if (m.status == EventStatus::cancelled) {
        REQUIRE(got.error().code == errc::invalid_state);
      } else if (capacity < s.held + s.sold) {
        REQUIRE(got.error().code == errc::validation_failed);
      } else {
        REQUIRE(got);
        s.available += capacity - s.capacity;
        s.capacity = capacity;
      }
    } else if (op < 13) {  // close an open sale, reopen a closed one
      const bool open = m.status == EventStatus::on_sale;
      auto got = open ? f.service.close_event("M") : f.service.reopen_event("M");
      if (m.status == EventStatus::cancelled) {
        REQUIRE(got.error().code == errc::invalid_state);
      } else {
        REQUIRE(got);
        m.status = open ? EventStatus::closed : EventStatus::on_sale;
      }
    } else if (step > 1200 && pick(8) == 0) {  // cancel the event, for good
      std::size_t cancelled = 0;
      for (auto& [id, mb] : m.bookings) {
        if (mb.status == BookingStatus::held && mb.expires <= now) {
          m.move(mb, BookingStatus::expired);
        } else if (mb.status == BookingStatus::held || mb.status == BookingStatus::confirmed) {
          m.move(mb, BookingStatus::cancelled);
          ++cancelled;
        }
      }
      m.status = EventStatus::cancelled;
      auto got = f.service.cancel_event("M");
      REQUIRE(got);
      REQUIRE(got.value().bookings_cancelled == cancelled);
    } else {
      std::size_t due = 0;
      for (auto& [id, mb] : m.bookings) {
        if (mb.status == BookingStatus::held && mb.expires <= now) {
          m.move(mb, BookingStatus::expired);
          ++due;
        }
      }
      REQUIRE(f.service.expire_due().value() == due);
    }
    const Event e = f.repo->get_event("M").value();
    REQUIRE(e.status == m.status);
    for (const Tier& t : e.tiers) {
      INFO("tier " << t.key);
      REQUIRE(t.stock == m.tiers[t.key]);
      REQUIRE(t.stock.capacity == t.stock.available + t.stock.held + t.stock.sold);
    }
  }
}
