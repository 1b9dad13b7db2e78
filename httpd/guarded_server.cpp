#include "guarded_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace booking::httpd {

namespace {

using Steady = std::chrono::steady_clock;

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
  DeadlineStream(int sock, std::string peer, const std::atomic<bool>& stopping,
                 const std::atomic<std::int64_t>& stop_at, std::chrono::milliseconds write_timeout)
      : sock_(sock),
        peer_(std::move(peer)),
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

  // Whether a request starts (a byte is there) before `deadline`.
  bool wait_for_request(Steady::time_point deadline) {
    if (!flush()) return false;
    return begin_ < end_ || wait(POLLIN, deadline, true);
  }

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

  // Polls in slices of at most 100 ms, so a stop is noticed promptly.
  bool wait(short events, Steady::time_point deadline, bool reading) {
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
      pollfd p{sock_, events, 0};
      const int r = ::poll(&p, 1, static_cast<int>(slice.count()));
      if (r > 0) return true;  // ready, or an error/hang-up the next call reports
      if (r < 0 && errno != EINTR) return false;
    }
  }

  int sock_;
  std::string peer_;
  int peer_port_ = 0;
  std::string local_;
  int local_port_ = 0;
  const std::atomic<bool>& stopping_;
  const std::atomic<std::int64_t>& stop_at_;
  std::chrono::milliseconds write_timeout_;
  Steady::time_point read_deadline_ = Steady::time_point::max();
  std::string held_;  // a response's header block, waiting for its body
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

bool GuardedServer::process_and_close_socket(socket_t sock) {
  const std::string address = peer_address(sock);
  if (admit(address)) {
    DeadlineStream strm(sock, address, stopping_, stop_at_ns_, limits_.write_timeout);
    // The first request may take request_timeout to start; later ones on a kept-alive
    // connection, keep_alive_timeout.
    auto idle = limits_.request_timeout;
    for (std::size_t left = keep_alive_max_count_; left > 0 && !stopping_; --left) {
      if (!strm.wait_for_request(Steady::now() + idle)) break;
      strm.arm(Steady::now() + limits_.request_timeout);
      bool closed = false;
      if (!process_request(strm, left == 1 || stopping_, closed, nullptr) || closed) {
        strm.flush();
        break;
      }
      idle = std::chrono::seconds(keep_alive_timeout_sec_);
    }
    strm.flush();
    leave(address);
  } else {
    ++refused_;
  }
  ::shutdown(sock, SHUT_RDWR);
  ::close(sock);
  return true;
}

}  // namespace booking::httpd
