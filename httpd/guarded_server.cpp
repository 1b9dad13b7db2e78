#include "guarded_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>

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

  // Sends a held header block (a response without a body). False if the client is gone.
  bool flush() {
    if (held_.empty()) return true;
    const bool sent = send_all(held_.data(), held_.size());
    held_.clear();
    return sent;
  }

  bool is_readable() const override {
    auto* self = const_cast<DeadlineStream*>(this);
    if (!self->flush()) return false;
    return begin_ < end_ || self->wait(POLLIN, read_deadline_, true);
  }
  bool is_writable() const override {
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
        if ((errno != EAGAIN && errno != EWOULDBLOCK) || !wait(POLLIN, read_deadline_, true)) {
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

  // Writes all of `data`, polling (up to the write timeout) only when the socket is full.
  bool send_all(const char* data, std::size_t size) {
    const auto deadline = Steady::now() + write_timeout_;
    while (size > 0) {
      const ssize_t n = ::send(sock_, data, size, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        data += n;
        size -= static_cast<std::size_t>(n);
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
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
  std::string held_;  // a response's header block, waiting for its body
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

bool GuardedServer::process_and_close_socket(socket_t sock) {
  const std::string address = peer_address(sock);
  if (admit(address)) {
    ConnectionState connection;
    connection.sock = sock;
    DeadlineStream strm(sock, address, connection, stopping_, stop_at_ns_, limits_.write_timeout);
    // A response another thread writes (defer()) must be out before the next request is read,
    // and before the socket is closed: that thread writes to it.
    std::shared_ptr<DeferredResponse> pending;
    auto finish = [&] {
      if (!pending) return true;
      std::string rest;
      const bool ok = pending->await(rest) && (rest.empty() || strm.write_rest(rest));
      pending.reset();
      return ok;
    };
    // The first request may take request_timeout to start; later ones on a kept-alive
    // connection, keep_alive_timeout.
    auto idle = limits_.request_timeout;
    for (std::size_t left = keep_alive_max_count_; left > 0 && !stopping_; --left) {
      bool next = strm.wait_for_request(Steady::now() + idle, connection.wake);
      bool gone = false;
      while (!next && !gone && strm.woken()) {
        // The pending answer left bytes to write (or failed): now, not when the client, who
        // waits for them, sends its next request. Its keep-alive time starts after them.
        gone = !finish();
        if (!gone) next = strm.wait_for_request(Steady::now() + idle, connection.wake);
      }
      if (gone) break;
      if (!next && pending && !pending->sent() && !stopping_) {
        // The client is still waiting for its answer: the keep-alive time starts after it.
        if (!finish()) break;
        next = strm.wait_for_request(Steady::now() + idle, connection.wake);
      }
      if (!next || !finish()) break;
      strm.arm(Steady::now() + limits_.request_timeout);
      bool closed = false;
      connection.close = left == 1 || stopping_;
      t_connection = &connection;
      const bool served = process_request(strm, connection.close, closed, nullptr);
      t_connection = nullptr;
      pending = std::move(connection.deferred);
      connection.deferred.reset();
      if (!served || closed) break;
      idle = std::chrono::seconds(keep_alive_timeout_sec_);
    }
    finish();
    strm.flush();
    if (connection.wake >= 0) ::close(connection.wake);  // no answer is pending: finish() waited
    leave(address);
  } else {
    ++refused_;
  }
  ::shutdown(sock, SHUT_RDWR);
  ::close(sock);
  return true;
}

}  // namespace booking::httpd
