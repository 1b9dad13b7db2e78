// Who is calling bookingd and what they may do: the HTTP side of booking/access.hpp.
#pragma once

#include <booking/access.hpp>
#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace booking::httpd {

// What a route needs (the permission table is the route table's third column).
enum class Need { anyone, sales, admin };

struct Caller {
  std::string address;            // the client: the peer, or X-Forwarded-For via a trusted proxy
  std::optional<ApiToken> token;  // the bearer token, verified
  bool open = false;              // open mode: no token exists and bookingd listens on loopback
  bool anonymous() const { return !token && !open; }
  bool has(Role role) const {
    return open || (token && (token->role == Role::admin || token->role == role));
  }
  // Whose idempotency keys these are.
  std::string scope() const { return token ? "token:" + token->name : "client:" + address; }
};

class AccessControl {
 public:
  // `tokens` may be null: nobody has a token, and callers are anonymous unless open mode is
  // allowed (a loopback listen without a trusted proxy).
  AccessControl(TokenVerifier* tokens, bool open_allowed, std::vector<std::string> trusted_proxies);

  // The caller: unauthorized for a malformed, unknown or revoked bearer token.
  result<Caller> identify(const std::string& peer, const std::string& authorization,
                          const std::string& forwarded_for);
  // unauthorized for an anonymous caller that needs a role, forbidden for a token without it.
  static result<void> permit(const Caller& caller, Need need);

  bool trusted(const std::string& address) const;
  const std::vector<std::string>& trusted_proxies() const { return proxies_; }

 private:
  std::string client_address(const std::string& peer, const std::string& forwarded_for) const;

  TokenVerifier* tokens_;
  bool open_allowed_;
  std::vector<std::string> proxies_;
};

// A token bucket per key (client address): `rate` per second, at most `burst` at once.
// Thread-safe; idle full buckets are forgotten, so memory stays bounded under many addresses.
class RateLimiter {
 public:
  RateLimiter(double rate, double burst) : rate_(rate), burst_(burst) {}
  // nullopt when the request may go ahead (a token was taken), else how long until it could.
  std::optional<std::chrono::milliseconds> take(const std::string& key);

 private:
  struct Bucket {
    double tokens;
    std::chrono::steady_clock::time_point last;
  };
  double rate_;
  double burst_;
  std::mutex mu_;
  std::unordered_map<std::string, Bucket> buckets_;
  std::chrono::steady_clock::time_point last_prune_{};
};

// `text` fit for one log line: control characters, DEL and bytes outside printable ASCII as
// \xHH, backslash as \\ (a request cannot forge a line or reach the terminal raw).
std::string log_safe(std::string_view text, std::size_t max = 512);

}  // namespace booking::httpd
