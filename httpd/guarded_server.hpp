// cpp-httplib's Server with what it lacks to face untrusted clients (0.11 reads with per-call
// timeouts only): a total deadline for each request's headers and body, a cap on the
// connections of one address, and a stop that waits for no idle or slow client.
//
// It serves each connection itself (process_and_close_socket) through its own Stream, whose
// reads give up at the request's deadline and at stop; the request handling is httplib's own
// process_request. A handler may also leave its response to another thread (defer()).
//
// A connection waiting for its next request holds no thread: it is parked in an event loop
// (epoll), which hands it to a worker thread when a request arrives. A request named by
// set_inline_requests() that has arrived whole is handled on the loop's thread instead, with no
// hand-over. (A thread per connection cost a wake-up and a context switch for every request.)
#pragma once

#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace booking::httpd {

struct ConnectionLimits {
  // From a request's first byte, its headers and body must have arrived within this.
  std::chrono::milliseconds request_timeout{5000};
  // A response must be taken by the client within this (at stop: within 1 s).
  std::chrono::milliseconds write_timeout{5000};
  // Open connections per client address; beyond it a connection is closed at once. 0: no cap.
  int max_connections_per_client = 0;
  // Addresses the cap does not apply to (trusted proxies).
  std::vector<std::string> exempt;
};

// A response written by whichever thread has it ready, typically the thread that finished the
// request's work (bookingd's hold is answered by the thread that committed it), so that the
// connection's own thread does not have to sleep until then and be woken to write it: it goes
// back to waiting for the client's next request instead. Made in a handler by
// GuardedServer::defer(); httplib's own response to that request is then dropped.
class DeferredResponse {
 public:
  // `wake`: the connection's eventfd, signalled when its thread has to write the rest or close.
  DeferredResponse(int sock, int wake, std::string connection_header, std::string connection_value)
      : sock_(sock),
        wake_(wake),
        connection_header_(std::move(connection_header)),
        connection_value_(std::move(connection_value)) {}

  // Writes `res` (its status, headers and body, as httplib would) once, from any thread,
  // without blocking: what the socket does not take at once, the connection's thread writes.
  void send(httplib::Response res) noexcept;
  // The same in two steps: the bytes of `res` (any thread, before or after the answer is
  // known), then writing them, once, instead of send().
  std::string render(httplib::Response res) const;
  void send_bytes(std::string out) noexcept;

  // For the connection's thread: waits until send() ran, then gives what is left to write.
  // False if the client is gone.
  bool await(std::string& rest);
  bool sent();

 private:
  const int sock_;
  const int wake_;
  const std::string connection_header_;  // "Connection: close" or Keep-Alive's
  const std::string connection_value_;
  std::mutex mu_;  // guards the rest
  std::condition_variable cv_;
  bool sent_ = false;
  bool failed_ = false;
  std::string rest_;
};

class GuardedServer : public httplib::Server {
 public:
  GuardedServer();
  ~GuardedServer() override;
  GuardedServer(const GuardedServer&) = delete;
  GuardedServer& operator=(const GuardedServer&) = delete;

  // The worker threads, which read and handle requests (but for inline ones) while the event
  // loop holds the idle connections. Set before listening.
  void set_worker_threads(std::size_t n);
  // Requests whose head starts with one of these ("POST /v1/api/books ") are handled on the
  // event loop's thread when they have arrived whole (headers and Content-Length body, no
  // Transfer-Encoding or Expect) and have none of the headers `unless` names: their handlers
  // must not wait, or every idle connection waits with them. Set before listening.
  void set_inline_requests(std::vector<std::string> prefixes,
                           std::vector<std::string> unless = {}) {
    inline_ = std::move(prefixes);
    inline_unless_ = std::move(unless);
  }
  // Threads that run the event loop (at least 1). Set before listening.
  void set_loop_threads(std::size_t n) { loop_threads_ = std::max<std::size_t>(1, n); }

  // In a handler: the response to the request being handled will be written with send() on
  // what this returns, from any thread; what the handler puts in its own response is dropped.
  // The connection waits for it before it reads the next request or closes. Null outside a
  // request of this server.
  std::shared_ptr<DeferredResponse> defer(const httplib::Request& req);

  void set_limits(ConnectionLimits limits) { limits_ = std::move(limits); }
  // cpp-httplib 0.11 listens with a backlog of 5, which overflows when 100 clients connect at
  // once; this reaches the socket between bind and listen_after_bind to raise it.
  bool raise_backlog(int backlog);
  // Stops accepting and ends every connection that is not inside a handler: idle keep-alive
  // connections and requests still arriving are dropped at once; responses being written get
  // at most 1 s. Safe from any thread.
  void shut_down();
  // Connections closed by the per-address cap since start.
  std::uint64_t refused_connections() const { return refused_; }

 private:
  struct Connection;
  class Workers;

  bool process_and_close_socket(socket_t sock) override;
  bool admit(const std::string& address);
  void leave(const std::string& address);

  // On a worker: reads and handles the connection's requests until it parks it or closes it.
  void serve(std::unique_ptr<Connection> c);
  // One request through httplib; false when the connection is to close.
  bool handle(Connection& c);
  // Waits for the pending deferred answer and writes what it left. False if the client is gone.
  bool finish(Connection& c);
  // Closes the connection once its answers are out (blocks until then).
  void retire(std::unique_ptr<Connection> c);

  // The event loop.
  void open_loops(httplib::TaskQueue* workers);
  void close_loops();
  bool park(std::unique_ptr<Connection>& c);
  std::unique_ptr<Connection> unpark(Connection* c);
  void hand_off(Connection* c);
  void kick_loops();  // under loop_mu_
  void run_loop(int epoll);
  void on_ready(Connection* c, bool readable, bool woken);
  void scan(int epoll);
  std::chrono::milliseconds keep_alive() const;

  ConnectionLimits limits_;
  std::atomic<bool> stopping_{false};
  std::atomic<std::int64_t> stop_at_ns_{0};  // steady clock, when shut_down was called
  std::atomic<std::uint64_t> refused_{0};
  std::mutex mu_;                              // guards open_
  std::unordered_map<std::string, int> open_;  // connections per address

  std::size_t worker_threads_ = 8;
  std::size_t loop_threads_ = 1;
  std::vector<std::string> inline_;
  std::vector<std::string> inline_unless_;
  struct Loop {
    int epoll = -1;
    std::thread thread;
  };
  std::vector<Loop> loops_;
  int kick_ = -1;       // an eventfd in every loop's epoll: signalled to make them look at stop
  std::mutex loop_mu_;  // guards what follows; also orders a park before the loop's reads
  bool loop_open_ = false;
  std::size_t next_loop_ = 0;
  httplib::TaskQueue* workers_ = nullptr;
  std::unordered_map<Connection*, std::unique_ptr<Connection>> parked_;
};

// The address of a connected socket's peer ("127.0.0.1", "::1"; IPv4-mapped IPv6 as IPv4).
std::string peer_address(int sock);

}  // namespace booking::httpd
