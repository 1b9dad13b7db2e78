// booking: the command-line tool. Parses arguments, calls BookingService, prints the result.
// Exit codes come from booking::exit_code(): 0 ok, 1 internal, 2 usage/validation, 3 not found,
// 4 business conflict, 5 lock timeout or backend unavailable.
#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <booking/access.hpp>
#include <booking/booking_service.hpp>
#include <booking/export.hpp>
#include <booking/feed.hpp>
#include <booking/import.hpp>
#include <booking/json_codec.hpp>
#include <booking/version.hpp>
#include <boost/json.hpp>
#include <charconv>
#include <clocale>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <utility>

#include "output.hpp"

using namespace booking;
using namespace booking::cli;
namespace json = boost::json;

namespace {

struct Globals {
  std::string db = "booking.db";
  std::string lock = "memory";
  std::string hold_ttl = "10m";
  bool json = false;
};

// Storage, locks and the service, opened after the arguments are known.
struct Engine {
  std::unique_ptr<EventRepository> repo;
  std::unique_ptr<LockProvider> locks;
  std::unique_ptr<BookingService> service;
};

result<Engine> open_engine(const Globals& g) {
  BOOKING_TRY(auto ttl, parse_duration(g.hold_ttl));
  Engine e;
  BOOKING_TRY(e.repo, open_repository(g.db));
  BOOKING_TRY(e.locks, make_lock_provider(g.lock));
  ServiceOptions options;
  options.hold_ttl = ttl;
  e.service = std::make_unique<BookingService>(*e.repo, *e.locks, system_clock(), options);
  return e;
}

int report(const Globals& g, const error& e) {
  if (g.json) {
    std::cerr << to_text(error_json(e)) << "\n";
  } else {
    Style style(stderr);
    std::cerr << style.bold("error") << " (" << to_string(e.code) << "): " << e.message << "\n";
    for (const auto& [field, why] : e.details) {
      std::cerr << "  " << std::string_view(field) << ": "
                << (why.is_string() ? std::string(why.get_string()) : to_text(why)) << "\n";
    }
  }
  return exit_code(e.code);
}

// Prints a success as the HTTP `data` object (--json) or for people.
template <class T, class Json, class Human>
int print(const Globals& g, const result<T>& r, Json to_json_fn, Human human) {
  if (!r) return report(g, r.error());
  if (g.json) {
    std::cout << to_text(to_json_fn(r.value())) << "\n";
  } else {
    std::cout << human(r.value(), Style(stdout));
  }
  return 0;
}

result<std::string> read_input(const std::string& path) {
  std::ostringstream text;
  if (path == "-") {
    text << std::cin.rdbuf();
  } else {
    std::ifstream in(path);
    if (!in) return make_error(errc::not_found, "cannot read '" + path + "'");
    text << in.rdbuf();
  }
  return text.str();
}

result<HoldLineRequest> parse_tier_arg(const std::string& arg) {
  auto eq = arg.rfind('=');
  HoldLineRequest line;
  if (eq != std::string::npos && eq > 0) {
    line.tier_key = arg.substr(0, eq);
    auto [p, ec] = std::from_chars(arg.data() + eq + 1, arg.data() + arg.size(), line.qty);
    if (ec == std::errc{} && p == arg.data() + arg.size() && p != arg.data() + eq + 1) {
      if (line.qty >= 1) return line;
      return make_error(errc::validation_failed,
                        "the quantity of '" + line.tier_key + "' must be at least 1, got " +
                            std::to_string(line.qty),
                        {{line.tier_key, "quantity must be at least 1"}});
    }
  }
  return make_error(errc::validation_failed,
                    "expected TIER=QTY (e.g. gold-Con10124=2), got '" + arg + "'");
}

struct ExportArgs {
  std::string key;
  std::string format = "csv";
  std::string path;  // empty: stdout
};

// Streams the export into stdout or, through FILE.partial renamed at the end, into FILE, with
// a progress bar (rows) on a terminal when writing to a file or a pipe.
int export_bookings_cmd(const Globals& g, Engine& e, const ExportArgs& args) {
  const std::string partial = args.path + ".partial";
  std::FILE* out = args.path.empty() ? stdout : std::fopen(partial.c_str(), "wb");
  if (!out) {
    return report(
        g, make_error(errc::internal, "cannot write '" + partial + "': " + std::strerror(errno)));
  }
  std::size_t total = 0;  // rows (booking lines), for the progress bar
  if (auto totals = e.repo->booking_totals(args.key)) {
    for (const BookingTotal& t : totals.value()) total += static_cast<std::size_t>(t.lines);
  }
  std::optional<Progress> progress;
  if (!args.path.empty() || ::isatty(STDOUT_FILENO) == 0) progress.emplace(total);
  const bool csv = args.format == "csv";
  std::string buffer;
  if (csv) buffer = csv_header();
  std::size_t rows = 0;
  bool written = true;
  auto flush = [&] {
    written = written && std::fwrite(buffer.data(), 1, buffer.size(), out) == buffer.size();
    buffer.clear();
    return written;
  };
  auto exported = e.service->export_bookings(args.key, [&](const Booking& b) {
    if (csv) {
      append_csv_rows(buffer, b);
    } else {
      buffer += to_text(to_json(b));
      buffer += '\n';
    }
    rows += b.lines.size();
    if (progress) progress->update(rows);
    return buffer.size() < (1 << 16) || flush();
  });
  const bool ok = exported && flush() && std::fflush(out) == 0;
  if (progress) progress->finish();
  if (!args.path.empty()) {
    written = std::fclose(out) == 0 && ok;
    if (written) written = std::rename(partial.c_str(), args.path.c_str()) == 0;
    if (!written) std::remove(partial.c_str());
  }
  if (!exported) return report(g, exported.error());
  if (!ok || !written) {
    return report(g, make_error(errc::internal, "cannot write the export to '" +
                                                    (args.path.empty() ? "stdout" : args.path) +
                                                    "': " + std::strerror(errno)));
  }
  if (!args.path.empty()) {
    if (g.json) {
      std::cout << to_text(json::object{
                       {"bookings", exported.value()}, {"rows", rows}, {"file", args.path}})
                << "\n";
    } else {
      std::cout << fmt::format("exported {} booking{} ({} row{}) to {}\n", exported.value(),
                               exported.value() == 1 ? "" : "s", rows, rows == 1 ? "" : "s",
                               args.path);
    }
  }
  return 0;
}

struct ImportArgs {
  std::string path;
  ImportOptions options;
};

// One line per problem with each field's reason, at most kShown of them; events that already
// exist are summed up in one line (a re-run import would otherwise print one per event).
void print_problems(const std::string& path, const ImportReport& r, Style style) {
  constexpr std::size_t kShown = 20;
  std::size_t duplicates = 0;
  std::size_t shown = 0;
  for (const ImportProblem& p : r.problems) {
    if (p.problem.code == errc::duplicate_key) {
      ++duplicates;
      continue;
    }
    if (shown++ >= kShown) continue;
    std::cerr << path << ":" << p.line << ": " << p.problem.message << "\n";
    for (const auto& [field, why] : p.problem.details) {
      std::cerr << "    " << std::string_view(field) << ": "
                << (why.is_string() ? std::string(why.get_string()) : to_text(why)) << "\n";
    }
  }
  if (shown > kShown) std::cerr << "... and " << shown - kShown << " more bad lines\n";
  if (duplicates > 0) {
    std::cerr << style.bold(format_integer(static_cast<std::int64_t>(duplicates))) << " line"
              << (duplicates == 1 ? " names" : "s name")
              << " an event or event group that already exists (--skip-existing skips events "
                 "already stored)\n";
  }
}

int import_events_cmd(const Globals& g, Engine& e, ImportArgs& args) {
  std::ifstream in(args.path);
  if (!in) return report(g, make_error(errc::not_found, "cannot read '" + args.path + "'"));
  std::unique_ptr<Progress> progress;
  args.options.progress = [&progress](std::size_t done, std::size_t total) {
    if (!progress) progress = std::make_unique<Progress>(total);
    progress->update(done);
  };
  auto r = import_events(*e.service, in, args.options);
  if (progress) progress->finish();
  if (!r) return report(g, r.error());
  const ImportReport& rep = r.value();
  if (g.json) {
    json::array problems;
    for (const ImportProblem& p : rep.problems) {
      problems.push_back({{"line", p.line}, {"error", error_json(p.problem)["error"]}});
    }
    std::cout << to_text(json::object{{"imported", rep.imported},
                                      {"existing", rep.existing},
                                      {"skipped", rep.problems.size()},
                                      {"errors", problems}})
              << "\n";
  } else {
    print_problems(args.path, rep, Style(stderr));
    std::cout << fmt::format(
        "imported {} event{}{}, {} bad line{}{}\n",
        format_integer(static_cast<std::int64_t>(rep.imported)), rep.imported == 1 ? "" : "s",
        rep.existing ? fmt::format(" ({} already stored)",
                                   format_integer(static_cast<std::int64_t>(rep.existing)))
                     : "",
        rep.problems.size(), rep.problems.size() == 1 ? "" : "s",
        args.options.strict && !rep.problems.empty() ? " (--strict: nothing imported)" : "");
  }
  return rep.problems.empty() ? 0 : 2;
}

}  // namespace

int main(int argc, char** argv) {
  // Table widths use wcwidth, which needs a UTF-8 character type (names may be in any script).
  std::setlocale(LC_CTYPE, "C.UTF-8");
  ActorScope actor("cli");  // the change feed records this process's changes as the CLI's
  Globals g;
  CLI::App app{"booking: sell and manage limited tickets from the shell"};
  app.set_version_flag("--version", std::string("booking ") + version);
  app.require_subcommand(1);
  app.fallthrough();
  app.footer("Example:\n  booking demo && booking book Con10124 gold-Con10124=2 --user alice");
  app.add_option("--db", g.db, "SQLite database file, or a postgresql:// URL")
      ->envname("BOOKING_DB")
      ->capture_default_str();
  app.add_option("--lock", g.lock, "memory, file:DIR or redis://HOST:PORT (share it with bookingd)")
      ->envname("BOOKING_LOCK")
      ->capture_default_str();
  app.add_option("--hold-ttl", g.hold_ttl, "How long new holds last (10m, 90s)")
      ->envname("BOOKING_HOLD_TTL")
      ->capture_default_str();
  app.add_flag("--json", g.json, "Print the HTTP API's JSON instead of tables");

  std::function<int(Engine&)> action;
  auto with = [&](CLI::App* sub, std::function<int(Engine&)> fn) {
    sub->callback([&action, fn] { action = fn; });
  };

  auto* event = app.add_subcommand("event", "Create, import, search and show events");
  event->require_subcommand(1);

  std::string create_path;
  auto* create = event->add_subcommand("create", "Create an event from a JSON file (- for stdin)");
  create->add_option("FILE", create_path, "The event as in POST /v1/api/events")->required();
  create->footer("Example:\n  booking event create concert.json");
  with(create, [&](Engine& e) {
    auto text = read_input(create_path);
    if (!text) return report(g, text.error());
    auto parsed = parse_json(text.value());
    if (!parsed) return report(g, parsed.error());
    auto ev = event_from_json(parsed.value());
    if (!ev) return report(g, ev.error());
    return print(
        g, e.service->create_event(ev.value()), [](const Event& x) { return to_json(x); },
        render_event);
  });

  ImportArgs import_args;
  auto* import = event->add_subcommand("import", "Import events from JSON Lines (one per line)");
  import->add_option("FILE", import_args.path, "A .jsonl file")->required();
  import->add_flag("--strict", import_args.options.strict, "Import nothing if any line is bad");
  import->add_flag("--skip-existing", import_args.options.skip_existing,
                   "Skip events whose key is already stored (re-running an import)");
  import->add_option("--batch", import_args.options.batch, "Events per transaction")
      ->check(CLI::Range(std::size_t{1}, std::size_t{100000}))
      ->capture_default_str();
  import->footer("Example:\n  booking event import events.jsonl --strict");
  with(import, [&](Engine& e) { return import_events_cmd(g, e, import_args); });

  SearchQuery query;
  auto* search = event->add_subcommand("search", "Find events by name (case-insensitive)");
  search->add_option("NAME", query.name, "Part of the name; empty lists all");
  search->add_option("--limit", query.limit, "At most this many")->capture_default_str();
  search->add_option("--offset", query.offset, "Skip this many")->capture_default_str();
  search->footer("Example:\n  booking event search blink");
  with(search, [&](Engine& e) {
    return print(
        g, e.service->search_page(query),
        [](const SearchPage& p) {
          json::array a;
          for (const Event& x : p.events) a.push_back(to_json(x));
          return a;
        },
        [&query](const SearchPage& p, const Style& style) {
          std::string out = render_events(p.events, style);
          if (p.more) {
            out += fmt::format("more events match: add --offset {} for the next page\n",
                               query.offset + query.limit);
          }
          return out;
        });
  });

  std::string show_key;
  auto* show_event = event->add_subcommand("show", "Show an event with stock per tier");
  show_event->add_option("KEY", show_key, "Event key")->required();
  show_event->footer("Example:\n  booking event show Con10124");
  with(show_event, [&](Engine& e) {
    return print(
        g, e.service->get_event(show_key), [](const Event& x) { return to_json(x); }, render_event);
  });

  std::string update_key;
  std::string update_path;
  std::optional<std::int64_t> update_version;
  auto* update = event->add_subcommand(
      "update", "Change an event with a JSON merge patch from a file (- for stdin)");
  update->add_option("KEY", update_key, "Event key")->required();
  update->add_option("FILE", update_path, "The patch as in PATCH /v1/api/events/{key}")->required();
  update->add_option("--if-version", update_version,
                     "Change it only if it is still at this version (see `event show`)");
  update->footer(
      "Examples:\n"
      "  echo '{\"eventGroups\": [{\"key\": \"gold-Con10124\", \"capacity\": 150}]}' |\n"
      "    booking event update Con10124 -\n"
      "  booking event update Con10124 patch.json --if-version 3");
  with(update, [&](Engine& e) {
    auto text = read_input(update_path);
    if (!text) return report(g, text.error());
    auto parsed = parse_json(text.value());
    if (!parsed) return report(g, parsed.error());
    auto patch = event_patch_from_json(parsed.value());
    if (!patch) return report(g, patch.error());
    return print(
        g, e.service->update_event(update_key, patch.value(), update_version),
        [](const Event& x) { return to_json(x); }, render_event);
  });

  HoldRequest hold;
  std::vector<std::string> tier_args;
  std::string user;
  std::string idempotency_key;
  std::string status_key;
  auto* close = event->add_subcommand("close", "Stop the sale: no new holds until reopened");
  close->add_option("KEY", status_key, "Event key")->required();
  with(close, [&](Engine& e) {
    return print(
        g, e.service->close_event(status_key), [](const Event& x) { return to_json(x); },
        render_event);
  });
  auto* reopen = event->add_subcommand("reopen", "Reopen a closed sale");
  reopen->add_option("KEY", status_key, "Event key")->required();
  with(reopen, [&](Engine& e) {
    return print(
        g, e.service->reopen_event(status_key), [](const Event& x) { return to_json(x); },
        render_event);
  });
  auto* cancel_event =
      event->add_subcommand("cancel", "Cancel the event for good, and all its bookings");
  cancel_event->add_option("KEY", status_key, "Event key")->required();
  with(cancel_event, [&](Engine& e) {
    return print(
        g, e.service->cancel_event(status_key),
        [](const EventCancellation& c) {
          json::object o = to_json(c.event);
          o["bookingsCancelled"] = c.bookings_cancelled;
          return o;
        },
        [](const EventCancellation& c, const Style& style) {
          return render_event(c.event, style) + fmt::format("cancelled {} booking{}\n",
                                                            c.bookings_cancelled,
                                                            c.bookings_cancelled == 1 ? "" : "s");
        });
  });

  BookingListRequest list;
  auto* bookings = app.add_subcommand("bookings", "List bookings, newest first");
  bookings->add_option("--event", list.event_key, "Only this event's");
  bookings->add_option("--status", list.status, "HELD, CONFIRMED, CANCELLED or EXPIRED");
  bookings->add_option("--user", list.user_id, "Only this user's");
  bookings->add_option("--limit", list.limit, "At most this many (1-100)")->capture_default_str();
  bookings->add_option("--cursor", list.cursor, "Continue where a previous page ended");
  with(bookings, [&](Engine& e) {
    return print(
        g, e.service->list_bookings(list),
        [](const BookingPage& p) {
          json::array out;
          for (const Booking& b : p.bookings) out.push_back(to_json(b));
          json::object o{{"data", std::move(out)}};
          if (p.next) o["next"] = *p.next;
          return o;
        },
        render_bookings);
  });
  std::string report_key;
  auto* report_cmd = app.add_subcommand("report", "An event's tickets and revenue per tier");
  report_cmd->add_option("KEY", report_key, "Event key")->required();
  with(report_cmd, [&](Engine& e) {
    return print(
        g, e.service->event_report(report_key), [](const EventReport& r) { return to_json(r); },
        render_report);
  });

  ExportArgs export_args;
  auto* export_cmd = app.add_subcommand("export", "Write an event's bookings as CSV or JSON Lines");
  export_cmd->add_option("KEY", export_args.key, "Event key")->required();
  export_cmd->add_option("--format", export_args.format, "csv (one row per booking line) or jsonl")
      ->check(CLI::IsMember({"csv", "jsonl"}))
      ->capture_default_str();
  export_cmd->add_option("-o,--output", export_args.path,
                         "Write to this file (complete or not at all) instead of stdout");
  export_cmd->footer(
      "Examples:\n  booking export Con10124 -o attendees.csv\n"
      "  booking export Con10124 --format jsonl | jq .status");
  with(export_cmd, [&](Engine& e) { return export_bookings_cmd(g, e, export_args); });

  auto* webhook = app.add_subcommand(
      "webhook", "See and resume the change feed's webhook deliveries (bookingd --webhook)");
  webhook->require_subcommand(1);
  auto* webhook_list = webhook->add_subcommand("list", "Each URL's delivered position and state");
  with(webhook_list, [&](Engine& e) {
    auto shown = [](const std::string& url) {  // no password: user:password@ becomes ***@
      const auto at = url.find('@'), scheme = url.find("://");
      const bool plain =
          at == std::string::npos || scheme == std::string::npos || at > url.find('/', scheme + 3);
      return plain ? url : url.substr(0, scheme + 3) + "***" + url.substr(at);
    };
    return print(
        g, e.repo->list_webhooks(),
        [&](const std::vector<std::pair<std::string, WebhookState>>& hooks) {
          json::array out;
          for (const auto& [url, w] : hooks) {
            out.push_back(
                {{"url", shown(url)},
                 {"position", w.position},
                 {"paused", w.paused},
                 {"failingSince", w.failing_since ? json::value(format_instant(*w.failing_since))
                                                  : json::value(nullptr)}});
          }
          return out;
        },
        [&](const std::vector<std::pair<std::string, WebhookState>>& hooks, const Style& style) {
          Table t({"URL", "DELIVERED UP TO", "STATE", "FAILING SINCE"}, {false, true});
          for (const auto& [url, w] : hooks) {
            const std::string since =
                w.failing_since ? format_instant(*w.failing_since).substr(0, 16) : "";
            t.add({shown(url), std::to_string(w.position),
                   w.paused ? "paused" : (since.empty() ? "ok" : "failing"), since});
          }
          return t.render(style) +
                 fmt::format("{} webhook{}\n", hooks.size(), hooks.size() == 1 ? "" : "s");
        });
  });
  std::string resume_url;
  auto* webhook_resume = webhook->add_subcommand(
      "resume", "Resume a URL paused after days of failures (its instance retries within 3 s)");
  webhook_resume->add_option("URL", resume_url, "The URL as given to --webhook")->required();
  with(webhook_resume, [&](Engine& e) {
    auto resumed = e.repo->resume_webhook(resume_url);
    return resumed ? 0 : report(g, resumed.error());
  });

  std::int64_t changes_after = 0;
  std::int64_t changes_limit = 1000;
  bool follow = false;
  auto* changes_cmd = app.add_subcommand(
      "changes", "Print the change feed, one JSON object per line (oldest first)");
  changes_cmd->add_option("--after", changes_after, "Only changes numbered after this seq")
      ->capture_default_str();
  changes_cmd->add_option("--limit", changes_limit, "At most this many (without --follow)")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1'000'000}))
      ->capture_default_str();
  changes_cmd->add_flag("--follow", follow,
                        "Keep printing new changes as they commit (Ctrl-C ends)");
  changes_cmd->footer(
      "Examples:\n  booking changes --after 120\n"
      "  booking changes --follow | jq -c 'select(.type == \"booking.confirmed\")'");
  with(changes_cmd, [&](Engine& e) {
    std::int64_t after = changes_after;
    std::int64_t left = changes_limit;
    while (follow || left > 0) {
      const std::int64_t page = follow ? 1000 : std::min<std::int64_t>(left, 1000);
      auto got = follow ? e.service->wait_changes(after, page, std::chrono::seconds(1))
                        : e.service->changes(after, page);
      if (!got) return report(g, got.error());
      for (const Change& c : got.value()) std::cout << to_text(to_json(c)) << "\n";
      std::cout.flush();
      if (!got.value().empty()) after = got.value().back().seq;
      if (!follow) {
        left -= static_cast<std::int64_t>(got.value().size());
        if (static_cast<std::int64_t>(got.value().size()) < page) break;
      }
      if (!std::cout) return 1;  // the reader went away
    }
    return 0;
  });

  auto* book = app.add_subcommand("book", "Hold tickets (pay with `booking confirm`)");
  book->add_option("EVENT", hold.event_key, "Event key")->required();
  book->add_option("TIER=QTY", tier_args, "Tickets per tier")->required();
  book->add_option("--user", user, "Buyer id (needed for tiers with a per-user limit)");
  book->add_option("--idempotency-key", idempotency_key,
                   "Retry-safe: the same key and request book only once");
  book->footer("Example:\n  booking book Con10124 gold-Con10124=2 sil-Con10124=1 --user alice");
  with(book, [&](Engine& e) {
    for (const auto& arg : tier_args) {
      auto line = parse_tier_arg(arg);
      if (!line) return report(g, line.error());
      hold.lines.push_back(line.value());
    }
    if (!user.empty()) hold.user_id = user;
    if (!idempotency_key.empty()) hold.idempotency_key = idempotency_key;
    return print(g, e.service->hold(hold), hold_result_json, render_booking);
  });

  std::string booking_id;
  auto* show = app.add_subcommand("show", "Show a booking");
  show->add_option("BOOKID", booking_id, "Booking id")->required();
  with(show, [&](Engine& e) {
    return print(
        g, e.service->get_booking(booking_id), [](const Booking& b) { return to_json(b); },
        render_booking);
  });

  Payment payment;
  auto* confirm = app.add_subcommand("confirm", "Pay for a held booking");
  confirm->add_option("BOOKID", booking_id, "Booking id")->required();
  confirm->add_option("--method", payment.method, "Payment method")->capture_default_str();
  confirm->add_option("--reference", payment.reference, "Payment reference");
  confirm->footer("Example:\n  booking confirm 3f2a...e1 --method card --reference PAY-991");
  with(confirm, [&](Engine& e) {
    return print(
        g, e.service->confirm(booking_id, payment), [](const Booking& b) { return to_json(b); },
        render_booking);
  });

  auto* cancel = app.add_subcommand("cancel", "Cancel a booking; its tickets return to stock");
  cancel->add_option("BOOKID", booking_id, "Booking id")->required();
  with(cancel, [&](Engine& e) {
    return print(
        g, e.service->cancel(booking_id), [](const Booking& b) { return to_json(b); },
        render_booking);
  });

  auto* expire = app.add_subcommand("expire", "Expire every due hold now; prints how many");
  with(expire, [&](Engine& e) {
    return print(
        g, e.service->expire_due(),
        [](std::size_t n) {
          return json::object{{"expired", n}};
        },
        [](std::size_t n, const Style&) {
          return fmt::format("expired {} hold{}\n", n, n == 1 ? "" : "s");
        });
  });

  auto* demo = app.add_subcommand("demo", "Create the demo event (Con10124) if absent");
  with(demo, [&](Engine& e) {
    auto created = e.service->create_event(demo_event(system_clock().now()));
    if (!created && created.error().code == errc::duplicate_key) {
      created = e.service->get_event("Con10124");
    }
    return print(
        g, created, [](const Event& x) { return to_json(x); }, render_event);
  });

  auto* token =
      app.add_subcommand("token", "Manage the API tokens bookingd accepts (roles: admin, sales)");
  token->require_subcommand(1);
  std::string token_name;
  std::string token_role = "sales";
  auto* token_create =
      token->add_subcommand("create", "Create a token and print its secret (shown only once)");
  token_create->add_option("NAME", token_name, "A name for it: [A-Za-z0-9._-]{1,64}")->required();
  token_create->add_option("--role", token_role, "admin (everything) or sales")
      ->check(CLI::IsMember({"admin", "sales"}))
      ->capture_default_str();
  with(token_create, [&](Engine& e) {
    auto issued = create_token(*e.repo, token_name, parse_role(token_role).value_or(Role::sales),
                               system_clock().now());
    return print(
        g, issued,
        [](const IssuedToken& t) {
          return json::object{{"name", t.token.name},
                              {"role", to_string(t.token.role)},
                              {"token", t.secret},
                              {"createdAt", format_instant(t.token.created_at)}};
        },
        [](const IssuedToken& t, const Style& style) {
          return fmt::format(
              "{}\n{} token '{}' created; it is shown only this once. Send it as\n"
              "  Authorization: Bearer {}\n",
              t.secret, style.bold(std::string(to_string(t.token.role))), t.token.name, t.secret);
        });
  });
  auto* token_list = token->add_subcommand("list", "List tokens (never their secrets)");
  with(token_list, [&](Engine& e) {
    return print(
        g, e.repo->list_tokens(),
        [](const std::vector<ApiToken>& tokens) {
          json::array out;
          for (const ApiToken& t : tokens) {
            json::object o{{"name", t.name},
                           {"role", to_string(t.role)},
                           {"createdAt", format_instant(t.created_at)}};
            o["revokedAt"] = t.revoked_at ? json::value(format_instant(*t.revoked_at)) : nullptr;
            out.push_back(std::move(o));
          }
          return out;
        },
        [](const std::vector<ApiToken>& tokens, const Style& style) {
          if (tokens.empty()) {
            return std::string(
                "no tokens: bookingd is open to every caller on loopback\n"
                "(create one with: booking token create NAME --role admin)\n");
          }
          Table table({"NAME", "ROLE", "CREATED", "REVOKED"});
          for (const ApiToken& t : tokens) {
            table.add({t.name, std::string(to_string(t.role)), format_instant(t.created_at),
                       t.revoked_at ? format_instant(*t.revoked_at) : "-"});
          }
          return table.render(style);
        });
  });
  auto* token_revoke = token->add_subcommand(
      "revoke", "Revoke a token; every bookingd on this database refuses it within 1 s");
  token_revoke->add_option("NAME", token_name, "The token's name")->required();
  with(token_revoke, [&](Engine& e) {
    auto revoked = e.repo->revoke_token(token_name, system_clock().now());
    if (!revoked) return report(g, revoked.error());
    if (g.json) {
      std::cout << to_text(json::object{{"name", token_name}, {"revoked", true}}) << "\n";
    } else {
      std::cout << fmt::format("token '{}' revoked\n", token_name);
    }
    return 0;
  });

  // An unknown command is named as such (CLI11 would say "A subcommand is required").
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg.starts_with("-")) {
      const bool takes_value = (arg == "--db" || arg == "--lock" || arg == "--hold-ttl");
      i += takes_value ? 1 : 0;
      continue;
    }
    const std::function<bool(const CLI::App*)> all = [](const CLI::App*) { return true; };
    const auto commands = std::as_const(app).get_subcommands(all);
    if (std::none_of(commands.begin(), commands.end(),
                     [&](const CLI::App* sub) { return sub->get_name() == arg; })) {
      std::string known;
      for (const CLI::App* sub : commands) known += (known.empty() ? "" : ", ") + sub->get_name();
      std::cerr << "booking: unknown command '" << arg << "' (commands: " << known
                << "; see booking --help)\n";
      return 2;
    }
    break;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& err) {
    int rc = app.exit(err);
    return rc == 0 ? 0 : 2;
  }
  auto engine = open_engine(g);
  if (!engine) return report(g, engine.error());
  return action(engine.value());
}
