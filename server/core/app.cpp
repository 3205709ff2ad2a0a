// Composition root (see app.hpp), in the order things depend on each other:
// I/O threads, store, upstream client, throttler, services, routes, server.
// Also the health, readiness, metrics, status and purge handlers, signals
// and the drain.
#include "core/app.hpp"

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
#include "core/services/ads_routes.hpp"
#include "core/refresh/scheduler.hpp"
#include "core/services/ads_service.hpp"
#include "core/services/mws_routes.hpp"
#include "core/services/mws_service.hpp"
#include "core/store.hpp"
#include "core/redis/client.hpp"
#include "core/redis/lease.hpp"
#include "core/redis/shared_cache.hpp"
#include "core/throttle/shared_bucket.hpp"
#include "core/throttle/throttler.hpp"
#include "core/upstream/http_client.hpp"

namespace recgate {
namespace {

namespace net = boost::asio;
using http::Context;
using http::Response;
using net::awaitable;

// What the handlers reach, every part built before the routes.
struct App {
  const Config& cfg;
  const http::Drain& drain;
  Store& store;
  Throttler& throttler;
  MwsService& mws;
  AdsService& ads;
  const refresh::Scheduler* refresher;  // [refresh] null: cache.refresh_ahead off
};

// [refresh] Refreshes and background checks per tick at most: bounded work
// (spare quota bounds it further).
constexpr std::size_t kRefreshPerTick = 64;

// [refresh] Refreshes pending on one bucket (0 with refresh ahead off).
std::size_t refresh_backlog(const App* app, const std::string& account, const std::string& group) {
  if (!app->refresher) return 0;
  std::size_t n = 0;
  for (const auto& r : app->refresher->backlog())
    if (r.account == account && r.bucket == group) n += r.pending;
  return n;
}

awaitable<Response> handle_healthz(const App*, Context&) {
  co_return http::json_response(200, "{\"status\":\"ok\"}");
}

awaitable<Response> handle_readyz(const App* app, Context&) {
  if (app->drain.draining())
    co_return http::json_response(503, "{\"status\":\"draining\",\"reason\":\"shutting down\"}");
  bool db_ok = false;
  try {
    db_ok = co_await app->store.run([](Db& db) {
      auto s = db.prepare("SELECT COALESCE(MAX(version),0) FROM schema_migrations");
      return s.step() && s.int64(0) > 0;
    });
  } catch (const std::exception&) {
    db_ok = false;
  }
  if (!db_ok)
    co_return http::json_response(503, "{\"status\":\"not_ready\",\"reason\":\"database not open or not migrated\"}");
  co_return http::json_response(200, "{\"status\":\"ready\",\"schemaVersion\":" +
                                         std::to_string(app->store.schema_version()) + "}");
}

awaitable<Response> handle_metrics(const App*, Context&) {
  co_return http::text_response(200, Metrics::instance().render(), "text/plain; version=0.0.4; charset=utf-8");
}

awaitable<Response> handle_openapi(const App*, Context&) {
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

awaitable<Response> handle_status(const App* app, Context&) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.StartObject();
  w.Key("version");
  w.String(RECGATE_VERSION);
  w.Key("draining");
  w.Bool(app->drain.draining());
  w.Key("schemaVersion");
  w.Int(app->store.schema_version());
  w.Key("quotaMode");  // [scale] single, shared (Redis) or fallback (Redis unreachable)
  w.String(app->throttler.mode().c_str());
  w.Key("upstreams");
  w.StartObject();
  w.Key("mws");
  write_upstream_kind(w, app->cfg.mws.endpoint, true);
  w.Key("ads");
  write_upstream_kind(w, app->cfg.ads.endpoint, false);
  w.EndObject();
  w.Key("buckets");
  w.StartArray();
  for (const auto& b : app->throttler.status()) {
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
    w.Uint64(refresh_backlog(app, b.account, b.operation));
    w.EndObject();
  }
  w.EndArray();
  auto ms = app->mws.stats();
  w.Key("cache");
  w.StartObject();
  w.Key("mws");
  w.StartObject();
  w.Key("memoryEntries"); w.Uint64(ms.memory_entries);
  w.Key("memoryBytes"); w.Uint64(ms.memory_bytes);
  w.Key("snapshots"); w.Uint64(ms.snapshots);
  w.EndObject();
  auto as = app->ads.stats();
  w.Key("ads");
  w.StartObject();
  w.Key("memoryEntries"); w.Uint64(as.memory_entries);
  w.Key("memoryBytes"); w.Uint64(as.memory_bytes);
  w.EndObject();
  w.EndObject();
  w.Key("upstream");
  w.StartObject();
  w.Key("inFlight"); w.Uint64(ms.in_flight + as.in_flight);
  w.Key("mwsEndpoint"); w.String(app->cfg.mws.endpoint.empty() ? "amazon" : app->cfg.mws.endpoint.c_str());
  w.Key("adsEndpoint"); w.String(app->cfg.ads.endpoint.empty() ? "amazon" : app->cfg.ads.endpoint.c_str());
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

awaitable<Response> handle_purge(const App* app, Context& ctx) {
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
  std::size_t n = co_await app->mws.purge(account, marketplace, category);
  // Ads answers belong to no marketplace or category: purged when neither is given.
  if (!marketplace && !category) n += co_await app->ads.purge(account);
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

// A plain lambda returning the named coroutine (docs/coroutines.md R3).
http::Handler bind(const App* app, awaitable<Response> (*fn)(const App*, Context&)) {
  return [app, fn](Context& c) { return fn(app, c); };
}

http::ClientKeys client_keys(const Config& cfg) {
  std::vector<http::ClientKeys::Client> clients;
  for (const auto& c : cfg.clients) clients.push_back({c.name, c.key});
  return http::ClientKeys(clients);
}

// recgate's API. `auth`: a configured client key is required (the router
// checks it before the fast path and the handler). The upstream routes
// watch for the client leaving while they queue for quota; a cache hit is
// answered synchronously from memory, before any coroutine, watcher or await.
http::Router routes(const App* app) {
  using V = http::Verb;
  return http::Router(
      {
          {.method = V::get, .pattern = "/healthz", .name = "healthz", .handler = bind(app, handle_healthz)},
          {.method = V::get, .pattern = "/readyz", .name = "readyz", .handler = bind(app, handle_readyz)},
          {.method = V::get, .pattern = "/metrics", .name = "metrics", .handler = bind(app, handle_metrics)},
          {.method = V::get, .pattern = "/openapi.yaml", .name = "openapi", .handler = bind(app, handle_openapi)},
          {.method = V::get, .pattern = "/v1/status", .name = "status", .handler = bind(app, handle_status),
           .auth = true},
          {.method = V::get,
           .pattern = "/v1/mws/{account}/recommendations",
           .name = "mws_recommendations",
           .handler = [app](Context& c) { return mws_routes::recommendations(app->mws, c); },
           .watch_disconnect = true,
           .fast = [app](Context& c) { return mws_routes::try_hit(app->mws, c); },
           .auth = true},
          {.method = V::get,
           .pattern = "/v1/mws/{account}/last-updated",
           .name = "mws_last_updated",
           .handler = [app](Context& c) { return mws_routes::last_updated(app->mws, c); },
           .watch_disconnect = true,
           .auth = true},
          {.method = V::post,
           .pattern = "/v1/ads/{account}/product-recommendations",
           .name = "ads_product_recommendations",
           .handler = [app](Context& c) { return ads_routes::product_recommendations(app->ads, c); },
           .watch_disconnect = true,
           .auth = true},
          {.method = V::delete_, .pattern = "/v1/cache", .name = "cache_purge", .handler = bind(app, handle_purge),
           .auth = true},
      },
      client_keys(app->cfg));
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

http::ServerOptions server_options(const Config& cfg) {
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
  return opts;
}

void start_logging(const Config& cfg) {
  LogLevel level = LogLevel::info;
  parse_log_level(cfg.log.level, level);
  set_log_level(level);
  Metrics::instance().gauge("recgate_build_info", "Build information; the value is always 1.",
                            {{"version", RECGATE_VERSION}})
      .set(1);
}

std::unique_ptr<Store> open_store(const Config& cfg) {
  try {
    return Store::open(cfg.database);
  } catch (const std::exception& e) {
    log_error("cannot open database", {{"path", cfg.database}, {"error", e.what()}});
    return nullptr;
  }
}

std::unique_ptr<upstream::HttpClient> upstream_client(const Config& cfg, net::any_io_executor ex) {
  upstream::ClientOptions copts;
  copts.connect_timeout = std::chrono::milliseconds(cfg.upstream.connect_timeout_ms);
  copts.request_timeout = std::chrono::milliseconds(cfg.upstream.request_timeout_ms);
  copts.ca_file = cfg.upstream.ca_file;
  copts.max_response_bytes = cfg.upstream.max_response_bytes;
  copts.max_connections_per_origin = cfg.upstream.max_connections_per_origin;
  copts.user_agent = upstream::mws_user_agent("recgate", RECGATE_VERSION);
  try {
    return std::make_unique<upstream::HttpClient>(ex, copts);
  } catch (const std::exception& e) {
    log_error("cannot set up the upstream client", {{"error", e.what()}});
    return nullptr;
  }
}

// [scale] One quota, one cache tier and cross-replica leases when redis.url is set. Built before the
// services and destroyed after them: the throttler's shared-bucket
// coroutines use the client until the end.
struct SharedQuota {
  std::unique_ptr<redis::Client> client;
  std::unique_ptr<SharedBuckets> buckets;
  std::unique_ptr<redis::SharedCache> cache;  // items 2 and 3 of [scale]
  std::unique_ptr<redis::Lease> lease;
};

SharedQuota shared_quota(const Config& cfg) {
  SharedQuota q;
  if (cfg.redis.url.empty()) return q;
  redis::ClientOptions ropts;
  ropts.url = *redis::parse_url(cfg.redis.url);  // checked by the config
  ropts.timeout = std::chrono::milliseconds(cfg.redis.timeout_ms);
  q.client = std::make_unique<redis::Client>(ropts);
  q.buckets = std::make_unique<SharedBuckets>(*q.client, cfg.redis.key_prefix);
  q.cache = std::make_unique<redis::SharedCache>(*q.client, cfg.redis.key_prefix);
  q.lease = std::make_unique<redis::Lease>(*q.client, cfg.redis.key_prefix);
  return q;
}

// The throttler and the services read their state from the database: any
// error there is one line naming the file and exit 1, never an uncaught
// exception.
struct Services {
  std::unique_ptr<Throttler> throttler;
  std::unique_ptr<MwsService> mws;
  std::unique_ptr<AdsService> ads;
};

std::optional<Services> build_services(const Config& cfg, Store& store, upstream::HttpClient& client,
                                       SharedQuota& quota, net::any_io_executor ex) {
  try {
    Services s;
    s.throttler = std::make_unique<Throttler>(cfg.throttle, &store);
    if (quota.buckets) s.throttler->share_through(*quota.buckets, cfg.redis.replicas, ex);
    s.mws = std::make_unique<MwsService>(cfg, store, client, *s.throttler, ex);
    s.ads = std::make_unique<AdsService>(cfg, store, client, *s.throttler, ex);
    if (quota.cache) {  // [scale] items 2 and 3: the shared cache tier and the cross-replica lease
      s.mws->share_through(*quota.cache, *quota.lease);
      s.ads->share_through(*quota.cache, *quota.lease);
    }
    return s;
  } catch (const std::exception& e) {
    log_error("cannot read the database", {{"path", cfg.database}, {"error", e.what()}});
    return std::nullopt;
  }
}

void count_connections(const http::Server& server) {
  Metrics::instance().add_collector([open = server.connections()](Metrics& m) {
    m.gauge("recgate_http_connections", "Client connections open now.")
        .set(static_cast<double>(open->load(std::memory_order_relaxed)));
  });
}

// The first SIGTERM/SIGINT drains; a second one during the drain exits at
// once (an operator who asks twice does not want to wait), skipping the
// saves a drain would do. Armed before the port is announced: a SIGTERM
// right after "listening" drains (and saves the levels) instead of killing.
class Signals {
 public:
  explicit Signals(http::Server& server) : server_(server), set_(server.ioc(), SIGINT, SIGTERM) { arm(); }

 private:
  void arm() {
    set_.async_wait([this](const boost::system::error_code& ec, int sig) { on_signal(ec, sig); });
  }
  void on_signal(const boost::system::error_code& ec, int sig) {
    if (ec) return;
    if (std::exchange(signalled_, true)) {
      log_warn("second signal during drain; exiting now", {{"signal", sig}});
      std::_Exit(128 + sig);
    }
    log_info("signal received; draining", {{"signal", sig}});
    server_.shutdown();
    arm();
  }
  http::Server& server_;
  net::signal_set set_;
  bool signalled_ = false;  // touched only on the main io_context
};

}  // namespace

int run_app(const Config& cfg) {
  start_logging(cfg);
  const http::ServerOptions opts = server_options(cfg);
  http::IoThreads threads(opts.threads);
  http::Drain drain;
  const std::unique_ptr<Store> store = open_store(cfg);
  if (!store) return 1;
  const std::unique_ptr<upstream::HttpClient> client = upstream_client(cfg, threads.main().get_executor());
  if (!client) return 1;
  SharedQuota quota = shared_quota(cfg);
  std::optional<Services> services = build_services(cfg, *store, *client, quota, threads.main().get_executor());
  if (!services) return 1;
  // [refresh] Refresh ahead: one tick per mws.check_interval_s (at least 1 s); stops on drain.
  refresh::Scheduler refresher(threads.main().get_executor(), std::chrono::seconds(std::max(1, cfg.mws.check_interval_s)),
                               kRefreshPerTick, [&drain] { return drain.draining(); });
  if (cfg.cache.refresh_ahead) {
    refresher.add(services->mws->refresh_source());
    refresher.add(services->ads->refresh_source());
    refresher.start();
  }
  const App app{cfg, drain, *store, *services->throttler, *services->mws, *services->ads,
                cfg.cache.refresh_ahead ? &refresher : nullptr};
  http::Server server(threads, drain, opts, routes(&app));
  count_connections(server);
  cache::RetentionTimer retention(threads.main(), *store, cache::retention_config(cfg),
                                  std::chrono::seconds(cfg.cache.prune_interval_s));
  Signals signals(server);
  try {
    server.start();
  } catch (const std::exception& e) {
    log_error("cannot start", {{"error", e.what()}});
    return 1;
  }
  store->check_in_background();  // a large file: checked now the port is open, not before
  log_info("recgate started", {{"version", RECGATE_VERSION}, {"threads", opts.threads},
                               {"database", cfg.database}, {"clients", cfg.clients.size()}});
  server.run();
  client->shutdown();
  save_levels(app.throttler, *store);
  store->flush();
  log_info("recgate stopped");
  return 0;
}

}  // namespace recgate
