#include "output.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <booking/money.hpp>
#include <cstdlib>
#include <cwchar>
#include <map>

namespace booking::cli {

namespace {
// The columns `s` takes on a terminal: UTF-8 decoded, each code point as wide as wcwidth(3)
// says (2 for CJK, 0 for combining marks; the CLI runs in a UTF-8 locale). Invalid bytes and
// unprintable characters count 1.
std::size_t width(const std::string& s) {
  std::size_t n = 0;
  std::mbstate_t state{};
  const char* p = s.data();
  const char* end = p + s.size();
  while (p < end) {
    wchar_t wc = 0;
    const std::size_t len = std::mbrtowc(&wc, p, static_cast<std::size_t>(end - p), &state);
    if (len == 0 || len > static_cast<std::size_t>(end - p)) {  // NUL, invalid or cut short
      state = {};
      ++p;
      ++n;
      continue;
    }
    const int w = ::wcwidth(wc);
    n += w < 0 ? 1 : static_cast<std::size_t>(w);
    p += len;
  }
  return n;
}
}  // namespace

Style::Style(std::FILE* stream)
    : enabled_(::isatty(::fileno(stream)) == 1 && std::getenv("NO_COLOR") == nullptr) {}

std::string Style::wrap(const char* code, const std::string& s) const {
  return enabled_ ? fmt::format("\033[{}m{}\033[0m", code, s) : s;
}

std::string Style::status(BookingStatus st) const {
  const char* code = st == BookingStatus::held        ? "33"
                     : st == BookingStatus::confirmed ? "32"
                                                      : "31";
  return wrap(code, std::string(to_string(st)));
}

Table::Table(std::vector<std::string> header, std::vector<bool> right_aligned)
    : header_(std::move(header)), right_(std::move(right_aligned)) {
  right_.resize(header_.size(), false);
}

void Table::add(std::vector<std::string> row) {
  row.resize(header_.size());
  rows_.push_back(std::move(row));
}

std::string Table::render(const Style& style) const {
  std::vector<std::size_t> widths(header_.size());
  for (std::size_t i = 0; i < header_.size(); ++i) widths[i] = width(header_[i]);
  for (const auto& row : rows_) {
    for (std::size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], width(row[i]));
  }
  auto line = [&](const std::vector<std::string>& cells, bool is_header) {
    std::string out;
    for (std::size_t i = 0; i < cells.size(); ++i) {
      std::string pad(widths[i] - width(cells[i]), ' ');
      std::string cell = is_header ? style.bold(cells[i]) : cells[i];
      out += right_[i] ? pad + cell : cell + (i + 1 < cells.size() ? pad : "");
      if (i + 1 < cells.size()) out += "  ";
    }
    return out + "\n";
  };
  std::string out = line(header_, true);
  for (const auto& row : rows_) out += line(row, false);
  return out;
}

std::string render_event(const Event& e, const Style& style) {
  std::string out = style.bold(e.name) + "  " + style.dim(e.key) + "\n";
  // Times as people at the event read them: in the offset the organiser gave its date in.
  const std::int32_t off = e.utc_offset_minutes;
  out += fmt::format("{} · {} · {}{}\n", e.type, format_instant(e.date, off),
                     e.location.venue.empty() ? "no venue" : e.location.venue,
                     e.promoter ? " · by " + *e.promoter : "");
  if (e.status != EventStatus::on_sale) {
    out += style.bold(e.status == EventStatus::closed ? "sale closed" : "event cancelled") +
           fmt::format(" (version {})\n", e.version);
  } else {
    out += fmt::format("on sale (version {})\n", e.version);
  }
  Table t({"TIER", "CATEGORY", "PRICE", "CAPACITY", "HELD", "SOLD", "AVAILABLE",
           "ON SALE (" + format_utc_offset(off) + ")"},
          {false, false, true, true, true, true, true, false});
  for (const Tier& tier : e.tiers) {
    t.add({tier.key, tier.category, format_money(tier.price), format_integer(tier.stock.capacity),
           format_integer(tier.stock.held), format_integer(tier.stock.sold),
           format_integer(tier.stock.available),
           format_instant(tier.start, off).substr(0, 16) + " → " +
               format_instant(tier.end, off).substr(0, 16)});
  }
  out += t.render(style);
  for (const ReleaseWave& w : e.waves) {
    out += fmt::format(
        "wave {} → {} ({}): {} of {} booked\n", format_instant(w.start, off).substr(0, 16),
        format_instant(w.end, off).substr(0, 16), format_utc_offset(off), w.booked, w.limit);
  }
  return out;
}

std::string render_events(const std::vector<Event>& events, const Style& style) {
  Table t({"KEY", "NAME", "DATE", "TIERS", "AVAILABLE"}, {false, false, false, true, true});
  for (const Event& e : events) {
    std::int64_t available = 0;
    for (const Tier& tier : e.tiers) available += tier.stock.available;
    t.add({e.key, e.name,
           format_instant(e.date, e.utc_offset_minutes).substr(0, 16) +
               format_utc_offset(e.utc_offset_minutes),
           std::to_string(e.tiers.size()), format_integer(available)});
  }
  return t.render(style) +
         fmt::format("{} event{}\n", events.size(), events.size() == 1 ? "" : "s");
}

std::string render_bookings(const BookingPage& page, const Style& style) {
  Table t({"BOOKING", "STATUS", "EVENT", "USER", "TICKETS", "TOTAL", "CREATED"},
          {false, false, false, false, true, true, false});
  for (const Booking& b : page.bookings) {
    t.add({b.id, style.status(b.status), b.event_key, b.user_id.value_or("-"),
           format_integer(b.ticket_count()), format_money(b.total),
           format_instant(b.created_at).substr(0, 19)});
  }
  std::string out = t.render(style) + fmt::format("{} booking{}\n", page.bookings.size(),
                                                  page.bookings.size() == 1 ? "" : "s");
  if (page.next) out += style.dim("more: add --cursor " + *page.next) + "\n";
  return out;
}

std::string render_report(const EventReport& r, const Style& style) {
  Table t({"TIER", "CAPACITY", "AVAILABLE", "HELD", "SOLD", "CANCELLED", "EXPIRED", "REVENUE"},
          {false, true, true, true, true, true, true, true});
  std::map<std::string, std::pair<std::int64_t, std::int64_t>> totals;
  for (const TierReport& x : r.tiers) {
    t.add({x.key, format_integer(x.capacity), format_integer(x.available), format_integer(x.held),
           format_integer(x.sold), format_integer(x.cancelled), format_integer(x.expired),
           format_money({x.revenue_minor, x.currency})});
    totals[x.currency].first += x.sold;
    totals[x.currency].second += x.revenue_minor;
  }
  for (const auto& [currency, total] : totals) {
    t.add({"total " + currency, "", "", "", format_integer(total.first), "", "",
           style.bold(format_money({total.second, currency}))});
  }
  return style.bold(r.event_key) + "\n" + t.render(style);
}

std::string render_booking(const Booking& b, const Style& style) {
  std::string out = fmt::format("booking {}  {}\n", style.bold(b.id), style.status(b.status));
  out += fmt::format("event {}{} · created {} · {} {}\n", b.event_key,
                     b.user_id ? " · user " + *b.user_id : "", format_instant(b.created_at),
                     b.status == BookingStatus::held ? "expires" : "hold deadline",
                     format_instant(b.expires_at));
  Table t({"TIER", "QTY", "UNIT PRICE", "SUBTOTAL"}, {false, true, true, true});
  for (const BookingLine& l : b.lines) {
    t.add({l.tier_key, format_integer(l.qty), format_money({l.unit_price_minor, b.total.currency}),
           format_money({l.unit_price_minor * l.qty, b.total.currency})});
  }
  t.add({"total", format_integer(b.ticket_count()), "", style.bold(format_money(b.total))});
  out += t.render(style);
  if (b.payment_method) {
    const std::string paid = fmt::format("by {}{}", *b.payment_method,
                                         b.payment_reference && !b.payment_reference->empty()
                                             ? " (reference " + *b.payment_reference + ")"
                                             : "");
    out += b.status == BookingStatus::cancelled
               ? "cancelled after payment " + paid + ": the refund is the payment system's\n"
               : "paid " + paid + "\n";
  }
  return out;
}

Progress::Progress(std::size_t total)
    : total_(total),
      enabled_(::isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()) {}

void Progress::update(std::size_t done) {
  if (!enabled_) return;
  total_ = std::max(total_, done);  // more may come than counted at the start
  auto now = std::chrono::steady_clock::now();
  if (done < total_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  double secs = std::chrono::duration<double>(now - start_).count();
  double rate = secs > 0 ? static_cast<double>(done) / secs : 0;
  double eta = rate > 0 ? static_cast<double>(total_ - done) / rate : 0;
  constexpr int kWidth = 30;
  int filled = total_ ? static_cast<int>(kWidth * done / total_) : kWidth;
  std::fprintf(stderr, "\r[%s%s] %s/%s  %s/s  ETA %.0fs ", std::string(filled, '=').c_str(),
               std::string(kWidth - filled, ' ').c_str(),
               format_integer(static_cast<std::int64_t>(done)).c_str(),
               format_integer(static_cast<std::int64_t>(total_)).c_str(),
               format_integer(static_cast<std::int64_t>(rate)).c_str(), eta);
  std::fflush(stderr);
}

void Progress::finish() {
  if (!enabled_) return;
  update(total_);
  std::fputc('\n', stderr);
}

}  // namespace booking::cli
