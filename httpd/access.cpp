#include "access.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cmath>

namespace booking::httpd {

namespace {
bool is_ip_address(const std::string& text) {
  unsigned char buf[16];
  return ::inet_pton(AF_INET, text.c_str(), buf) == 1 ||
         ::inet_pton(AF_INET6, text.c_str(), buf) == 1;
}

std::string trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return std::string(s);
}
}  // namespace

AccessControl::AccessControl(TokenVerifier* tokens, bool open_allowed,
                             std::vector<std::string> trusted_proxies)
    : tokens_(tokens), open_allowed_(open_allowed), proxies_(std::move(trusted_proxies)) {}

bool AccessControl::trusted(const std::string& address) const {
  return std::find(proxies_.begin(), proxies_.end(), address) != proxies_.end();
}

std::string AccessControl::client_address(const std::string& peer,
                                          const std::string& forwarded_for) const {
  if (forwarded_for.empty() || !trusted(peer)) return peer;
  // The rightmost address that is not a trusted proxy: what the last proxy of ours saw. What
  // is left of it was written by the client and proves nothing.
  std::string_view rest = forwarded_for;
  while (!rest.empty()) {
    const auto comma = rest.rfind(',');
    const std::string hop = trim(comma == std::string_view::npos ? rest : rest.substr(comma + 1));
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(0, comma);
    if (!is_ip_address(hop)) return peer;  // malformed: our proxy did not write this
    if (!trusted(hop)) return hop;
  }
  return peer;
}

result<Caller> AccessControl::identify(const std::string& peer, const std::string& authorization,
                                       const std::string& forwarded_for) {
  Caller caller;
  caller.address = client_address(peer, forwarded_for);
  if (!authorization.empty()) {
    constexpr std::string_view kScheme = "bearer ";
    std::string lower = authorization.substr(0, kScheme.size());
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    const std::string secret = trim(
        std::string_view(authorization).substr(std::min(authorization.size(), kScheme.size())));
    if (lower != kScheme || secret.empty()) {
      return make_error(errc::unauthorized, "the Authorization header must be 'Bearer TOKEN'");
    }
    if (!tokens_) return make_error(errc::unauthorized, "unknown or revoked token");
    BOOKING_TRY(caller.token, tokens_->verify(secret));
    return caller;
  }
  if (open_allowed_ && tokens_) {
    // Open until the first token exists; an unreadable token table keeps the door shut.
    auto any = tokens_->any_tokens();
    caller.open = any && !any.value();
  } else if (open_allowed_) {
    caller.open = true;
  }
  return caller;
}

result<void> AccessControl::permit(const Caller& caller, Need need) {
  if (need == Need::anyone) return boost::outcome_v2::success();
  const Role role = need == Need::admin ? Role::admin : Role::sales;
  if (caller.has(role)) return boost::outcome_v2::success();
  if (!caller.token) {
    return make_error(errc::unauthorized, std::string("this needs a token with the ") +
                                              std::string(to_string(role)) +
                                              " role (Authorization: Bearer TOKEN)");
  }
  return make_error(errc::forbidden, "token '" + caller.token->name + "' has the " +
                                         std::string(to_string(caller.token->role)) +
                                         " role; this needs " + std::string(to_string(role)));
}

std::optional<std::chrono::milliseconds> RateLimiter::take(const std::string& key) {
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(mu_);
  if (buckets_.size() > 100'000 && now - last_prune_ > std::chrono::seconds(1)) {
    // Forget buckets that have refilled: they are as good as new ones. At most once a second,
    // so that a flood from many addresses does not make every request scan the table.
    last_prune_ = now;
    std::erase_if(buckets_, [&](const auto& kv) {
      const double secs = std::chrono::duration<double>(now - kv.second.last).count();
      return kv.second.tokens + secs * rate_ >= burst_;
    });
  }
  auto [it, fresh] = buckets_.try_emplace(key, Bucket{burst_, now});
  Bucket& b = it->second;
  if (!fresh) {
    const double secs = std::chrono::duration<double>(now - b.last).count();
    b.tokens = std::min(burst_, b.tokens + secs * rate_);
    b.last = now;
  }
  if (b.tokens >= 1.0) {
    b.tokens -= 1.0;
    return std::nullopt;
  }
  const double wait_s = (1.0 - b.tokens) / rate_;
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::ceil(wait_s * 1000)));
}

std::string log_safe(std::string_view text, std::size_t max) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(std::min(text.size(), max) + 8);
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (out.size() >= max) {
      out += "...";
      break;
    }
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '\\') {
      out += "\\\\";
    } else if (c < 0x20 || c >= 0x7f) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

}  // namespace booking::httpd
