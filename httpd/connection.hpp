// Internal to bookingd's HTTP frontend: a connection of GuardedServer, and the Stream httplib
// reads and writes it through. Shared by the server's request handling (guarded_server.cpp) and
// its event loop (event_loop.cpp).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "guarded_server.hpp"

namespace booking::httpd::detail {

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

}  // namespace booking::httpd::detail

namespace booking::httpd {

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
  detail::ConnectionState state;
  detail::DeadlineStream strm;
  std::shared_ptr<DeferredResponse> pending;  // the last request's answer, written elsewhere
  std::string rest;                           // what that answer's writer could not send
  std::size_t left;                           // requests it may still make (keep-alive max)
  bool served = false;   // a request was served: the next one gets the keep-alive time
  bool closing = false;  // close once the answers are out
  // Handed over to wait for its answer (the loop does not wait): the worker does, first.
  bool settle = false;
  detail::Steady::time_point idle_until;  // parked: closed if no request starts before this
  int epoll = -1;                         // parked: in which loop
};

}  // namespace booking::httpd
