// MWS Recommendations service (see mws_service.hpp). Request flow:
// validate -> snapshot (cached, re-checked every check_interval_s, coalesced)
// -> per category: hit while the stored timestamp equals the snapshot's, else
// a coalesced fetch of every page (each page one throttled, signed call), with
// stale fallback -> JSON with Cache-Status, Age and ETag.
#include "core/services/mws_service.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <boost/asio/this_coro.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>

#include "core/cache/index.hpp"
#include "core/cache/retention.hpp"
#include "core/cache/policy.hpp"
#include "core/coalesce.hpp"
#include "core/json.hpp"
#include "core/log.hpp"
#include "core/metrics.hpp"
#include "core/errors.hpp"
#include "core/mws/model.hpp"
#include "core/mws/repository.hpp"
#include "core/mws/sigv2.hpp"
#include "core/redis/lease.hpp"
#include "core/redis/shared_cache.hpp"
#include "core/refresh/scheduler.hpp"
#include "core/refresh/source_kit.hpp"
#include "core/services/common.hpp"
#include "core/store.hpp"
#include "core/throttle/throttler.hpp"
#include "core/upstream/call.hpp"
#include "core/upstream/http_client.hpp"

namespace recgate {

namespace net = boost::asio;
using net::awaitable;

namespace {

struct Snapshot {
  std::int64_t checked_at_ms = 0;
  bool stored = true;  // committed to SQLite (see cache::Entry::stored)
  std::vector<std::pair<std::string, std::optional<std::string>>> per_category;

  std::optional<std::string> of(const std::string& category) const {
    for (const auto& [c, v] : per_category)
      if (c == category) return v;
    return std::nullopt;
  }
};
using SnapshotPtr = std::shared_ptr<const Snapshot>;

std::string snapshot_to_json(const Snapshot& s) {
  std::string out;
  svc::json_named_times(out, s.per_category);
  return out;
}

SnapshotPtr snapshot_from_json(const std::string& body, std::int64_t checked_at) {
  rapidjson::Document d;
  if (json::parse(d, body) || !d.IsObject()) return nullptr;
  auto s = std::make_shared<Snapshot>();
  s->checked_at_ms = checked_at;
  for (const char* c : mws::kCategories) {
    auto it = d.FindMember(c);
    std::optional<std::string> v;
    if (it != d.MemberEnd() && it->value.IsString()) v = it->value.GetString();
    s->per_category.emplace_back(c, v);
  }
  return s;
}

// The filters column and key part: length-prefixed like the key itself, so
// no filter value can pass for a filter boundary. Rows stored with the old
// \x1e-joined form start with a filter name (a letter), never a digit, so
// they can never equal a new key: they are misses, not misreads.
std::string join_filters(const std::vector<std::string>& f) { return svc::key_list(f); }

}  // namespace

struct MwsService::Impl {
  const Config& cfg;
  Store& store;
  upstream::Upstream& client;
  Throttler& throttler;
  net::any_io_executor ex;
  const svc::Clock& clock;
  cache::PolicyConfig policy;
  cache::Index index;
  mutable std::shared_mutex snap_mu;  // read on every hit: shared
  std::unordered_map<std::string, SnapshotPtr> snapshots;  // account|marketplace
  Coalescer<Expected<SnapshotPtr>> snapshot_flights;
  Coalescer<Expected<cache::EntryPtr>> list_flights;
  std::string user_agent;
  std::atomic<std::int64_t> last_success_ms{0};
  std::atomic<std::int64_t> last_failure_ms{0};
  mutable std::mutex health_mu;
  std::string last_failure;
  // [scale] set by share_through when redis.url is configured; null: single process.
  redis::SharedCache* shared = nullptr;
  redis::Lease* lease = nullptr;
  // [refresh] answers asked for within cache.refresh_hot_s (the const hit path records asks).
  refresh::Asks asks;
  std::unique_ptr<refresh::Source> refresher;  // [refresh] see the end of this file

  // [refresh] One client ask for the answer under `key` (the hit path too).
  void record_asked(const std::string& key) const { asks.record(key, clock.now_ms()); }

  void record_failure(const Problem& p) {
    std::string what = p.code;
    for (const auto& [k, v] : p.extensions)
      if (k == "upstreamCode") what += " (" + v + ")";
    last_failure_ms = clock.now_ms();
    std::lock_guard lk(health_mu);
    last_failure = std::move(what);
  }

  Impl(const Config& c, Store& st, upstream::Upstream& cl, Throttler& th, net::any_io_executor e,
       const svc::Clock& k)
      : cfg(c), store(st), client(cl), throttler(th), ex(e), clock(k),
        policy{c.mws.check_interval_s, c.mws.listing_quality_ttl_s, c.mws.max_stale_s},
        index(c.cache.memory_entries, c.cache.memory_bytes), snapshot_flights(e, k), list_flights(e, k),
        user_agent(upstream::mws_user_agent("recgate", RECGATE_VERSION)),
        asks(c.cache.refresh_ahead, c.cache.memory_entries, std::int64_t{c.cache.refresh_hot_s} * 1000) {}

  SnapshotPtr snapshot(const std::string& key) const {
    std::shared_lock lk(snap_mu);
    auto it = snapshots.find(key);
    return it == snapshots.end() ? nullptr : it->second;
  }
};

namespace {

using Impl = MwsService::Impl;

// [refresh] How long a refresh's later pages wait for spare quota.
constexpr std::chrono::seconds kSparePageWait{60};

// ---- the one upstream call site -----------------------------------------

struct CallResult {
  std::string body;
};

std::string upstream_url(const Impl& s, const mws::Marketplace& mp) {
  return svc::base_url(s.cfg.mws.endpoint, "https://" + mp.host) + std::string(mws::kPath);
}

// One MWS operation for upstream_call: signs each attempt afresh (Timestamp),
// retries RequestThrottled / QuotaExceeded, records upstream health.
class MwsExchange final : public upstream::Exchange {
 public:
  MwsExchange(Impl& s, const MwsAccount& acc, std::string url, std::string host, std::string action,
              const mws::Params& params)
      : s_(s), creds_{acc.seller_id, acc.access_key_id, acc.secret_key, acc.auth_token}, url_(std::move(url)),
        host_(std::move(host)), action_(std::move(action)), params_(params) {}

  awaitable<Expected<upstream::Request>> build(int) override {
    upstream::Request req;
    req.method = "POST";
    req.url = url_;
    req.headers.emplace_back("Content-Type", "application/x-www-form-urlencoded; charset=utf-8");
    req.headers.emplace_back("User-Agent", s_.user_agent);
    req.headers.emplace_back("Accept", "text/xml");
    req.body = mws::signed_form_body(creds_, action_, params_, host_, mws::kPath, std::chrono::system_clock::now());
    co_return req;
  }

  upstream::Verdict classify(const upstream::Response& res) override {
    if (res.status == 200) return upstream::Verdict::success;
    err_ = mws::parse_error_response(res.body);
    code_ = err_ ? err_->code : "HTTP" + std::to_string(res.status);
    if (res.status == 503 && (code_ == "RequestThrottled" || code_ == "QuotaExceeded"))
      return upstream::Verdict::throttled;
    return upstream::Verdict::failure;
  }

  Problem failure(const upstream::Response& res) override {
    Problem p = to_problem(Error::upstream_error, what() + " answered HTTP " + std::to_string(res.status) + " " +
                                                      code_ + (err_ && !err_->message.empty() ? ": " + err_->message : ""));
    p.extensions.emplace_back("upstreamCode", code_);
    if (err_ && !err_->request_id.empty()) p.extensions.emplace_back("upstreamRequestId", err_->request_id);
    s_.record_failure(p);
    return p;
  }

  Problem transport_failed(const upstream::Result& r) override {
    Problem p = upstream::Exchange::transport_failed(r);
    s_.record_failure(p);
    return p;
  }

  std::string what() const override { return "MWS " + action_; }

 private:
  Impl& s_;
  mws::Credentials creds_;
  std::string url_;
  std::string host_;
  std::string action_;
  const mws::Params& params_;
  std::optional<mws::UpstreamError> err_;
  std::string code_;
};

// One MWS operation: throttle, sign, send; retried after an upstream throttle within the wait.
awaitable<Expected<CallResult>> call_mws(Impl* s, std::string account_name, mws::Marketplace mp, std::string action,
                                         mws::Params params, svc::QuotaWait wait, std::string request_id) {
  const std::string url = upstream_url(*s, mp);
  const auto parsed = upstream::parse_url(url);
  if (!parsed) co_return to_problem(Error::bad_endpoint, "mws.endpoint is not a usable URL");
  MwsExchange ex(*s, s->cfg.mws.accounts.at(account_name), url, upstream::host_header_value(*parsed), action, params);
  const upstream::CallSite site{"mws", action, account_name, "mws." + action, request_id};
  auto r = co_await upstream::upstream_call(s->throttler, s->client, site, wait, ex);
  if (!r) co_return r.error();
  s->last_success_ms = s->clock.now_ms();
  co_return CallResult{std::move(r->body)};
}

// ---- commits: an answer that says "stored" is in SQLite before it is sent

awaitable<bool> commit_snapshot(Impl* s, std::string account, std::string mpid, std::string body, std::int64_t at) {
  auto write = [&](Db& db) { mws::repo::save_snapshot(db, account, mpid, at, body); };
  co_return co_await svc::commit_before_answer(s->store, write, "mws last-updated");
}

awaitable<bool> commit_list(Impl* s, mws::repo::ListKey row, cache::EntryPtr entry) {
  const std::uint64_t max_db_bytes = s->cfg.cache.max_db_bytes;
  auto write = [&](Db& db) {
    mws::repo::save_list(db, row, *entry);
    cache::bound_after_write(db, max_db_bytes);
  };
  co_return co_await svc::commit_before_answer(s->store, write, "mws recommendations");
}

// ---- snapshots -----------------------------------------------------------

// [scale] The shared tier: a snapshot is stored as an Entry whose body is its
// JSON and whose fetched_at_ms is the time it was checked. Awaited before the
// flight ends, so it is in Redis before the lease is released.
awaitable<void> share_snapshot(Impl* s, std::string key, std::string body, std::int64_t checked_at) {
  if (!s->shared) co_return;
  cache::EntryData d;
  d.fetched_at_ms = checked_at;
  d.body = std::move(body);
  const cache::EntryPtr e = cache::make_entry(d);
  const std::string kind = "mws.snapshot";
  co_await s->shared->put(kind, key, e, std::chrono::seconds(s->cfg.mws.max_stale_s));
}

// [scale] A snapshot another replica checked less than check_interval_s ago
// (and later than `seen`), adopted here (memory and SQLite); else nullptr.
awaitable<SnapshotPtr> adopt_shared_snapshot(Impl* s, std::string account, std::string mpid, SnapshotPtr seen) {
  if (!s->shared) co_return nullptr;
  const std::string key = svc::key_join(account, mpid);
  const std::string kind = "mws.snapshot";
  auto e = co_await s->shared->get(kind, key);
  if (!e || (seen && e->fetched_at_ms <= seen->checked_at_ms) ||
      cache::snapshot_due(e->fetched_at_ms, s->clock.now_ms(), false, s->policy))
    co_return nullptr;
  const std::string body = e->body();  // a named local: g++ 12 and co_await temporaries
  auto parsed = snapshot_from_json(body, e->fetched_at_ms);
  if (!parsed) co_return nullptr;
  auto snap = std::make_shared<Snapshot>(*parsed);
  snap->stored = co_await commit_snapshot(s, account, mpid, body, e->fetched_at_ms);
  {
    std::lock_guard lk(s->snap_mu);
    s->snapshots[key] = snap;
  }
  co_return SnapshotPtr(snap);
}

awaitable<Expected<SnapshotPtr>> fetch_snapshot(Impl* s, std::string account, mws::Marketplace mp,
                                                svc::QuotaWait wait, std::string request_id) {
  mws::Params params;
  params.emplace_back("MarketplaceId", mp.id);
  std::string action = "GetLastUpdatedTimeForRecommendations";
  auto r = co_await call_mws(s, account, mp, action, params, wait, request_id);
  if (!r) co_return r.error();
  auto parsed = mws::parse_last_updated(r->body);
  if (!parsed) co_return parsed.error();
  auto snap = std::make_shared<Snapshot>();
  snap->checked_at_ms = s->clock.now_ms();
  snap->per_category = parsed->per_category;
  const std::string key = svc::key_join(account, mp.id);
  const std::string body = snapshot_to_json(*snap);  // named locals: g++ 12 and co_await temporaries
  const std::int64_t at = snap->checked_at_ms;
  snap->stored = co_await commit_snapshot(s, account, mp.id, body, at);
  {
    std::lock_guard lk(s->snap_mu);
    s->snapshots[key] = snap;
  }
  co_await share_snapshot(s, key, body, at);  // [scale]
  co_return SnapshotPtr(snap);
}

awaitable<Expected<SnapshotPtr>> snapshot_work(Impl* s, std::string account, mws::Marketplace mp,
                                               SnapshotPtr seen, bool force, svc::QuotaWait wait,
                                               std::string request_id) {
  // Re-checked by a flight that ended after this request looked (the
  // snapshot is no longer the one it saw): reuse it. `seen` is held, so its
  // address cannot be reused by a newer snapshot.
  if (auto snap = s->snapshot(svc::key_join(account, mp.id)); snap && snap != seen) co_return snap;
  if (!force)  // [scale] checked by another replica within the interval
    if (auto snap = co_await adopt_shared_snapshot(s, account, mp.id, seen)) co_return snap;
  co_return co_await fetch_snapshot(s, std::move(account), std::move(mp), std::move(wait), std::move(request_id));
}

struct SnapState {
  SnapshotPtr snap;
  bool stale = false;                // re-check failed; answers built on it are stale
  std::optional<Problem> error;      // the re-check's failure
  cache::Outcome outcome = cache::Outcome::hit;
};

awaitable<SnapState> get_snapshot(Impl* s, std::string account, mws::Marketplace mp, bool force, bool only_cached,
                                  svc::QuotaWait wait, std::string request_id) {
  SnapState st;
  const std::string key = svc::key_join(account, mp.id);
  st.snap = s->snapshot(key);
  std::optional<std::int64_t> checked;
  if (st.snap) checked = st.snap->checked_at_ms;
  if (only_cached || !cache::snapshot_due(checked, s->clock.now_ms(), force, s->policy)) co_return st;
  // Named local, not a temporary in the co_await expression: g++ 12 mishandles
  // non-trivial temporaries (closures) there.
  // The flight waits for quota as long as its riders' latest limit allows;
  // its queue place counts against the client that started it.
  Coalescer<Expected<SnapshotPtr>>::Work work = [s, account, mp, seen = st.snap, force, leader = svc::leader_of(wait),
                                                 request_id](WaitLimitPtr flight) {
    return snapshot_work(s, account, mp, seen, force, svc::flight_quota(leader, std::move(flight)), request_id);
  };
  auto res = co_await svc::in_flight(s->snapshot_flights, key, work, wait.limit, "mws.snapshot", s->lease);
  if (res) {
    st.snap = *res;
    st.outcome = cache::Outcome::miss;
  } else {
    st.error = res.error();
    st.stale = st.snap != nullptr;
    st.outcome = cache::Outcome::stale;
  }
  co_return st;
}

// ---- recommendation lists ------------------------------------------------

// [scale] The shared tier: the list another replica stored, or nullptr.
awaitable<cache::MutableEntryPtr> shared_list(Impl* s, std::string key) {
  if (!s->shared) co_return nullptr;
  const std::string kind = "mws.list";
  co_return co_await s->shared->get(kind, key);
}

// [scale] Keeps a list found in the shared tier locally: SQLite, then memory.
// After a local miss (`replace` false) a fetch may have stored a newer one
// meanwhile: that one is kept. In a flight it replaces the outdated one.
awaitable<cache::EntryPtr> adopt_list(Impl* s, std::string key, mws::repo::ListKey row,
                                      cache::MutableEntryPtr e, bool replace) {
  const cache::EntryPtr written = e;
  e->stored = co_await commit_list(s, std::move(row), written);
  if (!replace) co_return s->index.put_if_absent(key, e);
  s->index.put(key, e);
  co_return cache::EntryPtr(e);
}

// [scale] Writes a fresh fetch to the shared tier; awaited by the flight so it
// is in Redis before the lease is released (one loopback round trip, misses only).
awaitable<void> share_list(Impl* s, std::string key, cache::EntryPtr e) {
  if (!s->shared) co_return;
  const std::string kind = "mws.list";
  co_await s->shared->put(kind, key, std::move(e), std::chrono::seconds(s->cfg.mws.max_stale_s));
}

// The lookup tiers of one list, in order: the memory index, SQLite (off the
// I/O thread), then Redis when shared. nullptr: none has it; the caller goes upstream.
awaitable<cache::EntryPtr> find_entry(Impl* s, std::string key, mws::repo::ListKey row) {
  if (auto e = s->index.find(key)) co_return e;
  auto query = [&row](Db& db) { return mws::repo::find_list(db, row); };
  auto e = co_await s->store.run(query);
  if (!e && s->shared)  // [scale]
    if (auto found = co_await shared_list(s, key)) co_return co_await adopt_list(s, key, std::move(row), found, false);
  // A fetch may have stored a newer entry while we read the disk: keep it.
  // (Overwriting it with this older copy also lost the fetch's answer for
  // requests that missed at the same time, which then called upstream again.)
  if (e) e = s->index.put_if_absent(key, e);
  co_return e;
}

awaitable<Expected<cache::EntryPtr>> fetch_list(Impl* s, std::string key, std::string account, mws::Marketplace mp,
                                                std::string category, std::vector<std::string> filters,
                                                std::optional<std::string> validator, cache::SnapshotView view,
                                                cache::EntryPtr seen, svc::QuotaWait wait, std::string request_id) {
  // A flight for this key that ended between our cache lookup and now has
  // already stored what we need: an entry other than the one we saw (held in
  // `seen`, so its address is not reused) and fresh under our snapshot. Use
  // it instead of calling upstream again.
  if (auto e = s->index.find(key);
      e && e != seen &&
      cache::classify(category, {e->validator(), e->fetched_at_ms}, view, s->clock.now_ms(), s->policy) == cache::Verdict::fresh)
    co_return e;
  if (auto e = co_await shared_list(s, key);  // [scale] the cross-replica leader's answer
      e && cache::classify(category, {e->validator(), e->fetched_at_ms}, view, s->clock.now_ms(), s->policy) ==
               cache::Verdict::fresh) {
    mws::repo::ListKey row{account, mp.id, category, join_filters(filters)};
    co_return co_await adopt_list(s, key, std::move(row), e, true);
  }
  std::vector<std::string> members;
  std::string action = "ListRecommendations";
  mws::Params params = mws::list_params(mp.id, category, filters);
  bool restarted = false;
  int pages = 0;
  for (;;) {
    auto r = co_await call_mws(s, account, mp, action, params, wait, request_id);
    if (!r) {
      bool corrupted = false;
      for (const auto& [k, v] : r.error().extensions) corrupted = corrupted || (k == "upstreamCode" && v == "NextTokenCorrupted");
      if (corrupted && !restarted) {  // DG_NextToken: call the original operation again
        restarted = true;
        members.clear();
        pages = 0;
        action = "ListRecommendations";
        params = mws::list_params(mp.id, category, filters);
        continue;
      }
      co_return r.error();
    }
    auto page = mws::parse_list_page(r->body, category);
    if (!page) co_return page.error();
    for (auto& m : page->members_json) members.push_back(std::move(m));
    ++pages;
    if (!page->next_token) break;
    if (pages >= s->cfg.mws.max_pages) {
      log_warn("mws.max_pages reached; answer truncated",
               {{"request_id", request_id}, {"account", account}, {"category", category}, {"pages", pages}});
      break;
    }
    // [refresh] A refresh's later pages may wait (bounded) for spare quota:
    // giving up would waste the pages already fetched.
    if (pages == 1 && wait.mode == upstream::QuotaMode::spare) wait.limit = s->throttler.limit_for(kSparePageWait);
    action = "ListRecommendationsByNextToken";
    params.clear();
    params.emplace_back("NextToken", *page->next_token);
  }
  cache::EntryData data;
  data.validator = validator;
  data.fetched_at_ms = s->clock.now_ms();
  data.refreshed = wait.mode == upstream::QuotaMode::spare;  // [refresh] fetched ahead of any client
  data.body = "[";
  for (std::size_t i = 0; i < members.size(); ++i) {
    if (i) data.body += ',';
    data.body += members[i];
  }
  data.body += "]";
  cache::MutableEntryPtr entry = cache::make_entry(data, key);
  mws::repo::ListKey row{account, mp.id, category, join_filters(filters)};  // named locals: g++ 12 and co_await temporaries
  const cache::EntryPtr written = entry;
  entry->stored = co_await commit_list(s, std::move(row), written);
  s->index.put(key, entry);
  co_await share_list(s, key, written);  // [scale]
  co_return cache::EntryPtr(entry);
}

using CategoryAnswer = MwsCategoryAnswer;

Problem unknown_account(const std::string& name, const Config& cfg) {
  return svc::unknown_account("MWS", name, cfg.mws.accounts);
}

awaitable<Expected<CategoryAnswer>> answer_category(Impl* s, std::string account, mws::Marketplace mp,
                                                    std::string category, std::vector<std::string> filters,
                                                    SnapState snap, svc::Asked opts) {
  const std::string fkey = join_filters(filters);
  const std::string key = svc::key_join(account, mp.id, category, fkey);
  mws::repo::ListKey row{account, mp.id, category, fkey};
  s->record_asked(key);  // [refresh]
  auto entry = co_await find_entry(s, key, std::move(row));
  const std::int64_t now = s->clock.now_ms();
  cache::SnapshotView view{snap.snap != nullptr, snap.stale,
                           snap.snap ? snap.snap->of(category) : std::optional<std::string>{}};
  if (entry) {
    cache::StoredMeta meta{entry->validator(), entry->fetched_at_ms};
    const bool fresh = cache::classify(category, meta, view, now, s->policy) == cache::Verdict::fresh;
    if (fresh && !snap.stale) co_return CategoryAnswer{category, entry, cache::Outcome::hit};
    // Fresh under a snapshot whose re-check failed, or the client accepts only
    // the cache: serve what we have, marked stale, within max_stale_s.
    if ((fresh || opts.directives.only_if_cached) && cache::stale_allowed(meta, now, s->policy))
      co_return CategoryAnswer{category, entry, cache::Outcome::stale};
  }
  if (opts.directives.only_if_cached)
    co_return to_problem(Error::not_cached,
                           "Cache-Control: only-if-cached, and no usable stored answer for " + category);
  if (snap.error && !snap.snap) co_return *snap.error;
  const std::optional<std::string> validator =
      category == "ListingQuality" ? std::optional<std::string>{} : view.last_updated;
  Coalescer<Expected<cache::EntryPtr>>::Work work = [s, key, account, mp, category, filters, validator,
                                                      view, seen = entry, leader = svc::leader_of(opts.wait),
                                                      rid = opts.request_id](WaitLimitPtr flight) {
    return fetch_list(s, key, account, mp, category, filters, validator, view, seen,
                      svc::flight_quota(leader, std::move(flight)), rid);
  };
  auto res = co_await svc::in_flight(s->list_flights, key, work, opts.wait.limit, "mws.list", s->lease);
  if (res) co_return CategoryAnswer{category, *res, cache::Outcome::miss};
  if (entry && cache::stale_allowed({entry->validator(), entry->fetched_at_ms}, s->clock.now_ms(), s->policy)) {
    log_warn("serving stale", {{"request_id", opts.request_id}, {"account", account}, {"category", category},
                               {"reason", res.error().code}});
    co_return CategoryAnswer{category, entry, cache::Outcome::stale};
  }
  co_return res.error();
}

// The answer's cache facts (Cache-Status, Age), counted per category.
MwsAnswer make_answer(const Impl& s, std::string account, const mws::Marketplace& mp,
                      std::vector<CategoryAnswer> answers) {
  std::vector<cache::Outcome> outcomes;
  outcomes.reserve(answers.size());
  bool stored = true;  // every answer fetched now is in SQLite
  bool refreshed = false;  // [refresh] some answer was refreshed ahead
  std::int64_t age = 0;
  const std::int64_t now = s.clock.now_ms();
  for (const auto& a : answers) {
    svc::count_lookup("mws", a.outcome);
    outcomes.push_back(a.outcome);
    if (a.outcome == cache::Outcome::miss) stored = stored && a.entry->stored;
    refreshed = refreshed || a.entry->refreshed;
    if (a.outcome != cache::Outcome::miss) age = std::max(age, cache::age_seconds(a.entry->fetched_at_ms, now));
  }
  return MwsAnswer{std::move(account), mp.id, std::move(answers),
                   svc::CacheFacts{cache::cache_status(outcomes, stored, refreshed), age}};
}

// The hit path: everything from memory, no coroutine, no I/O, no exclusive
// lock. nullopt whenever anything would need upstream, the disk or a wait.
std::optional<MwsAnswer> try_hit(const Impl* s, std::string account, const mws::Query& q,
                                 const cache::RequestDirectives& directives) {
  if (directives.no_cache || !s->cfg.mws.accounts.count(account)) return std::nullopt;
  const mws::Marketplace& mp = *mws::find_marketplace(q.marketplace_id);
  const std::int64_t now = s->clock.now_ms();
  SnapshotPtr snap = s->snapshot(svc::key_join(account, mp.id));
  if (!snap || cache::snapshot_due(snap->checked_at_ms, now, false, s->policy)) return std::nullopt;
  const std::string fkey = join_filters(q.filters);
  std::vector<CategoryAnswer> answers;
  answers.reserve(q.categories.size());
  for (const auto& category : q.categories) {
    const std::string key = svc::key_join(account, mp.id, category, fkey);
    auto entry = s->index.find(key);
    if (!entry) return std::nullopt;
    cache::SnapshotView view{true, false, snap->of(category)};
    if (cache::classify(category, {entry->validator(), entry->fetched_at_ms}, view, now, s->policy) !=
        cache::Verdict::fresh)
      return std::nullopt;
    s->record_asked(key);  // [refresh]
    answers.push_back(CategoryAnswer{category, std::move(entry), cache::Outcome::hit});
  }
  return make_answer(*s, std::move(account), mp, std::move(answers));
}

awaitable<Expected<MwsAnswer>> answer_recommendations(Impl* s, std::string account, mws::Query q,
                                                      svc::RequestOptions options) {
  if (!s->cfg.mws.accounts.count(account)) co_return unknown_account(account, s->cfg);
  const mws::Marketplace mp = *mws::find_marketplace(q.marketplace_id);
  const svc::Asked opts = svc::resolve(s->throttler, options, s->cfg.throttle.max_wait_s);
  SnapState snap = co_await get_snapshot(s, account, mp, opts.directives.no_cache, opts.directives.only_if_cached,
                                         opts.wait, opts.request_id);
  std::vector<CategoryAnswer> answers;
  for (const auto& category : q.categories) {
    auto a = co_await answer_category(s, account, mp, category, q.filters, snap, opts);
    if (!a) co_return a.error();
    answers.push_back(std::move(*a));
  }
  co_return make_answer(*s, std::move(account), mp, std::move(answers));
}

awaitable<Expected<MwsLastUpdatedAnswer>> answer_last_updated(Impl* s, std::string account, std::string mpid,
                                                              svc::RequestOptions options) {
  if (!s->cfg.mws.accounts.count(account)) co_return unknown_account(account, s->cfg);
  const mws::Marketplace mp = *mws::find_marketplace(mpid);
  const svc::Asked opts = svc::resolve(s->throttler, options, s->cfg.throttle.max_wait_s);
  SnapState snap = co_await get_snapshot(s, account, mp, opts.directives.no_cache, opts.directives.only_if_cached,
                                         opts.wait, opts.request_id);
  cache::Outcome outcome = snap.outcome;
  if (!snap.snap) {
    if (opts.directives.only_if_cached)
      co_return to_problem(Error::not_cached, "Cache-Control: only-if-cached, and no stored last-updated times");
    co_return snap.error ? *snap.error : to_problem(Error::upstream_error, "no last-updated times");
  }
  if (snap.error) {
    cache::StoredMeta meta{std::nullopt, snap.snap->checked_at_ms};
    if (!cache::stale_allowed(meta, s->clock.now_ms(), s->policy)) co_return *snap.error;
    outcome = cache::Outcome::stale;
  }
  svc::count_lookup("mws", outcome);
  MwsLastUpdatedAnswer a;
  a.account = std::move(account);
  a.marketplace_id = mp.id;
  a.checked_at_ms = snap.snap->checked_at_ms;
  a.outcome = outcome;
  for (const auto& c : mws::categories_for(mp)) a.last_updated.emplace_back(c, snap.snap->of(c));
  a.cache.status = cache::cache_status({outcome}, snap.snap->stored);
  a.cache.age_s = outcome == cache::Outcome::miss ? 0 : cache::age_seconds(snap.snap->checked_at_ms, s->clock.now_ms());
  co_return a;
}

// Snapshots (one small row per account and marketplace) are loaded before
// the server starts; answers are warmed in the background within the memory
// bounds (requests that come first read them from disk: find_entry).
void load_snapshots(Impl& s) {
  std::vector<std::pair<std::string, SnapshotPtr>> snaps;
  s.store.run_sync([&](Db& db) {
    for (const auto& r : mws::repo::all_snapshots(db))
      if (auto snap = snapshot_from_json(r.body, r.checked_at))
        snaps.emplace_back(svc::key_join(r.account, r.marketplace), snap);
  });
  {
    std::lock_guard lk(s.snap_mu);
    for (auto& [k, v] : snaps) s.snapshots[k] = v;
  }
  if (!snaps.empty()) log_info("mws snapshots loaded", {{"snapshots", snaps.size()}});
}

std::pair<std::string, cache::EntryPtr> entry_from_row(Stmt& r) {
  auto w = mws::repo::warm_row(r);
  std::string key = svc::key_join(w.key.account, w.key.marketplace, w.key.category, w.key.filters);
  cache::EntryPtr e = cache::make_entry(w.data, key);
  return {std::move(key), std::move(e)};
}

void warm_entries(const std::shared_ptr<Impl>& s) {
  cache::WarmSpec spec{"mws", mws::repo::kWarmSql, entry_from_row};
  cache::warm_index(s->store, s, s->index, cache::LoadBudget(s->cfg.cache.memory_entries, s->cfg.cache.memory_bytes),
                    std::move(spec));
}

awaitable<std::size_t> do_purge(Impl* s, std::optional<std::string> account, std::optional<std::string> marketplace,
                                std::optional<std::string> category) {
  auto matches = [&](const std::string& key) {
    // key: account, marketplace[, category, filters] (svc::key_join)
    const std::vector<std::string> parts = svc::key_split(key);
    if (account && (parts.size() < 1 || parts[0] != *account)) return false;
    if (marketplace && (parts.size() < 2 || parts[1] != *marketplace)) return false;
    if (category && (parts.size() < 3 || parts[2] != *category)) return false;
    return true;
  };
  std::size_t in_memory = s->index.erase_if(matches);
  if (!category) {
    std::lock_guard lk(s->snap_mu);
    for (auto it = s->snapshots.begin(); it != s->snapshots.end();) {
      if (matches(it->first)) it = s->snapshots.erase(it);
      else ++it;
    }
  }
  auto del = [&](Db& db) { return mws::repo::purge(db, account, marketplace, category); };
  const std::size_t deleted = co_await s->store.run(del);
  co_return std::max(deleted, in_memory);
}

// ---- [refresh] refresh ahead (server/core/refresh/) -------------------------

// The MWS source of refreshes: background last-updated checks of the hot
// (account, marketplace) pairs, and a hot answer is due once it is no longer
// fresh under its pair's snapshot (its category's timestamp moved). Both go
// through the service's own fetch paths with spare quota only; neither joins
// a client's flight (a client must never ride on a call that may be refused).
class MwsRefresh final : public refresh::Source {
 public:
  explicit MwsRefresh(Impl* s) : s_(s) {}
  const char* api() const override { return "mws"; }

  awaitable<std::vector<refresh::Pending>> due(refresh::Tick t) override {
    const std::int64_t now = t.now_ms;
    std::vector<refresh::Pending> out;
    std::vector<std::string> checked;  // pairs looked at this tick
    const std::vector<refresh::HotSet::Hot> hot = s_->asks.take_hot(now);
    for (const auto& h : hot) {
      const auto parts = svc::key_split(h.key);  // account, marketplace, category, filters
      if (parts.size() != 4) continue;
      const std::string pair = svc::key_join(parts[0], parts[1]);
      SnapshotPtr snap = s_->snapshot(pair);
      if (std::find(checked.begin(), checked.end(), pair) == checked.end()) {
        checked.push_back(pair);
        if (checked.size() <= t.max_checks && (!snap || cache::snapshot_due(snap->checked_at_ms, now, false, s_->policy)))
          snap = co_await check_pair(parts[0], parts[1], snap);
      }
      if (!snap || fresh(h.key, parts[2], *snap)) continue;
      out.push_back(refresh::Pending{parts[0], "mws.ListRecommendations", h.key, h.asks});
    }
    co_return out;
  }

  awaitable<refresh::Outcome> refresh(refresh::Pending p) override {
    const auto parts = svc::key_split(p.key);
    const mws::Marketplace* mp = parts.size() == 4 ? mws::find_marketplace(parts[1]) : nullptr;
    if (!mp) co_return refresh::Outcome::skipped;
    SnapshotPtr snap = s_->snapshot(svc::key_join(parts[0], parts[1]));
    cache::EntryPtr seen = s_->index.find(p.key);
    if (!snap || !seen || fresh(p.key, parts[2], *snap)) co_return refresh::Outcome::skipped;
    const cache::SnapshotView view{true, false, snap->of(parts[2])};
    const std::optional<std::string> validator =
        parts[2] == "ListingQuality" ? std::optional<std::string>{} : view.last_updated;
    // Named locals, not temporaries in the co_await expression (g++ 12).
    std::vector<std::string> filters = svc::key_split(parts[3]);
    svc::QuotaWait quota = refresh::spare_quota();
    std::string rid = "refresh";
    auto res = co_await fetch_list(s_, p.key, parts[0], *mp, parts[2], std::move(filters), validator, view, seen,
                                   std::move(quota), std::move(rid));
    if (res) co_return (*res)->refreshed ? refresh::Outcome::refreshed : refresh::Outcome::skipped;
    co_return refresh::outcome_of(res.error());
  }

 private:

  bool fresh(const std::string& key, const std::string& category, const Snapshot& snap) const {
    cache::EntryPtr e = s_->index.find(key);
    if (!e) return true;  // not in memory: nothing a client would hit; leave it to the client path
    const cache::SnapshotView view{true, false, snap.of(category)};
    return cache::classify(category, {e->validator(), e->fetched_at_ms}, view, s_->clock.now_ms(), s_->policy) ==
           cache::Verdict::fresh;
  }

  // The pair's last-updated times re-checked now (spare quota); the old
  // snapshot when that cannot be done. [scale] One replica checks for the
  // group: a snapshot another replica checked within check_interval_s is
  // adopted instead.
  awaitable<SnapshotPtr> check_pair(std::string account, std::string mpid, SnapshotPtr old) {
    const mws::Marketplace* mp = mws::find_marketplace(mpid);
    if (!mp || !s_->cfg.mws.accounts.count(account)) co_return old;
    if (auto adopted = co_await adopt_shared_snapshot(s_, account, mpid, old)) co_return adopted;
    svc::QuotaWait quota = refresh::spare_quota();
    std::string rid = "refresh";
    auto r = co_await fetch_snapshot(s_, account, *mp, std::move(quota), std::move(rid));
    co_return r ? *r : old;
  }

  Impl* s_;
};

}  // namespace

MwsService::MwsService(const Config& cfg, Store& store, upstream::Upstream& client, Throttler& throttler,
                       net::any_io_executor ex, const svc::Clock& clock)
    : impl_(std::make_shared<Impl>(cfg, store, client, throttler, ex, clock)) {
  load_snapshots(*impl_);
  warm_entries(impl_);
  impl_->refresher = std::make_unique<MwsRefresh>(impl_.get());  // [refresh]
  auto weak = std::weak_ptr<Impl>(impl_);
  svc::register_cache_gauges("mws", [weak]() -> std::pair<std::size_t, std::size_t> {
    auto s = weak.lock();
    if (!s) return {0, 0};
    return {s->index.size(), s->index.bytes()};
  });
}

MwsService::~MwsService() = default;

void MwsService::share_through(redis::SharedCache& cache, redis::Lease& lease) {  // [scale]
  impl_->shared = &cache;
  impl_->lease = &lease;
}

std::optional<Problem> MwsService::check_account(const std::string& account) const {
  if (impl_->cfg.mws.accounts.count(account)) return std::nullopt;
  return unknown_account(account, impl_->cfg);
}
awaitable<Expected<MwsAnswer>> MwsService::recommendations(const std::string& account, const mws::Query& query,
                                                           const svc::RequestOptions& options) {
  return answer_recommendations(impl_.get(), account, query, options);
}
std::optional<MwsAnswer> MwsService::try_hit(std::string account, const mws::Query& query,
                                             const cache::RequestDirectives& directives) {
  return recgate::try_hit(impl_.get(), std::move(account), query, directives);
}
awaitable<Expected<MwsLastUpdatedAnswer>> MwsService::last_updated(const std::string& account,
                                                                   const std::string& marketplace_id,
                                                                   const svc::RequestOptions& options) {
  return answer_last_updated(impl_.get(), account, marketplace_id, options);
}

refresh::Source& MwsService::refresh_source() { return *impl_->refresher; }  // [refresh]
awaitable<std::size_t> MwsService::purge(std::optional<std::string> account, std::optional<std::string> marketplace,
                                         std::optional<std::string> category) {
  return do_purge(impl_.get(), std::move(account), std::move(marketplace), std::move(category));
}

MwsService::Stats MwsService::stats() const {
  Stats st;
  st.memory_entries = impl_->index.size();
  st.memory_bytes = impl_->index.bytes();
  {
    std::lock_guard lk(impl_->snap_mu);
    st.snapshots = impl_->snapshots.size();
  }
  st.in_flight = impl_->list_flights.in_flight() + impl_->snapshot_flights.in_flight();
  st.last_success_ms = impl_->last_success_ms.load();
  st.last_failure_ms = impl_->last_failure_ms.load();
  {
    std::lock_guard lk(impl_->health_mu);
    st.last_failure = impl_->last_failure;
  }
  return st;
}

}  // namespace recgate
