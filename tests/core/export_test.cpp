// The CSV export's format: RFC 4180 quoting and the spreadsheet formula guard.
#include <booking/export.hpp>

#include "support.hpp"

using namespace booking;

namespace {
std::string cell(std::string_view v) {
  std::string out;
  append_csv_cell(out, v);
  return out;
}
}  // namespace

TEST_CASE("CSV cells are quoted as RFC 4180 says and formulas are defused", "[export]") {
  CHECK(cell("plain") == "plain");
  CHECK(cell("") == "");
  CHECK(cell("a,b") == "\"a,b\"");
  CHECK(cell("say \"hi\"") == "\"say \"\"hi\"\"\"");
  CHECK(cell("two\nlines") == "\"two\nlines\"");
  CHECK(cell("cr\rhere") == "\"cr\rhere\"");
  for (const char* formula : {"=1+1", "+1", "-1", "@SUM(A1)", "\tx"}) {
    INFO(formula);
    CHECK(cell(formula) == "'" + std::string(formula));
  }
  CHECK(cell("=HYPERLINK(\"http://x\",\"y\")") == "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\"");
  CHECK(cell("\r=1") == "\"'\r=1\"");
  CHECK(cell("a=1") == "a=1");  // only a leading sign starts a formula
}

TEST_CASE("a booking is one CSV row per line, with prices in major units", "[export]") {
  Booking b;
  b.id = "0123456789abcdef0123456789abcdef";
  b.user_id = "-u1";
  b.status = BookingStatus::confirmed;
  b.total = Money{2650, "USD"};
  b.lines = {{"gold-X", 2, 1250}, {"sil,ver", 1, 150}};
  b.created_at = test::kT0;
  b.expires_at = test::kT0 + std::chrono::minutes(10);
  b.payment_method = "card";
  b.payment_reference = "@ref";
  std::string out(csv_header());
  append_csv_rows(out, b);
  CHECK(out ==
        "bookId,status,userId,tier,qty,unitPrice,currency,createdAt,expiresAt,paymentMethod,"
        "paymentReference\r\n"
        "0123456789abcdef0123456789abcdef,CONFIRMED,'-u1,gold-X,2,12.5,USD,"
        "2027-01-15T08:00:00.000+00:00,2027-01-15T08:10:00.000+00:00,card,'@ref\r\n"
        "0123456789abcdef0123456789abcdef,CONFIRMED,'-u1,\"sil,ver\",1,1.5,USD,"
        "2027-01-15T08:00:00.000+00:00,2027-01-15T08:10:00.000+00:00,card,'@ref\r\n");
  Booking anonymous = b;
  anonymous.user_id.reset();
  anonymous.payment_method.reset();
  anonymous.payment_reference.reset();
  anonymous.lines.resize(1);
  std::string row;
  append_csv_rows(row, anonymous);
  CHECK(row.find(",CONFIRMED,,gold-X,") != std::string::npos);
  CHECK(row.ends_with(",,\r\n"));
}
