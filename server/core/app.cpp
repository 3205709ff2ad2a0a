// Composition root (see app.hpp): the route table, client authentication,
// health, readiness, metrics and status handlers, signals and drain.
#include "core/app.hpp"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <boost/asio/signal_set.hpp>
#include <thread>

#include "core/http/server.hpp"
#include "core/log.hpp"
#include "core/metrics.hpp"
#include "core/mws/model.hpp"
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

struct AppState {
  const Config& cfg;
  Store* store = nullptr;
  http::Server* server = nullptr;
  Throttler* throttler = nullptr;
  MwsService* mws = nullptr;
  AdsService* ads = nullptr;
  std::vector<std::array<unsigned char, SHA256_DIGEST_LENGTH>> client_key_digests;
  std::vector<std::string> client_names;  // parallel to client_key_digests
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

using Fn = awaitable<Response> (*)(const AppState*, Context&);
http::Route route(http::Verb v, std::string pattern, std::string name, const AppState* st, Fn fn,
                 bool watch_disconnect = false) {
  return http::Route{v, std::move(pattern), std::move(name), [st, fn](Context& c) { return fn(st, c); },
                     watch_disconnect, {}};
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
  opts.access_log = cfg.log.access;

  std::vector<http::Route> routes = {
      route(http::Verb::get, "/healthz", "healthz", &st, handle_healthz),
      route(http::Verb::get, "/readyz", "readyz", &st, handle_readyz),
      route(http::Verb::get, "/metrics", "metrics", &st, handle_metrics),
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
  Throttler throttler(cfg.throttle, store.get());
  st.throttler = &throttler;
  MwsService mws(cfg, *store, *client, throttler, server.ioc().get_executor());
  st.mws = &mws;
  AdsService ads(cfg, *store, *client, throttler, server.ioc().get_executor());
  st.ads = &ads;
  try {
    server.start();
  } catch (const std::exception& e) {
    log_error("cannot start", {{"error", e.what()}});
    return 1;
  }
  net::signal_set signals(server.ioc(), SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    log_info("signal received; draining", {{"signal", sig}});
    server.shutdown();
  });
  log_info("recgate started", {{"version", RECGATE_VERSION}, {"threads", opts.threads},
                               {"database", cfg.database}, {"clients", cfg.clients.size()}});
  server.run();
  client->shutdown();
  throttler.save_all();
  store->flush();
  log_info("recgate stopped");
  return 0;
}

}  // namespace recgate
