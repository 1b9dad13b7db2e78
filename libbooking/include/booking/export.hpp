// An event's bookings as CSV, one row per booking line: the attendee list a spreadsheet opens.
#pragma once

#include <booking/booking.hpp>
#include <string>
#include <string_view>

namespace booking {

// The header row: bookId,status,userId,tier,qty,unitPrice,currency,createdAt,expiresAt,
// paymentMethod,paymentReference (CRLF-terminated, as every row).
std::string_view csv_header() noexcept;

// Appends `booking`'s rows to `out`: one per line, unitPrice in major units, instants in UTC
// ISO 8601, absent values empty. Cells are quoted as RFC 4180 says (a comma, quote, CR or LF
// inside), and a text cell starting with =, +, -, @, a tab or a CR gets a leading ' so that a
// spreadsheet shows it instead of running it as a formula (a userId such as
// "=HYPERLINK(...)" is the buyer's to choose).
void append_csv_rows(std::string& out, const Booking& booking);

// One cell as append_csv_rows writes it.
void append_csv_cell(std::string& out, std::string_view value);

}  // namespace booking
