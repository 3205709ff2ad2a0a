// Route adapters: Context -> HttpInput / admin call -> Response. With
// wire_send.cpp and ads_routes.cpp the only sandbox code that touches Asio
// (the latency fault's timer, the hand-over of wire faults, the cut-off answer).
#include "sandbox/routes.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/write.hpp>

#include <algorithm>
#include <functional>
#include <sstream>

#include "sandbox/admin.hpp"
#include "sandbox/mws_service.hpp"
#include "sandbox/wire_send.hpp"
#include "sandbox/xml.hpp"

namespace recgate::sandbox {

namespace net = boost::asio;
using http::Context;
using http::Response;

Response make_response(int status, std::string body, const std::vector<std::pair<std::string, std::string>>& headers) {
  Response res;
  res.result(static_cast<unsigned>(status));
  res.version(11);
  for (const auto& [k, v] : headers) res.set(k, v);
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

namespace {

Response admin_response(const AdminAnswer& a) {
  return make_response(a.status, a.body, {{"Content-Type", a.content_type}, {"Cache-Control", "no-store"}});
}

net::awaitable<void> act_out_wire(boost::beast::tcp_stream& stream, WirePlan plan, SandboxState* state) {
  const WireReport report = co_await send_wire_fault(stream, std::move(plan));
  state->record_wire(report);
}

WirePlan wire_plan(const MwsOutcome& out) {
  WirePlan plan;
  plan.mode = out.wire;
  plan.status = out.status;
  plan.body = out.body;
  plan.lazy_bytes = out.wire_bytes;
  for (const auto& [k, v] : out.headers) plan.headers.emplace_back(k, v);
  return plan;
}

std::size_t header_bytes(const Response& res) {
  std::ostringstream os;
  os << res.base();
  return os.str().size();
}

net::awaitable<void> send_bytes(boost::beast::tcp_stream& stream, std::string bytes) {
  stream.expires_after(std::chrono::seconds(10));
  co_await net::async_write(stream, net::buffer(bytes), net::as_tuple(net::use_awaitable));
}

// The drop fault: the answer as it would go out (request id, Connection:
// close), cut off after its header, 256 bytes and half its body; the server
// closes the connection after it.
std::function<net::awaitable<void>(boost::beast::tcp_stream&)> cut_off(const Context& ctx, Response res) {
  const std::size_t cut = header_bytes(res) + 256 + res.body().size() / 2;
  res.set("X-Request-Id", ctx.request_id);
  res.version(ctx.req.version());
  res.keep_alive(false);
  res.prepare_payload();
  std::ostringstream os;
  os << res;
  std::string wire = os.str();
  wire.resize(std::min(wire.size(), cut));
  return [wire = std::move(wire)](boost::beast::tcp_stream& stream) { return send_bytes(stream, wire); };
}

net::awaitable<Response> mws_handler(SandboxState* state, Context& ctx) {
  const Now now = Now::current();
  HttpInput in;
  in.method = std::string(ctx.req.method_string());
  in.target = std::string(ctx.req.target());
  in.host = std::string(ctx.header("Host"));
  in.content_type = std::string(ctx.header("Content-Type"));
  in.body = ctx.req.body();

  MwsOutcome out;
  if (const auto version = ctx.param("version"); version != kMwsVersion) {
    out.request_id = new_request_id();
    out.status = 404;
    out.error_code = "InvalidAddress";
    out.body = render_error(MwsError{404, "Sender", "InvalidAddress",
                                     "The section version " + std::string(version) +
                                         " does not exist; Recommendations is 2013-04-01."},
                            out.request_id);
    out.headers = {{"Content-Type", "text/xml"}, {"x-mws-request-id", out.request_id}};
  } else {
    out = handle_mws(*state, in, now);
  }
  if (!out.action.empty()) ctx.log_fields.emplace_back("mws_action", out.action);
  if (!out.error_code.empty()) ctx.log_fields.emplace_back("mws_code", out.error_code);
  if (out.latency.count() > 0) {
    net::steady_timer timer(co_await net::this_coro::executor);
    timer.expires_after(out.latency);
    co_await timer.async_wait(net::use_awaitable);
  }
  if (out.wire != WireMode::none)
    ctx.raw_response = [plan = wire_plan(out), state](boost::beast::tcp_stream& stream) {
      return act_out_wire(stream, plan, state);
    };
  Response res = make_response(out.status, std::move(out.body), out.headers);
  if (out.wire == WireMode::none && out.drop) ctx.raw_response = cut_off(ctx, res);
  co_return res;
}

enum class AdminOp { touch, add_fault, clear_faults, stats, reset };

net::awaitable<Response> admin_handler(SandboxState* state, AdminOp op, Context& ctx) {
  if (!admin_authorized(state->config(), ctx.header("Authorization"), ctx.header("X-Admin-Token")))
    co_return admin_response(admin_unauthorized());
  const Now now = Now::current();
  switch (op) {
    case AdminOp::touch:
      co_return admin_response(admin_touch(*state, ctx.query, now.wall));
    case AdminOp::add_fault:
      co_return admin_response(admin_add_fault(*state, ctx.req.body()));
    case AdminOp::clear_faults:
      co_return admin_response(admin_clear_faults(*state));
    case AdminOp::stats:
      co_return admin_response(admin_stats(*state, now.mono));
    case AdminOp::reset:
      co_return admin_response(admin_reset(*state, now));
  }
  co_return admin_response(AdminAnswer{500, "{}"});
}

net::awaitable<Response> health_handler(Context&) {
  co_return make_response(200, "{\"status\":\"ok\"}", {{"Content-Type", "application/json"}});
}

http::Route admin_route(SandboxState& state, http::Verb verb, std::string pattern, std::string name, AdminOp op) {
  SandboxState* st = &state;
  return http::Route{verb, std::move(pattern), std::move(name),
                     [st, op](Context& ctx) { return admin_handler(st, op, ctx); }};
}

}  // namespace

std::vector<http::Route> mws_routes(SandboxState& state) {
  SandboxState* st = &state;
  return {http::Route{http::Verb::post, "/Recommendations/{version}", "mws_recommendations",
                      [st](Context& ctx) { return mws_handler(st, ctx); }}};
}

std::vector<http::Route> admin_routes(SandboxState& state) {
  std::vector<http::Route> routes;
  routes.push_back(admin_route(state, http::Verb::post, "/admin/touch", "admin_touch", AdminOp::touch));
  routes.push_back(admin_route(state, http::Verb::post, "/admin/faults", "admin_faults", AdminOp::add_fault));
  routes.push_back(admin_route(state, http::Verb::delete_, "/admin/faults", "admin_faults", AdminOp::clear_faults));
  routes.push_back(admin_route(state, http::Verb::get, "/admin/stats", "admin_stats", AdminOp::stats));
  routes.push_back(admin_route(state, http::Verb::post, "/admin/reset", "admin_reset", AdminOp::reset));
  routes.push_back(http::Route{http::Verb::get, "/healthz", "healthz", [](Context& ctx) { return health_handler(ctx); }});
  return routes;
}

}  // namespace recgate::sandbox
