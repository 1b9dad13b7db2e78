// cpp-httplib 0.11 with the settings DEPS.md measured: TCP_NODELAY, a worker per keep-alive
// connection, a listen backlog of 1024 (the library hard-codes 5), no SO_REUSEPORT.
#pragma once

#include <httplib.h>
#include <sys/socket.h>

namespace booking::bench {

class TunedServer : public httplib::Server {
 public:
  explicit TunedServer(int threads) {
    new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<std::size_t>(threads)); };
    set_tcp_nodelay(true);
    set_keep_alive_max_count(1'000'000);
    set_keep_alive_timeout(1);
  }
  // Binds (port 0: any free port) and raises the backlog; returns the port or -1.
  int bind_tuned(const std::string& host, int port) {
    int bound = port == 0 ? bind_to_any_port(host) : (bind_to_port(host, port) ? port : -1);
    if (bound > 0) ::listen(svr_sock_, 1024);
    return bound;
  }
};

}  // namespace booking::bench
