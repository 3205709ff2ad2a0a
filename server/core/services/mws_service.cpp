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
#include "core/mws/model.hpp"
#include "core/mws/sigv2.hpp"
#include "core/services/common.hpp"
#include "core/store.hpp"
#include "core/throttle/throttler.hpp"
#include "core/upstream/http_client.hpp"

namespace recgate {

namespace net = boost::asio;
using net::awaitable;
using http::Context;
using http::Response;
using svc::hex64;
using svc::iso_seconds;
using svc::now_ms;

namespace {

void json_string(std::string& out, std::string_view s) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
  out.append(sb.GetString(), sb.GetSize());
}

void json_opt_string(std::string& out, const std::optional<std::string>& s) {
  if (s) json_string(out, *s);
  else out += "null";
}

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
  std::string out = "{";
  bool first = true;
  for (const auto& [c, v] : s.per_category) {
    if (!first) out += ',';
    first = false;
    json_string(out, c);
    out += ':';
    json_opt_string(out, v);
  }
  return out + "}";
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

Problem unknown_account(const std::string& name, const Config& cfg) {
  std::string known;
  for (const auto& [n, a] : cfg.mws.accounts) known += (known.empty() ? "" : ", ") + n;
  return make_problem(404, "unknown_account",
                      "no MWS account named \"" + name + "\" is configured" +
                          (known.empty() ? std::string(" (none are)") : "; configured: " + known));
}

}  // namespace

struct MwsService::Impl {
  const Config& cfg;
  Store& store;
  upstream::HttpClient& client;
  Throttler& throttler;
  net::any_io_executor ex;
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

  void record_failure(const Problem& p) {
    std::string what = p.code;
    for (const auto& [k, v] : p.extensions)
      if (k == "upstreamCode") what += " (" + v + ")";
    last_failure_ms = now_ms();
    std::lock_guard lk(health_mu);
    last_failure = std::move(what);
  }

  Impl(const Config& c, Store& st, upstream::HttpClient& cl, Throttler& th, net::any_io_executor e)
      : cfg(c), store(st), client(cl), throttler(th), ex(e),
        policy{c.mws.check_interval_s, c.mws.listing_quality_ttl_s, c.mws.max_stale_s},
        index(c.cache.memory_entries, c.cache.memory_bytes), snapshot_flights(e), list_flights(e),
        user_agent(upstream::mws_user_agent("recgate", RECGATE_VERSION)) {}

  SnapshotPtr snapshot(const std::string& key) const {
    std::shared_lock lk(snap_mu);
    auto it = snapshots.find(key);
    return it == snapshots.end() ? nullptr : it->second;
  }
};

namespace {

using Impl = MwsService::Impl;

// ---- the one upstream call site -----------------------------------------

struct CallResult {
  std::string body;
};

std::string upstream_url(const Impl& s, const mws::Marketplace& mp) {
  if (!s.cfg.mws.endpoint.empty()) {
    std::string base = s.cfg.mws.endpoint;
    while (!base.empty() && base.back() == '/') base.pop_back();
    return base + std::string(mws::kPath);
  }
  return "https://" + mp.host + std::string(mws::kPath);
}

// Throttle, sign, send; retries after an upstream throttle within the deadline.
awaitable<Expected<CallResult>> call_mws(Impl* s, std::string account_name, mws::Marketplace mp, std::string action,
                                         mws::Params params, svc::QuotaWait wait, std::string request_id) {
  const auto& acc = s->cfg.mws.accounts.at(account_name);
  const mws::Credentials creds{acc.seller_id, acc.access_key_id, acc.secret_key, acc.auth_token};
  const std::string url = upstream_url(*s, mp);
  const auto parsed = upstream::parse_url(url);
  if (!parsed) co_return make_problem(500, "bad_endpoint", "mws.endpoint is not a usable URL");
  const std::string host = upstream::host_header_value(*parsed);
  for (int attempt = 1;; ++attempt) {
    auto grant = co_await s->throttler.acquire(account_name, "mws." + action, wait.limit, wait.client);
    if (!grant) co_return grant.error();
    upstream::Request req;
    req.method = "POST";
    req.url = url;
    req.headers.emplace_back("Content-Type", "application/x-www-form-urlencoded; charset=utf-8");
    req.headers.emplace_back("User-Agent", s->user_agent);
    req.headers.emplace_back("Accept", "text/xml");
    req.body = mws::signed_form_body(creds, action, params, host, mws::kPath, std::chrono::system_clock::now());
    const auto t0 = std::chrono::steady_clock::now();
    auto r = co_await s->client.request(std::move(req));
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const std::string status = r.ok() ? std::to_string(r.response.status) : std::string(upstream::to_string(r.error));
    svc::count_upstream("mws", action, status, secs);
    log(r.ok() && r.response.status == 200 ? LogLevel::debug : LogLevel::warn, "upstream call",
        {{"request_id", request_id}, {"api", "mws"}, {"account", account_name}, {"operation", action}, {"status", status},
         {"duration_ms", secs * 1000}, {"attempt", attempt}, {"waited_ms", grant->waited_s * 1000}});
    if (!r.ok()) {
      Problem p = svc::transport_problem(r, "MWS " + action);
      s->record_failure(p);
      co_return p;
    }
    if (r.response.status == 200) {
      s->last_success_ms = now_ms();
      s->throttler.on_upstream_success(account_name, "mws." + action);
      co_return CallResult{std::move(r.response.body)};
    }
    auto err = mws::parse_error_response(r.response.body);
    const std::string code = err ? err->code : "HTTP" + std::to_string(r.response.status);
    if (r.response.status == 503 && (code == "RequestThrottled" || code == "QuotaExceeded")) {
      // Retry-After in seconds or as an HTTP date; absent: our own backoff.
      const auto retry_after = parse_retry_after_header(r.response.header("Retry-After"), s->throttler.now());
      s->throttler.on_upstream_throttled(account_name, "mws." + action, retry_after);
      continue;  // acquire again within what is left of the client's wait
    }
    Problem p = make_problem(502, "upstream_error",
                             "MWS " + action + " answered HTTP " + std::to_string(r.response.status) + " " + code +
                                 (err && !err->message.empty() ? ": " + err->message : ""));
    p.extensions.emplace_back("upstreamCode", code);
    if (err && !err->request_id.empty()) p.extensions.emplace_back("upstreamRequestId", err->request_id);
    s->record_failure(p);
    co_return p;
  }
}

// ---- commits: an answer that says "stored" is in SQLite before it is sent

awaitable<bool> commit_snapshot(Impl* s, std::string account, std::string mpid, std::string body, std::int64_t at) {
  auto write = [&](Db& db) {
    db.prepare(
          "INSERT INTO mws_snapshot(account, marketplace, checked_at, body) VALUES (?,?,?,?) "
          "ON CONFLICT(account, marketplace) DO UPDATE SET checked_at=excluded.checked_at, body=excluded.body")
        .bind(1, account)
        .bind(2, mpid)
        .bind(3, at)
        .bind(4, body)
        .step();
  };
  co_return co_await svc::commit_before_answer(s->store, write, "mws last-updated");
}

awaitable<bool> commit_list(Impl* s, std::string account, std::string mpid, std::string category, std::string filters,
                            std::shared_ptr<const cache::Entry> entry) {
  const std::uint64_t max_db_bytes = s->cfg.cache.max_db_bytes;
  auto write = [&](Db& db) {
    db.prepare(
          "INSERT INTO mws_recommendations(account, marketplace, category, filters, last_updated, fetched_at, body) "
          "VALUES (?,?,?,?,?,?,?) ON CONFLICT(account, marketplace, category, filters) DO UPDATE SET "
          "last_updated=excluded.last_updated, fetched_at=excluded.fetched_at, body=excluded.body")
        .bind(1, account)
        .bind(2, mpid)
        .bind(3, category)
        .bind(4, filters)
        .bind(5, entry->validator)
        .bind(6, entry->fetched_at_ms)
        .bind(7, entry->body)
        .step();
    cache::bound_after_write(db, max_db_bytes);
  };
  co_return co_await svc::commit_before_answer(s->store, write, "mws recommendations");
}

// ---- snapshots -----------------------------------------------------------

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
  snap->checked_at_ms = now_ms();
  snap->per_category = parsed->per_category;
  const std::string key = svc::key_join(account, mp.id);
  const std::string body = snapshot_to_json(*snap);  // named locals: g++ 12 and co_await temporaries
  const std::int64_t at = snap->checked_at_ms;
  snap->stored = co_await commit_snapshot(s, account, mp.id, body, at);
  {
    std::lock_guard lk(s->snap_mu);
    s->snapshots[key] = snap;
  }
  co_return SnapshotPtr(snap);
}

awaitable<Expected<SnapshotPtr>> snapshot_work(Impl* s, std::string account, mws::Marketplace mp,
                                               SnapshotPtr seen, svc::QuotaWait wait, std::string request_id) {
  // Re-checked by a flight that ended after this request looked (the
  // snapshot is no longer the one it saw): reuse it. `seen` is held, so its
  // address cannot be reused by a newer snapshot.
  if (auto snap = s->snapshot(svc::key_join(account, mp.id)); snap && snap != seen) co_return snap;
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
  if (only_cached || !cache::snapshot_due(checked, now_ms(), force, s->policy)) co_return st;
  bool joined = false;
  // Named local, not a temporary in the co_await expression: g++ 12 mishandles
  // non-trivial temporaries (closures) there.
  // The flight waits for quota as long as its riders' latest limit allows;
  // its queue place counts against the client that started it.
  Coalescer<Expected<SnapshotPtr>>::Work work = [s, account, mp, seen = st.snap, client = wait.client,
                                                 request_id](WaitLimitPtr flight) {
    return snapshot_work(s, account, mp, seen, svc::QuotaWait{std::move(flight), client}, request_id);
  };
  auto res = co_await s->snapshot_flights.run(key, work, wait.limit, &joined);
  if (joined)
    svc::count_coalesced("mws.snapshot");
  if (!res) {
    st.error = make_problem(499, "client_closed", "cancelled");
    st.stale = st.snap != nullptr;
    co_return st;
  }
  if (res->has_value()) {
    st.snap = res->value();
    st.outcome = cache::Outcome::miss;
  } else {
    st.error = res->error();
    st.stale = st.snap != nullptr;
    st.outcome = cache::Outcome::stale;
  }
  co_return st;
}

// ---- recommendation lists ------------------------------------------------

awaitable<cache::EntryPtr> find_entry(Impl* s, std::string key, std::string account, std::string mpid,
                                      std::string category, std::string filters) {
  if (auto e = s->index.find(key)) co_return e;
  // Not in memory (evicted or never loaded): look in SQLite off the I/O thread.
  auto e = co_await s->store.run([&](Db& db) -> cache::EntryPtr {
    auto st = db.prepare(
        "SELECT last_updated, fetched_at, body FROM mws_recommendations "
        "WHERE account=? AND marketplace=? AND category=? AND filters=?");
    st.bind(1, account).bind(2, mpid).bind(3, category).bind(4, filters);
    if (!st.step()) return nullptr;
    auto entry = std::make_shared<cache::Entry>();
    entry->validator = st.opt_text(0);
    entry->fetched_at_ms = st.int64(1);
    entry->body = st.text(2);
    entry->hash = cache::fnv1a64(entry->body);
    return entry;
  });
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
      cache::classify(category, {e->validator, e->fetched_at_ms}, view, now_ms(), s->policy) == cache::Verdict::fresh)
    co_return e;
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
    action = "ListRecommendationsByNextToken";
    params.clear();
    params.emplace_back("NextToken", *page->next_token);
  }
  auto entry = std::make_shared<cache::Entry>();
  entry->validator = validator;
  entry->fetched_at_ms = now_ms();
  entry->body = "[";
  for (std::size_t i = 0; i < members.size(); ++i) {
    if (i) entry->body += ',';
    entry->body += members[i];
  }
  entry->body += "]";
  entry->hash = cache::fnv1a64(entry->body);
  const std::string fkey = join_filters(filters);  // named locals: g++ 12 and co_await temporaries
  const std::shared_ptr<const cache::Entry> written = entry;
  entry->stored = co_await commit_list(s, account, mp.id, category, fkey, written);
  s->index.put(key, entry);
  co_return cache::EntryPtr(entry);
}

struct CategoryAnswer {
  std::string category;
  cache::EntryPtr entry;
  cache::Outcome outcome;
};

struct RequestOptions {
  cache::RequestDirectives directives;
  svc::QuotaWait wait;
  std::string request_id;       // for upstream log lines (a coalesced call logs its leader's)
};

RequestOptions request_options(const Impl& s, const Context& ctx) {
  RequestOptions o;
  o.directives = cache::parse_cache_control(std::string(ctx.header("Cache-Control")));
  o.wait = svc::request_quota_wait(s.throttler, ctx, s.cfg.throttle.max_wait_s);
  o.request_id = ctx.request_id;
  return o;
}

awaitable<Expected<CategoryAnswer>> answer_category(Impl* s, std::string account, mws::Marketplace mp,
                                                    std::string category, std::vector<std::string> filters,
                                                    SnapState snap, RequestOptions opts) {
  const std::string fkey = join_filters(filters);
  const std::string key = svc::key_join(account, mp.id, category, fkey);
  auto entry = co_await find_entry(s, key, account, mp.id, category, fkey);
  const std::int64_t now = now_ms();
  cache::SnapshotView view{snap.snap != nullptr, snap.stale,
                           snap.snap ? snap.snap->of(category) : std::optional<std::string>{}};
  if (entry) {
    cache::StoredMeta meta{entry->validator, entry->fetched_at_ms};
    const bool fresh = cache::classify(category, meta, view, now, s->policy) == cache::Verdict::fresh;
    if (fresh && !snap.stale) co_return CategoryAnswer{category, entry, cache::Outcome::hit};
    // Fresh under a snapshot whose re-check failed, or the client accepts only
    // the cache: serve what we have, marked stale, within max_stale_s.
    if ((fresh || opts.directives.only_if_cached) && cache::stale_allowed(meta, now, s->policy))
      co_return CategoryAnswer{category, entry, cache::Outcome::stale};
  }
  if (opts.directives.only_if_cached)
    co_return make_problem(504, "not_cached",
                           "Cache-Control: only-if-cached, and no usable stored answer for " + category);
  if (snap.error && !snap.snap) co_return *snap.error;
  bool joined = false;
  const std::optional<std::string> validator =
      category == "ListingQuality" ? std::optional<std::string>{} : view.last_updated;
  Coalescer<Expected<cache::EntryPtr>>::Work work = [s, key, account, mp, category, filters, validator,
                                                      view, seen = entry, client = opts.wait.client,
                                                      rid = opts.request_id](WaitLimitPtr flight) {
    return fetch_list(s, key, account, mp, category, filters, validator, view, seen,
                      svc::QuotaWait{std::move(flight), client}, rid);
  };
  auto res = co_await s->list_flights.run(key, work, opts.wait.limit, &joined);
  if (joined)
    svc::count_coalesced("mws.list");
  if (!res) co_return make_problem(499, "client_closed", "cancelled");
  if (res->has_value()) co_return CategoryAnswer{category, res->value(), cache::Outcome::miss};
  if (entry && cache::stale_allowed({entry->validator, entry->fetched_at_ms}, now_ms(), s->policy)) {
    log_warn("serving stale", {{"request_id", opts.request_id}, {"account", account}, {"category", category},
                               {"reason", res->error().code}});
    co_return CategoryAnswer{category, entry, cache::Outcome::stale};
  }
  co_return res->error();
}

std::string etag_of(const std::string& account, const std::string& mpid, const std::vector<CategoryAnswer>& answers) {
  std::uint64_t h = cache::fnv1a64(account);
  h = cache::fnv1a64(mpid, h);
  for (const auto& a : answers) {
    h = cache::fnv1a64(a.category, h);
    h = cache::fnv1a64(a.entry->validator.value_or("-"), h);
    h = cache::fnv1a64(std::to_string(a.entry->fetched_at_ms), h);
    h = cache::fnv1a64(hex64(a.entry->hash), h);
  }
  return "\"" + hex64(h) + "\"";
}

Response recommendations_response(Context& ctx, const std::string& account, const mws::Marketplace& mp,
                                  const std::vector<CategoryAnswer>& answers) {
  std::vector<cache::Outcome> outcomes;
  bool stored = true;  // every answer fetched now is in SQLite
  std::int64_t age = 0;
  const std::int64_t now = now_ms();
  std::size_t size = 64;
  for (const auto& a : answers) size += a.entry->body.size() + 160;
  std::string body;
  body.reserve(size);
  body += "{\"account\":";
  json_string(body, account);
  body += ",\"marketplaceId\":";
  json_string(body, mp.id);
  body += ",\"categories\":[";
  for (std::size_t i = 0; i < answers.size(); ++i) {
    const auto& a = answers[i];
    svc::count_lookup("mws", a.outcome);
    outcomes.push_back(a.outcome);
    if (a.outcome == cache::Outcome::miss) stored = stored && a.entry->stored;
    if (a.outcome != cache::Outcome::miss) age = std::max(age, cache::age_seconds(a.entry->fetched_at_ms, now));
    if (i) body += ',';
    body += "{\"category\":";
    json_string(body, a.category);
    body += ",\"lastUpdated\":";
    json_opt_string(body, a.entry->validator);
    body += ",\"fetchedAt\":";
    json_string(body, iso_seconds(a.entry->fetched_at_ms));
    body += ",\"cache\":\"";
    body += cache::outcome_name(a.outcome);
    body += "\",\"recommendations\":";
    body += a.entry->body;
    body += '}';
  }
  body += "]}";
  return svc::cached_response(ctx, std::move(body), cache::cache_status(outcomes, stored), age, etag_of(account, mp.id, answers));
}

// The hit path: everything from memory, no coroutine, no I/O, no exclusive
// lock. nullopt whenever anything would need upstream, the disk or a wait.
std::optional<Response> try_hit(Impl* s, Context& ctx) {
  const std::string account(ctx.param("account"));
  if (!s->cfg.mws.accounts.count(account)) return std::nullopt;
  auto q = mws::validate_recommendations_query(ctx.query);
  if (!q) return std::nullopt;
  const auto directives = cache::parse_cache_control(std::string(ctx.header("Cache-Control")));
  if (directives.no_cache) return std::nullopt;
  const mws::Marketplace& mp = *mws::find_marketplace(q->marketplace_id);
  const std::int64_t now = now_ms();
  SnapshotPtr snap = s->snapshot(svc::key_join(account, mp.id));
  if (!snap || cache::snapshot_due(snap->checked_at_ms, now, false, s->policy)) return std::nullopt;
  const std::string fkey = join_filters(q->filters);
  std::vector<CategoryAnswer> answers;
  answers.reserve(q->categories.size());
  for (const auto& category : q->categories) {
    auto entry = s->index.find(svc::key_join(account, mp.id, category, fkey));
    if (!entry) return std::nullopt;
    cache::SnapshotView view{true, false, snap->of(category)};
    if (cache::classify(category, {entry->validator, entry->fetched_at_ms}, view, now, s->policy) !=
        cache::Verdict::fresh)
      return std::nullopt;
    answers.push_back(CategoryAnswer{category, std::move(entry), cache::Outcome::hit});
  }
  return recommendations_response(ctx, account, mp, answers);
}

awaitable<Response> handle_recommendations(Impl* s, Context& ctx) {
  const std::string account(ctx.param("account"));
  if (!s->cfg.mws.accounts.count(account)) co_return http::problem_response(unknown_account(account, s->cfg));
  auto q = mws::validate_recommendations_query(ctx.query);
  if (!q) co_return http::problem_response(q.error());
  const mws::Marketplace mp = *mws::find_marketplace(q->marketplace_id);
  const RequestOptions opts = request_options(*s, ctx);

  SnapState snap = co_await get_snapshot(s, account, mp, opts.directives.no_cache, opts.directives.only_if_cached,
                                         opts.wait, opts.request_id);
  std::vector<CategoryAnswer> answers;
  for (const auto& category : q->categories) {
    auto a = co_await answer_category(s, account, mp, category, q->filters, snap, opts);
    if (!a) co_return http::problem_response(a.error());
    answers.push_back(std::move(*a));
  }
  co_return recommendations_response(ctx, account, mp, answers);
}

awaitable<Response> handle_last_updated(Impl* s, Context& ctx) {
  const std::string account(ctx.param("account"));
  if (!s->cfg.mws.accounts.count(account)) co_return http::problem_response(unknown_account(account, s->cfg));
  auto mpid = mws::validate_last_updated_query(ctx.query);
  if (!mpid) co_return http::problem_response(mpid.error());
  const mws::Marketplace mp = *mws::find_marketplace(*mpid);
  const RequestOptions opts = request_options(*s, ctx);
  SnapState snap = co_await get_snapshot(s, account, mp, opts.directives.no_cache, opts.directives.only_if_cached,
                                         opts.wait, opts.request_id);
  cache::Outcome outcome = snap.outcome;
  if (!snap.snap) {
    if (opts.directives.only_if_cached)
      co_return http::problem_response(
          make_problem(504, "not_cached", "Cache-Control: only-if-cached, and no stored last-updated times"));
    co_return http::problem_response(snap.error ? *snap.error
                                                : make_problem(502, "upstream_error", "no last-updated times"));
  }
  if (snap.error) {
    cache::StoredMeta meta{std::nullopt, snap.snap->checked_at_ms};
    if (!cache::stale_allowed(meta, now_ms(), s->policy)) co_return http::problem_response(*snap.error);
    outcome = cache::Outcome::stale;
  }
  svc::count_lookup("mws", outcome);
  const auto offered = mws::categories_for(mp);
  std::string body = "{\"account\":";
  json_string(body, account);
  body += ",\"marketplaceId\":";
  json_string(body, mp.id);
  body += ",\"checkedAt\":";
  json_string(body, iso_seconds(snap.snap->checked_at_ms));
  body += ",\"cache\":\"";
  body += cache::outcome_name(outcome);
  body += "\",\"lastUpdated\":{";
  bool first = true;
  for (const auto& c : offered) {
    if (!first) body += ',';
    first = false;
    json_string(body, c);
    body += ':';
    json_opt_string(body, snap.snap->of(c));
  }
  body += "}}";
  const std::int64_t age = outcome == cache::Outcome::miss ? 0 : cache::age_seconds(snap.snap->checked_at_ms, now_ms());
  const std::string etag = "\"" + hex64(cache::fnv1a64(body.substr(body.find(",\"lastUpdated\"")))) + "\"";
  co_return svc::cached_response(ctx, std::move(body), cache::cache_status({outcome}, snap.snap->stored), age, etag);
}

// Snapshots (one small row per account and marketplace) are loaded before
// the server starts; answers are warmed in the background within the memory
// bounds (requests that come first read them from disk: find_entry).
void load_snapshots(Impl& s) {
  std::vector<std::pair<std::string, SnapshotPtr>> snaps;
  s.store.run_sync([&](Db& db) {
    auto st = db.prepare("SELECT account, marketplace, checked_at, body FROM mws_snapshot");
    while (st.step()) {
      if (auto snap = snapshot_from_json(st.text(3), st.int64(2)))
        snaps.emplace_back(svc::key_join(st.text(0), st.text(1)), snap);
    }
  });
  {
    std::lock_guard lk(s.snap_mu);
    for (auto& [k, v] : snaps) s.snapshots[k] = v;
  }
  if (!snaps.empty()) log_info("mws snapshots loaded", {{"snapshots", snaps.size()}});
}

std::pair<std::string, cache::EntryPtr> entry_from_row(Stmt& r) {
  auto e = std::make_shared<cache::Entry>();
  e->validator = r.opt_text(7);
  e->body = r.text(8);
  e->fetched_at_ms = r.int64(1);
  e->hash = cache::fnv1a64(e->body);
  return {svc::key_join(r.text(3), r.text(4), r.text(5), r.text(6)), std::move(e)};
}

void warm_entries(const std::shared_ptr<Impl>& s) {
  cache::WarmSpec spec{"mws",
                       "SELECT length(body), fetched_at, rowid, account, marketplace, category, filters, last_updated, "
                       "body FROM mws_recommendations WHERE (fetched_at, rowid) < (?1, ?2) "
                       "ORDER BY fetched_at DESC, rowid DESC LIMIT ?3",
                       entry_from_row};
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
  std::size_t deleted = co_await s->store.run([&](Db& db) -> std::size_t {
    auto st = db.prepare(
        "DELETE FROM mws_recommendations WHERE (?1 IS NULL OR account=?1) AND (?2 IS NULL OR marketplace=?2) "
        "AND (?3 IS NULL OR category=?3)");
    st.bind(1, account).bind(2, marketplace).bind(3, category);
    st.step();
    std::size_t n = static_cast<std::size_t>(db.changes());
    if (!category) {
      auto sn = db.prepare(
          "DELETE FROM mws_snapshot WHERE (?1 IS NULL OR account=?1) AND (?2 IS NULL OR marketplace=?2)");
      sn.bind(1, account).bind(2, marketplace);
      sn.step();
    }
    return n;
  });
  co_return std::max(deleted, in_memory);
}

}  // namespace

MwsService::MwsService(const Config& cfg, Store& store, upstream::HttpClient& client, Throttler& throttler,
                       net::any_io_executor ex)
    : impl_(std::make_shared<Impl>(cfg, store, client, throttler, ex)) {
  load_snapshots(*impl_);
  warm_entries(impl_);
  auto weak = std::weak_ptr<Impl>(impl_);
  svc::register_cache_gauges("mws", [weak]() -> std::pair<std::size_t, std::size_t> {
    auto s = weak.lock();
    if (!s) return {0, 0};
    return {s->index.size(), s->index.bytes()};
  });
}

MwsService::~MwsService() = default;

awaitable<Response> MwsService::recommendations(Context& ctx) { return handle_recommendations(impl_.get(), ctx); }
std::optional<Response> MwsService::try_hit(Context& ctx) { return recgate::try_hit(impl_.get(), ctx); }
awaitable<Response> MwsService::last_updated(Context& ctx) { return handle_last_updated(impl_.get(), ctx); }
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
