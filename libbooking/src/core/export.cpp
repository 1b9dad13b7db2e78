#include <booking/export.hpp>
#include <booking/money.hpp>
#include <booking/time.hpp>

namespace booking {

std::string_view csv_header() noexcept {
  return "bookId,status,userId,tier,qty,unitPrice,currency,createdAt,expiresAt,paymentMethod,"
         "paymentReference\r\n";
}

void append_csv_cell(std::string& out, std::string_view value) {
  const bool formula = !value.empty() && (value[0] == '=' || value[0] == '+' || value[0] == '-' ||
                                          value[0] == '@' || value[0] == '\t' || value[0] == '\r');
  const bool quoted = value.find_first_of(",\"\r\n") != std::string_view::npos;
  if (quoted) out += '"';
  if (formula) out += '\'';
  for (char c : value) {
    if (c == '"') out += '"';
    out += c;
  }
  if (quoted) out += '"';
}

void append_csv_rows(std::string& out, const Booking& b) {
  auto currency = find_currency(b.total.currency);
  const int decimals = currency ? currency.value().decimals : 2;
  const std::string created = format_instant(b.created_at);
  const std::string expires = format_instant(b.expires_at);
  for (const BookingLine& l : b.lines) {
    // bookId, status, timestamps and numbers are ours (never need quoting); the rest is not.
    out += b.id;
    out += ',';
    out += to_string(b.status);
    out += ',';
    append_csv_cell(out, b.user_id.value_or(""));
    out += ',';
    append_csv_cell(out, l.tier_key);
    out += ',';
    out += std::to_string(l.qty);
    out += ',';
    out += format_major_units(l.unit_price_minor, decimals);
    out += ',';
    append_csv_cell(out, b.total.currency);
    out += ',';
    out += created;
    out += ',';
    out += expires;
    out += ',';
    append_csv_cell(out, b.payment_method.value_or(""));
    out += ',';
    append_csv_cell(out, b.payment_reference.value_or(""));
    out += "\r\n";
  }
}

}  // namespace booking
