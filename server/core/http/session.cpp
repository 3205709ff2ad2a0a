// The session's plain (non-coroutine, non-template) steps: classifying what
// went wrong while reading, request ids, target decoding, the handler call,
// rendering the response head, and the per-request metrics and access log.
// Braced lists live here, outside coroutines (docs/coroutines.md R4).
#include "core/http/session.hpp"

#include <boost/beast/core/string.hpp>

#include <cstdint>
#include <random>

#include "core/http/url.hpp"
#include "core/log.hpp"
#include "core/metrics.hpp"

namespace recgate::http::session_detail {
namespace {

// 16 lower-case hex digits, formatted by hand: snprintf was ~1.5 % of a
// cache hit's CPU time (tests/bench/README.md).
std::string generate_request_id() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::uint64_t v = rng();
  std::string id(16, '0');
  for (int i = 15; i >= 0; --i, v >>= 4) id[static_cast<std::size_t>(i)] = kHex[v & 0xf];
  return id;
}

bool acceptable_request_id(std::string_view s) {
  if (s.empty() || s.size() > 128) return false;
  for (char c : s)
    if (c < 0x21 || c > 0x7e || c == '"' || c == '\\') return false;
  return true;
}

// A request whose framing would let a client smuggle a second request past
// us, refused as nginx refuses it (RFC 9112 §6.1, §6.3): Transfer-Encoding
// other than exactly "chunked" (501), together with Content-Length (400), or
// in HTTP/1.0 (400). `parse_ec` is the parser's error, if any: Beast stops at
// the conflicting field without storing it.
std::optional<ReadFailure> check_framing(const bhttp::request_header<>& h, beast::error_code parse_ec) {
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
    return ReadFailure{400, "bad_request",
                       "Transfer-Encoding and Content-Length together make the body's length ambiguous; "
                       "send one of them",
                       true};
  if (h.version() < 11)
    return ReadFailure{400, "bad_request", "Transfer-Encoding is not allowed in an HTTP/1.0 request", true};
  if (codings != 1 || !beast::iequals(seen, "chunked"))
    return ReadFailure{501, "unsupported_transfer_coding",
                       "Transfer-Encoding \"" + seen + "\" is not supported; allowed: chunked (alone)", true};
  return std::nullopt;
}

ReadFailure body_too_large(const ServerOptions& opts, bool linger) {
  return {413, "body_too_large", "the request body exceeds " + std::to_string(opts.max_body_bytes) + " bytes",
          linger};
}

// The client went away or stopped talking: close without an answer.
bool quiet_end(beast::error_code ec) {
  return ec == beast::error::timeout || ec == bhttp::error::end_of_stream || ec == net::error::eof ||
         ec == net::error::connection_reset;
}

}  // namespace

std::optional<ReadFailure> header_failure(const Parser& parser, beast::error_code ec, const ServerOptions& opts) {
  if (!ec || ec == bhttp::error::bad_transfer_encoding || ec == bhttp::error::bad_content_length)
    if (auto bad = check_framing(parser.get(), ec)) return bad;
  if (ec == bhttp::error::header_limit)
    return ReadFailure{431, "header_too_large",
                       "the request header block exceeds " + std::to_string(opts.max_header_bytes) + " bytes", true};
  // Beast's body limit hit by a Content-Length already in the header.
  if (ec == bhttp::error::body_limit) return body_too_large(opts, false);
  if (quiet_end(ec)) return ReadFailure{};
  if (ec) return ReadFailure{400, "bad_request", "malformed HTTP request: " + ec.message(), true};
  if (auto cl = parser.content_length(); cl && *cl > opts.max_body_bytes) return body_too_large(opts, true);
  return std::nullopt;
}

std::optional<ReadFailure> body_failure(beast::error_code ec, const ServerOptions& opts) {
  if (!ec) return std::nullopt;
  if (ec == bhttp::error::body_limit) return body_too_large(opts, true);
  if (ec == beast::error::timeout || ec == net::error::eof || ec == bhttp::error::end_of_stream ||
      ec == bhttp::error::partial_message)
    return ReadFailure{};
  return ReadFailure{400, "bad_request", "malformed HTTP request body: " + ec.message(), true};
}

beast::error_code parse_buffered_header(Parser& parser, beast::flat_buffer& buffer) {
  beast::error_code ec;
  while (buffer.size() > 0 && !parser.is_header_done()) {
    const std::size_t n = parser.put(buffer.data(), ec);
    buffer.consume(n);
    if (ec == bhttp::error::need_more) return {};  // not an error: the caller reads more
    if (ec) return ec;
    if (n == 0) break;
  }
  return ec;
}

Response refusal(const ReadFailure& f, const ServerOptions& opts) {
  Response res = problem_response(make_problem(f.status, f.code, f.detail));
  const std::string id = generate_request_id();
  res.set("X-Request-Id", id);
  res.keep_alive(false);
  res.prepare_payload();
  if (opts.access_log) log_info("request rejected", {{"request_id", id}, {"status", f.status}, {"code", f.code}});
  return res;
}

bool prepare_context(Context& ctx) {
  const auto rid = ctx.header("X-Request-Id");
  ctx.request_id = acceptable_request_id(rid) ? std::string(rid) : generate_request_id();
  const std::string_view target(ctx.req.target().data(), ctx.req.target().size());
  const auto qpos = target.find('?');
  const std::string_view raw_path = target.substr(0, qpos);
  bool ok = !raw_path.empty() && raw_path.front() == '/' && uri_decode(raw_path, ctx.path);
  if (qpos != std::string_view::npos) {
    ctx.raw_query = std::string(target.substr(qpos + 1));
    ok = ok && parse_query(ctx.raw_query, ctx.query);
  }
  return ok;
}

Response bad_target(Context& ctx) {
  ctx.route_name = "bad_target";
  return problem_response(
      make_problem(400, "bad_request", "the request target must be an absolute path with valid %XX escapes"));
}

Response client_closed() {
  return problem_response(make_problem(499, "client_closed", "the client closed the connection"));
}

net::awaitable<Response> call_handler(const Route* route, Context* ctx) {
  try {
    co_return co_await route->handler(*ctx);
  } catch (const std::exception& e) {
    log_error("handler failed", {{"request_id", ctx->request_id}, {"error", e.what()}});
    co_return problem_response(make_problem(500, "internal_error", "recgate failed to handle this request"));
  }
}

void render_head(const Response& res, const std::string* fixed, std::string& out) {
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
  if (fixed) out += *fixed;
  out += "\r\n";
}

namespace {

// Per-thread memo of the series a request touches: the registry lookup
// (label strings, shared lock, map search) is paid once per thread and series.
void count_request(const Context& ctx, int status, double seconds) {
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

void access_log(const Context& ctx, int status, double seconds) {
  if (!log_enabled(LogLevel::info)) return;
  std::vector<LogField> f{{"request_id", ctx.request_id},
                          {"method", std::string(ctx.req.method_string())},
                          {"target", redact_target(std::string_view(ctx.req.target().data(), ctx.req.target().size()))},
                          {"status", status},
                          {"duration_ms", seconds * 1000.0}};
  if (!ctx.route_name.empty()) f.emplace_back("route", std::string(ctx.route_name));
  for (const auto& [k, v] : ctx.log_fields) f.emplace_back(k, v);
  log(LogLevel::info, "request", f);
}

}  // namespace

void record(const ServerOptions& opts, const Context& ctx, int status, double seconds) {
  if (opts.metrics) count_request(ctx, status, seconds);
  if (opts.access_log) access_log(ctx, status, seconds);
}

}  // namespace recgate::http::session_detail
