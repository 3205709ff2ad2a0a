// The Beast coroutine server: accept loop (connection limit, idle eviction,
// back-off when out of descriptors), one session coroutine per connection on
// the io_context of one I/O thread (read, parse, refuse ambiguous framing,
// dispatch through the route table, write, honour keep-alive; a deadline is
// armed only while waiting on the client), limits, access log, graceful drain.
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
#include <boost/beast/core/buffers_suffix.hpp>
#include <boost/beast/core/buffer_traits.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/http/parser.hpp>

#include <array>
#include <random>
#include <sstream>
#include <thread>

#include "core/config.hpp"
#include "core/http/connections.hpp"
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

// A route pattern split once at start-up: literal segments and {param}
// segments, matched against a path without allocating.
struct CompiledPattern {
  struct Segment {
    std::string text;  // literal text, or the parameter's name
    bool param = false;
  };
  std::vector<Segment> segments;
  bool trailing_slash = false;
};

CompiledPattern compile_pattern(std::string_view p) {
  CompiledPattern c;
  std::size_t i = 0;
  while (i < p.size()) {
    if (p[i] == '/') {
      ++i;
      continue;
    }
    auto j = p.find('/', i);
    if (j == std::string_view::npos) j = p.size();
    auto seg = p.substr(i, j - i);
    if (seg.size() > 2 && seg.front() == '{' && seg.back() == '}')
      c.segments.push_back({std::string(seg.substr(1, seg.size() - 2)), true});
    else
      c.segments.push_back({std::string(seg), false});
    i = j;
  }
  c.trailing_slash = p.size() > 1 && p.back() == '/';
  return c;
}

// Empty segments ("//") are skipped, as in the pattern.
bool next_segment(std::string_view path, std::size_t& pos, std::string_view& seg) {
  while (pos < path.size() && path[pos] == '/') ++pos;
  if (pos >= path.size()) return false;
  auto j = path.find('/', pos);
  if (j == std::string_view::npos) j = path.size();
  seg = path.substr(pos, j - pos);
  pos = j;
  return true;
}

bool match(const CompiledPattern& pattern, std::string_view path,
           std::vector<std::pair<std::string, std::string>>* params) {
  if (pattern.trailing_slash != (path.size() > 1 && path.back() == '/')) return false;
  std::size_t pos = 0;
  std::string_view seg;
  for (const auto& ps : pattern.segments) {
    if (!next_segment(path, pos, seg)) return false;
    if (!ps.param && ps.text != seg) return false;
  }
  if (next_segment(path, pos, seg)) return false;
  if (params) {  // second pass only for the route taken
    params->clear();
    pos = 0;
    for (const auto& ps : pattern.segments) {
      next_segment(path, pos, seg);
      if (ps.param) params->emplace_back(ps.text, std::string(seg));
    }
  }
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
  std::vector<CompiledPattern> patterns;  // patterns[i] is routes[i].pattern, split
  tcp::acceptor acceptor;
  std::atomic<int> inflight{0};
  std::shared_ptr<ConnectionTable> table;
  // The acceptor's pause: waiting for a free slot, or backing off after accept failed.
  net::steady_timer accept_timer;
  RepeatLimiter accept_errors;  // both used by the accept loop only
  RepeatLimiter limit_reached;
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
      : opts(std::move(o)),
        routes(std::move(r)),
        acceptor(ioc),
        table(std::make_shared<ConnectionTable>(opts.max_connections)),
        accept_timer(ioc),
        owner(s),
        extra_workers(workers),
        main_ioc(&ioc) {
    // A closing connection wakes a paused acceptor on the acceptor's thread.
    table->set_wake([ioc = main_ioc, timer = &accept_timer] { net::post(*ioc, [timer] { timer->cancel(); }); });
    for (const auto& route : routes) patterns.push_back(compile_pattern(route.pattern));
    for (int i = 1; i < std::max(1, opts.threads); ++i) {
      extra_workers.push_back(std::make_unique<net::io_context>(1));
      guards.push_back(net::make_work_guard(*extra_workers.back()));
    }
  }

  ~Impl() { table->set_wake(nullptr); }  // sessions may outlive this; the timer does not

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

// What the session learnt about its client while a handler ran.
struct PeerState {
  bool gone = false;   // the watcher saw the end of stream first: the handler was cancelled
  bool ended = false;  // the client has ended its stream (closed, or half-closed after its request)
};

// Completes only when the peer closes or errors; pipelined bytes are kept.
// An end of stream is remembered in `peer`, also when the handler won the
// race and this read completed before its cancellation took effect: Asio
// marks a socket whose read returned nothing as exhausted and waits for the
// next epoll edge (edge-triggered) before reading again, and after the end
// of stream no edge comes, so the session's next read would wait until
// idle_timeout.
awaitable<void> watch_peer(beast::tcp_stream* stream, beast::flat_buffer* buffer, PeerState* peer) {
  stream->expires_never();
  auto [ec, n] = co_await stream->async_read_some(buffer->prepare(4096), tuple_awaitable);
  if (ec && ec != net::error::operation_aborted) peer->ended = true;
  if (!ec) {
    buffer->commit(n);
    net::steady_timer forever(co_await net::this_coro::executor, net::steady_timer::time_point::max());
    co_await forever.async_wait(tuple_awaitable);
  }
}

awaitable<Response> dispatch(SessionShared s, Context& ctx, beast::tcp_stream& stream, beast::flat_buffer& buffer,
                             PeerState& peer) {
  using namespace net::experimental::awaitable_operators;
  const auto& routes = s.impl->routes;
  std::string allow;
  for (std::size_t i = 0; i < routes.size(); ++i) {
    const Route& r = routes[i];
    if (!match(s.impl->patterns[i], ctx.path, nullptr)) continue;
    // HEAD is served by the GET route; the session sends the headers only.
    const bool head_as_get = ctx.req.method() == bhttp::verb::head && r.method == bhttp::verb::get;
    if (r.method != ctx.req.method() && !head_as_get) {
      if (!allow.empty()) allow += ", ";
      allow += std::string(bhttp::to_string(r.method));
      if (r.method == bhttp::verb::get) allow += ", HEAD";
      continue;
    }
    match(s.impl->patterns[i], ctx.path, &ctx.path_params);
    ctx.route_name = r.name;
    if (r.fast) {
      try {
        if (auto res = r.fast(ctx)) co_return std::move(*res);
      } catch (const std::exception& e) {
        log_error("fast path failed", {{"request_id", ctx.request_id}, {"error", e.what()}});
      }
    }
    if (!r.watch_disconnect) co_return co_await call_handler(&r, &ctx);
    auto result = co_await (call_handler(&r, &ctx) || watch_peer(&stream, &buffer, &peer));
    if (result.index() == 0) co_return std::move(std::get<0>(result));
    peer.gone = true;
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
    std::string route;
    bhttp::verb method;
    int status;
    Counter* requests;
    Histogram* duration;
  };
  // A handful of series per thread: a linear scan beats hashing a built key.
  thread_local std::vector<Series> memo;
  const std::string_view route = ctx.route_name.empty() ? std::string_view("unmatched") : ctx.route_name;
  const bhttp::verb method = ctx.req.method();
  Series* found = nullptr;
  for (auto& sr : memo)
    if (sr.status == status && sr.method == method && sr.route == route) {
      found = &sr;
      break;
    }
  if (!found) {
    // Unknown methods share one label value: a client must not mint series.
    const std::string method_label =
        method == bhttp::verb::unknown ? "other" : std::string(bhttp::to_string(method));
    auto& m = Metrics::instance();
    memo.push_back(Series{std::string(route), method, status,
                          &m.counter("recgate_http_requests_total",
                                     "HTTP requests answered, by route, method and status.",
                                     {{"route", std::string(route)},
                                      {"method", method_label},
                                      {"status", std::to_string(status)}}),
                          &m.histogram("recgate_http_request_duration_seconds",
                                       "Time from request read to response written, by route.",
                                       {{"route", std::string(route)}})});
    found = &memo.back();
  }
  found->requests->inc();
  found->duration->observe(seconds);
}

void access_log(const ServerOptions& opts, const Context& ctx, int status, double seconds) {
  if (!opts.access_log || !log_enabled(LogLevel::info)) return;
  std::vector<LogField> f{{"request_id", ctx.request_id},
                          {"method", std::string(ctx.req.method_string())},
                          {"target", log_target(std::string_view(ctx.req.target().data(), ctx.req.target().size()))},
                          {"status", status},
                          {"duration_ms", seconds * 1000.0}};
  if (!ctx.route_name.empty()) f.emplace_back("route", std::string(ctx.route_name));
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

// Feeds what is already buffered to the parser, up to the end of the header.
// need_more is not an error: the caller reads more.
beast::error_code parse_buffered_header(bhttp::request_parser<bhttp::string_body>& parser,
                                        beast::flat_buffer& buffer) {
  beast::error_code ec;
  while (buffer.size() > 0 && !parser.is_header_done()) {
    const std::size_t n = parser.put(buffer.data(), ec);
    buffer.consume(n);
    if (ec == bhttp::error::need_more) return {};
    if (ec) return ec;
    if (n == 0) break;
  }
  return ec;
}

// Status line and fields, as Beast's serializer would write them.
void render_head(const Response& res, std::string& out) {
  out.clear();
  out += res.version() == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
  const unsigned code = res.result_int();
  out += static_cast<char>('0' + code / 100 % 10);
  out += static_cast<char>('0' + code / 10 % 10);
  out += static_cast<char>('0' + code % 10);
  out += ' ';
  const auto reason = res.reason();
  out.append(reason.data(), reason.size());
  out += "\r\n";
  for (const auto& f : res) {
    const auto name = f.name_string();
    const auto value = f.value();
    out.append(name.data(), name.size());
    out += ": ";
    out.append(value.data(), value.size());
    out += "\r\n";
  }
  out += "\r\n";
}

// Writes what the socket takes now, without waiting (the socket is in
// non-blocking mode): one writev of header and body. Returns the bytes written.
std::size_t write_now(tcp::socket& socket, const std::array<net::const_buffer, 2>& wire, beast::error_code& ec) {
  const std::size_t n = socket.write_some(wire, ec);
  if (ec == net::error::would_block || ec == net::error::try_again) {
    ec = {};
    return 0;
  }
  return ec ? 0 : n;
}

// Holds a connection's slot in the table for as long as its session lives,
// however the session ends (a frame still suspended at shutdown is destroyed
// with its io_context, after the Server's Impl: hence the shared table).
struct SlotGuard {
  SlotGuard(std::shared_ptr<ConnectionTable> t, std::shared_ptr<ConnectionSlot> s)
      : table(std::move(t)), slot(std::move(s)) {}
  SlotGuard(SlotGuard&&) = default;
  SlotGuard& operator=(SlotGuard&&) = delete;
  ~SlotGuard() {
    if (!slot) return;
    slot->socket = nullptr;
    slot->in_idle_read = false;
    table->release(*slot);
  }
  std::shared_ptr<ConnectionTable> table;
  std::shared_ptr<ConnectionSlot> slot;
};

// A request whose framing would let a client smuggle a second request past
// us, refused as nginx refuses it (RFC 9112 §6.1, §6.3): Transfer-Encoding
// other than exactly "chunked" (501), together with Content-Length (400), or
// in HTTP/1.0 (400). `parse_ec` is the parser's error, if any: Beast stops at
// the conflicting field without storing it.
struct FramingProblem {
  int status;
  const char* code;
  std::string detail;
};

std::optional<FramingProblem> check_framing(const bhttp::request_header<>& h, beast::error_code parse_ec) {
  std::size_t codings = 0;
  std::string seen;
  for (const auto& f : h)
    if (f.name() == bhttp::field::transfer_encoding) {
      ++codings;
      if (!seen.empty()) seen += ", ";
      seen.append(f.value().data(), f.value().size());
    }
  bool has_length = h.count(bhttp::field::content_length) > 0;
  if (parse_ec == bhttp::error::bad_transfer_encoding) ++codings;  // the field Beast refused
  if (parse_ec == bhttp::error::bad_content_length && codings > 0) has_length = true;
  if (codings == 0) return std::nullopt;
  if (has_length)
    return FramingProblem{400, "bad_request",
                          "Transfer-Encoding and Content-Length together make the body's length ambiguous; "
                          "send one of them"};
  if (h.version() < 11)
    return FramingProblem{400, "bad_request", "Transfer-Encoding is not allowed in an HTTP/1.0 request"};
  if (codings != 1 || !beast::iequals(seen, "chunked"))
    return FramingProblem{501, "unsupported_transfer_coding",
                          "Transfer-Encoding \"" + seen + "\" is not supported; allowed: chunked (alone)"};
  return std::nullopt;
}

// After refusing a request, reads and drops what the client still sends for
// a moment before closing (nginx's lingering close): closing with unread
// data would reset the connection and could destroy the answer in flight.
awaitable<void> linger(beast::tcp_stream& stream) {
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  stream.expires_after(std::chrono::seconds(1));
  std::array<char, 4096> sink;
  for (std::size_t dropped = 0; dropped < 64 * 1024;) {
    auto [ec, n] = co_await stream.async_read_some(net::buffer(sink), tuple_awaitable);
    if (ec) break;
    dropped += n;
  }
}

awaitable<void> run_session(SessionShared s, tcp::socket socket, SlotGuard guard) {
  const ServerOptions& opts = s.impl->opts;
  ConnectionTable& table = *guard.table;
  ConnectionSlot& slot = *guard.slot;
  const auto first_deadline = std::chrono::steady_clock::now() + opts.header_timeout;
  bool first_request = true;
  bool refused = false;  // answered an error found while reading: linger, then close
  beast::tcp_stream stream(std::move(socket));
  slot.socket = &stream.socket();
  beast::flat_buffer buffer;
  std::string head;  // the serialized response header, reused across the connection's requests
  std::string peer;  // the client's address (Context::client until a key names it)
  {
    beast::error_code ec;
    auto ep = stream.socket().remote_endpoint(ec);
    if (!ec) peer = ep.address().to_string();
  }
  {
    // Lets write_now try a write without waiting (async operations are unaffected).
    beast::error_code ignored;
    stream.socket().non_blocking(true, ignored);
  }
  for (;;) {
    if (buffer.size() == 0) {
      // Idle: waiting for the first byte of a request (a new connection's
      // under header_timeout, the next keep-alive one's under idle_timeout).
      // The acceptor may close an idle connection to admit a new client.
      if (first_request) stream.expires_at(first_deadline);
      else stream.expires_after(opts.idle_timeout);
      table.set_idle(slot, true);
      slot.in_idle_read = true;
      auto [ec, n] = co_await stream.async_read_some(buffer.prepare(8192), tuple_awaitable);
      slot.in_idle_read = false;
      table.set_idle(slot, false);
      if (ec) break;
      buffer.commit(n);
    }
    bhttp::request_parser<bhttp::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(opts.max_header_bytes));
    parser.body_limit(opts.max_body_bytes);
    // Usually the whole header arrived with the first read: parse it from the
    // buffer without an asynchronous operation or a timer.
    beast::error_code hec = parse_buffered_header(parser, buffer);
    bool read_deadline_armed = false;  // one read_timeout covers the rest of the header and the body
    if (!hec && !parser.is_header_done()) {
      if (first_request) {
        stream.expires_at(first_deadline);  // the whole first header, counted from accept
      } else {
        stream.expires_after(opts.read_timeout);
        read_deadline_armed = true;
      }
      auto [rec, rn] = co_await bhttp::async_read_header(stream, buffer, parser, tuple_awaitable);
      hec = rec;
    }
    if (!hec || hec == bhttp::error::bad_transfer_encoding || hec == bhttp::error::bad_content_length) {
      if (auto bad = check_framing(parser.get(), hec)) {
        co_await reject(stream, opts, bad->status, bad->code, std::move(bad->detail));
        refused = true;
        break;
      }
    }
    if (hec == bhttp::error::header_limit) {
      co_await reject(stream, opts, 431, "header_too_large",
                      "the request header block exceeds " + std::to_string(opts.max_header_bytes) + " bytes");
      refused = true;
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
      refused = true;
      break;
    }
    first_request = false;
    if (auto cl = parser.content_length(); cl && *cl > opts.max_body_bytes) {
      co_await reject(stream, opts, 413, "body_too_large",
                      "the request body exceeds " + std::to_string(opts.max_body_bytes) + " bytes");
      refused = true;
      break;
    }
    if (!parser.is_done()) {
      if (!read_deadline_armed) stream.expires_after(opts.read_timeout);
      auto [bec, bn] = co_await bhttp::async_read(stream, buffer, parser, tuple_awaitable);
      if (bec == bhttp::error::body_limit) {
        co_await reject(stream, opts, 413, "body_too_large",
                        "the request body exceeds " + std::to_string(opts.max_body_bytes) + " bytes");
        refused = true;
        break;
      }
      if (bec) {
        if (bec != beast::error::timeout && bec != net::error::eof && bec != bhttp::error::end_of_stream &&
            bec != bhttp::error::partial_message) {
          co_await reject(stream, opts, 400, "bad_request", "malformed HTTP request body: " + bec.message());
          refused = true;
        }
        break;
      }
    }

    Request req = parser.release();
    s.impl->inflight.fetch_add(1);
    Context ctx{req, {}, {}, {}, {}, {}, std::chrono::steady_clock::now(), {}, std::nullopt, {}, {}};
    ctx.client = peer;
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
    PeerState peer;
    Response res;
    if (!target_ok) {
      ctx.route_name = "bad_target";
      res = problem_response(make_problem(400, "bad_request",
                                          "the request target must be an absolute path with valid %XX escapes"));
    } else {
      res = co_await dispatch(s, ctx, stream, buffer, peer);
    }
    const int status = static_cast<int>(res.result_int());
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - ctx.started).count();
    if (peer.gone) {
      count_request(opts, ctx, status, seconds);
      access_log(opts, ctx, status, seconds);
      finish_request(s);
      break;
    }
    res.set("X-Request-Id", ctx.request_id);
    res.version(req.version());
    if (ctx.raw_response) {
      co_await ctx.raw_response(stream);
      count_request(opts, ctx, status, seconds);
      access_log(opts, ctx, status, seconds);
      finish_request(s);
      break;
    }
    // A client that ended its stream sends nothing more: say so and close
    // after this answer, as nginx closes a half-closed client's connection.
    const bool keep = req.keep_alive() && !s.draining->load() && !ctx.truncate_response_at && !peer.ended;
    res.keep_alive(keep);
    res.prepare_payload();  // Content-Length of the body, also for HEAD (the body is not sent)
    if (ctx.truncate_response_at) {
      stream.expires_after(opts.read_timeout);
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
    const bool send_body = req.method() != bhttp::verb::head;
    render_head(res, head);
    std::array<net::const_buffer, 2> wire{net::buffer(head),
                                          send_body ? net::buffer(res.body()) : net::const_buffer()};
    // A response that fits the socket's send buffer (almost all of them) is
    // written at once, without a timer or an asynchronous operation; the rest
    // is written asynchronously under the read timeout.
    beast::error_code wec;
    const std::size_t written = write_now(stream.socket(), wire, wec);
    if (!wec && written < wire[0].size() + wire[1].size()) {
      beast::buffers_suffix<std::array<net::const_buffer, 2>> rest(wire);
      rest.consume(written);
      stream.expires_after(opts.read_timeout);
      auto [aec, an] = co_await net::async_write(stream, rest, tuple_awaitable);
      wec = aec;
    }
    count_request(opts, ctx, status, seconds);
    access_log(opts, ctx, status, seconds);
    finish_request(s);
    if (wec || !keep) break;
  }
  slot.socket = nullptr;
  if (refused) co_await linger(stream);
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

// Pauses the acceptor until a connection closes, if the table is still full
// (or for a second at most, should a wake-up be lost): no polling.
awaitable<void> wait_for_slot(Server::Impl& impl) {
  if (!impl.table->wait_begin()) co_return;
  impl.accept_timer.expires_after(std::chrono::seconds(1));
  co_await impl.accept_timer.async_wait(tuple_awaitable);
}

// At the connection limit: close the connection idle longest to admit the
// next client (nginx reuses its keep-alive connections so), else wait until
// one closes.
awaitable<void> make_room(Server::Impl& impl) {
  const bool evicted = impl.table->evict_oldest_idle();
  if (const auto n = impl.limit_reached.record(std::chrono::steady_clock::now()))
    log_warn("connection limit reached",
             {{"max_connections", impl.table->max()},
              {"action", evicted ? "closing the connection idle longest" : "accepting paused until one closes"},
              {"count", static_cast<std::int64_t>(n)}});
  co_await wait_for_slot(impl);
}

bool out_of_descriptors(const beast::error_code& ec) {
  return ec == net::error::no_descriptors || ec == boost::system::errc::too_many_files_open_in_system;
}

// accept(2) failed for want of descriptors or memory: free an idle
// connection's descriptor if there is one, say so at most once a second,
// and retry after a pause instead of at once (which would spin).
awaitable<void> back_off(Server::Impl& impl, const beast::error_code& ec) {
  if (out_of_descriptors(ec)) impl.table->evict_oldest_idle();
  if (const auto n = impl.accept_errors.record(std::chrono::steady_clock::now()))
    log_warn("accept failed; retrying after a pause",
             {{"error", ec.message()},
              {"retry_ms", static_cast<std::int64_t>(impl.opts.accept_retry.count())},
              {"count", static_cast<std::int64_t>(n)}});
  impl.accept_timer.expires_after(impl.opts.accept_retry);
  co_await impl.accept_timer.async_wait(tuple_awaitable);
}

// At the limit: completes once a client waits in the listen backlog (or the
// acceptor is closed). Room is made only for a client that is there, as
// nginx frees a reusable connection only when accept needs one: making it
// the moment the table fills would close an idle keep-alive connection for
// nobody, and again each time the table refills.
awaitable<beast::error_code> client_waiting(Server::Impl& impl) {
  auto [ec] = co_await impl.acceptor.async_wait(tcp::acceptor::wait_read, tuple_awaitable);
  co_return ec;
}

awaitable<void> accept_loop(SessionShared s) {
  Server::Impl& impl = *s.impl;
  for (;;) {
    if (!impl.acceptor.is_open()) co_return;
    if (impl.table->full()) {
      const beast::error_code ec = co_await client_waiting(impl);
      if (!impl.acceptor.is_open()) co_return;
      if (ec) co_await back_off(impl, ec);
      else if (impl.table->full()) co_await make_room(impl);
      continue;
    }
    auto [ec, socket] = co_await impl.acceptor.async_accept(impl.pick_worker(), tuple_awaitable);
    if (ec) {
      if (ec == net::error::operation_aborted || !impl.acceptor.is_open()) co_return;
      // The client left before we took it: its backlog entry is gone, so no spin.
      if (ec == net::error::connection_aborted) continue;
      co_await back_off(impl, ec);
      continue;
    }
    beast::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    auto ex = socket.get_executor();
    SlotGuard guard(impl.table, impl.table->admit(ex));
    net::co_spawn(ex, run_session(s, std::move(socket), std::move(guard)), log_session_exception);
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

std::shared_ptr<const std::atomic<std::int64_t>> Server::connections() const { return impl_->table->open(); }

void Server::shutdown() {
  net::post(ioc_, [this] {
    if (draining_.exchange(true)) return;
    log_info("draining", {{"inflight", impl_->inflight.load()},
                          {"timeout_ms", static_cast<std::int64_t>(impl_->opts.drain_timeout.count())}});
    beast::error_code ignored;
    impl_->acceptor.close(ignored);
    impl_->accept_timer.cancel();  // an acceptor paused at the limit or backing off
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
