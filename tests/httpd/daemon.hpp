// The real bookingd binary as a child process on a free port.
#pragma once

#include <httplib.h>
#include <signal.h>

#include <algorithm>
#include <boost/json.hpp>

#include "process.hpp"

namespace booking::test {

struct Daemon {
  std::unique_ptr<Child> child;
  int port = 0;

  // Starts bookingd with `args` added and waits for its "listening on" line. With `log_file`,
  // its log (stderr) is appended there.
  explicit Daemon(std::vector<std::string> args, const std::string& log_file = "") {
    std::vector<std::string> argv{BOOKINGD_PATH};
    auto given = [&](const char* flag) {
      return std::find(args.begin(), args.end(), flag) != args.end();
    };
    if (!given("--listen")) argv.insert(argv.end(), {"--listen", "127.0.0.1:0"});
    if (!given("--log-level")) argv.insert(argv.end(), {"--log-level", "warn"});
    argv.insert(argv.end(), args.begin(), args.end());
    if (!log_file.empty()) {
      argv.insert(argv.begin(), {"/bin/sh", "-c", "exec \"$0\" \"$@\" 2>>'" + log_file + "'"});
    }
    child = std::make_unique<Child>(argv);
    const std::string line = child->read_line();
    INFO("bookingd said: " << line);
    REQUIRE(line.starts_with("listening on http://127.0.0.1:"));
    port = std::stoi(line.substr(line.rfind(':') + 1));
  }

  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port);
    c.set_keep_alive(true);
    c.set_tcp_nodelay(true);  // else Nagle + delayed ACK add 40 ms to every POST
    c.set_read_timeout(std::chrono::seconds(10));
    return c;
  }
  bool alive() const { return ::kill(child->pid(), 0) == 0; }
  int stop(int sig = SIGTERM) {
    child->kill(sig);
    return child->wait();
  }
};

// An event on sale now (wall clock), with one tier "gold-KEY" of `qty` tickets.
inline std::string live_event_json(const std::string& key, std::int64_t qty) {
  return R"({"key": ")" + key + R"(", "name": "Live )" + key + R"(", "type": "Concert",
  "date": "2099-01-01T20:00:00Z", "eventGroups": [{"key": "gold-)" +
         key + R"(",
  "category": "Gold", "price": 100, "currency": "USD", "qty": )" +
         std::to_string(qty) + R"(,
  "startDate": "2020-01-01T00:00:00Z", "endDate": "2099-01-01T00:00:00Z"}]})";
}

inline std::string hold_json(const std::string& key, std::int64_t qty = 1) {
  return R"({"key": ")" + key + R"(", "groupKeys": [{"key": "gold-)" + key + R"(", "qty": )" +
         std::to_string(qty) + "}]}";
}

}  // namespace booking::test
