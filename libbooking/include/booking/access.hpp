// API tokens: who may do what. The rules of access (roles, how secrets are made and checked)
// live here; bookingd maps its routes onto them.
//
// A token is a random secret shown once, when it is created; storage keeps only its SHA-256.
// Roles: `admin` may do everything, `sales` (a trusted backend such as a shop or a payment
// provider) may hold on behalf of a user, confirm, cancel, and read and list bookings.
#pragma once

#include <booking/error.hpp>
#include <booking/time.hpp>
#include <chrono>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

namespace booking {

class EventRepository;

enum class Role { sales, admin };

std::string_view to_string(Role role) noexcept;
std::optional<Role> parse_role(std::string_view text) noexcept;

struct ApiToken {
  std::string name;  // [A-Za-z0-9._-]{1,64}, unique (a revoked token keeps its name)
  Role role = Role::sales;
  std::string hash;  // lowercase hex SHA-256 of the secret
  Instant created_at;
  std::optional<Instant> revoked_at;
};

struct IssuedToken {
  ApiToken token;
  std::string secret;  // "bk_" + 64 hex digits (256 random bits); never stored
};

// The lowercase hex SHA-256 of `secret`.
std::string hash_token_secret(std::string_view secret);

// Makes a token and stores its hash. validation_failed for a bad name, duplicate_key when the
// name is taken.
result<IssuedToken> create_token(EventRepository& repo, std::string_view name, Role role,
                                 Instant now);

// Checks bearer secrets against the tokens in storage. The token table is read at most once per
// `refresh`, so a revocation, or the first token ending open mode, reaches every process sharing
// the database within that time. Thread-safe.
class TokenVerifier {
 public:
  explicit TokenVerifier(EventRepository& repo,
                         std::chrono::milliseconds refresh = std::chrono::seconds(1));

  // The unrevoked token whose secret this is (compared in constant time); unauthorized for an
  // unknown or revoked secret. A storage error is answered as is: never an open door.
  result<ApiToken> verify(std::string_view secret);

  // Whether any unrevoked token exists.
  result<bool> any_tokens();

 private:
  // Runs `use` on a snapshot of the unrevoked tokens no older than refresh_.
  template <class F>
  auto with_tokens(F&& use) -> result<decltype(use(std::declval<const std::vector<ApiToken>&>()))>;

  EventRepository& repo_;
  std::chrono::milliseconds refresh_;
  std::shared_mutex mu_;  // guards the snapshot below: shared to read it, unique to renew it
  std::vector<ApiToken> active_;
  std::optional<std::chrono::steady_clock::time_point> read_at_;
};

}  // namespace booking
