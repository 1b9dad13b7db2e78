#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <booking/access.hpp>
#include <booking/event_repository.hpp>

#include "core/text.hpp"

namespace booking {

namespace {
bool is_token_name(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (unsigned char c : name) {
    if (!std::isalnum(c) && c != '.' && c != '_' && c != '-') return false;
  }
  return true;
}
}  // namespace

std::string_view to_string(Role role) noexcept { return role == Role::admin ? "admin" : "sales"; }

std::optional<Role> parse_role(std::string_view text) noexcept {
  if (text == "admin") return Role::admin;
  if (text == "sales") return Role::sales;
  return std::nullopt;
}

std::string hash_token_secret(std::string_view secret) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(secret.data(), secret.size(), digest, &len, EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("SHA-256 failed");  // only on allocation failure inside OpenSSL
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 0xF];
  }
  return out;
}

result<IssuedToken> create_token(EventRepository& repo, std::string_view name, Role role,
                                 Instant now) {
  if (!is_token_name(name)) {
    return make_error(errc::validation_failed, "invalid token name",
                      {{"name", "must match [A-Za-z0-9._-]{1,64}"}});
  }
  IssuedToken issued;
  issued.secret = "bk_" + detail::random_hex128() + detail::random_hex128();
  issued.token.name = std::string(name);
  issued.token.role = role;
  issued.token.hash = hash_token_secret(issued.secret);
  issued.token.created_at = now;
  BOOKING_TRY(repo.insert_token(issued.token));
  return issued;
}

TokenVerifier::TokenVerifier(EventRepository& repo, std::chrono::milliseconds refresh)
    : repo_(repo), refresh_(refresh) {}

template <class F>
auto TokenVerifier::with_tokens(F&& use)
    -> result<decltype(use(std::declval<const std::vector<ApiToken>&>()))> {
  const auto fresh = [&] {
    return read_at_ && std::chrono::steady_clock::now() - *read_at_ < refresh_;
  };
  {
    std::shared_lock lock(mu_);  // every request: readers do not wait for each other
    if (fresh()) return use(active_);
  }
  std::unique_lock lock(mu_);
  if (!fresh()) {  // one caller renews; the others then find it fresh
    BOOKING_TRY(auto all, repo_.list_tokens());
    active_.clear();
    for (auto& t : all) {
      if (!t.revoked_at) active_.push_back(std::move(t));
    }
    read_at_ = std::chrono::steady_clock::now();
  }
  return use(active_);
}

result<ApiToken> TokenVerifier::verify(std::string_view secret) {
  const std::string hash = hash_token_secret(secret);
  BOOKING_TRY(auto found, with_tokens([&](const std::vector<ApiToken>& tokens) {
                // Every stored hash is compared, each in constant time: the answer's timing says
                // nothing about how close a guess came, or which token it resembled.
                std::optional<ApiToken> match;
                for (const ApiToken& t : tokens) {
                  if (t.hash.size() == hash.size() &&
                      CRYPTO_memcmp(t.hash.data(), hash.data(), hash.size()) == 0) {
                    match = t;
                  }
                }
                return match;
              }));
  if (!found) return make_error(errc::unauthorized, "unknown or revoked token");
  return std::move(*found);
}

result<bool> TokenVerifier::any_tokens() {
  return with_tokens([](const std::vector<ApiToken>& tokens) { return !tokens.empty(); });
}

}  // namespace booking
