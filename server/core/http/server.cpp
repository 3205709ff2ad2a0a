// The Beast coroutine server: accept loop, one session coroutine per
// connection on its own strand (arm a deadline, read, dispatch through the
// route table, write, honour keep-alive), limits, access log, graceful drain.
#include "core/http/server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/http/parser.hpp>

#include <random>
#include <unordered_map>
#include <sstream>
#include <thread>

#include "core/config.hpp"
#include "core/log.hpp"
#include "core/metrics.hpp"
#include "core/mws/sigv2.hpp"

namespace recgate::http {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;
using net::awaitable;
using net::use_awaitable;
constexpr auto tuple_awaitable = net::as_tuple(net::use_awaitable);

std::string_view Context::param(std::string_view name) const {
  for (const auto& [k, v] : path_params)
    if (k == name) return v;
  return {};
}

std::string_view Context::header(std::string_view name) const {
  auto it = req.find(name);
  return it == req.end() ? std::string_view{} : std::string_view(it->value().data(), it->value().size());
}

Response json_response(int status, std::string body) {
  return text_response(status, std::move(body), "application/json");
}

Response text_response(int status, std::string body, std::string_view content_type) {
  Response res{static_cast<bhttp::status>(status), 11};
  res.set(bhttp::field::content_type, content_type);
  res.body() = std::move(body);
  return res;
}

Response problem_response(const Problem& p) {
  Response res = text_response(p.status, problem_body(p), "application/problem+json");
  for (const auto& [k, v] : p.headers) res.set(k, v);
  return res;
}

namespace {

std::string generate_request_id() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng()));
  return buf;
}

bool acceptable_request_id(std::string_view s) {
  if (s.empty() || s.size() > 128) return false;
  for (char c : s)
    if (c < 0x21 || c > 0x7e || c == '"' || c == '\\') return false;
  return true;
}

// Splits a path pattern or a path into segments.
std::vector<std::string_view> segments(std::string_view p) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < p.size()) {
    if (p[i] == '/') {
      ++i;
      continue;
    }
    auto j = p.find('/', i);
    if (j == std::string_view::npos) j = p.size();
    out.push_back(p.substr(i, j - i));
    i = j;
  }
  return out;
}

bool match(std::string_view pattern, std::string_view path, std::vector<std::pair<std::string, std::string>>& params) {
  auto ps = segments(pattern);
  auto xs = segments(path);
  if (ps.size() != xs.size()) return false;
  if ((pattern.size() > 1 && pattern.back() == '/') != (path.size() > 1 && path.back() == '/')) return false;
  std::vector<std::pair<std::string, std::string>> out;
  for (std::size_t i = 0; i < ps.size(); ++i) {
    if (ps[i].size() > 2 && ps[i].front() == '{' && ps[i].back() == '}') {
      out.emplace_back(std::string(ps[i].substr(1, ps[i].size() - 2)), std::string(xs[i]));
    } else if (ps[i] != xs[i]) {
      return false;
    }
  }
  params = std::move(out);
  return true;
}

// Query parsing for internal clients: '+' is a space (HTML forms), %XX decoded.
bool parse_query(std::string_view q, QueryParams& out) {
  std::size_t i = 0;
  while (i <= q.size() && !q.empty()) {
    auto amp = q.find('&', i);
    if (amp == std::string_view::npos) amp = q.size();
    auto part = q.substr(i, amp - i);
    if (!part.empty()) {
      auto eq = part.find('=');
      std::string k(part.substr(0, eq)), v(eq == std::string_view::npos ? "" : part.substr(eq + 1));
      for (auto& c : k)
        if (c == '+') c = ' ';
      for (auto& c : v)
        if (c == '+') c = ' ';
      std::string dk, dv;
      if (!mws::uri_decode(k, dk) || !mws::uri_decode(v, dv)) return false;
      out.emplace_back(std::move(dk), std::move(dv));
    }
    if (amp == q.size()) break;
    i = amp + 1;
  }
  return true;
}

std::string log_target(std::string_view target) {
  // Our API never carries secrets in the target, but scrub anything that looks like one.
  auto q = target.find('?');
  if (q == std::string_view::npos) return std::string(target);
  std::string out(target.substr(0, q + 1));
  QueryParams ps;
  std::string_view query = target.substr(q + 1);
  std::size_t i = 0;
  bool first = true;
  while (i <= query.size()) {
    auto amp = query.find('&', i);
    if (amp == std::string_view::npos) amp = query.size();
    auto part = query.substr(i, amp - i);
    auto eq = part.find('=');
    std::string key(part.substr(0, eq));
    std::string lower;
    for (char c : key) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    bool secret = lower.find("key") != std::string::npos || lower.find("token") != std::string::npos ||
                  lower.find("secret") != std::string::npos || lower.find("signature") != std::string::npos;
    if (!first) out += '&';
    first = false;
    out += secret && eq != std::string_view::npos ? key + "=REDACTED" : std::string(part);
    if (amp == query.size()) break;
    i = amp + 1;
  }
  return out;
}

}  // namespace

struct Server::Impl {
  ServerOptions opts;
  std::vector<Route> routes;
  tcp::acceptor acceptor;
  std::atomic<int> inflight{0};
  std::unique_ptr<net::steady_timer> drain_timer;
  Server* owner;

  // One io_context per I/O thread, each run by exactly that thread, so a
  // session needs no strand and never contends on a shared queue. Worker 0
  // is the Server's main io_context (services, signals, acceptor).
  std::vector<std::unique_ptr<net::io_context>>& extra_workers;  // owned by Server
  std::vector<net::executor_work_guard<net::io_context::executor_type>> guards;
  std::atomic<std::size_t> next_worker{0};
  net::io_context* main_ioc;

  Impl(net::io_context& ioc, std::vector<std::unique_ptr<net::io_context>>& workers, ServerOptions o,
       std::vector<Route> r, Server* s)
      : opts(std::move(o)), routes(std::move(r)), acceptor(ioc), owner(s), extra_workers(workers), main_ioc(&ioc) {
    for (int i = 1; i < std::max(1, opts.threads); ++i) {
      extra_workers.push_back(std::make_unique<net::io_context>(1));
      guards.push_back(net::make_work_guard(*extra_workers.back()));
    }
  }

  net::io_context& pick_worker() {
    const std::size_t n = extra_workers.size() + 1;
    const std::size_t i = next_worker.fetch_add(1, std::memory_order_relaxed) % n;
    return i == 0 ? *main_ioc : *extra_workers[i - 1];
  }

  void stop_all() {
    for (auto& g : guards) g.reset();
    main_ioc->stop();
    for (auto& w : extra_workers) w->stop();
  }
};

namespace {

struct SessionShared {
  Server::Impl* impl;
  std::atomic<bool>* draining;
  net::io_context* ioc;
};

void finish_request(SessionShared s) {
  if (s.impl->inflight.fetch_sub(1) == 1 && s.draining->load()) s.impl->stop_all();
}

awaitable<Response> call_handler(const Route* route, Context* ctx) {
  try {
    co_return co_await route->handler(*ctx);
  } catch (const std::exception& e) {
    log_error("handler failed", {{"request_id", ctx->request_id}, {"error", e.what()}});
    co_return problem_response(make_problem(500, "internal_error", "recgate failed to handle this request"));
  }
}

// Completes only when the peer closes or errors; pipelined bytes are kept.
awaitable<void> watch_peer(beast::tcp_stream* stream, beast::flat_buffer* buffer) {
  stream->expires_never();
  auto [ec, n] = co_await stream->async_read_some(buffer->prepare(4096), tuple_awaitable);
  if (!ec) {
    buffer->commit(n);
    net::steady_timer forever(co_await net::this_coro::executor, net::steady_timer::time_point::max());
    co_await forever.async_wait(tuple_awaitable);
  }
}

awaitable<Response> dispatch(SessionShared s, Context& ctx, beast::tcp_stream& stream, beast::flat_buffer& buffer,
                             bool& peer_gone) {
  using namespace net::experimental::awaitable_operators;
  const auto& routes = s.impl->routes;
  std::string allow;
  for (const auto& r : routes) {
    std::vector<std::pair<std::string, std::string>> params;
    if (!match(r.pattern, ctx.path, params)) continue;
    if (r.method != ctx.req.method()) {
      if (!allow.empty()) allow += ", ";
      allow += std::string(bhttp::to_string(r.method));
      continue;
    }
    ctx.path_params = std::move(params);
    ctx.route_name = r.name;
    if (r.fast) {
      try {
        if (auto res = r.fast(ctx)) co_return std::move(*res);
      } catch (const std::exception& e) {
        log_error("fast path failed", {{"request_id", ctx.request_id}, {"error", e.what()}});
      }
    }
    if (!r.watch_disconnect) co_return co_await call_handler(&r, &ctx);
    auto result = co_await (call_handler(&r, &ctx) || watch_peer(&stream, &buffer));
    if (result.index() == 0) co_return std::move(std::get<0>(result));
    peer_gone = true;
    co_return problem_response(make_problem(499, "client_closed", "the client closed the connection"));
  }
  if (!allow.empty()) {
    ctx.route_name = "method_not_allowed";
    Problem p = make_problem(405, "method_not_allowed",
                             std::string(ctx.req.method_string()) + " is not allowed on " + ctx.path +
                                 "; allowed: " + allow);
    p.headers.emplace_back("Allow", allow);
    co_return problem_response(p);
  }
  ctx.route_name = "not_found";
  co_return problem_response(
      make_problem(404, "not_found", "no route for " + ctx.path + "; see the README for the API"));
}

// Per-thread memo of the series a request touches: the registry lookup
// (label strings, shared lock, map search) is paid once per thread and series.
void count_request(const ServerOptions& opts, const Context& ctx, int status, double seconds) {
  if (!opts.metrics) return;
  struct Series {
    Counter* requests;
    Histogram* duration;
  };
  thread_local std::unordered_map<std::string, Series> memo;
  const std::string route = ctx.route_name.empty() ? "unmatched" : ctx.route_name;
  std::string key = route;
  key += ' ';
  key.append(ctx.req.method_string().data(), ctx.req.method_string().size());
  key += ' ';
  key += std::to_string(status);
  auto it = memo.find(key);
  if (it == memo.end()) {
    auto& m = Metrics::instance();
    Series sr{&m.counter("recgate_http_requests_total", "HTTP requests answered, by route, method and status.",
                         {{"route", route},
                          {"method", std::string(ctx.req.method_string())},
                          {"status", std::to_string(status)}}),
              &m.histogram("recgate_http_request_duration_seconds",
                           "Time from request read to response written, by route.", {{"route", route}})};
    it = memo.emplace(std::move(key), sr).first;
  }
  it->second.requests->inc();
  it->second.duration->observe(seconds);
}

void access_log(const ServerOptions& opts, const Context& ctx, int status, double seconds) {
  if (!opts.access_log || !log_enabled(LogLevel::info)) return;
  std::vector<LogField> f{{"request_id", ctx.request_id},
                          {"method", std::string(ctx.req.method_string())},
                          {"target", log_target(std::string_view(ctx.req.target().data(), ctx.req.target().size()))},
                          {"status", status},
                          {"duration_ms", seconds * 1000.0}};
  if (!ctx.route_name.empty()) f.emplace_back("route", ctx.route_name);
  for (const auto& [k, v] : ctx.log_fields) f.emplace_back(k, v);
  log(LogLevel::info, "request", f);
}

// Answers an error found while reading (431, 413, 400) and closes.
awaitable<void> reject(beast::tcp_stream& stream, const ServerOptions& opts, int status, const char* code,
                       std::string detail) {
  Response res = problem_response(make_problem(status, code, std::move(detail)));
  auto id = generate_request_id();
  res.set("X-Request-Id", id);
  res.keep_alive(false);
  res.prepare_payload();
  stream.expires_after(opts.read_timeout);
  co_await bhttp::async_write(stream, res, tuple_awaitable);
  if (opts.access_log)
    log_info("request rejected", {{"request_id", id}, {"status", status}, {"code", code}});
}

awaitable<void> run_session(SessionShared s, tcp::socket socket) {
  const ServerOptions& opts = s.impl->opts;
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer;
  for (;;) {
    if (buffer.size() == 0) {
      // Idle keep-alive wait for the first byte of the next request.
      stream.expires_after(opts.idle_timeout);
      auto [ec, n] = co_await stream.async_read_some(buffer.prepare(8192), tuple_awaitable);
      if (ec) break;
      buffer.commit(n);
    }
    bhttp::request_parser<bhttp::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(opts.max_header_bytes));
    parser.body_limit(opts.max_body_bytes);
    stream.expires_after(opts.read_timeout);
    auto [hec, hn] = co_await bhttp::async_read_header(stream, buffer, parser, tuple_awaitable);
    if (hec == bhttp::error::header_limit) {
      co_await reject(stream, opts, 431, "header_too_large",
                      "the request header block exceeds " + std::to_string(opts.max_header_bytes) + " bytes");
      break;
    }
    if (hec == bhttp::error::body_limit) {
      co_await reject(stream, opts, 413, "body_too_large",
                      "the request body exceeds " + std::to_string(opts.max_body_bytes) + " bytes");
      break;
    }
    if (hec == beast::error::timeout || hec == bhttp::error::end_of_stream || hec == net::error::eof ||
        hec == net::error::connection_reset)
      break;
    if (hec) {
      co_await reject(stream, opts, 400, "bad_request", "malformed HTTP request: " + hec.message());
      break;
    }
    if (auto cl = parser.content_length(); cl && *cl > opts.max_body_bytes) {
      co_await reject(stream, opts, 413, "body_too_large",
                      "the request body exceeds " + std::to_string(opts.max_body_bytes) + " bytes");
      break;
    }
    if (!parser.is_done()) {
      auto [bec, bn] = co_await bhttp::async_read(stream, buffer, parser, tuple_awaitable);
      if (bec == bhttp::error::body_limit) {
        co_await reject(stream, opts, 413, "body_too_large",
                        "the request body exceeds " + std::to_string(opts.max_body_bytes) + " bytes");
        break;
      }
      if (bec) {
        if (bec != beast::error::timeout && bec != net::error::eof && bec != bhttp::error::end_of_stream &&
            bec != bhttp::error::partial_message)
          co_await reject(stream, opts, 400, "bad_request", "malformed HTTP request body: " + bec.message());
        break;
      }
    }

    Request req = parser.release();
    s.impl->inflight.fetch_add(1);
    Context ctx{req, {}, {}, {}, {}, {}, std::chrono::steady_clock::now(), {}, std::nullopt, {}};
    auto rid = ctx.header("X-Request-Id");
    ctx.request_id = acceptable_request_id(rid) ? std::string(rid) : generate_request_id();
    std::string_view target(req.target().data(), req.target().size());
    auto qpos = target.find('?');
    std::string_view raw_path = target.substr(0, qpos);
    bool target_ok = !raw_path.empty() && raw_path.front() == '/' && mws::uri_decode(raw_path, ctx.path);
    if (qpos != std::string_view::npos) {
      ctx.raw_query = std::string(target.substr(qpos + 1));
      target_ok = target_ok && parse_query(ctx.raw_query, ctx.query);
    }
    bool peer_gone = false;
    Response res;
    if (!target_ok) {
      ctx.route_name = "bad_target";
      res = problem_response(make_problem(400, "bad_request",
                                          "the request target must be an absolute path with valid %XX escapes"));
    } else {
      res = co_await dispatch(s, ctx, stream, buffer, peer_gone);
    }
    const int status = static_cast<int>(res.result_int());
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - ctx.started).count();
    if (peer_gone) {
      count_request(opts, ctx, status, seconds);
      access_log(opts, ctx, status, seconds);
      finish_request(s);
      break;
    }
    res.set("X-Request-Id", ctx.request_id);
    res.version(req.version());
    const bool keep = req.keep_alive() && !s.draining->load() && !ctx.truncate_response_at;
    res.keep_alive(keep);
    if (req.method() == bhttp::verb::head) {
      res.prepare_payload();
      res.body().clear();
    } else {
      res.prepare_payload();
    }
    stream.expires_after(opts.read_timeout);
    if (ctx.truncate_response_at) {
      std::ostringstream os;
      os << res;
      std::string wire = os.str();
      wire.resize(std::min(wire.size(), *ctx.truncate_response_at));
      co_await net::async_write(stream, net::buffer(wire), tuple_awaitable);
      count_request(opts, ctx, status, seconds);
      access_log(opts, ctx, status, seconds);
      finish_request(s);
      break;
    }
    auto [wec, wn] = co_await bhttp::async_write(stream, res, tuple_awaitable);
    count_request(opts, ctx, status, seconds);
    access_log(opts, ctx, status, seconds);
    finish_request(s);
    if (wec || !keep) break;
  }
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  stream.close();
}

void log_session_exception(std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    log_error("session failed", {{"error", ex.what()}});
  } catch (...) {
    log_error("session failed", {{"error", "unknown exception"}});
  }
}

awaitable<void> accept_loop(SessionShared s) {
  for (;;) {
    auto [ec, socket] =
        co_await s.impl->acceptor.async_accept(s.impl->pick_worker(), tuple_awaitable);
    if (ec) {
      if (ec == net::error::operation_aborted || !s.impl->acceptor.is_open()) co_return;
      log_warn("accept failed", {{"error", ec.message()}});
      continue;
    }
    beast::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    auto ex = socket.get_executor();
    net::co_spawn(ex, run_session(s, std::move(socket)), log_session_exception);
  }
}

}  // namespace

Server::Server(ServerOptions opts, std::vector<Route> routes)
    : ioc_(1),
      impl_(std::make_unique<Impl>(ioc_, workers_, std::move(opts), std::move(routes), this)) {}

Server::~Server() = default;

std::uint16_t Server::start() {
  std::string host;
  std::uint16_t port = 0;
  if (!split_host_port(impl_->opts.listen, host, port))
    throw std::runtime_error("listen: bad address " + impl_->opts.listen);
  if (host == "localhost") host = "127.0.0.1";
  beast::error_code ec;
  auto addr = net::ip::make_address(host, ec);
  if (ec) throw std::runtime_error("listen: " + host + " is not an IP address");
  tcp::endpoint ep(addr, port);
  auto& a = impl_->acceptor;
  a.open(ep.protocol());
  a.set_option(net::socket_base::reuse_address(true));
  a.bind(ep, ec);
  if (ec) throw std::runtime_error("cannot listen on " + impl_->opts.listen + ": " + ec.message());
  a.listen(net::socket_base::max_listen_connections);
  auto bound = a.local_endpoint();
  log_info("listening", {{"address", bound.address().to_string()},
                         {"port", static_cast<unsigned>(bound.port())},
                         {"server", impl_->opts.server_name}});
  net::co_spawn(ioc_, accept_loop(SessionShared{impl_.get(), &draining_, &ioc_}), log_session_exception);
  return bound.port();
}

void Server::run() {
  std::vector<std::thread> extra;
  for (auto& w : impl_->extra_workers) extra.emplace_back([ioc = w.get()] { ioc->run(); });
  ioc_.run();
  for (auto& t : extra) t.join();
}

void Server::shutdown() {
  net::post(ioc_, [this] {
    if (draining_.exchange(true)) return;
    log_info("draining", {{"inflight", impl_->inflight.load()},
                          {"timeout_ms", static_cast<std::int64_t>(impl_->opts.drain_timeout.count())}});
    beast::error_code ignored;
    impl_->acceptor.close(ignored);
    if (impl_->inflight.load() == 0) {
      impl_->stop_all();
      return;
    }
    impl_->drain_timer = std::make_unique<net::steady_timer>(ioc_, impl_->opts.drain_timeout);
    impl_->drain_timer->async_wait([this](beast::error_code) {
      if (impl_->inflight.load() > 0) log_warn("drain timeout; closing with requests in flight",
                                               {{"inflight", impl_->inflight.load()}});
      impl_->stop_all();
    });
  });
}

}  // namespace recgate::http
