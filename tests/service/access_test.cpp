// The library's rules of access, on every storage: API tokens, scoped and expiring idempotency
// keys, the limit on what one anonymous client may hold, and who may cancel a paid booking.
#include "process.hpp"
#include "support.hpp"

using namespace booking;
using namespace booking::test;
using namespace std::chrono_literals;

namespace {
HoldRequest req(const std::string& tier, std::int64_t qty) {
  HoldRequest r;
  r.event_key = "Acc";
  r.lines = {{tier, qty}};
  return r;
}
}  // namespace

TEMPLATE_TEST_CASE("tokens are stored as hashes, listed, and refused once revoked", "[access]",
                   ALL_BACKENDS) {
  TestType b;
  TokenVerifier verifier(*b.repo, 0ms);  // re-read every time: revocation is seen at once
  CHECK_FALSE(verifier.any_tokens().value());
  auto shop = create_token(*b.repo, "shop", Role::sales, kT0);
  REQUIRE(shop);
  const std::string secret = shop.value().secret;
  CHECK(secret.starts_with("bk_"));
  CHECK(secret.size() == 3 + 64);
  CHECK(verifier.any_tokens().value());

  auto listed = b.repo->list_tokens().value();
  REQUIRE(listed.size() == 1);
  CHECK(listed[0].name == "shop");
  CHECK(listed[0].role == Role::sales);
  CHECK(listed[0].hash == hash_token_secret(secret));
  CHECK(listed[0].hash.find(secret.substr(3, 16)) == std::string::npos);  // not the secret
  CHECK(listed[0].created_at == kT0);
  CHECK_FALSE(listed[0].revoked_at);

  auto ok = verifier.verify(secret);
  REQUIRE(ok);
  CHECK(ok.value().name == "shop");
  CHECK(verifier.verify(secret + "x").error().code == errc::unauthorized);
  CHECK(verifier.verify("").error().code == errc::unauthorized);

  CHECK(create_token(*b.repo, "shop", Role::admin, kT0).error().code == errc::duplicate_key);
  CHECK(create_token(*b.repo, "no spaces", Role::admin, kT0).error().code ==
        errc::validation_failed);

  REQUIRE(b.repo->revoke_token("shop", kT0 + 1s));
  CHECK(b.repo->revoke_token("shop", kT0 + 2s).error().code == errc::not_found);
  CHECK(verifier.verify(secret).error().code == errc::unauthorized);
  CHECK_FALSE(verifier.any_tokens().value());
  CHECK(b.repo->list_tokens().value()[0].revoked_at == kT0 + 1s);
}

TEST_CASE("a verifier re-reads the tokens at most once per refresh interval", "[access]") {
  auto repo = make_memory_repository();
  TokenVerifier verifier(*repo, 1h);
  CHECK_FALSE(verifier.any_tokens().value());
  REQUIRE(create_token(*repo, "late", Role::admin, kT0));
  CHECK_FALSE(verifier.any_tokens().value());  // still the snapshot of the first read
}

TEMPLATE_TEST_CASE("idempotency keys are scoped to whoever sent them and expire", "[access]",
                   ALL_BACKENDS) {
  TestType b;
  Fixture f(b.repo);
  REQUIRE(f.service.create_event(sample_event("Acc", {{"gold", 100}})));
  auto a = req("gold-Acc", 1);
  a.idempotency_key = "k1";
  a.idempotency_scope = "client:127.0.0.2";
  auto first = f.service.hold(a).value();
  CHECK(f.service.hold(a).value().id == first.id);  // a repeat is a replay

  auto stranger = a;
  stranger.idempotency_scope = "client:127.0.0.3";
  auto other = f.service.hold(stranger);
  REQUIRE(other);
  CHECK(other.value().id != first.id);  // never someone else's booking

  // 24 h later the key is free again: a new request under it is a new booking.
  f.clock.advance(24h);
  auto later = f.service.hold(a);
  REQUIRE(later);
  CHECK(later.value().id != first.id);
  CHECK(f.repo->get_booking(first.id).value().status == BookingStatus::held);  // untouched

  // The sweeper's expire_due purges expired keys.
  auto c = req("gold-Acc", 1);
  c.idempotency_key = "k2";
  auto kept = f.service.hold(c).value();
  CHECK(f.repo->find_idempotency_key("k2").value().has_value());
  f.clock.advance(24h + 1ms);
  REQUIRE(f.service.expire_due());
  CHECK_FALSE(f.repo->find_idempotency_key("k2").value().has_value());
  CHECK(f.repo->get_booking(kept.id).value().status == BookingStatus::expired);
  require_conserved(*f.repo, "Acc");
}

TEMPLATE_TEST_CASE("one anonymous client holds at most max_held_by_client tickets at once",
                   "[access]", ALL_BACKENDS) {
  TestType b;
  Fixture f(b.repo);
  REQUIRE(f.service.create_event(sample_event("Acc", {{"gold", 100}})));
  auto from = [](const std::string& client, std::int64_t qty) {
    auto r = req("gold-Acc", qty);
    r.client = client;
    r.max_held_by_client = 10;
    return r;
  };
  auto h1 = f.service.hold(from("client:a", 4)).value();
  auto h2 = f.service.hold(from("client:a", 6)).value();
  auto refused = f.service.hold(from("client:a", 1));
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == errc::rate_limited);
  CHECK(refused.error().details.at("held").as_int64() == 10);
  CHECK(f.service.hold(from("client:b", 10)));  // another client is unaffected
  // What the client paid for or cancelled no longer counts.
  REQUIRE(f.service.confirm(h1.id, Payment{"card", "r1"}));
  CHECK(f.service.hold(from("client:a", 4)));
  REQUIRE(f.service.cancel(h2.id));
  CHECK(f.service.hold(from("client:a", 6)));
  CHECK(f.service.hold(from("client:a", 1)).error().code == errc::rate_limited);
  require_conserved(*f.repo, "Acc");
}

TEMPLATE_TEST_CASE("a held-only cancel refuses a paid booking and leaves it paid", "[access]",
                   ALL_BACKENDS) {
  TestType b;
  Fixture f(b.repo);
  REQUIRE(f.service.create_event(sample_event("Acc", {{"gold", 10}})));
  auto held = f.service.hold(req("gold-Acc", 2)).value();
  CHECK(f.service.cancel(held.id, CancelScope::held_only).value().status ==
        BookingStatus::cancelled);
  auto paid = f.service.hold(req("gold-Acc", 3)).value();
  REQUIRE(f.service.confirm(paid.id, Payment{"card", "r"}));
  auto refused = f.service.cancel(paid.id, CancelScope::held_only);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == errc::forbidden);
  CHECK(f.repo->get_booking(paid.id).value().status == BookingStatus::confirmed);
  CHECK(f.repo->get_event("Acc").value().tiers[0].stock == TierStock{10, 7, 0, 3});
}

TEMPLATE_TEST_CASE("an anonymous client stands for the user of a maxPerUser tier", "[access]",
                   ALL_BACKENDS) {
  TestType b;
  Fixture f(b.repo);
  Event e = sample_event("Acc", {{"gold", 100}});
  e.tiers[0].max_per_user = 2;
  REQUIRE(f.service.create_event(e));
  auto r = req("gold-Acc", 2);
  CHECK(f.service.hold(r).error().code == errc::validation_failed);  // nobody to count
  r.client = "client:127.0.0.2";
  auto held = f.service.hold(r);
  REQUIRE(held);
  CHECK(held.value().user_id == "client:127.0.0.2");
  CHECK(f.service.hold(r).error().code == errc::per_user_limit);
}
