// An upper bound, not a server: how many holds/s one process sells when its frontend is an
// event loop instead of cpp-httplib's thread per connection. Two epoll threads read requests,
// parse POST /v1/api/books and queue the hold with BookingService's asynchronous hold; the
// committing thread writes each answer with one non-blocking send, as bookingd's does. There is
// nothing else: no access control, rate limits, metrics, access log, timeouts or other routes
// (POST /v1/api/events creates the load's event). bench/README.md, "One instance", compares it
// with bookingd and the bare httplib server in the same rounds.
//
// usage: event_loop_bound DB [PORT] [THREADS]; prints "listening on http://127.0.0.1:PORT".
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <booking/booking_service.hpp>
#include <booking/event_repository.hpp>
#include <booking/json_codec.hpp>
#include <booking/lock_provider.hpp>
#include <boost/json.hpp>
#include <cerrno>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

using namespace booking;
namespace json = boost::json;

namespace {

// A connection; closed when the client has gone and no answer is on its way to it (its
// descriptor must not be reused while the committing thread may still write to it).
struct Conn {
  int fd = -1;
  std::string in;  // read by its event loop's thread only
  ~Conn() { ::close(fd); }
};

std::string response(int status, const std::string& body) {
  return "HTTP/1.1 " + std::to_string(status) + (status < 300 ? " OK" : " Error") +
         "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\n\r\n" + body;
}

// One non-blocking send: the load's answers are a few hundred bytes and a socket's buffer takes
// them whole; what it would not take is dropped (a real server keeps it for later).
void send_now(int fd, const std::string& out) {
  (void)!::send(fd, out.data(), out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: event_loop_bound DB [PORT] [THREADS]\n";
    return 2;
  }
  const int port = argc > 2 ? std::atoi(argv[2]) : 0;
  const int workers = argc > 3 ? std::max(1, std::atoi(argv[3])) : 2;
  auto repo = open_repository(argv[1], RepositoryOptions{});
  auto locks = make_lock_provider("memory");
  if (!repo || !locks) return 1;
  BookingService service(*repo.value(), *locks.value(), system_clock(), ServiceOptions{});

  const int ls = ::socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  ::setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(ls, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(ls, 1024) != 0 ||
      ::getsockname(ls, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return 1;
  }
  std::cout << "listening on http://127.0.0.1:" << ntohs(addr.sin_port) << std::endl;

  std::vector<int> loops;
  std::vector<std::thread> threads;
  for (int w = 0; w < workers; ++w) {
    const int ep = ::epoll_create1(0);
    loops.push_back(ep);
    threads.emplace_back([ep, &service] {
      epoll_event ready[64];
      std::vector<char> buf(65536);
      while (true) {
        const int n = ::epoll_wait(ep, ready, 64, -1);
        for (int i = 0; i < n; ++i) {
          auto* owner = static_cast<std::shared_ptr<Conn>*>(ready[i].data.ptr);
          const std::shared_ptr<Conn> c = *owner;
          bool closed = false;
          while (true) {
            const ssize_t r = ::recv(c->fd, buf.data(), buf.size(), MSG_DONTWAIT);
            if (r > 0) {
              c->in.append(buf.data(), static_cast<std::size_t>(r));
              continue;
            }
            // The client closed, or the connection failed (a reset would otherwise be reported
            // by epoll again and again).
            closed = r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
            break;
          }
          // Every complete request in the buffer (headers, then Content-Length bytes).
          while (true) {
            const auto end = c->in.find("\r\n\r\n");
            if (end == std::string::npos) break;
            const auto cl = c->in.find("Content-Length: ");
            std::size_t body_len = 0;
            if (cl != std::string::npos && cl < end) {
              body_len = std::strtoul(c->in.c_str() + cl + 16, nullptr, 10);
            }
            if (c->in.size() < end + 4 + body_len) break;
            const bool hold = c->in.starts_with("POST /v1/api/books ");
            const bool create = c->in.starts_with("POST /v1/api/events ");
            auto body = parse_json(std::string_view(c->in).substr(end + 4, body_len));
            c->in.erase(0, end + 4 + body_len);
            if (hold) {
              auto request =
                  body ? hold_request_from_json(body.value()) : result<HoldRequest>(body.error());
              if (!request) {
                send_now(c->fd, response(422, "{}"));
                continue;
              }
              service.hold(request.value(), [c](result<Booking> b) {
                send_now(c->fd, b ? response(201, json::serialize(json::object{
                                                      {"data", hold_result_json(b.value())}}))
                                  : response(409, json::serialize(json::object{
                                                      {"error", error_json(b.error())}})));
              });
            } else if (create) {
              auto event = body ? event_from_json(body.value()) : result<Event>(body.error());
              auto made =
                  event ? service.create_event(event.value()) : result<Event>(event.error());
              send_now(c->fd, response(made ? 201 : 409, "{}"));
            } else {
              send_now(c->fd, response(404, "{}"));
            }
          }
          if (closed) {
            ::epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, nullptr);
            delete owner;  // the last answer in flight, if any, keeps the connection open
          }
        }
      }
    });
  }
  for (std::size_t next = 0;; next = (next + 1) % loops.size()) {
    const int fd = ::accept(ls, nullptr, nullptr);
    if (fd < 0) continue;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    auto* owner = new std::shared_ptr<Conn>(std::make_shared<Conn>());
    (*owner)->fd = fd;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = owner;
    ::epoll_ctl(loops[next], EPOLL_CTL_ADD, fd, &ev);
  }
}
