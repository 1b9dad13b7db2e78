// The booking CLI as a user runs it: a subprocess per command.
#include <httplib.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <booking/json_codec.hpp>
#include <boost/json.hpp>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "process.hpp"

using namespace booking;
using namespace booking::test;
namespace json = boost::json;

namespace {

class Cli {
 public:
  Cli() : db_(dir_.file("cli.db")) {}
  CommandResult operator()(std::vector<std::string> args, const std::string& input = "") const {
    args.insert(args.begin(), {BOOKING_CLI_PATH, "--db", db_});
    return run_command(args, input);
  }
  const TempDir& dir() const { return dir_; }
  const std::string& db() const { return db_; }

 private:
  TempDir dir_;
  std::string db_;
};

json::value parse(const std::string& s) { return json::parse(s); }

// One line of JSON, as a .jsonl file needs.
std::string live_event(const std::string& key, std::int64_t qty) {
  return json::serialize(json::parse(R"({"key": ")" + key + R"(", "name": "Night of )" + key +
                                     R"(", "type": "Concert",
    "date": "2099-01-01T20:00:00Z", "eventGroups": [{"key": "gold-)" +
                                     key + R"(",
    "category": "Gold", "price": 12.5, "currency": "USD", "qty": )" +
                                     std::to_string(qty) + R"(,
    "startDate": "2020-01-01T00:00:00Z", "endDate": "2099-01-01T00:00:00Z"}]})"));
}

}  // namespace

TEST_CASE("each CLI command succeeds and prints the HTTP shapes with --json", "[cli]") {
  Cli cli;
  auto demo = cli({"--json", "demo"});
  REQUIRE(demo.code == 0);
  CHECK(parse(demo.out).at("key").as_string() == "Con10124");

  auto created = cli({"--json", "event", "create", "-"}, live_event("Cli1", 50));
  INFO(created.err);
  REQUIRE(created.code == 0);
  auto ev = parse(created.out);
  CHECK(ev.at("eventGroups").at(0).at("price").as_double() == 12.5);
  CHECK(ev.at("eventGroups").at(0).at("capacity").as_int64() == 50);

  auto held = cli({"--json", "book", "Cli1", "gold-Cli1=3", "--user", "u1"});
  REQUIRE(held.code == 0);
  auto h = parse(held.out).as_object();
  for (const char* field : {"bookId", "price", "currency", "status", "expiresAt"}) {
    CHECK(h.contains(field));
  }
  CHECK(h.at("price").as_double() == 37.5);
  const std::string id(h.at("bookId").as_string());

  auto shown = cli({"--json", "show", id});
  REQUIRE(shown.code == 0);
  CHECK(parse(shown.out).at("groupKeys").at(0).at("qty").as_int64() == 3);

  auto confirmed = cli({"--json", "confirm", id, "--method", "card", "--reference", "R1"});
  REQUIRE(confirmed.code == 0);
  CHECK(parse(confirmed.out).at("status").as_string() == "CONFIRMED");

  auto event = cli({"--json", "event", "show", "Cli1"});
  REQUIRE(event.code == 0);
  CHECK(parse(event.out).at("eventGroups").at(0).at("sold").as_int64() == 3);

  auto found = cli({"--json", "event", "search", "night"});
  REQUIRE(found.code == 0);
  CHECK(parse(found.out).as_array().size() == 1);

  auto cancelled = cli({"--json", "cancel", id});
  REQUIRE(cancelled.code == 0);
  CHECK(parse(cancelled.out).at("status").as_string() == "CANCELLED");

  auto expired = cli({"--json", "expire"});
  REQUIRE(expired.code == 0);
  CHECK(parse(expired.out).at("expired").as_int64() == 0);

  // times as people at the event read them, in the offset its date was given in
  auto local = json::parse(live_event("Tz", 1)).as_object();
  local["date"] = "2030-06-01T20:00:00+07:00";
  REQUIRE(cli({"event", "create", "-"}, json::serialize(local)).code == 0);
  auto tz = cli({"event", "show", "Tz"});
  CHECK(tz.out.find("2030-06-01T20:00:00.000+07:00") != std::string::npos);
  CHECK(tz.out.find("ON SALE (+07:00)") != std::string::npos);

  // people get tables with money formatted for the currency
  auto table = cli({"event", "show", "Cli1"});
  REQUIRE(table.code == 0);
  CHECK(table.out.find("12.50 USD") != std::string::npos);
  CHECK(table.out.find("AVAILABLE") != std::string::npos);
  CHECK(table.out.find("\033[") == std::string::npos);  // not a terminal: no colour
}

namespace {
// An operator's session against `db` (SQLite path or PostgreSQL URL), the CLI as a subprocess:
// tokens, then change, close, reopen and cancel a sale.
void operator_session(const std::string& db) {
  auto cli = [&](std::vector<std::string> args, const std::string& input = "") {
    args.insert(args.begin(), {BOOKING_CLI_PATH, "--db", db});
    return run_command(args, input);
  };
  auto token = cli({"--json", "token", "create", "ops", "--role", "admin"});
  INFO(token.err);
  REQUIRE(token.code == 0);
  CHECK(parse(token.out).at("token").as_string().starts_with("bk_"));
  auto listed = cli({"token", "list"});
  CHECK(listed.out.find("ops") != std::string::npos);
  CHECK(listed.out.find(std::string(parse(token.out).at("token").as_string())) ==
        std::string::npos);
  CHECK(cli({"token", "create", "ops"}).code == 4);
  CHECK(cli({"token", "create", "x", "--role", "root"}).code == 2);

  REQUIRE(cli({"event", "create", "-"}, live_event("Run", 10)).code == 0);
  const std::string paid(
      parse(cli({"--json", "book", "Run", "gold-Run=2"}).out).at("bookId").as_string());
  REQUIRE(cli({"confirm", paid}).code == 0);
  REQUIRE(cli({"book", "Run", "gold-Run=1"}).code == 0);

  auto listed_bookings = parse(cli({"--json", "bookings", "--event", "Run", "--limit", "1"}).out);
  CHECK(listed_bookings.at("data").as_array().size() == 1);
  CHECK(listed_bookings.as_object().contains("next"));
  auto report = parse(cli({"--json", "report", "Run"}).out);
  CHECK(report.at("tiers").at(0).at("sold").as_int64() == 2);
  CHECK(report.at("totals").at(0).at("revenue").to_number<double>() == 25.0);
  CHECK(cli({"bookings", "--status", "PAID"}).code == 2);

  // Change the sale: more tickets and a new price, from stdin; a stale version and a bad
  // patch are refused.
  auto updated = cli({"--json", "event", "update", "Run", "-", "--if-version", "1"},
                     R"({"eventGroups": [{"key": "gold-Run", "capacity": 20, "price": 15}]})");
  INFO(updated.err);
  REQUIRE(updated.code == 0);
  CHECK(parse(updated.out).at("version").as_int64() == 2);
  CHECK(parse(updated.out).at("eventGroups").at(0).at("qty").as_int64() == 17);
  auto stale =
      cli({"--json", "event", "update", "Run", "-", "--if-version", "1"}, R"({"name":"x"})");
  CHECK(stale.code == 4);
  CHECK(parse(stale.err).at("error").at("code").as_string() == "precondition_failed");
  auto below = cli({"--json", "event", "update", "Run", "-"},
                   R"({"eventGroups": [{"key": "gold-Run", "capacity": 2}]})");
  CHECK(below.code == 2);
  CHECK(parse(below.err).at("error").at("details").as_object().contains("eventGroups[0].capacity"));
  CHECK(cli({"event", "update", "Run", "/nonexistent.json"}).code != 0);
  CHECK(cli({"event", "show", "Run"}).out.find("on sale (version 2)") != std::string::npos);
  TempDir files;
  std::ofstream(files.file("p.json"))
      << R"({"eventGroups": [{"key": "gold-Run", "capacity": 10}]})";
  CHECK(cli({"event", "update", "Run", files.file("p.json")}).code == 0);

  // The attendee list: CSV into a file (complete or absent), JSON Lines to stdout.
  auto exported = cli({"--json", "export", "Run", "-o", files.file("run.csv")});
  INFO(exported.err);
  REQUIRE(exported.code == 0);
  CHECK(parse(exported.out).at("bookings").as_int64() == 2);
  std::ifstream csv_file(files.file("run.csv"));
  std::string csv((std::istreambuf_iterator<char>(csv_file)), std::istreambuf_iterator<char>());
  CHECK(csv.starts_with("bookId,status,userId,tier,qty,unitPrice,currency,"));
  CHECK(csv.find(paid + ",CONFIRMED,,gold-Run,2,12.5,USD,") != std::string::npos);
  CHECK(std::count(csv.begin(), csv.end(), '\n') == 3);
  auto lines = cli({"export", "Run", "--format", "jsonl"});
  REQUIRE(lines.code == 0);
  CHECK(std::count(lines.out.begin(), lines.out.end(), '\n') == 2);
  CHECK(parse(lines.out.substr(0, lines.out.find('\n'))).at("bookId").as_string() == paid);
  CHECK(cli({"export", "Nope", "-o", files.file("nope.csv")}).code == 3);
  CHECK_FALSE(std::filesystem::exists(files.file("nope.csv")));
  CHECK_FALSE(std::filesystem::exists(files.file("nope.csv.partial")));
  CHECK(cli({"export", "Run", "--format", "xml"}).code == 2);

  // The change feed: everything so far, as the CLI's; then --follow prints what another
  // process commits.
  auto feed = cli({"changes", "--after", "0"});
  REQUIRE(feed.code == 0);
  std::vector<json::value> changes;
  for (std::size_t at = 0, nl; (nl = feed.out.find('\n', at)) != std::string::npos; at = nl + 1) {
    changes.push_back(parse(feed.out.substr(at, nl - at)));
  }
  REQUIRE(changes.size() >= 5);
  CHECK(changes[0].at("type").as_string() == "event.created");
  CHECK(changes[0].at("actor").as_string() == "cli");
  CHECK(changes[1].at("type").as_string() == "booking.held");
  const std::int64_t last = changes.back().at("seq").as_int64();
  CHECK(cli({"changes", "--after", std::to_string(last)}).out.empty());
  CHECK(cli({"changes", "--after", "-3"}).code == 2);
  Child follower(
      {BOOKING_CLI_PATH, "--db", db, "changes", "--follow", "--after", std::to_string(last)});
  REQUIRE(cli({"book", "Run", "gold-Run=1"}).code == 0);
  auto followed = parse(follower.read_line());
  CHECK(followed.at("type").as_string() == "booking.held");
  CHECK(followed.at("seq").as_int64() > last);
  follower.kill(SIGTERM);
  follower.wait();

  auto closed = cli({"--json", "event", "close", "Run"});
  REQUIRE(closed.code == 0);
  CHECK(parse(closed.out).at("status").as_string() == "closed");
  auto refused = cli({"--json", "book", "Run", "gold-Run=1"});
  CHECK(refused.code == 4);
  CHECK(parse(refused.err).at("error").at("code").as_string() == "sale_closed");
  CHECK(cli({"event", "reopen", "Run"}).code == 0);
  CHECK(cli({"book", "Run", "gold-Run=1"}).code == 0);
  auto cancelled = cli({"--json", "event", "cancel", "Run"});
  REQUIRE(cancelled.code == 0);
  CHECK(parse(cancelled.out).at("bookingsCancelled").as_int64() == 4);
  CHECK(cli({"event", "cancel", "Run"}).out.find("cancelled 0 bookings") != std::string::npos);
  CHECK(cli({"event", "reopen", "Run"}).code == 4);
  auto e = parse(cli({"--json", "event", "show", "Run"}).out);
  CHECK(e.at("status").as_string() == "cancelled");
  CHECK(e.at("eventGroups").at(0).at("qty").as_int64() == 10);
  CHECK(cli({"token", "revoke", "ops"}).code == 0);
  CHECK(cli({"token", "revoke", "ops"}).code == 3);
}
}  // namespace

TEST_CASE("an operator's session from the shell: tokens, close, reopen, cancel (SQLite)",
          "[cli][sale]") {
  TempDir dir;
  operator_session(dir.file("ops.db"));
}

#if BOOKING_TEST_POSTGRES
TEST_CASE("an operator's session from the shell: tokens, close, reopen, cancel (PostgreSQL)",
          "[cli][sale][postgres]") {
  operator_session(shared_postgres().create_database());
}
#endif

TEST_CASE("each CLI exit code, with the error object on stderr under --json", "[cli]") {
  Cli cli;
  REQUIRE(cli({"event", "create", "-"}, live_event("X", 2)).code == 0);
  auto expect = [&](const CommandResult& r, int code, const std::string& error_code) {
    INFO(r.out << r.err);
    CHECK(r.code == code);
    if (!error_code.empty()) {
      CHECK(parse(r.err).at("error").at("code").as_string() == error_code);
    }
  };
  expect(cli({"--json", "book", "Nope", "gold-X=1"}), 3, "not_found");
  expect(cli({"--json", "book", "X", "gold-X=0"}), 2, "validation_failed");
  expect(cli({"--json", "book", "X", "gold-X"}), 2, "validation_failed");
  expect(cli({"--json", "event", "create", "-"}, "{not json"), 2, "invalid_json");
  expect(cli({"--json", "book", "X", "gold-X=3"}), 4, "insufficient_stock");
#if BOOKING_TEST_REDIS
  expect(cli({"--json", "--lock", "redis://127.0.0.1:1", "book", "X", "gold-X=1"}), 5,
         "lock_timeout");
#endif
  expect(cli({"--json", "--lock", "nonsense", "book", "X", "gold-X=1"}), 2, "validation_failed");
  expect(cli({"no-such-command"}), 2, "");
  expect(cli({}), 2, "");
  auto help = cli({"book", "--help"});
  CHECK(help.code == 0);
  CHECK(help.out.find("Example:") != std::string::npos);
  // nothing was booked by the failures
  CHECK(parse(cli({"--json", "event", "show", "X"}).out).at("eventGroups").at(0).at("qty") == 2);
}

TEST_CASE("the CLI's messages say what is wrong in a newcomer's words", "[cli]") {
  Cli cli;
  REQUIRE(cli({"event", "create", "-"}, live_event("W", 5)).code == 0);
  auto unknown = cli({"frobnicate"});
  CHECK(unknown.code == 2);
  CHECK(unknown.err.find("unknown command 'frobnicate'") != std::string::npos);
  CHECK(unknown.err.find("book") != std::string::npos);  // and which commands there are

  auto zero = cli({"book", "W", "gold-W=0"});
  CHECK(zero.code == 2);
  CHECK(zero.err.find("must be at least 1") != std::string::npos);

  const std::string nowhere = cli.dir().file("no/such/dir/x.db");
  auto bad_db = run_command({BOOKING_CLI_PATH, "--db", nowhere, "event", "show", "W"});
  CHECK(bad_db.code == 3);
  CHECK(bad_db.err.find(nowhere) != std::string::npos);

  // A cancelled booking does not read as paid.
  auto id =
      std::string(parse(cli({"--json", "book", "W", "gold-W=1"}).out).at("bookId").as_string());
  REQUIRE(cli({"confirm", id, "--method", "card", "--reference", "R7"}).code == 0);
  auto cancelled = cli({"cancel", id});
  REQUIRE(cancelled.code == 0);
  CHECK(cancelled.out.find("paid by") == std::string::npos);
  CHECK(cancelled.out.find("cancelled after payment by card (reference R7)") != std::string::npos);
}

TEST_CASE("tables line up for names in any script, and a search says when more match", "[cli]") {
  Cli cli;
  for (int i = 0; i < 22; ++i) {
    std::string key = "S";
    key += std::to_string(i);
    REQUIRE(cli({"event", "create", "-"}, live_event(key, 1)).code == 0);
  }
  auto line = json::parse(live_event("Cjk", 1)).as_object();
  line["name"] = "東京ドーム 公演";  // each CJK character takes two columns
  REQUIRE(cli({"event", "create", "-"}, json::serialize(line)).code == 0);

  auto first = cli({"event", "search", ""});
  REQUIRE(first.code == 0);
  CHECK(first.out.find("20 events") != std::string::npos);
  CHECK(first.out.find("more events match: add --offset 20") != std::string::npos);
  auto last = cli({"event", "search", "", "--offset", "20"});
  CHECK(last.out.find("3 events") != std::string::npos);
  CHECK(last.out.find("more events match") == std::string::npos);

  // The DATE column starts at the same screen column in the header and in the CJK row.
  auto columns_before = [](const std::string& text, const std::string& needle) {
    const std::string prefix = text.substr(0, text.find(needle));
    std::size_t n = 0;
    for (std::size_t i = 0; i < prefix.size(); ++i) {
      const auto c = static_cast<unsigned char>(prefix[i]);
      if ((c & 0xC0) == 0x80) continue;
      n += c >= 0xE3 && c <= 0xE9 ? 2 : 1;  // the CJK used above are 3-byte, 2 columns wide
    }
    return n;
  };
  std::istringstream rows(last.out);
  std::string header, row, cjk;
  std::getline(rows, header);
  while (std::getline(rows, row)) {
    if (row.find("Cjk") != std::string::npos) cjk = row;
  }
  REQUIRE(!cjk.empty());
  CHECK(columns_before(header, "DATE") == columns_before(cjk, "  20") + 2);
}

TEST_CASE("import takes good lines, reports bad ones by number, and --strict takes none", "[cli]") {
  Cli cli;
  const std::string file = cli.dir().file("events.jsonl");
  {
    std::ofstream out(file);
    out << live_event("I1", 5) << "\n"
        << "{broken\n"
        << live_event("I2", 5) << "\n"
        << "\n"
        << R"({"key": "I3", "name": "", "type": "Concert", "date": "2099-01-01T00:00:00Z", "eventGroups": []})"
        << "\n"
        << live_event("I1", 7) << "\n";  // duplicate key of line 1
  }
  auto strict = cli({"--json", "event", "import", file, "--strict"});
  CHECK(strict.code == 2);
  CHECK(parse(strict.out).at("imported").as_int64() == 0);
  CHECK(cli({"event", "show", "I1"}).code == 3);

  auto r = cli({"--json", "event", "import", file, "--batch", "2"});
  INFO(r.out << r.err);
  CHECK(r.code == 2);
  auto summary = parse(r.out);
  CHECK(summary.at("imported").as_int64() == 2);
  CHECK(summary.at("skipped").as_int64() == 3);
  std::vector<std::int64_t> bad_lines;
  for (const auto& e : summary.at("errors").as_array())
    bad_lines.push_back(e.at("line").as_int64());
  std::sort(bad_lines.begin(), bad_lines.end());
  CHECK(bad_lines == std::vector<std::int64_t>{2, 5, 6});
  CHECK(cli({"event", "show", "I2"}).code == 0);

  // A re-run: each bad line with its position or each field's reason; the events that
  // already exist summed up in one line instead of one line each.
  auto human = cli({"event", "import", file});
  INFO(human.err);
  CHECK(human.err.find(file + ":2: not valid JSON at line 1, column 2") != std::string::npos);
  CHECK(human.err.find(file + ":5: ") != std::string::npos);
  CHECK(human.err.find("    name: ") != std::string::npos);
  CHECK(human.err.find(file + ":1:") == std::string::npos);
  CHECK(human.err.find("3 lines name an event or event group that already exists") !=
        std::string::npos);
  CHECK(human.out.find("imported 0 events, 5 bad lines") != std::string::npos);

  auto skipping = cli({"--json", "event", "import", file, "--skip-existing"});
  CHECK(skipping.code == 2);  // lines 2 and 5 are still bad
  auto skipped = parse(skipping.out);
  CHECK(skipped.at("imported").as_int64() == 0);
  CHECK(skipped.at("existing").as_int64() == 3);
  CHECK(skipped.at("skipped").as_int64() == 2);
}

TEST_CASE("8 CLI processes with --lock file:DIR sell exactly the capacity", "[cli][process]") {
  Cli cli;
  REQUIRE(cli({"event", "create", "-"}, live_event("Par", 40)).code == 0);
  const std::string lock = "--lock=file:" + cli.dir().file("locks");
  std::atomic<int> sold{0};
  std::atomic<int> unexpected{0};
  std::vector<std::thread> lanes;
  for (int lane = 0; lane < 8; ++lane) {
    lanes.emplace_back([&] {
      try {
        while (true) {
          auto r = cli({lock, "book", "Par", "gold-Par=1"});
          if (r.code == 0) {
            ++sold;
          } else {
            if (r.code != 4) ++unexpected;
            return;
          }
        }
      } catch (const std::exception&) {
        ++unexpected;  // could not spawn; Catch macros are not for worker threads
      }
    });
  }
  for (auto& t : lanes) t.join();
  CHECK(unexpected == 0);
  CHECK(sold == 40);
  auto e = parse(cli({"--json", "event", "show", "Par"}).out).at("eventGroups").at(0);
  CHECK(e.at("held").as_int64() == 40);
  CHECK(e.at("qty").as_int64() == 0);
}

TEST_CASE("the CLI and a running bookingd share one database with --lock file:DIR",
          "[cli][daemon][process]") {
  Cli cli;
  REQUIRE(cli({"event", "create", "-"}, live_event("Mix", 60)).code == 0);
  const std::string lock_dir = cli.dir().file("locks");
  Child daemon({BOOKINGD_PATH, "--db", cli.db(), "--listen", "127.0.0.1:0", "--lock",
                "file:" + lock_dir, "--log-level", "warn"});
  const std::string line = daemon.read_line();
  REQUIRE(line.starts_with("listening on http://127.0.0.1:"));
  const int port = std::stoi(line.substr(line.rfind(':') + 1));

  std::atomic<int> sold{0};
  std::mutex problems_mu;
  std::vector<std::string> problems;  // each unexpected answer, said in full
  auto unexpected = [&](std::string what) {
    std::lock_guard lock(problems_mu);
    problems.push_back(std::move(what));
  };
  std::vector<std::thread> lanes;
  for (int lane = 0; lane < 4; ++lane) {
    lanes.emplace_back([&] {  // CLI processes
      try {
        while (true) {
          auto r = cli({"--lock=file:" + lock_dir, "book", "Mix", "gold-Mix=1"});
          if (r.code != 0) {
            if (r.code != 4) {
              unexpected("CLI exit " + std::to_string(r.code) + ": " + r.err);
            }
            return;
          }
          ++sold;
        }
      } catch (const std::exception& e) {
        unexpected(std::string("CLI not run: ") + e.what());
      }
    });
    lanes.emplace_back([&] {  // HTTP clients
      httplib::Client c("127.0.0.1", port);
      while (true) {
        const auto start = std::chrono::steady_clock::now();
        auto r =
            c.Post("/v1/api/books", R"({"key":"Mix","groupKeys":[{"key":"gold-Mix","qty":1}]})",
                   "application/json");
        const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::steady_clock::now() - start)
                            .count();
        if (!r) {
          unexpected("HTTP " + httplib::to_string(r.error()) + " after " + std::to_string(ms) +
                     " ms");
          return;
        }
        if (r->status != 201) {
          if (r->status != 409) {
            unexpected("HTTP " + std::to_string(r->status) + " after " + std::to_string(ms) +
                       " ms: " + r->body);
          }
          return;
        }
        ++sold;
      }
    });
  }
  for (auto& t : lanes) t.join();
  std::string said;
  for (const auto& p : problems) said += p + "\n";
  INFO(said);
  CHECK(problems.empty());
  CHECK(sold == 60);
  auto e = parse(cli({"--json", "event", "show", "Mix"}).out).at("eventGroups").at(0);
  CHECK(e.at("held").as_int64() == 60);
  CHECK(e.at("qty").as_int64() == 0);
  daemon.kill(SIGTERM);
  CHECK(daemon.wait() == 0);
}

#if BOOKING_TEST_POSTGRES
TEST_CASE("the CLI books from a PostgreSQL database, and exits 5 when it is unreachable",
          "[cli][postgres][process]") {
  const std::string db = shared_postgres().create_database();
  auto cli = [&](std::vector<std::string> args, const std::string& input = "") {
    args.insert(args.begin(), {BOOKING_CLI_PATH, "--db", db});
    return run_command(args, input);
  };
  REQUIRE(cli({"event", "create", "-"}, live_event("Pg", 5)).code == 0);
  auto booked = cli({"--json", "book", "Pg", "gold-Pg=2"});
  REQUIRE(booked.code == 0);
  CHECK(parse(booked.out).at("status").as_string() == "HELD");
  auto e = parse(cli({"--json", "event", "show", "Pg"}).out).at("eventGroups").at(0);
  CHECK(e.at("held").as_int64() == 2);
  CHECK(cli({"book", "Pg", "gold-Pg=4"}).code == 4);

  const std::string nowhere =
      "postgresql://postgres@127.0.0.1:" + std::to_string(free_port()) + "/nothing";
  auto down = run_command({BOOKING_CLI_PATH, "--db", nowhere, "--json", "event", "show", "Pg"});
  CHECK(down.code == 5);
  CHECK(parse(down.err).at("error").at("code").as_string() == "lock_timeout");
}
#endif  // BOOKING_TEST_POSTGRES

TEST_CASE("booking webhook lists delivery states and resumes a paused URL", "[cli][webhook]") {
  Cli cli;
  REQUIRE(cli({"demo"}).code == 0);
  {
    auto repo = make_sqlite_repository(cli.db()).value();
    auto w =
        repo->lease_webhook("http://u:pw@127.0.0.1:9/hook", "someone", std::chrono::seconds(60))
            .value();
    REQUIRE(w);
    w->paused = true;
    w->failing_since = system_clock().now();
    REQUIRE(repo->save_webhook("http://u:pw@127.0.0.1:9/hook", "someone", *w).value());
  }
  auto listed = cli({"--json", "webhook", "list"});
  REQUIRE(listed.code == 0);
  const auto hooks = parse(listed.out).as_array();
  REQUIRE(hooks.size() == 1);
  CHECK(hooks[0].at("url").as_string() == "http://***@127.0.0.1:9/hook");  // no password
  CHECK(hooks[0].at("paused").as_bool());
  CHECK(cli({"webhook", "list"}).out.find("paused") != std::string::npos);
  CHECK(cli({"webhook", "resume", "http://u:pw@127.0.0.1:9/hook"}).code == 0);
  CHECK_FALSE(parse(cli({"--json", "webhook", "list"}).out).at(0).at("paused").as_bool());
  CHECK(cli({"webhook", "resume", "http://127.0.0.1:1/nope"}).code == 3);
}
