#include "guarded_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <new>
#include <utility>

namespace booking::httpd {

namespace {

using Steady = std::chrono::steady_clock;

// The request being served on this thread, for defer().
struct ConnectionState {
  int sock = -1;
  bool close = false;  // the connection closes after this response
  std::shared_ptr<DeferredResponse> deferred;
  // An eventfd (made by the first defer()) that a deferred answer signals when it leaves
  // bytes for this connection's thread to write, or failed: that thread waits on it too.
  int wake = -1;
};
thread_local ConnectionState* t_connection = nullptr;

// The reason phrases httplib 0.11 writes, for the statuses bookingd answers with.
const char* reason_phrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 204:
      return "No Content";
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 409:
      return "Conflict";
    case 410:
      return "Gone";
    case 412:
      return "Precondition Failed";
    case 413:
      return "Payload Too Large";
    case 414:
      return "URI Too Long";
    case 415:
      return "Unsupported Media Type";
    case 422:
      return "Unprocessable Entity";
    case 429:
      return "Too Many Requests";
    case 503:
      return "Service Unavailable";
    default:
      return "Internal Server Error";
  }
}

// A connection's socket as httplib's Stream, read through a buffer (httplib reads request lines
// a byte at a time). Reads give up at the request's deadline or when the server stops; writes
// at the write timeout, or 1 s after the stop.
//
// Each system call here is paid per request, so a loaded daemon makes as few as it can: reads
// and writes try the socket first and poll only when it would block; the addresses httplib asks
// for on every request are looked up once per connection; and a response's header block is
// held back until its body is written, so the two leave in one segment (httplib writes them
// apart). Only a header block with a Content-Length is held (its body follows at once, or there
// is none), never a chunked stream's, whose first chunk may be a long wait away; it is sent with
// the body, before any read or wait, or by flush() once the request is handled.
class DeadlineStream final : public httplib::Stream {
 public:
  DeadlineStream(int sock, std::string peer, const ConnectionState& connection,
                 const std::atomic<bool>& stopping, const std::atomic<std::int64_t>& stop_at,
                 std::chrono::milliseconds write_timeout)
      : sock_(sock),
        peer_(std::move(peer)),
        connection_(connection),
        stopping_(stopping),
        stop_at_(stop_at),
        write_timeout_(write_timeout) {
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    if (::getpeername(sock_, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      peer_port_ = port_of(addr);
    }
    len = sizeof addr;
    if (::getsockname(sock_, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      char text[INET6_ADDRSTRLEN] = {};
      if (addr.ss_family == AF_INET) {
        ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&addr)->sin_addr, text, sizeof text);
      } else if (addr.ss_family == AF_INET6) {
        ::inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&addr)->sin6_addr, text,
                    sizeof text);
      }
      local_ = text;
      local_port_ = port_of(addr);
    }
  }

  void arm(Steady::time_point deadline) { read_deadline_ = deadline; }

  // On the event loop's thread nothing may wait: reads take what is buffered or what the
  // socket has now, and what the socket will not take now is kept (has_unsent) for a worker.
  void set_nonblocking(bool on) { nonblocking_ = on; }
  bool has_unsent() const { return !unsent_.empty(); }

  // What has been received and not read yet.
  bool buffered() const { return begin_ < end_; }
  std::string_view unread() const { return {buffer_ + begin_, end_ - begin_}; }
  // Receives what the socket has now, after what is buffered (the event loop's read).
  enum class Fill { data, none, closed };
  Fill fill() {
    if (begin_ == end_) {
      begin_ = end_ = 0;
    } else if (end_ == sizeof buffer_ && begin_ > 0) {
      std::memmove(buffer_, buffer_ + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    if (end_ == sizeof buffer_) return Fill::data;  // full: a worker reads on
    while (true) {
      const ssize_t n = ::recv(sock_, buffer_ + end_, sizeof buffer_ - end_, MSG_DONTWAIT);
      if (n > 0) {
        end_ += static_cast<std::size_t>(n);
        return Fill::data;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return Fill::none;
      return Fill::closed;  // the client closed, or the connection failed
    }
  }

  // Whether a request starts (a byte is there) before `deadline`. A signal on `wake` ends the
  // wait too: false, and woken() says so.
  bool wait_for_request(Steady::time_point deadline, int wake) {
    woken_ = false;
    if (!flush()) return false;
    return begin_ < end_ || wait(POLLIN, deadline, true, wake);
  }
  bool woken() const { return woken_; }

  // Writes what a deferred response's writer could not (DeferredResponse::await).
  bool write_rest(const std::string& rest) { return flush() && send_all(rest.data(), rest.size()); }

  // Sends a held header block (a response without a body), and what the event loop could not
  // send. False if the client is gone.
  bool flush() {
    if (held_.empty() && unsent_.empty()) return true;
    const std::string held = std::move(held_);
    held_.clear();
    return send_all(held.data(), held.size());
  }

  bool is_readable() const override {
    auto* self = const_cast<DeadlineStream*>(this);
    if (!self->flush()) return false;
    return begin_ < end_ || (!nonblocking_ && self->wait(POLLIN, read_deadline_, true));
  }
  bool is_writable() const override {
    if (nonblocking_) return true;  // kept, when the socket will not take it
    auto* self = const_cast<DeadlineStream*>(this);
    if (!self->flush()) return false;
    return self->wait(POLLOUT, Steady::now() + write_timeout_, false);
  }

  ssize_t read(char* ptr, size_t size) override {
    if (begin_ == end_) {
      if (stopping_ || !flush()) return -1;  // at stop, a request still arriving is dropped
      ssize_t n;
      while (true) {
        n = ::recv(sock_, buffer_, sizeof buffer_, MSG_DONTWAIT);
        if (n >= 0) break;
        if (errno == EINTR) continue;
        if ((errno != EAGAIN && errno != EWOULDBLOCK) || nonblocking_ ||
            !wait(POLLIN, read_deadline_, true)) {
          return -1;
        }
      }
      if (n == 0) return 0;
      begin_ = 0;
      end_ = static_cast<std::size_t>(n);
    }
    const std::size_t take = std::min(size, end_ - begin_);
    std::copy_n(buffer_ + begin_, take, ptr);
    begin_ += take;
    return static_cast<ssize_t>(take);
  }

  ssize_t write(const char* ptr, size_t size) override {
    if (connection_.deferred) return static_cast<ssize_t>(size);  // another thread answers
    const std::string_view data(ptr, size);
    if (held_.empty() && data.starts_with("HTTP/1.") && data.ends_with("\r\n\r\n") &&
        data.find("\r\nContent-Length: ") != std::string_view::npos) {
      held_.assign(data);
      return static_cast<ssize_t>(size);
    }
    bool sent;
    if (held_.empty()) {
      sent = send_all(ptr, size);
    } else {
      held_.append(data);
      sent = send_all(held_.data(), held_.size());
      held_.clear();
    }
    return sent ? static_cast<ssize_t>(size) : -1;
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    ip = peer_;
    port = peer_port_;
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    ip = local_;
    port = local_port_;
  }
  socket_t socket() const override { return sock_; }

 private:
  static int port_of(const sockaddr_storage& addr) {
    if (addr.ss_family == AF_INET) {
      return ntohs(reinterpret_cast<const sockaddr_in*>(&addr)->sin_port);
    }
    if (addr.ss_family == AF_INET6) {
      return ntohs(reinterpret_cast<const sockaddr_in6*>(&addr)->sin6_port);
    }
    return 0;
  }

  // Writes all of `data` after what is unsent, polling (up to the write timeout) only when the
  // socket is full; without waiting (nonblocking_), what it will not take is kept in unsent_.
  bool send_all(const char* data, std::size_t size) {
    if (!unsent_.empty()) {
      if (nonblocking_) {
        unsent_.append(data, size);
        return true;
      }
      const std::string earlier = std::move(unsent_);
      unsent_.clear();
      if (!send_now(earlier.data(), earlier.size())) return false;
    }
    return send_now(data, size);
  }

  bool send_now(const char* data, std::size_t size) {
    const auto deadline = Steady::now() + write_timeout_;
    while (size > 0) {
      const ssize_t n = ::send(sock_, data, size, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        data += n;
        size -= static_cast<std::size_t>(n);
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        if (nonblocking_) {
          unsent_.assign(data, size);
          return true;
        }
        if (!wait(POLLOUT, deadline, false)) return false;
      } else {
        return false;
      }
    }
    return true;
  }

  // Polls in slices of at most 100 ms, so a stop is noticed promptly. With `wake` (an eventfd),
  // a signal on it (cleared here) ends the wait when the socket is not ready: false, woken_.
  bool wait(short events, Steady::time_point deadline, bool reading, int wake = -1) {
    if (nonblocking_) return false;  // never on the event loop's thread
    while (true) {
      if (stopping_) {
        if (reading) return false;
        deadline = std::min(deadline, Steady::time_point(std::chrono::nanoseconds(stop_at_)) +
                                          std::chrono::seconds(1));
      }
      const auto now = Steady::now();
      if (now >= deadline) return false;
      const auto slice = std::min<std::chrono::milliseconds>(
          std::chrono::ceil<std::chrono::milliseconds>(deadline - now),
          std::chrono::milliseconds(100));
      pollfd p[2] = {{sock_, events, 0}, {wake, POLLIN, 0}};
      const int r = ::poll(p, wake >= 0 ? 2 : 1, static_cast<int>(slice.count()));
      if (r > 0 && wake >= 0 && (p[1].revents & POLLIN) != 0) {
        std::uint64_t count;
        (void)!::read(wake, &count, sizeof count);
        if (p[0].revents == 0) {
          woken_ = true;
          return false;
        }
      }
      if (r > 0) return true;  // ready, or an error/hang-up the next call reports
      if (r < 0 && errno != EINTR) return false;
    }
  }

  int sock_;
  std::string peer_;
  const ConnectionState& connection_;
  int peer_port_ = 0;
  std::string local_;
  int local_port_ = 0;
  const std::atomic<bool>& stopping_;
  const std::atomic<std::int64_t>& stop_at_;
  std::chrono::milliseconds write_timeout_;
  Steady::time_point read_deadline_ = Steady::time_point::max();
  std::string held_;    // a response's header block, waiting for its body
  std::string unsent_;  // what the socket would not take without waiting
  bool nonblocking_ = false;
  bool woken_ = false;
  char buffer_[4096];
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
};

}  // namespace

std::string peer_address(int sock) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (::getpeername(sock, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return "";
  char text[INET6_ADDRSTRLEN] = {};
  if (addr.ss_family == AF_INET) {
    ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&addr)->sin_addr, text, sizeof text);
  } else if (addr.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<sockaddr_in6*>(&addr);
    if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
      ::inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], text, sizeof text);
    } else {
      ::inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
    }
  }
  return text;
}

bool GuardedServer::raise_backlog(int backlog) { return ::listen(svr_sock_, backlog) == 0; }

void GuardedServer::shut_down() {
  stop_at_ns_ = Steady::now().time_since_epoch().count();
  stopping_ = true;
  {
    std::lock_guard lock(loop_mu_);
    kick_loops();  // idle connections are closed now, not at the loop's next look
  }
  stop();
  // httplib's stop() does nothing before listen_after_bind has begun (a SIGTERM right after
  // start): shutting the listening socket down makes its accept loop end as soon as it runs.
  const socket_t sock = svr_sock_;
  if (sock != INVALID_SOCKET) ::shutdown(sock, SHUT_RDWR);
}

bool GuardedServer::admit(const std::string& address) {
  std::lock_guard lock(mu_);
  int& n = open_[address];
  const bool exempt =
      std::find(limits_.exempt.begin(), limits_.exempt.end(), address) != limits_.exempt.end();
  if (limits_.max_connections_per_client > 0 && !exempt &&
      n >= limits_.max_connections_per_client) {
    if (n == 0) open_.erase(address);
    return false;
  }
  ++n;
  return true;
}

void GuardedServer::leave(const std::string& address) {
  std::lock_guard lock(mu_);
  auto it = open_.find(address);
  if (it != open_.end() && --it->second <= 0) open_.erase(it);
}

std::string DeferredResponse::render(httplib::Response res) const {
  // As httplib's write_response: its headers (in its order) and a length.
  res.set_header(connection_header_.c_str(), connection_value_);
  if (!res.has_header("Content-Length")) {
    res.set_header("Content-Length", std::to_string(res.body.size()));
  }
  std::string out =
      "HTTP/1.1 " + std::to_string(res.status) + " " + reason_phrase(res.status) + "\r\n";
  for (const auto& [name, value] : res.headers) out += name + ": " + value + "\r\n";
  out += "\r\n";
  out += res.body;
  return out;
}

void DeferredResponse::send(httplib::Response res) noexcept {
  std::string out;
  try {
    out = render(std::move(res));
  } catch (...) {  // bad_alloc: the connection is closed without an answer
    const std::uint64_t one = 1;
    (void)!::write(wake_, &one, sizeof one);
    std::lock_guard lock(mu_);
    failed_ = true;
    sent_ = true;
    cv_.notify_all();
    return;
  }
  send_bytes(std::move(out));
}

void DeferredResponse::send_bytes(std::string out) noexcept {
  std::size_t done = 0;
  bool failed = false;
  while (done < out.size()) {
    const ssize_t n =
        ::send(sock_, out.data() + done, out.size() - done, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      done += static_cast<std::size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      failed = !(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
      break;  // full: the connection's thread writes the rest, with its write timeout
    }
  }
  if (failed || done < out.size()) {
    // The connection's thread may be waiting for the client's next request, which waits for
    // this answer: it is woken to write the rest (or close), before sent_ lets it close `wake_`.
    const std::uint64_t one = 1;
    (void)!::write(wake_, &one, sizeof one);
  }
  std::lock_guard lock(mu_);
  if (!failed && done < out.size()) {
    out.erase(0, done);
    rest_ = std::move(out);
  }
  failed_ = failed;
  sent_ = true;
  cv_.notify_all();
}

bool DeferredResponse::await(std::string& rest) {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return sent_; });
  rest = std::move(rest_);
  rest_.clear();
  return !failed_;
}

bool DeferredResponse::sent() {
  std::lock_guard lock(mu_);
  return sent_;
}

std::shared_ptr<DeferredResponse> GuardedServer::defer(const httplib::Request& req) {
  if (t_connection == nullptr) return nullptr;
  if (t_connection->wake < 0) {
    t_connection->wake = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (t_connection->wake < 0) return nullptr;  // out of descriptors: answered in place
  }
  // As httplib's write_response decides between closing and keeping the connection alive.
  const bool close = t_connection->close || req.get_header_value("Connection") == "close";
  const int sock = t_connection->sock;
  const int wake = t_connection->wake;
  auto d = close ? std::make_shared<DeferredResponse>(sock, wake, "Connection", "close")
                 : std::make_shared<DeferredResponse>(
                       sock, wake, "Keep-Alive",
                       "timeout=" + std::to_string(keep_alive_timeout_sec_) +
                           ", max=" + std::to_string(keep_alive_max_count_));
  t_connection->deferred = d;
  return d;
}

// A client's connection, from its accept to its close. Whoever has it owns it: a worker while
// it reads and handles a request, the event loop while it waits for the next one.
struct GuardedServer::Connection {
  Connection(GuardedServer& server, int sock, std::string peer)
      : address(std::move(peer)),
        strm(sock, address, state, server.stopping_, server.stop_at_ns_,
             server.limits_.write_timeout),
        left(server.keep_alive_max_count_) {
    state.sock = sock;
    // Made now, so the event loop can watch it with the socket (defer() would make it late).
    state.wake = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  }

  const std::string address;
  ConnectionState state;
  DeadlineStream strm;
  std::shared_ptr<DeferredResponse> pending;  // the last request's answer, written elsewhere
  std::string rest;                           // what that answer's writer could not send
  std::size_t left;                           // requests it may still make (keep-alive max)
  bool served = false;   // a request was served: the next one gets the keep-alive time
  bool closing = false;  // close once the answers are out
  // Handed over to wait for its answer (the loop does not wait): the worker does, first.
  bool settle = false;
  Steady::time_point idle_until;  // parked: closed if no request starts before this
  int epoll = -1;                 // parked: in which loop
};

// httplib's thread pool, opening the event loops when listening starts and closing them before
// its threads are joined (after which nothing could take a connection from a loop).
class GuardedServer::Workers final : public httplib::TaskQueue {
 public:
  Workers(GuardedServer& server, std::size_t n) : server_(server), pool_(n) {
    server_.open_loops(this);
  }
  void enqueue(std::function<void()> fn) override { pool_.enqueue(std::move(fn)); }
  void shutdown() override {
    server_.close_loops();
    pool_.shutdown();
  }

 private:
  GuardedServer& server_;
  httplib::ThreadPool pool_;
};

namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// Whether `data` starts with a whole request that may be handled on the event loop: its head
// starts with one of `prefixes`, its headers have ended, none is one of `unless`, and the body
// its one Content-Length announces is there. Anything unusual (a line ending in a bare LF,
// Transfer-Encoding, Expect, no length or two, a length that is not a plain number) is left to
// a worker, where httplib reads it as always: the loop must never find it needs more bytes.
bool whole_inline_request(std::string_view data, const std::vector<std::string>& prefixes,
                          const std::vector<std::string>& unless) {
  if (std::none_of(prefixes.begin(), prefixes.end(),
                   [&](const std::string& p) { return data.starts_with(p); })) {
    return false;
  }
  const auto head_end = data.find("\r\n\r\n");
  if (head_end == std::string_view::npos) return false;
  for (auto lf = data.find('\n'); lf < head_end + 4; lf = data.find('\n', lf + 1)) {
    if (lf == 0 || data[lf - 1] != '\r') return false;  // httplib ends a line at a bare LF too
  }
  std::size_t length = 0;
  int lengths = 0;
  auto line_start = data.find("\r\n") + 2;
  while (line_start < head_end + 2) {
    const auto line_end = data.find("\r\n", line_start);
    const std::string_view line = data.substr(line_start, line_end - line_start);
    line_start = line_end + 2;
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) return false;
    const std::string_view name = line.substr(0, colon);
    if (iequals(name, "Transfer-Encoding") || iequals(name, "Expect") ||
        std::any_of(unless.begin(), unless.end(),
                    [&](const auto& u) { return iequals(name, u); })) {
      return false;
    }
    if (!iequals(name, "Content-Length")) continue;
    std::string_view value = line.substr(colon + 1);
    value.remove_prefix(std::min(value.size(), value.find_first_not_of(" \t")));
    value = value.substr(0, value.find_last_not_of(" \t") + 1);
    if (value.empty() || value.size() > 9 ||
        !std::all_of(value.begin(), value.end(), [](char ch) { return ch >= '0' && ch <= '9'; })) {
      return false;
    }
    length = std::stoul(std::string(value));
    ++lengths;
  }
  return lengths == 1 && data.size() - (head_end + 4) >= length;
}

}  // namespace

GuardedServer::GuardedServer() { set_worker_threads(worker_threads_); }

GuardedServer::~GuardedServer() { close_loops(); }

void GuardedServer::set_worker_threads(std::size_t n) {
  worker_threads_ = n;
  new_task_queue = [this, n] { return new Workers(*this, n); };
}

std::chrono::milliseconds GuardedServer::keep_alive() const {
  return std::chrono::seconds(keep_alive_timeout_sec_);
}

bool GuardedServer::process_and_close_socket(socket_t sock) {
  const std::string address = peer_address(sock);
  if (!admit(address)) {
    ++refused_;
    ::shutdown(sock, SHUT_RDWR);
    ::close(sock);
    return true;
  }
  std::unique_ptr<Connection> c;
  try {
    c = std::make_unique<Connection>(*this, sock, address);
  } catch (...) {  // bad_alloc: refused as if over the cap
    leave(address);
    ::shutdown(sock, SHUT_RDWR);
    ::close(sock);
    return true;
  }
  serve(std::move(c));
  return true;
}

void GuardedServer::serve(std::unique_ptr<Connection> c) {
  while (!c->closing && c->left > 0 && !stopping_) {
    // What the event loop left for a worker: an answer's rest, a response the socket would not
    // take at once.
    const bool settle = std::exchange(c->settle, false);
    if ((settle || (c->pending && c->pending->sent()) || !c->rest.empty()) && !finish(*c)) break;
    if (!c->strm.flush()) break;
    // Nothing to read yet: the loop waits for the next request without a thread.
    if (!c->strm.buffered() && park(c)) return;
    // The first request may take request_timeout to start; later ones on a kept-alive
    // connection, keep_alive_timeout.
    const auto idle = c->served ? keep_alive() : limits_.request_timeout;
    bool next = c->strm.wait_for_request(Steady::now() + idle, c->state.wake);
    bool gone = false;
    while (!next && !gone && c->strm.woken()) {
      // The pending answer left bytes to write (or failed): now, not when the client, who
      // waits for them, sends its next request. Its keep-alive time starts after them.
      gone = !finish(*c);
      if (!gone) next = c->strm.wait_for_request(Steady::now() + idle, c->state.wake);
    }
    if (gone) break;
    if (!next && c->pending && !c->pending->sent() && !stopping_) {
      // The client is still waiting for its answer: the keep-alive time starts after it.
      if (!finish(*c)) break;
      next = c->strm.wait_for_request(Steady::now() + idle, c->state.wake);
    }
    // A response another thread writes (defer()) must be out before the next request is read,
    // and before the socket is closed: that thread writes to it.
    if (!next || !finish(*c)) break;
    if (!handle(*c)) break;
  }
  retire(std::move(c));
}

bool GuardedServer::handle(Connection& c) {
  c.strm.arm(Steady::now() + limits_.request_timeout);
  bool closed = false;
  c.state.close = c.left == 1 || stopping_;
  t_connection = &c.state;
  const bool served = process_request(c.strm, c.state.close, closed, nullptr);
  t_connection = nullptr;
  c.pending = std::move(c.state.deferred);
  c.state.deferred.reset();
  --c.left;
  c.served = true;
  return served && !closed && c.left > 0;
}

bool GuardedServer::finish(Connection& c) {
  if (c.pending) {
    std::string rest;
    const bool ok = c.pending->await(rest);
    c.pending.reset();
    if (!ok) return false;
    c.rest += rest;
  }
  if (c.rest.empty()) return true;
  const std::string rest = std::move(c.rest);
  c.rest.clear();
  return c.strm.write_rest(rest);
}

void GuardedServer::retire(std::unique_ptr<Connection> c) {
  finish(*c);
  c->strm.set_nonblocking(false);
  c->strm.flush();
  if (c->state.wake >= 0) ::close(c->state.wake);  // no answer is pending: finish() waited
  leave(c->address);
  ::shutdown(c->state.sock, SHUT_RDWR);
  ::close(c->state.sock);
}

void GuardedServer::open_loops(httplib::TaskQueue* workers) {
  std::lock_guard lock(loop_mu_);
  if (loop_open_) return;
  kick_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  for (std::size_t i = 0; kick_ >= 0 && i < loop_threads_; ++i) {
    const int ep = ::epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = 0;  // the kick
    if (ep < 0 || ::epoll_ctl(ep, EPOLL_CTL_ADD, kick_, &ev) != 0) {
      if (ep >= 0) ::close(ep);
      break;
    }
    try {
      loops_.push_back(Loop{ep, {}});
      loops_.back().thread = std::thread([this, ep] { run_loop(ep); });
    } catch (...) {
      if (!loops_.empty() && !loops_.back().thread.joinable()) loops_.pop_back();
      ::close(ep);
      break;
    }
  }
  if (loops_.empty()) {
    // Out of descriptors or threads: every connection keeps its worker, as without a loop.
    if (kick_ >= 0) ::close(kick_);
    kick_ = -1;
    return;
  }
  workers_ = workers;
  loop_open_ = true;
}

void GuardedServer::close_loops() {
  {
    std::lock_guard lock(loop_mu_);
    loop_open_ = false;
    kick_loops();
  }
  // Only this thread changes loops_ now: park() looks at it only while the loops are open.
  for (auto& l : loops_) {
    if (l.thread.joinable()) l.thread.join();
    ::close(l.epoll);
  }
  std::lock_guard lock(loop_mu_);
  loops_.clear();
  if (kick_ >= 0) ::close(kick_);
  kick_ = -1;
  workers_ = nullptr;
}

void GuardedServer::kick_loops() {
  if (kick_ < 0) return;
  const std::uint64_t one = 1;
  (void)!::write(kick_, &one, sizeof one);  // never read: every loop sees it until it ends
}

bool GuardedServer::park(std::unique_ptr<Connection>& c) {
  if (c->state.wake < 0) return false;  // its answers could not wake the loop
  if (!c->pending) {
    // A wake-up left from an answer this worker finished: the loop would take it for the next
    // one and hand the connection back to wait for it.
    std::uint64_t count;
    (void)!::read(c->state.wake, &count, sizeof count);
  }
  std::lock_guard lock(loop_mu_);
  if (!loop_open_ || stopping_ || loops_.empty()) return false;
  const int ep = loops_[next_loop_++ % loops_.size()].epoll;
  Connection* key = c.get();
  decltype(parked_)::iterator it;
  try {
    it = parked_.emplace(key, nullptr).first;  // what can throw comes before the loop sees it
  } catch (...) {
    return false;
  }
  const auto tag = reinterpret_cast<std::uintptr_t>(key);
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLRDHUP;
  ev.data.u64 = tag;
  bool added = ::epoll_ctl(ep, EPOLL_CTL_ADD, c->state.sock, &ev) == 0;
  ev.events = EPOLLIN;
  ev.data.u64 = tag | 1;  // its deferred answer's wake-up
  if (added && ::epoll_ctl(ep, EPOLL_CTL_ADD, c->state.wake, &ev) != 0) {
    ::epoll_ctl(ep, EPOLL_CTL_DEL, c->state.sock, nullptr);
    added = false;
  }
  if (!added) {
    parked_.erase(it);
    return false;
  }
  c->epoll = ep;
  c->idle_until = Steady::now() + (c->served ? keep_alive() : limits_.request_timeout);
  it->second = std::move(c);
  return true;
}

std::unique_ptr<GuardedServer::Connection> GuardedServer::unpark(Connection* c) {
  ::epoll_ctl(c->epoll, EPOLL_CTL_DEL, c->state.sock, nullptr);
  ::epoll_ctl(c->epoll, EPOLL_CTL_DEL, c->state.wake, nullptr);
  std::lock_guard lock(loop_mu_);
  auto node = parked_.extract(c);
  return std::move(node.mapped());
}

void GuardedServer::hand_off(Connection* c) {
  httplib::TaskQueue* workers;
  {
    std::lock_guard lock(loop_mu_);
    workers = workers_;
  }
  Connection* raw = unpark(c).release();
  try {
    workers->enqueue([this, raw] { serve(std::unique_ptr<Connection>(raw)); });
  } catch (...) {  // bad_alloc
    retire(std::unique_ptr<Connection>(raw));
  }
}

void GuardedServer::run_loop(int ep) {
  std::array<epoll_event, 64> ready;
  // Each connection once per round, with what woke it.
  struct Ready {
    Connection* c;
    bool readable;
    bool woken;
  };
  std::vector<Ready> round;
  round.reserve(ready.size());
  auto scan_at = Steady::now() + std::chrono::milliseconds(100);
  while (true) {
    const int n = ::epoll_wait(ep, ready.data(), static_cast<int>(ready.size()), 100);
    round.clear();
    {
      // Also what makes a worker's park() (under this lock) happen before the reads below.
      std::lock_guard lock(loop_mu_);
      if (!loop_open_ || stopping_) break;
      for (int i = 0; i < n; ++i) {
        const std::uint64_t tag = ready[i].data.u64;
        if (tag == 0) continue;  // the kick: stop is looked at above
        auto* c =
            reinterpret_cast<Connection*>(static_cast<std::uintptr_t>(tag & ~std::uint64_t{1}));
        // Not parked here: a park() that failed half-way, whose worker kept the connection
        // (and may have closed it, and another connection at its address parked elsewhere).
        const auto found = parked_.find(c);
        if (found == parked_.end() || found->second->epoll != ep) continue;
        const bool socket = (tag & 1) == 0;
        auto it =
            std::find_if(round.begin(), round.end(), [&](const Ready& r) { return r.c == c; });
        if (it == round.end()) {
          round.push_back({c, socket, !socket});
        } else {
          it->readable = it->readable || socket;
          it->woken = it->woken || !socket;
        }
      }
    }
    for (const Ready& r : round) {
      if (r.woken) {
        std::uint64_t count;
        (void)!::read(r.c->state.wake, &count, sizeof count);
      }
      on_ready(r.c, r.readable, r.woken);
    }
    if (Steady::now() >= scan_at) {
      scan(ep);
      scan_at = Steady::now() + std::chrono::milliseconds(100);
    }
  }
  // Stopping: idle connections are closed at once, once their answers are out, by the workers
  // (still there: the pool is shut down after the loops), so that one client slow to take its
  // answer's rest does not delay the others.
  std::vector<std::unique_ptr<Connection>> mine;
  httplib::TaskQueue* workers;
  {
    std::lock_guard lock(loop_mu_);
    loop_open_ = false;
    workers = workers_;
    for (auto it = parked_.begin(); it != parked_.end();) {
      if (it->second->epoll == ep) {
        mine.push_back(std::move(it->second));
        it = parked_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& c : mine) {
    c->closing = true;  // also when the listener failed without a stop: nothing is read now
    Connection* raw = c.release();
    try {
      if (workers == nullptr) throw std::bad_alloc();
      workers->enqueue([this, raw] { serve(std::unique_ptr<Connection>(raw)); });
    } catch (...) {
      retire(std::unique_ptr<Connection>(raw));
    }
  }
}

void GuardedServer::on_ready(Connection* c, bool readable, bool woken) {
  if (c->pending) {
    if (!c->pending->sent()) {
      // The client wrote before its answer went out (a pipelined request, or a close), or the
      // answer's writer has left bytes to write and is about to say so: a worker waits for the
      // answer, writes what is left of it, then goes on. The loop never waits.
      if (readable || woken) {
        c->settle = true;
        hand_off(c);
      }
      return;
    }
    std::string rest;
    const bool ok = c->pending->await(rest);
    c->pending.reset();
    if (!ok) return retire(unpark(c));
    if (!rest.empty()) {  // the socket was full: a worker writes the rest, with its timeout
      c->rest = std::move(rest);
      return hand_off(c);
    }
    c->idle_until = Steady::now() + keep_alive();  // counted from the answer
  }
  if (!readable) return;
  const auto got = c->strm.fill();
  if (got == DeadlineStream::Fill::closed) return retire(unpark(c));
  if (!c->strm.buffered()) return;
  if (c->left > 0 && !stopping_ &&
      whole_inline_request(c->strm.unread(), inline_, inline_unless_)) {
    c->strm.set_nonblocking(true);
    bool keep = handle(*c);
    keep = c->strm.flush() && keep;  // a bodiless answer's held header block
    c->strm.set_nonblocking(false);
    if (keep && !c->strm.buffered() && !c->strm.has_unsent()) {
      c->idle_until = Steady::now() + keep_alive();
      return;
    }
    c->closing = !keep;
  }
  hand_off(c);  // a request to read or handle on a thread of its own, or a close to finish
}

void GuardedServer::scan(int ep) {
  std::vector<Connection*> answered;
  std::vector<Connection*> expired;
  const auto now = Steady::now();
  {
    std::lock_guard lock(loop_mu_);
    for (const auto& [key, c] : parked_) {
      if (c->epoll != ep) continue;
      if (c->pending) {
        if (c->pending->sent()) answered.push_back(key);  // its keep-alive time starts now
      } else if (now >= c->idle_until) {
        expired.push_back(key);
      }
    }
  }
  for (Connection* c : answered) on_ready(c, false, false);
  for (Connection* c : expired) retire(unpark(c));
}

}  // namespace booking::httpd
