// Composition root (see app.hpp): the route table, client authentication,
// health, readiness, metrics and status handlers, signals and drain.
#include "core/app.hpp"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <boost/asio/signal_set.hpp>
#include <cstdlib>
#include <functional>
#include <thread>
#include <utility>

#include "core/cache/retention.hpp"
#include "core/http/fd_limit.hpp"
#include "core/http/server.hpp"
#include "core/log.hpp"
#include "core/metrics.hpp"
#include "core/mws/model.hpp"
#include "core/openapi.hpp"
#include "core/refresh/scheduler.hpp"
#include "core/services/ads_service.hpp"
#include "core/services/mws_service.hpp"
#include "core/store.hpp"
#include "core/throttle/throttler.hpp"
#include "core/upstream/http_client.hpp"

namespace recgate {
namespace {

namespace net = boost::asio;
using http::Context;
using http::Response;
using net::awaitable;

// [refresh] Refreshes and background checks per tick at most: bounded work
// (spare quota bounds it further).
constexpr std::size_t kRefreshPerTick = 64;

struct AppState {
  const Config& cfg;
  Store* store = nullptr;
  http::Server* server = nullptr;
  Throttler* throttler = nullptr;
  MwsService* mws = nullptr;
  AdsService* ads = nullptr;
  std::vector<std::array<unsigned char, SHA256_DIGEST_LENGTH>> client_key_digests;
  std::vector<std::string> client_names;  // parallel to client_key_digests
  refresh::Scheduler* refresher = nullptr;  // [refresh] null: cache.refresh_ahead off
};

std::array<unsigned char, SHA256_DIGEST_LENGTH> digest(std::string_view s) {
  std::array<unsigned char, SHA256_DIGEST_LENGTH> d{};
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), d.data());
  return d;
}

// Constant-time check of "Authorization: Bearer KEY" against every configured
// key; a match names the client (its quota queue share is counted by name).
bool authorized(const AppState& st, Context& ctx) {
  if (st.client_key_digests.empty()) return true;
  std::string_view h = ctx.header("Authorization");
  constexpr std::string_view prefix = "Bearer ";
  if (h.size() <= prefix.size() || h.substr(0, prefix.size()) != prefix) return false;
  auto d = digest(h.substr(prefix.size()));
  std::size_t match = st.client_key_digests.size();
  for (std::size_t i = 0; i < st.client_key_digests.size(); ++i) {
    const bool same = CRYPTO_memcmp(st.client_key_digests[i].data(), d.data(), d.size()) == 0;
    match = same ? i : match;
  }
  if (match == st.client_key_digests.size()) return false;
  ctx.client = st.client_names[match];
  return true;
}

awaitable<Response> unauthorized() {
  Problem p = make_problem(401, "unauthorized",
                           "this recgate requires \"Authorization: Bearer <key>\" with a configured client key");
  p.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"recgate\"");
  co_return http::problem_response(p);
}

awaitable<Response> handle_healthz(const AppState*, Context&) {
  co_return http::json_response(200, "{\"status\":\"ok\"}");
}

awaitable<Response> handle_readyz(const AppState* st, Context&) {
  if (st->server && st->server->draining())
    co_return http::json_response(503, "{\"status\":\"draining\",\"reason\":\"shutting down\"}");
  bool db_ok = false;
  try {
    db_ok = co_await st->store->run([](Db& db) {
      auto s = db.prepare("SELECT COALESCE(MAX(version),0) FROM schema_migrations");
      return s.step() && s.int64(0) > 0;
    });
  } catch (const std::exception&) {
    db_ok = false;
  }
  if (!db_ok)
    co_return http::json_response(503, "{\"status\":\"not_ready\",\"reason\":\"database not open or not migrated\"}");
  co_return http::json_response(200, "{\"status\":\"ready\",\"schemaVersion\":" +
                                         std::to_string(st->store->schema_version()) + "}");
}

awaitable<Response> handle_metrics(const AppState*, Context&) {
  co_return http::text_response(200, Metrics::instance().render(), "text/plain; version=0.0.4; charset=utf-8");
}

awaitable<Response> handle_openapi(const AppState*, Context&) {
  co_return http::text_response(200, std::string(openapi_document()), "application/yaml");
}

// What an upstream is and whether Amazon still serves it (see the README's
// "The two upstreams"): MWS was retired on 2024-04-01, the Ads API is live.
void write_upstream_kind(rapidjson::Writer<rapidjson::StringBuffer>& w, const std::string& endpoint, bool retired) {
  const bool amazon = endpoint.empty();
  w.StartObject();
  w.Key("kind"); w.String(amazon ? "amazon" : "custom");
  w.Key("endpoint"); w.String(amazon ? "amazon" : endpoint.c_str());
  w.Key("state"); w.String(retired ? "retired" : "live");
  w.Key("detail");
  if (retired)
    w.String(amazon ? "Amazon retired MWS on 2024-04-01 and deleted its credentials on 2024-04-22: calls to Amazon "
                      "cannot succeed; point mws.endpoint at recgate-sandbox or another stand-in that speaks MWS"
                    : "Amazon retired MWS on 2024-04-01; this endpoint is a stand-in that speaks MWS "
                      "(recgate-sandbox or another)");
  else
    w.String(amazon ? "the Ads API is live at Amazon; calls go to Amazon's regional hosts"
                    : "the Ads API is live at Amazon; this endpoint is a stand-in (recgate-sandbox or another)");
  w.EndObject();
}

// [refresh] Refreshes pending on one bucket (0 with refresh ahead off).
std::size_t refresh_backlog(const AppState* st, const std::string& account, const std::string& group) {
  if (!st->refresher) return 0;
  std::size_t n = 0;
  for (const auto& r : st->refresher->backlog())
    if (r.account == account && r.bucket == group) n += r.pending;
  return n;
}

awaitable<Response> handle_status(const AppState* st, Context& ctx) {
  if (!authorized(*st, ctx)) co_return co_await unauthorized();
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.StartObject();
  w.Key("version");
  w.String(RECGATE_VERSION);
  w.Key("draining");
  w.Bool(st->server && st->server->draining());
  w.Key("schemaVersion");
  w.Int(st->store->schema_version());
  w.Key("upstreams");
  w.StartObject();
  w.Key("mws");
  write_upstream_kind(w, st->cfg.mws.endpoint, true);
  w.Key("ads");
  write_upstream_kind(w, st->cfg.ads.endpoint, false);
  w.EndObject();
  w.Key("buckets");
  w.StartArray();
  for (const auto& b : st->throttler->status()) {
    w.StartObject();
    w.Key("account"); w.String(b.account.c_str());
    w.Key("operation"); w.String(b.operation.c_str());
    w.Key("tokens"); w.Double(b.tokens);
    w.Key("available"); w.Double(b.available);
    w.Key("capacity"); w.Double(b.capacity);
    w.Key("restorePerSecond"); w.Double(b.restore_per_s);
    w.Key("waiters"); w.Uint64(b.waiters);
    w.Key("nextTokenSeconds"); w.Double(b.next_token_s);
    w.Key("learntRestorePerSecond");  // throttle.adaptive buckets; null: a fixed rate
    if (b.learnt_restore_per_s) w.Double(*b.learnt_restore_per_s); else w.Null();
    w.Key("lastThrottleAtMs");
    if (b.last_throttle_at) w.Int64(static_cast<std::int64_t>(*b.last_throttle_at * 1000)); else w.Null();
    w.Key("refreshBacklog");  // [refresh] hot answers waiting for this bucket's spare quota
    w.Uint64(refresh_backlog(st, b.account, b.operation));
    w.EndObject();
  }
  w.EndArray();
  auto ms = st->mws->stats();
  w.Key("cache");
  w.StartObject();
  w.Key("mws");
  w.StartObject();
  w.Key("memoryEntries"); w.Uint64(ms.memory_entries);
  w.Key("memoryBytes"); w.Uint64(ms.memory_bytes);
  w.Key("snapshots"); w.Uint64(ms.snapshots);
  w.EndObject();
  auto as = st->ads->stats();
  w.Key("ads");
  w.StartObject();
  w.Key("memoryEntries"); w.Uint64(as.memory_entries);
  w.Key("memoryBytes"); w.Uint64(as.memory_bytes);
  w.EndObject();
  w.EndObject();
  w.Key("upstream");
  w.StartObject();
  w.Key("inFlight"); w.Uint64(ms.in_flight + as.in_flight);
  w.Key("mwsEndpoint"); w.String(st->cfg.mws.endpoint.empty() ? "amazon" : st->cfg.mws.endpoint.c_str());
  w.Key("adsEndpoint"); w.String(st->cfg.ads.endpoint.empty() ? "amazon" : st->cfg.ads.endpoint.c_str());
  w.Key("mws");  // health as last seen: times of the last good and failed call
  w.StartObject();
  w.Key("lastSuccessMs"); w.Int64(ms.last_success_ms);
  w.Key("lastFailureMs"); w.Int64(ms.last_failure_ms);
  w.Key("lastFailure"); w.String(ms.last_failure.c_str());
  w.Key("healthy"); w.Bool(ms.last_failure_ms == 0 || ms.last_success_ms > ms.last_failure_ms);
  w.EndObject();
  w.EndObject();
  w.Key("lwaTokens");  // expiry only, never the token
  w.StartArray();
  for (const auto& t : as.tokens) {
    w.StartObject();
    w.Key("account"); w.String(t.account.c_str());
    w.Key("expiresAtMs"); w.Int64(t.expires_at_ms);
    w.Key("refreshDueAtMs"); w.Int64(t.refresh_due_ms);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  co_return http::json_response(200, sb.GetString());
}

awaitable<Response> handle_mws_recommendations(const AppState* st, Context& ctx) {
  if (!authorized(*st, ctx)) co_return co_await unauthorized();
  co_return co_await st->mws->recommendations(ctx);
}

awaitable<Response> handle_mws_last_updated(const AppState* st, Context& ctx) {
  if (!authorized(*st, ctx)) co_return co_await unauthorized();
  co_return co_await st->mws->last_updated(ctx);
}

awaitable<Response> handle_ads_product_recommendations(const AppState* st, Context& ctx) {
  if (!authorized(*st, ctx)) co_return co_await unauthorized();
  co_return co_await st->ads->product_recommendations(ctx);
}

awaitable<Response> handle_purge(const AppState* st, Context& ctx) {
  if (!authorized(*st, ctx)) co_return co_await unauthorized();
  if (auto p = mws::validate_query_text(ctx.query)) co_return http::problem_response(*p);
  std::optional<std::string> account, marketplace, category;
  for (const auto& [k, v] : ctx.query) {
    std::optional<std::string>* slot = k == "account" ? &account : k == "marketplace" ? &marketplace
                                     : k == "category" ? &category : nullptr;
    if (!slot)
      co_return http::problem_response(make_problem(
          400, "unknown_parameter", "unknown parameter \"" + k + "\"; allowed: account, marketplace, category"));
    if (v.empty())
      co_return http::problem_response(make_problem(400, "invalid_parameter", k + " must not be empty"));
    *slot = v;
  }
  if (category && !mws::is_category(*category))
    co_return http::problem_response(make_problem(
        400, "invalid_category",
        "unknown category \"" + *category +
            "\"; allowed: Inventory, Selection, Pricing, Fulfillment, ListingQuality, GlobalSelling, Advertising"));
  std::size_t n = co_await st->mws->purge(account, marketplace, category);
  // Ads answers belong to no marketplace or category: purged when neither is given.
  if (!marketplace && !category) n += co_await st->ads->purge(account);
  log_info("cache purged", {{"request_id", ctx.request_id}, {"purged", n}});
  co_return http::json_response(200, "{\"purged\":" + std::to_string(n) + "}");
}

// Best effort: a database another program keeps locked, or a full disk,
// must not turn a clean stop into an abort. Only when the levels are written
// is the stop recorded as clean; otherwise the next start empties every
// bucket (store.hpp, previous_run_clean()).
void save_levels(Throttler& throttler, Store& store) {
  try {
    throttler.save_all();
    store.mark_clean_shutdown();
  } catch (const std::exception& e) {
    log_warn("cannot save quota bucket levels at shutdown; the next start begins with empty buckets",
             {{"path", store.path()}, {"error", e.what()}});
  }
}

using Fn = awaitable<Response> (*)(const AppState*, Context&);
http::Route route(http::Verb v, std::string pattern, std::string name, const AppState* st, Fn fn,
                 bool watch_disconnect = false) {
  return http::Route{v, std::move(pattern), std::move(name), [st, fn](Context& c) { return fn(st, c); },
                     watch_disconnect, {}};
}

// Raises the descriptor limit as far as allowed and sizes the connection
// budget from it (config's max_connections, else what the limit leaves once
// upstream sockets and SQLite have their share); logs both, as nginx does.
std::size_t connection_budget(const Config& cfg) {
  const http::FdLimit fds = http::raise_fd_limit();
  const std::size_t reserve = http::fd_reserve(cfg.upstream.max_connections_per_origin);
  if (!fds.error.empty())
    log_warn("cannot raise the file descriptor limit", {{"soft", fds.soft}, {"hard", fds.hard}, {"error", fds.error}});
  const std::size_t max = cfg.max_connections > 0 ? cfg.max_connections : http::derive_max_connections(fds.soft, reserve);
  log_info("file descriptor limit", {{"soft_before", fds.soft_before}, {"soft", fds.soft}, {"hard", fds.hard},
                                     {"reserved", reserve}, {"max_connections", max},
                                     {"max_connections_from", cfg.max_connections > 0 ? "config" : "limit"}});
  if (cfg.max_connections > 0 && cfg.max_connections + reserve > fds.soft)
    log_warn("max_connections exceeds what the file descriptor limit leaves for clients; "
             "accept will back off when descriptors run out",
             {{"max_connections", max}, {"soft", fds.soft}, {"reserved", reserve}});
  return max;
}

}  // namespace

int run_app(const Config& cfg) {
  LogLevel level = LogLevel::info;
  parse_log_level(cfg.log.level, level);
  set_log_level(level);
  Metrics::instance().gauge("recgate_build_info", "Build information; the value is always 1.",
                            {{"version", RECGATE_VERSION}})
      .set(1);

  std::unique_ptr<Store> store;
  try {
    store = Store::open(cfg.database);
  } catch (const std::exception& e) {
    log_error("cannot open database", {{"path", cfg.database}, {"error", e.what()}});
    return 1;
  }

  AppState st{cfg, nullptr, nullptr, nullptr, nullptr, nullptr, {}, {}};
  st.store = store.get();
  for (const auto& c : cfg.clients) {
    st.client_key_digests.push_back(digest(c.key));
    st.client_names.push_back(c.name);
  }

  http::ServerOptions opts;
  opts.listen = cfg.listen;
  opts.threads = cfg.threads > 0 ? cfg.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  opts.max_header_bytes = cfg.max_header_bytes;
  opts.max_body_bytes = cfg.max_body_bytes;
  opts.read_timeout = std::chrono::milliseconds(cfg.read_timeout_ms);
  opts.idle_timeout = std::chrono::milliseconds(cfg.idle_timeout_ms);
  opts.drain_timeout = std::chrono::milliseconds(cfg.drain_timeout_ms);
  opts.header_timeout = std::chrono::milliseconds(cfg.header_timeout_ms);
  opts.max_connections = connection_budget(cfg);
  opts.access_log = cfg.log.access;

  std::vector<http::Route> routes = {
      route(http::Verb::get, "/healthz", "healthz", &st, handle_healthz),
      route(http::Verb::get, "/readyz", "readyz", &st, handle_readyz),
      route(http::Verb::get, "/metrics", "metrics", &st, handle_metrics),
      route(http::Verb::get, "/openapi.yaml", "openapi", &st, handle_openapi),
      route(http::Verb::get, "/v1/status", "status", &st, handle_status),
      route(http::Verb::get, "/v1/mws/{account}/recommendations", "mws_recommendations", &st,
            handle_mws_recommendations, true),
      route(http::Verb::get, "/v1/mws/{account}/last-updated", "mws_last_updated", &st, handle_mws_last_updated,
            true),
      route(http::Verb::post, "/v1/ads/{account}/product-recommendations", "ads_product_recommendations", &st,
            handle_ads_product_recommendations, true),
      route(http::Verb::delete_, "/v1/cache", "cache_purge", &st, handle_purge),
  };

  // Cache hits are answered synchronously from memory, before any coroutine,
  // watcher or await (st.mws is set below, before the server starts).
  for (auto& r : routes)
    if (r.name == "mws_recommendations")
      r.fast = [stp = &st](Context& c) -> std::optional<Response> {
        if (!authorized(*stp, c)) return std::nullopt;
        return stp->mws->try_hit(c);
      };

  http::Server server(opts, std::move(routes));
  st.server = &server;
  Metrics::instance().add_collector([open = server.connections()](Metrics& m) {
    m.gauge("recgate_http_connections", "Client connections open now.")
        .set(static_cast<double>(open->load(std::memory_order_relaxed)));
  });

  upstream::ClientOptions copts;
  copts.connect_timeout = std::chrono::milliseconds(cfg.upstream.connect_timeout_ms);
  copts.request_timeout = std::chrono::milliseconds(cfg.upstream.request_timeout_ms);
  copts.ca_file = cfg.upstream.ca_file;
  copts.max_response_bytes = cfg.upstream.max_response_bytes;
  copts.max_connections_per_origin = cfg.upstream.max_connections_per_origin;
  copts.user_agent = upstream::mws_user_agent("recgate", RECGATE_VERSION);
  std::unique_ptr<upstream::HttpClient> client;
  try {
    client = std::make_unique<upstream::HttpClient>(server.ioc().get_executor(), copts);
  } catch (const std::exception& e) {
    log_error("cannot set up the upstream client", {{"error", e.what()}});
    return 1;
  }
  // These read their state from the database: any error there is one line
  // naming the file and exit 1, never an uncaught exception.
  std::unique_ptr<Throttler> throttler;
  std::unique_ptr<MwsService> mws;
  std::unique_ptr<AdsService> ads;
  try {
    throttler = std::make_unique<Throttler>(cfg.throttle, store.get());
    mws = std::make_unique<MwsService>(cfg, *store, *client, *throttler, server.ioc().get_executor());
    ads = std::make_unique<AdsService>(cfg, *store, *client, *throttler, server.ioc().get_executor());
  } catch (const std::exception& e) {
    log_error("cannot read the database", {{"path", cfg.database}, {"error", e.what()}});
    return 1;
  }
  st.throttler = throttler.get();
  st.mws = mws.get();
  st.ads = ads.get();
  cache::RetentionTimer retention(server.ioc(), *store, cache::retention_config(cfg),
                                  std::chrono::seconds(cfg.cache.prune_interval_s));
  // [refresh] Refresh ahead: one tick per mws.check_interval_s (at least 1 s).
  refresh::Scheduler refresher(server.ioc().get_executor(),
                               std::chrono::seconds(std::max(1, cfg.mws.check_interval_s)), kRefreshPerTick);
  if (cfg.cache.refresh_ahead) {
    refresher.add(mws->refresh_source());
    refresher.start();
    st.refresher = &refresher;
  }
  // Handlers before the port is announced: a SIGTERM right after
  // "listening" drains (and saves the levels) instead of killing.
  net::signal_set signals(server.ioc(), SIGINT, SIGTERM);
  // The first SIGTERM/SIGINT drains; a second one during the drain exits at
  // once (an operator who asks twice does not want to wait), skipping the
  // saves a drain would do.
  bool signalled = false;  // touched only on the main io_context
  std::function<void(const boost::system::error_code&, int)> on_signal =
      [&](const boost::system::error_code& ec, int sig) {
        if (ec) return;
        if (std::exchange(signalled, true)) {
          log_warn("second signal during drain; exiting now", {{"signal", sig}});
          std::_Exit(128 + sig);
        }
        log_info("signal received; draining", {{"signal", sig}});
        refresher.stop();  // [refresh] no background refetch during a drain
        server.shutdown();
        signals.async_wait(on_signal);
      };
  signals.async_wait(on_signal);
  try {
    server.start();
  } catch (const std::exception& e) {
    log_error("cannot start", {{"error", e.what()}});
    return 1;
  }
  log_info("recgate started", {{"version", RECGATE_VERSION}, {"threads", opts.threads},
                               {"database", cfg.database}, {"clients", cfg.clients.size()}});
  server.run();
  client->shutdown();
  save_levels(*throttler, *store);
  store->flush();
  log_info("recgate stopped");
  return 0;
}

}  // namespace recgate
