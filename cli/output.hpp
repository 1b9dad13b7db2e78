// Human output of the booking CLI: aligned tables, optional colour, a progress bar.
#pragma once

#include <booking/booking_service.hpp>
#include <booking/booking.hpp>
#include <booking/event.hpp>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

namespace booking::cli {

// Colour only when the stream is a terminal and NO_COLOR is unset (no-color.org).
class Style {
 public:
  explicit Style(std::FILE* stream);
  std::string bold(const std::string& s) const { return wrap("1", s); }
  std::string dim(const std::string& s) const { return wrap("2", s); }
  std::string status(BookingStatus st) const;

 private:
  std::string wrap(const char* code, const std::string& s) const;
  bool enabled_;
};

// Columns aligned by their widest cell; numbers right-aligned.
class Table {
 public:
  explicit Table(std::vector<std::string> header, std::vector<bool> right_aligned = {});
  void add(std::vector<std::string> row);
  std::string render(const Style& style) const;

 private:
  std::vector<std::string> header_;
  std::vector<bool> right_;
  std::vector<std::vector<std::string>> rows_;
};

std::string render_event(const Event& e, const Style& style);
std::string render_events(const std::vector<Event>& events, const Style& style);
std::string render_booking(const Booking& b, const Style& style);
// A page of bookings as one table, and how to get the next page.
std::string render_bookings(const BookingPage& page, const Style& style);
std::string render_report(const EventReport& report, const Style& style);

// A progress bar on stderr, drawn only when stderr is a terminal: count, rate and ETA.
class Progress {
 public:
  explicit Progress(std::size_t total);
  void update(std::size_t done);
  void finish();

 private:
  std::size_t total_;
  bool enabled_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace booking::cli
