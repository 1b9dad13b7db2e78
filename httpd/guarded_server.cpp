#include "guarded_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <utility>

#include "connection.hpp"

namespace booking::httpd {

namespace {

using detail::ConnectionState;
using detail::Steady;

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

}  // namespace booking::httpd
