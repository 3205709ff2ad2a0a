// Ads product recommendations service (see ads_service.hpp). Request flow:
// account -> Content-Type -> body validation -> (no cursor) TTL cache hit, or
// a coalesced fetch with stale fallback; (cursor) a direct fetch, never
// stored -> upstream body unchanged with Cache-Status, Age and ETag. Every
// upstream call goes through call_ads: ads bucket -> access token (coalesced
// LWA refresh per account) -> HTTP; 429 retried within the client's wait,
// one 401 triggers one refresh and one retry.
//
// g++ 12 coroutine rules kept here: no closures or braced lists built inside
// co_await expressions or coroutine bodies (named locals, helpers instead);
// coroutines are free functions taking their state by value.
#include "core/services/ads_service.hpp"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "core/ads/lwa.hpp"
#include "core/ads/repository.hpp"
#include "core/ads/request.hpp"
#include "core/cache/index.hpp"
#include "core/cache/policy.hpp"
#include "core/cache/retention.hpp"
#include "core/coalesce.hpp"
#include "core/errors.hpp"
#include "core/log.hpp"
#include "core/metrics.hpp"
#include "core/redis/lease.hpp"
#include "core/redis/shared_cache.hpp"
#include "core/refresh/scheduler.hpp"
#include "core/refresh/source_kit.hpp"
#include "core/services/common.hpp"
#include "core/store.hpp"
#include "core/throttle/throttler.hpp"
#include "core/upstream/call.hpp"

namespace recgate {

namespace net = boost::asio;
using net::awaitable;
using svc::QuotaWait;

namespace {

using svc::iso_seconds;

constexpr const char* kAdsBucket = "ads.ProductRecommendations";
constexpr const char* kLwaBucket = "lwa.Token";

struct Token {
  std::string access_token;
  ads::TokenTimes times;
};
using TokenPtr = std::shared_ptr<const Token>;

// ---- metrics and logs (plain functions: braced label lists stay out of coroutines)

void count_refresh(const std::string& account, const std::string& result) {
  Metrics::instance()
      .counter("recgate_token_refreshes_total", "LWA access token refreshes, by account and result.",
               {{"account", account}, {"result", result}})
      .inc();
}

void log_token_refreshed(const std::string& account, const ads::TokenTimes& t) {
  log_info("lwa token refreshed", {{"account", account}, {"expires_at", iso_seconds(t.expires_at_ms)},
                                   {"lifetime_s", (t.expires_at_ms - t.obtained_at_ms) / 1000}});
}

void log_token_failed(const std::string& account, const std::string& code, int status) {
  log_warn("lwa token refresh failed", {{"account", account}, {"error", code}, {"status", status}});
}

void log_stale(const std::string& request_id, const std::string& account, const std::string& reason) {
  log_warn("serving stale", {{"request_id", request_id}, {"api", "ads"}, {"account", account}, {"reason", reason}});
}

// ---- problems ------------------------------------------------------------

Problem unknown_account(const std::string& name, const Config& cfg) {
  return svc::unknown_account("Ads", name, cfg.ads.accounts);
}

// Removes any configured secret from text that came from upstream.
std::string scrub(std::string text, const AdsAccount& acc) {
  for (const std::string* secret : {&acc.client_secret, &acc.refresh_token}) {
    if (secret->empty()) continue;
    for (auto pos = text.find(*secret); pos != std::string::npos; pos = text.find(*secret, pos))
      text.replace(pos, secret->size(), "***");
  }
  return text;
}

Problem lwa_problem(const std::string& account, const AdsAccount& acc, const ads::LwaError& e) {
  const std::string desc = e.description.empty() ? "" : ": " + scrub(e.description, acc);
  std::string detail;
  if (e.error == "invalid_grant")
    detail = "Login with Amazon rejected the refresh token of Ads account \"" + account + "\" (invalid_grant" + desc +
             "); re-authorize the account and update ads.accounts." + account + ".refresh_token";
  else if (e.error == "invalid_client" || e.error == "unauthorized_client")
    detail = "Login with Amazon rejected the client credentials of Ads account \"" + account + "\" (" + e.error +
             desc + "); check ads.accounts." + account + ".client_id and client_secret";
  else
    detail = "Login with Amazon refused an access token for Ads account \"" + account + "\" (HTTP " +
             std::to_string(e.status) + ", " + e.error + desc + ")";
  Problem p = to_problem(Error::lwa_error, detail);
  p.extensions.emplace_back("upstreamCode", e.error);
  return p;
}

Problem ads_problem(int status, const std::string& body, const AdsAccount& acc) {
  auto err = ads::parse_upstream_error(body);
  const std::string code = err && !err->code.empty() ? err->code : "HTTP" + std::to_string(status);
  const std::string details = err ? scrub(err->details, acc) : std::string();
  Problem p = to_problem(Error::upstream_error,
                         "the Ads API answered HTTP " + std::to_string(status) + " " + code +
                               (details.empty() ? "" : ": " + details));
  p.extensions.emplace_back("upstreamCode", code);
  p.extensions.emplace_back("upstreamStatus", std::to_string(status));
  return p;
}


}  // namespace

struct AdsService::Impl {
  const Config& cfg;
  Store& store;
  upstream::Upstream& client;
  Throttler& throttler;
  net::any_io_executor ex;
  const svc::Clock& clock;
  cache::PolicyConfig policy;
  cache::Index index;
  Coalescer<Expected<cache::EntryPtr>> answer_flights;
  Coalescer<Expected<TokenPtr>> token_flights;
  mutable std::mutex token_mu;
  std::unordered_map<std::string, TokenPtr> tokens;  // by account
  // [scale] set by share_through when redis.url is configured; null: single process.
  redis::SharedCache* shared = nullptr;
  redis::Lease* lease = nullptr;
  // [refresh] answers asked for within cache.refresh_hot_s, and the source
  // the scheduler asks (see the end of this file).
  refresh::Asks asks;
  std::unique_ptr<refresh::Source> refresher;

  Impl(const Config& c, Store& st, upstream::Upstream& cl, Throttler& th, net::any_io_executor e,
       const svc::Clock& k)
      : cfg(c), store(st), client(cl), throttler(th), ex(e), clock(k),
        policy{c.mws.check_interval_s, c.mws.listing_quality_ttl_s, c.ads.max_stale_s},
        index(c.cache.memory_entries, c.cache.memory_bytes), answer_flights(e, k), token_flights(e, k),
        asks(c.cache.refresh_ahead, c.cache.memory_entries, std::int64_t{c.cache.refresh_hot_s} * 1000) {}

  // The account's token if it may still be handed out at now.
  TokenPtr usable_token(const std::string& account, std::int64_t now) const {
    std::lock_guard lk(token_mu);
    auto it = tokens.find(account);
    if (it == tokens.end() || !ads::token_usable(it->second->times, now, cfg.ads.token_refresh_margin_s))
      return nullptr;
    return it->second;
  }

  // LWA refusals that retrying cannot fix, by account, until the time given:
  // a revoked refresh token costs one LWA call per hold, not one per request.
  std::unordered_map<std::string, std::pair<std::int64_t, Problem>> rejections;

  std::optional<Problem> held_rejection(const std::string& account, std::int64_t now) const {
    std::lock_guard lk(token_mu);
    auto it = rejections.find(account);
    if (it == rejections.end() || it->second.first <= now) return std::nullopt;
    return it->second.second;
  }

  void hold_rejection(const std::string& account, const Problem& p, std::int64_t until) {
    std::lock_guard lk(token_mu);
    rejections[account] = {until, p};
  }

  // Forgets the account's token if it is still `rejected` (a 401 came back).
  void invalidate(const std::string& account, const std::string& rejected) {
    std::lock_guard lk(token_mu);
    auto it = tokens.find(account);
    if (it != tokens.end() && it->second->access_token == rejected) tokens.erase(it);
  }

  void keep_token(const std::string& account, TokenPtr t) {
    {
      std::lock_guard lk(token_mu);
      tokens[account] = t;
    }
    store.post([account, t](Db& db) {
      ads::repo::save_token(db, ads::repo::TokenRow{account, t->access_token, t->times.expires_at_ms,
                                                    t->times.obtained_at_ms});
    });
  }

  std::string token_url(const AdsAccount& acc) const {
    return cfg.ads.token_endpoint.empty() ? ads::lwa_token_url(acc.region) : cfg.ads.token_endpoint;
  }

  std::string ads_url(const AdsAccount& acc) const {
    return svc::base_url(cfg.ads.endpoint, ads::regional_host(acc.region)) + std::string(ads::kPath);
  }
};

namespace {

using Impl = AdsService::Impl;

// ---- LWA -----------------------------------------------------------------

upstream::Request token_request(const Impl& s, const AdsAccount& acc) {
  upstream::Request req;
  req.method = "POST";
  req.url = s.token_url(acc);
  req.headers.emplace_back("Content-Type", std::string(ads::kFormMediaType));
  req.headers.emplace_back("Accept", "application/json");
  req.body = ads::refresh_form_body(acc.client_id, acc.client_secret, acc.refresh_token);
  return req;
}

// How long an LWA refusal that retrying cannot fix is answered from memory.
// It heals only when someone re-authorizes the account or fixes its client
// credentials; one call per 5 minutes notices that without flooding LWA.
constexpr std::int64_t kLwaRejectionHoldMs = 300'000;

// invalid_grant: the refresh token is revoked, expired or another client's;
// invalid_client / unauthorized_client: the client credentials are wrong.
bool lwa_refusal_is_final(const std::string& error) {
  return error == "invalid_grant" || error == "invalid_client" || error == "unauthorized_client";
}

// Amazon throttles with 429, and marks its dynamic-limit throttles with
// amazon-advertising-api-throttled: true (often without Retry-After).
bool upstream_throttled(const upstream::Response& res) {
  return res.status == 429 || res.header("amazon-advertising-api-throttled") == "true";
}

// One LWA token refresh for upstream_call: 429 / throttled retried; a refusal
// is counted, logged (without secrets) and, when final, held.
class LwaExchange final : public upstream::Exchange {
 public:
  LwaExchange(Impl& s, const std::string& account, const AdsAccount& acc) : s_(s), account_(account), acc_(acc) {}

  awaitable<Expected<upstream::Request>> build(int) override { co_return token_request(s_, acc_); }

  upstream::Verdict classify(const upstream::Response& res) override {
    if (upstream_throttled(res)) return upstream::Verdict::throttled;
    parsed_ = ads::parse_token_response(res.status, res.body);
    return parsed_.token ? upstream::Verdict::success : upstream::Verdict::failure;
  }

  Problem failure(const upstream::Response& res) override {
    count_refresh(account_, res.status >= 500 ? "error" : "rejected");
    log_token_failed(account_, parsed_.error.error, res.status);
    Problem p = lwa_problem(account_, acc_, parsed_.error);
    if (lwa_refusal_is_final(parsed_.error.error)) s_.hold_rejection(account_, p, s_.clock.now_ms() + kLwaRejectionHoldMs);
    return p;
  }

  Problem transport_failed(const upstream::Result& r) override {
    count_refresh(account_, "error");
    return upstream::Exchange::transport_failed(r);
  }

  Problem quota_refused(Problem p, bool) override {
    // [refresh] A refresh ahead finding no spare quota is not a throttle.
    if (refresh::outcome_of(p) != refresh::Outcome::no_spare) count_refresh(account_, "throttled");
    return p;
  }

  std::string what() const override { return "the Login with Amazon token endpoint"; }

  ads::TokenParse& parsed() { return parsed_; }

 private:
  Impl& s_;
  const std::string& account_;
  const AdsAccount& acc_;
  ads::TokenParse parsed_;
};

// One refresh for the account, made by whichever caller started the flight.
awaitable<Expected<TokenPtr>> refresh_token(Impl* s, std::string account, QuotaWait wait, std::string rid) {
  const AdsAccount& acc = s->cfg.ads.accounts.at(account);
  if (auto t = s->usable_token(account, s->clock.now_ms())) co_return t;  // refreshed just before this flight
  if (auto held = s->held_rejection(account, s->clock.now_ms())) co_return std::move(*held);
  LwaExchange ex(*s, account, acc);
  const upstream::CallSite site{"lwa", "Token", account, kLwaBucket, rid};
  auto r = co_await upstream::upstream_call(s->throttler, s->client, site, wait, ex);
  if (!r) co_return r.error();
  auto token = std::make_shared<Token>();
  token->access_token = std::move(ex.parsed().token->access_token);
  token->times = ads::token_times(s->clock.now_ms(), ex.parsed().token->expires_in_s);
  s->keep_token(account, token);
  count_refresh(account, "ok");
  log_token_refreshed(account, token->times);
  co_return TokenPtr(token);
}

// `wait` is the answer flight's: its riders' limits bound the token's quota wait too.
awaitable<Expected<TokenPtr>> get_token(Impl* s, std::string account, QuotaWait wait, std::string rid) {
  if (auto t = s->usable_token(account, s->clock.now_ms())) co_return t;
  // [refresh] A refresh ahead never leads a flight clients could join: its
  // spare-quota call may be refused, and no client may ride on that.
  if (wait.mode == upstream::QuotaMode::spare)
    co_return co_await refresh_token(s, std::move(account), std::move(wait), std::move(rid));
  Coalescer<Expected<TokenPtr>>::Work work = [s, account, leader = svc::leader_of(wait), rid](WaitLimitPtr flight) {
    return refresh_token(s, account, svc::flight_quota(leader, std::move(flight)), rid);
  };
  co_return co_await svc::in_flight(s->token_flights, account, work, wait.limit, "lwa.token");
}

// ---- the one Ads call site -----------------------------------------------

// A validated request, built once per client request and shared by pointer
// with the flight and its retries: a coalesced or queued request copies no
// ASIN list (adAsins is also capped by ads.max_asins).
using RequestPtr = std::shared_ptr<const ads::ProductRequest>;

upstream::Request ads_request(const Impl& s, const AdsAccount& acc, const ads::ProductRequest& pr,
                              const std::string& body, const std::string& token) {
  upstream::Request req;
  req.method = "POST";
  req.url = s.ads_url(acc);
  req.headers.emplace_back("Content-Type", std::string(ads::kRequestMediaType));
  req.headers.emplace_back("Accept", std::string(ads::accept_for(pr.group_by)));
  req.headers.emplace_back("Amazon-Advertising-API-ClientId", acc.client_id);
  req.headers.emplace_back("Amazon-Advertising-API-Scope", acc.profile_id);
  req.headers.emplace_back("Authorization", "Bearer " + token);
  req.body = body;
  return req;
}

Problem throttled_beyond_wait(Problem p) {
  p.detail = "the Ads API answered 429 (rate-limited) and a retry would exceed the client's wait; " + p.detail;
  return p;
}

// One Ads call for upstream_call: each attempt takes an access token (a
// coalesced LWA refresh per account); a 429 is retried within the wait (the
// throttler holds the bucket for Retry-After or an exponential backoff), a
// 401 once after forgetting the rejected token.
class AdsExchange final : public upstream::Exchange {
 public:
  AdsExchange(Impl& s, const std::string& account, const AdsAccount& acc, const ads::ProductRequest& pr,
              const QuotaWait& wait, const std::string& rid)
      : s_(s), account_(account), acc_(acc), pr_(pr), body_(ads::upstream_body(pr)), wait_(wait), rid_(rid) {}

  awaitable<Expected<upstream::Request>> build(int) override {
    auto token = co_await get_token(&s_, account_, wait_, rid_);
    if (!token) co_return token.error();
    used_ = (*token)->access_token;
    co_return ads_request(s_, acc_, pr_, body_, used_);
  }

  upstream::Verdict classify(const upstream::Response& res) override {
    if (res.status == 200) return upstream::Verdict::success;
    if (res.status == 401 && !auth_retried_) {
      auth_retried_ = true;
      s_.invalidate(account_, used_);
      return upstream::Verdict::retry;
    }
    if (upstream_throttled(res)) return upstream::Verdict::throttled;
    return upstream::Verdict::failure;
  }

  Problem failure(const upstream::Response& res) override { return ads_problem(res.status, res.body, acc_); }

  Problem quota_refused(Problem p, bool was_throttled) override {
    return was_throttled ? throttled_beyond_wait(std::move(p)) : p;
  }

  std::string what() const override { return "the Ads API"; }

 private:
  Impl& s_;
  const std::string& account_;
  const AdsAccount& acc_;
  const ads::ProductRequest& pr_;
  const std::string body_;
  const QuotaWait& wait_;
  const std::string& rid_;
  std::string used_;  // the access token of the last attempt
  bool auth_retried_ = false;
};

awaitable<Expected<std::string>> call_ads(Impl* s, std::string account, RequestPtr pr, QuotaWait wait,
                                          std::string rid) {
  AdsExchange ex(*s, account, s->cfg.ads.accounts.at(account), *pr, wait, rid);
  const upstream::CallSite site{"ads", "ProductRecommendations", account, kAdsBucket, rid};
  auto r = co_await upstream::upstream_call(s->throttler, s->client, site, wait, ex);
  if (!r) co_return r.error();
  if (!ads::is_json_document(r->body)) {
    Problem p = to_problem(Error::upstream_error, "the Ads API answered 200 with a body that is not JSON");
    p.extensions.emplace_back("upstreamCode", "invalid_response");
    co_return p;
  }
  co_return std::move(r->body);
}

// ---- answers and the cache -------------------------------------------------

cache::MutableEntryPtr make_entry(std::string body, std::int64_t now, std::int64_t ttl_s, const std::string& key) {
  cache::EntryData d;
  d.fetched_at_ms = now;
  d.expires_at_ms = now + ttl_s * 1000;
  d.body = std::move(body);
  return cache::make_entry(d, key);
}

// Commits the answer before it is sent (an answer that says "stored" must
// survive kill -9); true when it is in SQLite.
awaitable<bool> commit_answer(Impl* s, std::string account, std::string request_key, cache::EntryPtr e) {
  const std::uint64_t max_db_bytes = s->cfg.cache.max_db_bytes;
  auto write = [&](Db& db) {
    ads::repo::save_answer(db, account, request_key, *e);
    cache::bound_after_write(db, max_db_bytes);
  };
  co_return co_await svc::commit_before_answer(s->store, write, "ads answer");
}

// [scale] The shared tier: the answer another replica stored, or nullptr.
awaitable<cache::MutableEntryPtr> shared_answer(Impl* s, std::string key) {
  if (!s->shared) co_return nullptr;
  const std::string kind = "ads.answer";
  co_return co_await s->shared->get(kind, key);
}

// [scale] Keeps an answer found in the shared tier locally: SQLite, then
// memory. After a local miss (`replace` false) a fetch may have stored a newer
// one meanwhile: that one is kept. In a flight it replaces the expired one.
awaitable<cache::EntryPtr> adopt_answer(Impl* s, std::string key, std::string account, std::string request_key,
                                        cache::MutableEntryPtr e, bool replace) {
  const cache::EntryPtr written = e;
  e->stored = co_await commit_answer(s, account, request_key, written);
  if (!replace) co_return s->index.put_if_absent(key, e);
  s->index.put(key, e);
  co_return cache::EntryPtr(e);
}

// [scale] Writes a fresh answer to the shared tier for its TTL plus the stale
// window; awaited by the flight so it is in Redis before the lease is released.
awaitable<void> share_answer(Impl* s, std::string key, cache::EntryPtr e) {
  if (!s->shared) co_return;
  const std::string kind = "ads.answer";
  const int ttl_s = std::max(s->cfg.ads.cache_ttl_s, 0) + std::max(s->cfg.ads.max_stale_s, 0);
  co_await s->shared->put(kind, key, std::move(e), std::chrono::seconds(ttl_s));
}

// `key` empty: a cursor request, never stored.
awaitable<Expected<cache::EntryPtr>> fetch_answer(Impl* s, std::string key, std::string account,
                                                  std::string request_key, RequestPtr pr,
                                                  cache::EntryPtr seen, QuotaWait wait, std::string rid) {
  // A flight for this key that ended between the caller's cache lookup and
  // now has stored a fresh answer (another entry than the one it saw; `seen`
  // is held, so its address is not reused): use it, do not call again.
  if (!key.empty())
    if (auto e = s->index.find(key); e && e != seen && s->clock.now_ms() < e->expires_at_ms) co_return e;
  // [scale] The cross-replica leader's answer: unexpired, and newer than the
  // one seen ([refresh] a refresh ahead must not adopt the answer it renews).
  if (!key.empty())
    if (auto e = co_await shared_answer(s, key);
        e && s->clock.now_ms() < e->expires_at_ms && (!seen || e->fetched_at_ms > seen->fetched_at_ms))
      co_return co_await adopt_answer(s, key, account, request_key, e, true);
  const bool ahead = wait.mode == upstream::QuotaMode::spare;  // [refresh] fetched ahead of any client
  auto r = co_await call_ads(s, account, pr, std::move(wait), rid);
  if (!r) co_return r.error();
  cache::MutableEntryPtr e = make_entry(std::move(*r), s->clock.now_ms(), s->cfg.ads.cache_ttl_s, key);
  e->refreshed = ahead;
  if (!key.empty()) {
    const cache::EntryPtr written = e;  // a named local: g++ 12 and co_await temporaries
    e->stored = co_await commit_answer(s, account, request_key, written);
    s->index.put(key, e);
    co_await share_answer(s, key, written);  // [scale]
  }
  co_return cache::EntryPtr(e);
}

// The lookup tiers of one answer, in order: the memory index, SQLite (off the
// I/O thread), then Redis when shared. nullptr: none has it; the caller goes upstream.
awaitable<cache::EntryPtr> find_entry(Impl* s, std::string key, std::string account, std::string request_key) {
  if (auto e = s->index.find(key)) co_return e;
  auto query = [&account, &request_key](Db& db) { return ads::repo::find_answer(db, account, request_key); };
  auto e = co_await s->store.run(query);
  if (!e && s->shared)  // [scale]
    if (auto found = co_await shared_answer(s, key)) co_return co_await adopt_answer(s, key, account, request_key, found, false);
  // A fetch may have stored a newer entry while we read the disk: keep it.
  if (e) e = s->index.put_if_absent(key, e);
  co_return e;
}

bool stale_ok(const Impl& s, const cache::Entry& e) {
  return cache::stale_allowed(cache::StoredMeta{std::nullopt, e.fetched_at_ms}, s.clock.now_ms(), s.policy);
}

// Cache-Status values (RFC 9211), built outside the coroutines.
// [refresh] A hit on an answer refreshed ahead says detail=refreshed.
std::string hit_status(bool refreshed) { return cache::cache_status({cache::Outcome::hit}, true, refreshed); }
// A miss says "stored" only once the answer is committed (Entry::stored).
std::string miss_status(bool requested, bool stored) {
  if (requested) return stored ? "recgate; fwd=request; stored" : "recgate; fwd=request";
  return cache::cache_status({cache::Outcome::miss}, stored);
}
std::string stale_status() { return cache::cache_status({cache::Outcome::stale}); }

// The answer served from `e`, counted as `outcome` (a bypass counts as none).
AdsAnswer served(const Impl& s, cache::EntryPtr e, std::optional<cache::Outcome> outcome, std::string status) {
  if (outcome) svc::count_lookup("ads", *outcome);
  const bool fresh_fetch = !outcome || *outcome == cache::Outcome::miss;
  const std::int64_t age = fresh_fetch ? 0 : cache::age_seconds(e->fetched_at_ms, s.clock.now_ms());
  return AdsAnswer{std::move(e), svc::CacheFacts{std::move(status), age}};
}

Problem not_cached(bool cursor) {
  return to_problem(Error::not_cached,
                      cursor ? "Cache-Control: only-if-cached, but requests with a cursor are never cached"
                             : "Cache-Control: only-if-cached, and no usable stored answer for this request");
}

// A cursor request: one direct fetch, never stored or coalesced.
awaitable<Expected<AdsAnswer>> answer_cursor(Impl* s, std::string account, RequestPtr pr, svc::Asked opts) {
  if (opts.directives.only_if_cached) co_return not_cached(true);
  const std::string no_key;
  const std::string no_request_key;
  const cache::EntryPtr none;  // a named local: g++ 12 and temporaries in co_await expressions
  auto r = co_await fetch_answer(s, no_key, account, no_request_key, pr, none, opts.wait, opts.request_id);
  if (!r) co_return r.error();
  co_return served(*s, *r, std::nullopt, "recgate; fwd=bypass");
}

awaitable<Expected<AdsAnswer>> answer_product_recommendations(Impl* s, std::string account, RequestPtr pr,
                                                              svc::RequestOptions options) {
  if (!s->cfg.ads.accounts.count(account)) co_return unknown_account(account, s->cfg);
  const svc::Asked opts = svc::resolve(s->throttler, options, s->cfg.throttle.max_wait_s);
  if (pr->cursor) co_return co_await answer_cursor(s, std::move(account), std::move(pr), opts);

  const std::string request_key = ads::canonical_key(*pr);
  const std::string key = svc::key_join(account, request_key);
  s->asks.record(key, s->clock.now_ms());  // [refresh]
  const cache::EntryPtr entry = co_await find_entry(s, key, account, request_key);
  if (entry && !opts.directives.no_cache && s->clock.now_ms() < entry->expires_at_ms)
    co_return served(*s, entry, cache::Outcome::hit, hit_status(entry->refreshed));
  if (opts.directives.only_if_cached) {
    if (entry && stale_ok(*s, *entry)) co_return served(*s, entry, cache::Outcome::stale, stale_status());
    co_return not_cached(false);
  }

  Coalescer<Expected<cache::EntryPtr>>::Work work = [s, key, account, request_key, req = pr, seen = entry,
                                                      leader = svc::leader_of(opts.wait),
                                                      rid = opts.request_id](WaitLimitPtr flight) {
    return fetch_answer(s, key, account, request_key, req, seen, svc::flight_quota(leader, std::move(flight)), rid);
  };
  auto res = co_await svc::in_flight(s->answer_flights, key, work, opts.wait.limit, "ads.answer", s->lease);
  if (res) co_return served(*s, *res, cache::Outcome::miss, miss_status(opts.directives.no_cache, (*res)->stored));
  if (entry && stale_ok(*s, *entry)) {
    log_stale(opts.request_id, account, res.error().code);
    co_return served(*s, entry, cache::Outcome::stale, stale_status());
  }
  svc::count_lookup("ads", cache::Outcome::miss);
  co_return res.error();
}

awaitable<std::size_t> do_purge(Impl* s, std::optional<std::string> account) {
  const std::string prefix = account ? svc::key_join(*account) : std::string();
  auto matches = [&prefix](const std::string& key) { return key.compare(0, prefix.size(), prefix) == 0; };
  const std::size_t in_memory = s->index.erase_if(matches);
  auto del = [&account](Db& db) { return ads::repo::purge(db, account); };
  const std::size_t deleted = co_await s->store.run(del);
  co_return std::max(deleted, in_memory);
}

// LWA tokens (one small row per account) are loaded before the server
// starts; answers are warmed in the background within the memory bounds.
// Rows that can no longer be served are removed by cache/retention.
void load_tokens(Impl& s) {
  std::vector<std::pair<std::string, TokenPtr>> tokens;
  const std::int64_t now = s.clock.now_ms();
  s.store.run_sync([&](Db& db) {
    for (const auto& row : ads::repo::all_tokens(db)) {
      if (!s.cfg.ads.accounts.count(row.account) || row.expires_at_ms <= now) continue;
      auto tok = std::make_shared<Token>();
      tok->access_token = row.access_token;
      tok->times = ads::TokenTimes{row.obtained_at_ms, row.expires_at_ms};
      tokens.emplace_back(row.account, std::move(tok));
    }
  });
  {
    std::lock_guard lk(s.token_mu);
    for (auto& [a, t] : tokens) s.tokens[a] = t;
  }
  for (const auto& [a, t] : tokens) log_info("lwa token loaded", {{"account", a}, {"expires_at", iso_seconds(t->times.expires_at_ms)}});
}

std::pair<std::string, cache::EntryPtr> entry_from_row(Stmt& r) {
  auto w = ads::repo::warm_row(r);
  std::string key = svc::key_join(w.account, w.request_key);
  cache::EntryPtr e = cache::make_entry(w.data, key);
  return {std::move(key), std::move(e)};
}

void warm_entries(const std::shared_ptr<Impl>& s) {
  cache::WarmSpec spec{"ads", ads::repo::kWarmSql, entry_from_row};
  cache::warm_index(s->store, s, s->index, cache::LoadBudget(s->cfg.cache.memory_entries, s->cfg.cache.memory_bytes),
                    std::move(spec));
}

// ---- [refresh] refresh ahead (server/core/refresh/) -------------------------

// The Ads source of refreshes: a hot answer is due once it is within
// refresh::ttl_lead_ms of its expires_at. It is refetched through fetch_answer
// with spare quota only - of lwa.Token first when the access token must be
// renewed (a refused token then costs no Ads token), then of
// ads.ProductRecommendations, adaptive or not - never in a client's flight,
// and stored so the next client's hit says detail=refreshed.
class AdsRefresh final : public refresh::Source {
 public:
  explicit AdsRefresh(Impl* s) : s_(s) {}
  const char* api() const override { return "ads"; }

  awaitable<std::vector<refresh::Pending>> due(refresh::Tick t) override {
    every_ms_ = t.every_ms;
    std::vector<refresh::Pending> out;
    const std::vector<refresh::HotSet::Hot> hot = s_->asks.take_hot(t.now_ms);
    for (const auto& h : hot) {
      const auto parts = svc::key_split(h.key);  // account, request key
      if (parts.size() == 2 && is_due(h.key)) out.push_back(refresh::Pending{parts[0], kAdsBucket, h.key, h.asks});
    }
    co_return out;
  }

  awaitable<refresh::Outcome> refresh(refresh::Pending p) override {
    const auto parts = svc::key_split(p.key);
    if (parts.size() != 2 || !s_->cfg.ads.accounts.count(parts[0]) || !is_due(p.key))
      co_return refresh::Outcome::skipped;
    // The request key is the canonical request body: it validates back into the request.
    auto parsed = ads::validate_request(parts[1], s_->cfg.ads.max_asins);
    if (!parsed) co_return refresh::Outcome::skipped;
    // Named locals, not temporaries in co_await expressions (g++ 12).
    const RequestPtr req = std::make_shared<const ads::ProductRequest>(std::move(*parsed));
    const cache::EntryPtr seen = s_->index.find(p.key);
    QuotaWait token_quota = refresh::spare_quota();
    std::string rid = "refresh";
    auto token = co_await get_token(s_, parts[0], std::move(token_quota), rid);
    if (!token) co_return refresh::outcome_of(token.error());
    QuotaWait quota = refresh::spare_quota();
    auto res = co_await fetch_answer(s_, p.key, parts[0], parts[1], req, seen, std::move(quota), rid);
    if (res) co_return (*res)->refreshed ? refresh::Outcome::refreshed : refresh::Outcome::skipped;
    co_return refresh::outcome_of(res.error());
  }

 private:
  // In memory (what a client would hit) and near the end of its TTL.
  bool is_due(const std::string& key) const {
    const cache::EntryPtr e = s_->index.find(key);
    return e && refresh::ttl_due(e->fetched_at_ms, e->expires_at_ms, s_->clock.now_ms(), every_ms_);
  }

  Impl* s_;
  std::int64_t every_ms_ = 0;  // the scheduler's tick, as told by the last due()
};

}  // namespace

AdsService::AdsService(const Config& cfg, Store& store, upstream::Upstream& client, Throttler& throttler,
                       net::any_io_executor ex, const svc::Clock& clock)
    : impl_(std::make_shared<Impl>(cfg, store, client, throttler, ex, clock)) {
  load_tokens(*impl_);
  warm_entries(impl_);
  impl_->refresher = std::make_unique<AdsRefresh>(impl_.get());  // [refresh]
  auto weak = std::weak_ptr<Impl>(impl_);
  svc::register_cache_gauges("ads", [weak]() -> std::pair<std::size_t, std::size_t> {
    auto s = weak.lock();
    if (!s) return {0, 0};
    return {s->index.size(), s->index.bytes()};
  });
}

AdsService::~AdsService() = default;

void AdsService::share_through(redis::SharedCache& cache, redis::Lease& lease) {  // [scale]
  impl_->shared = &cache;
  impl_->lease = &lease;
}

std::optional<Problem> AdsService::check_account(const std::string& account) const {
  if (impl_->cfg.ads.accounts.count(account)) return std::nullopt;
  return unknown_account(account, impl_->cfg);
}

std::size_t AdsService::max_asins() const { return impl_->cfg.ads.max_asins; }

awaitable<Expected<AdsAnswer>> AdsService::product_recommendations(const std::string& account,
                                                                   std::shared_ptr<const ads::ProductRequest> request,
                                                                   const svc::RequestOptions& options) {
  return answer_product_recommendations(impl_.get(), account, std::move(request), options);
}

awaitable<std::size_t> AdsService::purge(std::optional<std::string> account) {
  return do_purge(impl_.get(), std::move(account));
}

refresh::Source& AdsService::refresh_source() { return *impl_->refresher; }  // [refresh]

AdsService::Stats AdsService::stats() const {
  Stats st;
  st.memory_entries = impl_->index.size();
  st.memory_bytes = impl_->index.bytes();
  st.in_flight = impl_->answer_flights.in_flight() + impl_->token_flights.in_flight();
  std::lock_guard lk(impl_->token_mu);
  for (const auto& [a, t] : impl_->tokens)
    st.tokens.push_back(TokenInfo{a, t->times.expires_at_ms,
                                  ads::refresh_due_ms(t->times, impl_->cfg.ads.token_refresh_margin_s)});
  return st;
}

}  // namespace recgate
