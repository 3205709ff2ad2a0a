// Route adapters for the sandbox's Ads and LWA endpoints (see ads_routes.hpp):
// headers in, AdsOutcome out, the fault's latency on an Asio timer.
#include "sandbox/ads_routes.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "sandbox/admin.hpp"
#include "sandbox/ads_state.hpp"
#include "sandbox/routes.hpp"

namespace recgate::sandbox {

namespace net = boost::asio;
using http::Context;
using http::Response;

namespace {

net::awaitable<Response> respond(AdsOutcome out, Context& ctx) {
  if (!out.code.empty()) ctx.log_fields.emplace_back("ads_code", out.code);
  if (out.latency.count() > 0) {
    net::steady_timer timer(co_await net::this_coro::executor);
    timer.expires_after(out.latency);
    co_await timer.async_wait(net::use_awaitable);
  }
  co_return make_response(out.status, std::move(out.body), out.headers);
}

net::awaitable<Response> token_handler(SandboxState* state, Context& ctx) {
  TokenInput in;
  in.content_type = std::string(ctx.header("Content-Type"));
  in.body = ctx.req.body();
  AdsOutcome out = state->ads().token(in, std::chrono::steady_clock::now());
  co_return co_await respond(std::move(out), ctx);
}

net::awaitable<Response> recommendations_handler(SandboxState* state, Context& ctx) {
  AdsInput in;
  in.content_type = std::string(ctx.header("Content-Type"));
  in.accept = std::string(ctx.header("Accept"));
  in.authorization = std::string(ctx.header("Authorization"));
  in.client_id = std::string(ctx.header("Amazon-Advertising-API-ClientId"));
  in.scope = std::string(ctx.header("Amazon-Advertising-API-Scope"));
  in.body = ctx.req.body();
  AdsOutcome out = state->ads().recommendations(in, std::chrono::steady_clock::now());
  co_return co_await respond(std::move(out), ctx);
}

net::awaitable<Response> faults_handler(SandboxState* state, bool add, Context& ctx) {
  AdsAdminAnswer a;
  if (!admin_authorized(state->config(), ctx.header("Authorization"), ctx.header("X-Admin-Token"))) {
    AdminAnswer u = admin_unauthorized();
    a = AdsAdminAnswer{u.status, u.body, u.content_type};
  } else if (add) {
    a = state->ads().add_fault(ctx.req.body(), std::chrono::steady_clock::now());
  } else {
    state->ads().clear_faults();
    a = AdsAdminAnswer{200, "{\"cleared\":true}"};
  }
  std::vector<std::pair<std::string, std::string>> headers;
  headers.emplace_back("Content-Type", a.content_type);
  headers.emplace_back("Cache-Control", "no-store");
  co_return make_response(a.status, std::move(a.body), headers);
}

net::awaitable<Response> limit_handler(SandboxState* state, bool set, Context& ctx) {
  AdsAdminAnswer a;
  if (!admin_authorized(state->config(), ctx.header("Authorization"), ctx.header("X-Admin-Token"))) {
    AdminAnswer u = admin_unauthorized();
    a = AdsAdminAnswer{u.status, u.body, u.content_type};
  } else if (set) {
    a = state->ads().set_limit(ctx.req.body(), std::chrono::steady_clock::now());
  } else {
    a = AdsAdminAnswer{200, state->ads().limit_json()};
  }
  std::vector<std::pair<std::string, std::string>> headers;
  headers.emplace_back("Content-Type", a.content_type);
  headers.emplace_back("Cache-Control", "no-store");
  co_return make_response(a.status, std::move(a.body), headers);
}

}  // namespace

std::vector<http::Route> ads_routes(SandboxState& state) {
  SandboxState* st = &state;
  std::vector<http::Route> routes;
  routes.push_back(http::Route{http::Verb::post, "/auth/o2/token", "lwa_token",
                               [st](Context& ctx) { return token_handler(st, ctx); }});
  routes.push_back(http::Route{http::Verb::post, "/sp/targets/products/recommendations", "ads_recommendations",
                               [st](Context& ctx) { return recommendations_handler(st, ctx); }});
  routes.push_back(http::Route{http::Verb::post, "/admin/ads/faults", "admin_ads_faults",
                               [st](Context& ctx) { return faults_handler(st, true, ctx); }});
  routes.push_back(http::Route{http::Verb::delete_, "/admin/ads/faults", "admin_ads_faults",
                               [st](Context& ctx) { return faults_handler(st, false, ctx); }});
  routes.push_back(http::Route{http::Verb::get, "/admin/ads/limit", "admin_ads_limit",
                               [st](Context& ctx) { return limit_handler(st, false, ctx); }});
  routes.push_back(http::Route{http::Verb::put, "/admin/ads/limit", "admin_ads_limit",
                               [st](Context& ctx) { return limit_handler(st, true, ctx); }});
  return routes;
}

}  // namespace recgate::sandbox
