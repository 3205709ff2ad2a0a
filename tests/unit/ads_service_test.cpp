// Service-level tests of AdsService against a scripted fake upstream (LWA
// and Ads answers queued separately, requests recorded) and a fake clock:
// plain data in and out, no HTTP, no sockets (tests/support/service_rig.hpp).
#include <doctest/doctest.h>

#include <boost/asio/io_context.hpp>

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "../support/service_rig.hpp"
#include "core/ads/request.hpp"
#include "core/refresh/scheduler.hpp"
#include "core/services/ads_service.hpp"
#include "core/upstream/call.hpp"

using namespace recgate;
namespace net = boost::asio;
using namespace std::chrono_literals;

namespace {

constexpr const char* kTokenUrl = "http://lwa.test/auth/o2/token";
constexpr const char* kAdsBase = "http://ads.test";

upstream::Result answer(int status, std::string body,
                        std::vector<std::pair<std::string, std::string>> headers = {}) {
  upstream::Result r;
  r.response.status = status;
  r.response.body = std::move(body);
  r.response.headers = std::move(headers);
  return r;
}

upstream::Result token(const std::string& access) {
  return answer(200, R"({"access_token":")" + access + R"(","token_type":"bearer","expires_in":3600})");
}

// LWA and Ads answers in two scripts; an unscripted call is a 599 the test
// sees in the counts (never a throw inside the service's coroutines).
class ScriptedUpstream final : public upstream::Upstream {
 public:
  std::deque<upstream::Result> lwa;
  std::deque<upstream::Result> ads;
  std::vector<upstream::Request> lwa_sent;
  std::vector<upstream::Request> ads_sent;

  net::awaitable<upstream::Result> request(upstream::Request req) override {
    const bool is_lwa = req.url == kTokenUrl;
    auto& script = is_lwa ? lwa : ads;
    (is_lwa ? lwa_sent : ads_sent).push_back(std::move(req));
    if (script.empty()) co_return answer(599, "unscripted");
    upstream::Result r = std::move(script.front());
    script.pop_front();
    co_return r;
  }
};

std::string header_of(const upstream::Request& r, const std::string& name) {
  for (const auto& [k, v] : r.headers)
    if (k == name) return v;
  return {};
}

using Result = std::optional<Expected<AdsAnswer>>;

net::awaitable<void> ask(AdsService* svc, std::shared_ptr<const ads::ProductRequest> pr, svc::RequestOptions o,
                         Result* out) {
  out->emplace(co_await svc->product_recommendations("main", std::move(pr), o));
}

struct Rig : rgtest::ServiceRig<AdsService, ScriptedUpstream> {
  Rig() : ServiceRig("rg-ads-svc") {
    cfg.ads.endpoint = kAdsBase;
    cfg.ads.token_endpoint = kTokenUrl;
    cfg.ads.accounts["main"] = AdsAccount{"NA", "amzn1.application-oa2-client.t", "client-secret", "Atzr|refresh", "1"};
    cfg.throttle.margin_ms = 0;
  }

  // Starts one request; the caller runs the rig until it is answered.
  void ask(const std::string& body, Result* out, const std::string& cache_control = "",
           std::optional<int> wait_s = std::nullopt) {
    auto valid = ads::validate_request(body, cfg.ads.max_asins);
    REQUIRE(valid);
    svc::RequestOptions o;
    o.directives = cache::parse_cache_control(cache_control);
    o.wait_s = wait_s;
    o.client = "test-client";
    o.request_id = "test";
    spawn(::ask(svc.get(), std::make_shared<const ads::ProductRequest>(std::move(*valid)), o, out));
  }
  Expected<AdsAnswer> one(const std::string& body, const std::string& cache_control = "") {
    Result r;
    ask(body, &r, cache_control);
    run_until([&] { return r.has_value(); });
    return std::move(*r);
  }
};

const std::string kBody = R"({"adAsins":["B09LJWZT6G"]})";
const std::string kOtherBody = R"({"adAsins":["B07XJ8C8F5"]})";

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("ads service: a 401 refreshes the LWA token once and retries with the new one") {
  Rig rig;
  rig.start();
  rig.up.lwa = {token("Atza|one"), token("Atza|two")};
  rig.up.ads = {answer(401, R"({"code":"UNAUTHORIZED"})"), answer(200, R"({"recommendations":[]})")};
  auto res = rig.one(kBody);
  REQUIRE(res);
  CHECK(res->entry->body() == R"({"recommendations":[]})");
  REQUIRE(rig.up.ads_sent.size() == 2);
  CHECK(header_of(rig.up.ads_sent[0], "Authorization") == "Bearer Atza|one");
  CHECK(header_of(rig.up.ads_sent[1], "Authorization") == "Bearer Atza|two");
  CHECK(rig.up.lwa_sent.size() == 2);
}

TEST_CASE("ads service: a second 401 is the client's 502, not a loop") {
  Rig rig;
  rig.start();
  rig.up.lwa = {token("Atza|one"), token("Atza|two")};
  rig.up.ads = {answer(401, R"({"code":"UNAUTHORIZED"})"), answer(401, R"({"code":"UNAUTHORIZED"})")};
  auto res = rig.one(kBody);
  REQUIRE_FALSE(res);
  CHECK(res.error().status == 502);
  CHECK(rig.up.ads_sent.size() == 2);
}

TEST_CASE("ads service: an upstream failure serves the stored answer, marked stale") {
  Rig rig;
  rig.start();
  rig.up.lwa = {token("Atza|one")};
  rig.up.ads = {answer(200, R"({"first":true})"), answer(500, R"({"code":"INTERNAL_ERROR"})")};
  auto miss = rig.one(kBody);
  REQUIRE(miss);
  CHECK(has(miss->cache.status, "fwd=miss"));
  rig.clock.now += 7'000;
  auto hit = rig.one(kBody);
  REQUIRE(hit);
  CHECK(has(hit->cache.status, "hit"));
  CHECK(hit->cache.age_s == 7);  // on the injected clock
  CHECK(rig.up.ads_sent.size() == 1);
  // no-cache forces the upstream call; its failure falls back to the stored answer.
  auto stale = rig.one(kBody, "no-cache");
  REQUIRE(stale);
  CHECK(stale->entry->body() == R"({"first":true})");
  CHECK(has(stale->cache.status, "stale"));
  CHECK(rig.up.ads_sent.size() == 2);
}

TEST_CASE("ads service: the TTL and the stale window run on the injected clock") {
  Rig rig;
  rig.cfg.ads.cache_ttl_s = 60;
  rig.cfg.ads.max_stale_s = 100;
  rig.start();
  rig.up.lwa = {token("Atza|one")};
  rig.up.ads = {answer(200, R"({"first":true})"), answer(500, "{}"), answer(500, "{}")};
  REQUIRE(rig.one(kBody));
  rig.clock.now += 61'000;  // expired, within max_stale_s: the failure is answered stale
  auto stale = rig.one(kBody);
  REQUIRE(stale);
  CHECK(has(stale->cache.status, "stale"));
  rig.clock.now += 100'000;  // beyond max_stale_s: the failure itself
  auto failed = rig.one(kBody);
  REQUIRE_FALSE(failed);
  CHECK(failed.error().status == 502);
  CHECK(rig.up.ads_sent.size() == 3);
}

TEST_CASE("ads service: identical concurrent requests make one upstream call") {
  Rig rig;
  rig.start();
  rig.up.lwa = {token("Atza|one")};
  rig.up.ads = {answer(200, R"({"shared":true})")};
  Result a, b, c;
  rig.ask(kBody, &a);
  rig.ask(kBody, &b);
  rig.ask(kBody, &c);
  rig.run_until([&] { return a && b && c; });
  CHECK(rig.up.ads_sent.size() == 1);
  CHECK(rig.up.lwa_sent.size() == 1);
  for (Result* x : {&a, &b, &c}) {
    REQUIRE(**x);
    CHECK((**x)->entry->body() == R"({"shared":true})");
  }
}

TEST_CASE("ads service: a 429 holds the bucket for Retry-After, the retry goes out only after it") {
  Rig rig;
  rig.start();
  rig.up.lwa = {token("Atza|one")};
  rig.up.ads = {answer(429, "", {{"Retry-After", "5"}}), answer(200, R"({"after":"backoff"})")};
  Result r;
  rig.ask(kBody, &r);
  rig.run_until([&] { return rig.up.ads_sent.size() == 1; });
  rig.poll();
  CHECK_FALSE(r);
  rig.advance(4'000ms);  // still held: nothing more is sent
  CHECK_FALSE(r);
  CHECK(rig.up.ads_sent.size() == 1);
  // Held 5 s, then the (adaptive, cut to 1/s) bucket refills its next token.
  rig.advance(2'500ms);
  rig.run_until([&] { return r.has_value(); });
  REQUIRE(*r);
  CHECK((*r)->entry->body() == R"({"after":"backoff"})");
  CHECK(rig.up.ads_sent.size() == 2);
}

TEST_CASE("ads service: a 429 whose Retry-After is beyond the client's wait is its 429, after one call") {
  Rig rig;
  rig.start();
  rig.up.lwa = {token("Atza|one")};
  rig.up.ads = {answer(429, "", {{"Retry-After", "5"}})};
  Result r;
  rig.ask(kBody, &r, "", 2);
  rig.run_until([&] { return r.has_value(); });
  REQUIRE_FALSE(*r);
  CHECK(r->error().status == 429);
  CHECK(has(r->error().detail, "answered 429"));
  CHECK(rig.up.ads_sent.size() == 1);
}

TEST_CASE("ads service: a request that missed just as the flight it would have joined ended reuses its answer") {
  Rig rig;
  rig.start();
  rig.up.lwa = {token("Atza|one")};
  rig.up.ads = {answer(200, R"({"leader":true})")};
  // The late request runs on its own executor: it looks in the cache (a miss,
  // from SQLite) and is then held, as a slow thread would be, while the
  // leader's whole flight - call, commit, memory index - ends.
  net::io_context late_io;
  Result late, leader;
  auto valid = ads::validate_request(kBody, 100);
  REQUIRE(valid);
  auto pr = std::make_shared<const ads::ProductRequest>(std::move(*valid));
  svc::RequestOptions o;
  net::co_spawn(late_io, ask(rig.svc.get(), pr, o, &late), net::detached);
  late_io.poll();  // its SQLite read is queued before anything the leader does
  rig.ask(kBody, &leader);
  rig.run_until([&] { return leader.has_value(); });
  REQUIRE(*leader);
  for (int i = 0; i < 5000 && !late; ++i) {
    late_io.restart();
    late_io.run_one_for(std::chrono::milliseconds(1));
    rig.poll();
  }
  REQUIRE(late);
  REQUIRE(*late);
  CHECK((*late)->entry->body() == R"({"leader":true})");
  CHECK(rig.up.ads_sent.size() == 1);
}

TEST_CASE("ads service: a joiner gets its own 429 at its own limit on the service clock while the leader's flight goes on") {
  Rig rig;
  rig.cfg.throttle.buckets["ads.ProductRecommendations"] = BucketConfig{1, 0.2};  // a token per 5 s
  rig.cfg.throttle.adaptive["ads.ProductRecommendations"].enabled = false;
  rig.start();
  rig.up.lwa = {token("Atza|one")};
  rig.up.ads = {answer(200, R"({"other":true})"), answer(200, R"({"leader":true})")};
  REQUIRE(rig.one(kOtherBody));  // spends the bucket's one token
  rig.run_until([&] { return rig.clock.armed() == 0; });  // that request's riders are gone
  Result leader, joiner;
  rig.ask(kBody, &leader);  // Prefer: wait defaults to throttle.max_wait_s (30 s)
  rig.run_until([&] { return rig.svc->stats().in_flight > 0 && rig.clock.armed() == 1; });
  rig.ask(kBody, &joiner, "", 2);  // Prefer: wait=2, and the next token is 5 s away
  rig.run_until([&] { return rig.clock.armed() == 2; });  // the joiner rides, timed on the fake clock
  rig.advance(1'999ms);
  CHECK_FALSE(joiner);
  rig.advance(1ms);  // the joiner's limit: it leaves, the flight stays queued for the leader
  REQUIRE(joiner);
  REQUIRE_FALSE(*joiner);
  CHECK(joiner->error().status == 429);
  CHECK_FALSE(leader);
  CHECK(rig.up.ads_sent.size() == 1);
  rig.advance(4'000ms);  // the next token
  rig.run_until([&] { return leader.has_value(); });
  REQUIRE(*leader);
  CHECK((*leader)->entry->body() == R"({"leader":true})");
  CHECK(rig.up.ads_sent.size() == 2);
}

// ---- [refresh] the Ads refresh source ----------------------------------------

namespace {

net::awaitable<void> due_into(refresh::Source* src, refresh::Tick t, std::optional<std::vector<refresh::Pending>>* out) {
  out->emplace(co_await src->due(t));
}

net::awaitable<void> refresh_into(refresh::Source* src, refresh::Pending p, std::optional<refresh::Outcome>* out) {
  out->emplace(co_await src->refresh(std::move(p)));
}

std::vector<refresh::Pending> due_now(Rig& rig, std::int64_t tick_ms = 1000) {
  std::optional<std::vector<refresh::Pending>> out;
  rig.spawn(due_into(&rig.svc->refresh_source(), refresh::Tick{rig.clock.now, tick_ms, 10}, &out));
  rig.run_until([&] { return out.has_value(); });
  return std::move(*out);
}

refresh::Outcome refresh_now(Rig& rig, refresh::Pending p) {
  std::optional<refresh::Outcome> out;
  rig.spawn(refresh_into(&rig.svc->refresh_source(), std::move(p), &out));
  rig.run_until([&] { return out.has_value(); });
  return *out;
}

}  // namespace

TEST_CASE("ads service refresh: a hot answer is due two ticks before its TTL ends, refetched with spare quota, then a refreshed hit") {
  Rig rig;
  rig.cfg.ads.cache_ttl_s = 60;
  rig.start();
  CHECK(std::string(rig.svc->refresh_source().api()) == "ads");
  rig.up.lwa = {token("Atza|one")};
  rig.up.ads = {answer(200, R"({"first":true})"), answer(200, R"({"second":true})")};
  REQUIRE(rig.one(kBody));
  rig.clock.now += 57'999;
  CHECK(due_now(rig).empty());  // 2 s (two 1-second ticks) before expires_at: not yet
  rig.clock.now += 1;
  auto due = due_now(rig);
  REQUIRE(due.size() == 1);
  CHECK(due[0].account == "main");
  CHECK(due[0].bucket == "ads.ProductRecommendations");
  CHECK(due[0].asks == 1);
  CHECK(refresh_now(rig, due[0]) == refresh::Outcome::refreshed);
  REQUIRE(rig.up.ads_sent.size() == 2);
  CHECK(rig.up.ads_sent[1].body == rig.up.ads_sent[0].body);  // the same request, rebuilt from its cache key
  CHECK(rig.up.lwa_sent.size() == 1);                          // the token was still good
  CHECK(due_now(rig).empty());  // fresh again

  rig.clock.now += 3'000;  // past the first answer's TTL: a hit on the refreshed one, not a miss
  auto hit = rig.one(kBody);
  REQUIRE(hit);
  CHECK(hit->cache.status == "recgate; hit; detail=refreshed");
  CHECK(hit->entry->body() == R"({"second":true})");
  CHECK(rig.up.ads_sent.size() == 2);
}

TEST_CASE("ads service refresh: no spare quota - refused before any call, the answer stays due") {
  Rig rig;
  rig.cfg.ads.cache_ttl_s = 60;
  rig.cfg.throttle.buckets["ads.ProductRecommendations"] = BucketConfig{2, 0.001};
  rig.start();
  rig.up.lwa = {token("Atza|one")};
  rig.up.ads = {answer(200, R"({"first":true})"), answer(200, R"({"other":true})")};
  REQUIRE(rig.one(kBody));
  REQUIRE(rig.one(kOtherBody));  // the bucket is now below a grant's floor + 1
  rig.clock.now += 58'000;
  auto due = due_now(rig);
  REQUIRE(due.size() == 2);
  CHECK(refresh_now(rig, due[0]) == refresh::Outcome::no_spare);
  CHECK(rig.up.ads_sent.size() == 2);
  CHECK(due_now(rig).size() == 2);
}

TEST_CASE("ads service refresh: nothing is hot with cache.refresh_ahead off, nor once refresh_hot_s has passed") {
  Rig off;
  off.cfg.cache.refresh_ahead = false;
  off.cfg.ads.cache_ttl_s = 60;
  off.start();
  off.up.lwa = {token("Atza|one")};
  off.up.ads = {answer(200, "{}")};
  REQUIRE(off.one(kBody));
  off.clock.now += 59'000;
  CHECK(due_now(off).empty());

  Rig cold;
  cold.cfg.cache.refresh_hot_s = 30;
  cold.cfg.ads.cache_ttl_s = 60;
  cold.start();
  cold.up.lwa = {token("Atza|one")};
  cold.up.ads = {answer(200, "{}")};
  REQUIRE(cold.one(kBody));
  cold.clock.now += 59'000;  // due by its TTL, but last asked 59 s ago
  CHECK(due_now(cold).empty());
}

TEST_CASE("ads service refresh: an access token to renew takes spare LWA quota first, refused, no Ads token is spent") {
  Rig rig;
  rig.cfg.ads.cache_ttl_s = 7200;  // outlives the 1-hour access token
  rig.cfg.cache.refresh_hot_s = 86400;
  rig.cfg.throttle.buckets["lwa.Token"] = BucketConfig{1, 0.001};  // never one above a grant's floor: no spare
  rig.start();
  rig.up.lwa = {token("Atza|one")};
  rig.up.ads = {answer(200, R"({"first":true})")};
  REQUIRE(rig.one(kBody));
  rig.clock.now += 7200'000 - 2'000;  // due; the token (3600 s, renewed 300 s early) is not usable
  auto ads_tokens = [&] {
    for (const auto& b : rig.throttler->status())
      if (b.operation == "ads.ProductRecommendations") return b.tokens;
    return -1.0;
  };
  const double before = ads_tokens();
  auto due = due_now(rig);
  REQUIRE(due.size() == 1);
  CHECK(refresh_now(rig, due[0]) == refresh::Outcome::no_spare);
  CHECK(rig.up.lwa_sent.size() == 1);
  CHECK(rig.up.ads_sent.size() == 1);
  CHECK(ads_tokens() == doctest::Approx(before));
}
