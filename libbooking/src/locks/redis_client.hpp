// A small pool of hiredis 0.14 connections to one Redis server.
//
// Each command borrows a connection, so a connection is used by one thread at a time. After any
// I/O error the connection is freed, never reused: hiredis contexts are dead after an error, and
// redisReconnect in 0.14 drops the command timeout (hiredis #593), after which a silent server
// blocks forever. A new connection gets its connect and command timeouts, AUTH and SELECT.
// Thread-safe.
#pragma once

#include <booking/lock_provider.hpp>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

struct redisContext;
struct redisReply;

namespace booking::detail {

struct ReplyDeleter {
  void operator()(redisReply* r) const noexcept;
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

class RedisClient {
 public:
  explicit RedisClient(RedisLockOptions options);
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // Runs one command. lock_timeout (naming host:port) when the server cannot be reached or
  // answers too slowly; internal for an error reply.
  result<Reply> command(const std::vector<std::string>& args);

  // Runs a Lua script (EVAL; the server caches it by SHA1 after the first call).
  result<Reply> eval(const std::string& script, const std::vector<std::string>& keys,
                     const std::vector<std::string>& args);

  std::string endpoint() const;

 private:
  result<redisContext*> borrow();
  void give_back(redisContext* c);
  result<Reply> run(redisContext* c, const std::vector<std::string>& args);

  RedisLockOptions options_;
  std::mutex mu_;  // guards idle_
  std::vector<redisContext*> idle_;
};

}  // namespace booking::detail
