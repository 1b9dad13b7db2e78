#include "locks/redis_client.hpp"

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <signal.h>

#include <cstring>
#include <ctime>

namespace booking::detail {

namespace {

timeval to_timeval(std::chrono::milliseconds ms) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

// hiredis writes with write(2): a peer that went away raises SIGPIPE, which by default kills the
// process. Blocks SIGPIPE on this thread for the guard's life and swallows one raised meanwhile,
// so the library never changes the process's signal disposition.
class SigpipeGuard {
 public:
  SigpipeGuard() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    sigset_t pending;
    sigpending(&pending);
    already_pending_ = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
  }
  ~SigpipeGuard() {
    if (!already_pending_) {
      sigset_t pending;
      sigpending(&pending);
      if (sigismember(&pending, SIGPIPE) == 1) {
        timespec zero{0, 0};
        sigtimedwait(&pipe_, nullptr, &zero);
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  SigpipeGuard(const SigpipeGuard&) = delete;
  SigpipeGuard& operator=(const SigpipeGuard&) = delete;

 private:
  sigset_t pipe_{};
  sigset_t old_{};
  bool already_pending_ = false;
};

}  // namespace

void ReplyDeleter::operator()(redisReply* r) const noexcept { freeReplyObject(r); }

RedisClient::RedisClient(RedisLockOptions options) : options_(std::move(options)) {}

RedisClient::~RedisClient() {
  for (redisContext* c : idle_) redisFree(c);
}

std::string RedisClient::endpoint() const {
  return options_.host + ":" + std::to_string(options_.port);
}

result<redisContext*> RedisClient::borrow() {
  {
    std::lock_guard lock(mu_);
    if (!idle_.empty()) {
      redisContext* c = idle_.back();
      idle_.pop_back();
      return c;
    }
  }
  redisContext* c = redisConnectWithTimeout(options_.host.c_str(), options_.port,
                                            to_timeval(options_.connect_timeout));
  if (c == nullptr || c->err != 0) {
    std::string why = c ? c->errstr : "out of memory";
    if (c) redisFree(c);
    return make_error(errc::lock_timeout, "redis " + endpoint() + " unreachable: " + why);
  }
  redisSetTimeout(c, to_timeval(options_.command_timeout));
  auto setup = [&](std::vector<std::string> args) -> result<void> {
    BOOKING_TRY(run(c, args));
    return boost::outcome_v2::success();
  };
  result<void> ok = boost::outcome_v2::success();
  if (!options_.password.empty()) {
    ok = options_.user.empty() ? setup({"AUTH", options_.password})
                               : setup({"AUTH", options_.user, options_.password});
  }
  if (ok && options_.db != 0) ok = setup({"SELECT", std::to_string(options_.db)});
  if (!ok) {
    redisFree(c);
    return ok.error();
  }
  return c;
}

void RedisClient::give_back(redisContext* c) {
  if (c->err != 0) {
    redisFree(c);
    return;
  }
  std::lock_guard lock(mu_);
  idle_.push_back(c);
}

result<Reply> RedisClient::run(redisContext* c, const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  Reply reply;
  {
    SigpipeGuard guard;
    reply.reset(static_cast<redisReply*>(
        redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data())));
  }
  if (!reply) {
    if (c->err == 0) c->err = REDIS_ERR_OTHER;  // never reuse a context that lost a reply
    return make_error(errc::lock_timeout, "redis " + endpoint() + " failed: " + c->errstr);
  }
  if (reply->type == REDIS_REPLY_ERROR) {
    return make_error(errc::internal, "redis " + endpoint() + " error: " +
                                          std::string(reply->str, reply->len));
  }
  return reply;
}

result<Reply> RedisClient::command(const std::vector<std::string>& args) {
  BOOKING_TRY(auto c, borrow());
  auto r = run(c, args);
  give_back(c);
  return r;
}

result<Reply> RedisClient::eval(const std::string& script, const std::vector<std::string>& keys,
                                const std::vector<std::string>& args) {
  std::vector<std::string> cmd{"EVAL", script, std::to_string(keys.size())};
  cmd.insert(cmd.end(), keys.begin(), keys.end());
  cmd.insert(cmd.end(), args.begin(), args.end());
  // EVAL sends the script each time; Redis caches it by SHA1 after the first call, so the cost
  // over EVALSHA is only the bytes on loopback. It also survives a server restart (no NOSCRIPT).
  return command(cmd);
}

}  // namespace booking::detail
