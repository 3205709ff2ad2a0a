// One client connection from accept to close, on one I/O thread, in three
// steps (the shape of Beast's do_session): read a request (deadlines, limits,
// framing), respond (route, handler, write, keep-alive), finish (linger after
// a refusal, close). A template over the stream so the unit tests drive it on
// boost::beast::test::stream: operations only a TCP stream has (deadlines,
// the non-blocking write, the peer's address) are skipped on other streams.
// Coroutine rules: docs/coroutines.md (R2: class-template coroutines take
// references or pointers only; R4: no braced lists here, see session.cpp).
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_suffix.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include <array>
#include <chrono>
#include <optional>
#include <string>
#include <type_traits>

#include "core/http/connections.hpp"
#include "core/http/io_threads.hpp"
#include "core/http/message.hpp"
#include "core/http/options.hpp"
#include "core/http/router.hpp"

namespace recgate::http {

// What a session shares with the server; all of it outlives the session's
// io_context run.
struct SessionEnv {
  const ServerOptions* opts;
  const Router* router;
  Drain* drain;
  ConnectionTable* table;
};

namespace session_detail {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using Parser = bhttp::request_parser<bhttp::string_body>;
using Clock = std::chrono::steady_clock;
inline constexpr auto tuple_awaitable = net::as_tuple(net::use_awaitable);

// What reading found wrong: answer `status` (0: none, close quietly), then
// close, lingering first when `linger`.
struct ReadFailure {
  int status = 0;
  const char* code = "";
  std::string detail;
  bool linger = false;
};
std::optional<ReadFailure> header_failure(const Parser& parser, beast::error_code ec, const ServerOptions& opts);
std::optional<ReadFailure> body_failure(beast::error_code ec, const ServerOptions& opts);
// Feeds what is already buffered to the parser, up to the end of the header.
beast::error_code parse_buffered_header(Parser& parser, beast::flat_buffer& buffer);
// The refusal's problem answer (Connection: close, a fresh request id); logged.
Response refusal(const ReadFailure& f, const ServerOptions& opts);

// Request id, decoded path and query; false when the target is not an
// absolute path with valid %XX escapes.
bool prepare_context(Context& ctx);
Response bad_target(Context& ctx);
Response client_closed();
// The handler, its exception turned into a 500 (pointers: docs/coroutines.md R1).
boost::asio::awaitable<Response> call_handler(const Route* route, Context* ctx);
// Status line and fields, as Beast's serializer would write them, then
// `fixed` (Context::fields_ref) when given.
void render_head(const Response& res, const std::string* fixed, std::string& out);
// Metrics and the access log line for one answered request.
void record(const ServerOptions& opts, const Context& ctx, int status, double seconds);

// What the session learnt about its client while a handler ran.
struct PeerState {
  bool gone = false;   // the watcher saw the end of stream first: the handler was cancelled
  bool ended = false;  // the client has ended its stream (closed, or half-closed after its request)
};

template <class S>
void deadline_at(S& s, Clock::time_point t) {
  if constexpr (requires { s.expires_at(t); }) s.expires_at(t);
}
template <class S>
void deadline_after(S& s, Clock::duration d) {
  deadline_at(s, Clock::now() + d);
}
template <class S>
void no_deadline(S& s) {
  if constexpr (requires { s.expires_never(); }) s.expires_never();
}
template <class S>
inline constexpr bool has_socket = requires(S& s) { s.socket(); };

// Completes only when the peer closes or errors; pipelined bytes are kept.
// An end of stream is remembered in `peer`, also when the handler won the
// race and this read completed before its cancellation took effect: Asio
// marks a socket whose read returned nothing as exhausted and waits for the
// next epoll edge (edge-triggered) before reading again, and after the end
// of stream no edge comes, so the session's next read would wait until
// idle_timeout.
template <class Stream>
net::awaitable<void> watch_peer(Stream* stream, beast::flat_buffer* buffer, PeerState* peer) {
  no_deadline(*stream);
  auto [ec, n] = co_await stream->async_read_some(buffer->prepare(4096), tuple_awaitable);
  if (ec && ec != net::error::operation_aborted) peer->ended = true;
  if (!ec) {
    buffer->commit(n);
    net::steady_timer forever(co_await net::this_coro::executor, net::steady_timer::time_point::max());
    co_await forever.async_wait(tuple_awaitable);
  }
}

}  // namespace session_detail

template <class Stream>
class Session {
 public:
  Session(Stream& stream, const SessionEnv& env, ConnectionSlot& slot)
      : stream_(stream), env_(env), opts_(*env.opts), slot_(slot),
        first_deadline_(session_detail::Clock::now() + opts_.header_timeout) {}

  // Requests until the client or a limit ends the connection; then closes it.
  boost::asio::awaitable<void> run() {
    start();
    for (;;) {
      std::optional<Request> req = co_await read_request();
      if (!req) break;
      const bool keep = co_await respond(*req);
      if (!keep) break;
    }
    co_await finish();
  }

 private:
  void start() {
    if constexpr (session_detail::has_socket<Stream>) {
      slot_.socket = &stream_.socket();
      boost::beast::error_code ec;
      auto ep = stream_.socket().remote_endpoint(ec);
      if (!ec) peer_ = ep.address().to_string();
      // Lets write_now try a write without waiting (async operations are unaffected).
      stream_.socket().non_blocking(true, ec);
    }
  }

  // Idle: waiting for the first byte of a request (a new connection's under
  // header_timeout, the next keep-alive one's under idle_timeout). The
  // acceptor may close an idle connection to admit a new client.
  boost::asio::awaitable<bool> wait_for_request() {
    using namespace session_detail;
    if (first_request_) deadline_at(stream_, first_deadline_);
    else deadline_after(stream_, opts_.idle_timeout);
    env_.table->set_idle(slot_, true);
    slot_.in_idle_read = true;
    auto [ec, n] = co_await stream_.async_read_some(buffer_.prepare(8192), tuple_awaitable);
    slot_.in_idle_read = false;
    env_.table->set_idle(slot_, false);
    if (ec) co_return false;
    buffer_.commit(n);
    co_return true;
  }

  // The next request, or nullopt when the connection is to end (after
  // answering what was wrong with it, if anything).
  boost::asio::awaitable<std::optional<Request>> read_request() {
    using namespace session_detail;
    if (buffer_.size() == 0) {
      const bool more = co_await wait_for_request();
      if (!more) co_return std::nullopt;
    }
    Parser parser;
    parser.header_limit(static_cast<std::uint32_t>(opts_.max_header_bytes));
    parser.body_limit(opts_.max_body_bytes);
    // Usually the whole header arrived with the first read: parse it from the
    // buffer without an asynchronous operation or a timer.
    beast::error_code ec = parse_buffered_header(parser, buffer_);
    bool deadline_armed = false;  // one read_timeout covers the rest of the header and the body
    if (!ec && !parser.is_header_done()) {
      // A new connection's whole first header counts from accept.
      if (first_request_) deadline_at(stream_, first_deadline_);
      else deadline_after(stream_, opts_.read_timeout);
      deadline_armed = !first_request_;
      auto [rec, rn] = co_await bhttp::async_read_header(stream_, buffer_, parser, tuple_awaitable);
      ec = rec;
    }
    if (auto bad = header_failure(parser, ec, opts_)) {
      co_await refuse(*bad);
      co_return std::nullopt;
    }
    first_request_ = false;
    if (!parser.is_done()) {
      if (!deadline_armed) deadline_after(stream_, opts_.read_timeout);
      auto [bec, bn] = co_await bhttp::async_read(stream_, buffer_, parser, tuple_awaitable);
      if (auto bad = body_failure(bec, opts_)) {
        co_await refuse(*bad);
        co_return std::nullopt;
      }
    }
    co_return parser.release();
  }

  // Answers an error found while reading (431, 413, 400, 501); status 0: none.
  boost::asio::awaitable<void> refuse(const session_detail::ReadFailure& bad) {
    using namespace session_detail;
    if (bad.status == 0) co_return;
    linger_ = bad.linger;
    Response res = refusal(bad, opts_);
    deadline_after(stream_, opts_.read_timeout);
    co_await bhttp::async_write(stream_, res, tuple_awaitable);
  }

  // Routes and answers one request; false when the connection is to close.
  boost::asio::awaitable<bool> respond(const Request& req) {
    using namespace session_detail;
    env_.drain->begin();
    Context ctx{req, {}, {}, {}, {}, {}, Clock::now(), {}, {}, {}, {}, {}, peer_};
    PeerState peer;
    Response res;
    if (prepare_context(ctx)) res = co_await dispatch(ctx, peer);
    else res = bad_target(ctx);
    const int status = static_cast<int>(res.result_int());
    const double seconds = std::chrono::duration<double>(Clock::now() - ctx.started).count();
    bool keep = false;
    if (!peer.gone) keep = co_await send(req, ctx, res, peer);
    record(opts_, ctx, status, seconds);
    env_.drain->end();
    co_return keep;
  }

  // The router's answer, else the route's handler (raced against the
  // client leaving on routes that watch for it).
  boost::asio::awaitable<Response> dispatch(Context& ctx, session_detail::PeerState& peer) {
    using namespace session_detail;
    using namespace boost::asio::experimental::awaitable_operators;
    Router::Decision d = env_.router->route(ctx);
    if (d.answer) co_return std::move(*d.answer);
    if (!d.route->watch_disconnect) co_return co_await call_handler(d.route, &ctx);
    auto result = co_await (call_handler(d.route, &ctx) || watch_peer(&stream_, &buffer_, &peer));
    if (result.index() == 0) co_return std::move(std::get<0>(result));
    peer.gone = true;
    co_return client_closed();
  }

  // Writes the answer; true when the connection stays open for another request.
  boost::asio::awaitable<bool> send(const Request& req, Context& ctx, Response& res,
                                    const session_detail::PeerState& peer) {
    res.set("X-Request-Id", ctx.request_id);
    res.version(req.version());
    if (ctx.raw_response) {
      // Fault injection (sandbox), which only a TCP connection can act out.
      if constexpr (std::is_same_v<Stream, boost::beast::tcp_stream>) co_await ctx.raw_response(stream_);
      co_return false;
    }
    // A client that ended its stream sends nothing more: say so and close
    // after this answer, as nginx closes a half-closed client's connection.
    const bool keep = req.keep_alive() && !env_.drain->draining() && !peer.ended;
    res.keep_alive(keep);
    // Content-Length of the body, also for HEAD (the body is not sent).
    if (ctx.body_ref) res.content_length(ctx.body_ref->size());
    else res.prepare_payload();
    const bool written = co_await write(res, ctx, req.method() != boost::beast::http::verb::head);
    co_return written && keep;
  }

  // A response that fits the socket's send buffer (almost all of them) is
  // written at once, without a timer or an asynchronous operation; the rest
  // is written asynchronously under the read timeout.
  boost::asio::awaitable<bool> write(const Response& res, const Context& ctx, bool send_body) {
    using namespace session_detail;
    render_head(res, ctx.fields_ref.get(), head_);
    const net::const_buffer body = ctx.body_ref ? net::buffer(*ctx.body_ref) : net::buffer(res.body());
    std::array<net::const_buffer, 2> wire{net::buffer(head_), send_body ? body : net::const_buffer()};
    beast::error_code ec;
    const std::size_t written = write_now(wire, ec);
    if (!ec && written < wire[0].size() + wire[1].size()) {
      beast::buffers_suffix<std::array<net::const_buffer, 2>> rest(wire);
      rest.consume(written);
      deadline_after(stream_, opts_.read_timeout);
      auto [aec, an] = co_await net::async_write(stream_, rest, tuple_awaitable);
      ec = aec;
    }
    co_return !ec;
  }

  // What the socket takes now, without waiting: one writev of header and body.
  std::size_t write_now(const std::array<boost::asio::const_buffer, 2>& wire, boost::beast::error_code& ec) {
    if constexpr (session_detail::has_socket<Stream>) {
      const std::size_t n = stream_.socket().write_some(wire, ec);
      if (ec == boost::asio::error::would_block || ec == boost::asio::error::try_again) {
        ec = {};
        return 0;
      }
      return ec ? 0 : n;
    } else {
      return 0;
    }
  }

  // After a refusal, reads and drops what the client still sends for a
  // moment before closing (nginx's lingering close): closing with unread
  // data would reset the connection and could destroy the answer in flight.
  boost::asio::awaitable<void> finish() {
    using namespace session_detail;
    slot_.socket = nullptr;
    if (linger_) {
      shutdown_send();
      deadline_after(stream_, std::chrono::seconds(1));
      std::array<char, 4096> sink;
      for (std::size_t dropped = 0; dropped < 64 * 1024;) {
        auto [ec, n] = co_await stream_.async_read_some(net::buffer(sink), tuple_awaitable);
        if (ec) break;
        dropped += n;
      }
    }
    shutdown_send();
    stream_.close();
  }

  void shutdown_send() {
    if constexpr (session_detail::has_socket<Stream>) {
      boost::beast::error_code ignored;
      stream_.socket().shutdown(boost::asio::ip::tcp::socket::shutdown_send, ignored);
    }
  }

  Stream& stream_;
  const SessionEnv& env_;
  const ServerOptions& opts_;
  ConnectionSlot& slot_;
  const session_detail::Clock::time_point first_deadline_;
  boost::beast::flat_buffer buffer_;
  std::string head_;  // the serialized response header, reused across the connection's requests
  std::string peer_;  // the client's address (Context::client until a key names it)
  bool first_request_ = true;
  bool linger_ = false;  // answered an error found while reading: linger, then close
};

}  // namespace recgate::http
