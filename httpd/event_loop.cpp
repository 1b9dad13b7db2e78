// GuardedServer's event loop: connections waiting for their next request are parked in epoll
// instead of holding a worker thread, and whole inline requests are handled on the loop's
// thread (guarded_server.hpp says which, and why).
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdint>
#include <new>
#include <string_view>
#include <utility>
#include <vector>

#include "connection.hpp"
#include "guarded_server.hpp"

namespace booking::httpd {

using detail::DeadlineStream;
using detail::Steady;

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
