// Upstream HTTP(S) client: a keep-alive pool per origin whose bookkeeping is
// guarded by a mutex never held across I/O, one strand per connection, and
// Beast HTTP/1.1 over tcp_stream or ssl_stream with a deadline re-armed before
// every operation. I/O layer below the MWS, Ads and LWA services.
#include "core/upstream/http_client.hpp"

#include <algorithm>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include "core/log.hpp"

namespace recgate::upstream {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;
using Message = http::request<http::string_body>;

namespace {

constexpr auto nothrow = net::as_tuple(net::use_awaitable);
constexpr auto tls_close_timeout = std::chrono::seconds(2);
constexpr std::uint32_t response_header_limit = 64 * 1024;
// Bound on the bytes read but not yet parsed. Body bytes are consumed as they
// are parsed (and count against max_response_bytes); what can pile up is a
// header block (capped above) or a chunk-size line or trailer, which Beast
// does not cap: a chunk extension that never ends would otherwise grow the
// buffer until the deadline.
constexpr std::size_t read_buffer_limit = response_header_limit + 64 * 1024;

struct Connection {
  Connection(const net::any_io_executor& ex, ssl::context* tls) : strand(net::make_strand(ex)) {
    if (tls != nullptr) {
      secure.emplace(strand, *tls);
    } else {
      plain.emplace(strand);
    }
  }
  beast::tcp_stream& tcp() { return secure ? beast::get_lowest_layer(*secure) : *plain; }

  net::any_io_executor strand;
  std::optional<beast::tcp_stream> plain;
  std::optional<beast::ssl_stream<beast::tcp_stream>> secure;
  beast::flat_buffer buffer{read_buffer_limit};
  Clock::time_point idle_since{};
};
using ConnectionPtr = std::shared_ptr<Connection>;

// A request waiting for a connection slot of a full origin.
struct Waiter {
  explicit Waiter(const net::any_io_executor& ex) : wake(ex, 1) {}
  net::experimental::concurrent_channel<void(boost::system::error_code)> wake;
  bool granted = false;  // guarded by ClientCore::mutex_
  ConnectionPtr conn;    // a handed-over live connection, or null: permission to open one
};
using WaiterPtr = std::shared_ptr<Waiter>;

struct Origin {
  int open = 0;  // counted against the cap: in use, idle, or being opened
  std::vector<ConnectionPtr> idle;  // most recently used last
  std::deque<WaiterPtr> waiters;
};

struct Slot {
  bool granted = false;
  ConnectionPtr conn;  // null with granted: open a new connection
};

enum class Disposition { keep, close, abort };

struct Outcome {
  ErrorKind error = ErrorKind::none;
  std::string detail;
  boost::system::error_code ec;
  bool got_bytes = false;  // part of a response arrived: never retry
  Disposition disposition = Disposition::abort;
  Response response;
};

struct LogFailure {
  const char* what;
  void operator()(std::exception_ptr e) const {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      log_error(what, {{"error", ex.what()}});
    } catch (...) {
      log_error(what, {{"error", "unknown exception"}});
    }
  }
};

Outcome failure(ErrorKind kind, std::string detail) {
  Outcome out;
  out.error = kind;
  out.detail = std::move(detail);
  return out;
}

Outcome cancelled_outcome() { return failure(ErrorKind::timeout, "cancelled by the caller"); }

bool is_cancelled(const net::cancellation_state& state) { return state.cancelled() != net::cancellation_type::none; }

Outcome io_failure(const boost::system::error_code& ec, bool got_bytes, const std::string& step) {
  static const auto& http_category = http::make_error_code(http::error::bad_version).category();
  Outcome out;
  out.ec = ec;
  out.got_bytes = got_bytes;
  if (ec == beast::error::timeout) {
    out.error = ErrorKind::timeout;
    out.detail = step + " timed out";
    return out;
  }
  if (ec == net::error::operation_aborted) return cancelled_outcome();
  if (ec == http::error::body_limit || ec == http::error::header_limit || ec == http::error::buffer_overflow) {
    out.error = ErrorKind::too_large;
  } else if (ec == http::error::end_of_stream || ec == http::error::partial_message || ec == net::error::eof ||
             ec == net::error::connection_reset || ec == net::error::broken_pipe ||
             ec == net::error::connection_aborted || ec == ssl::error::stream_truncated) {
    out.error = ErrorKind::dropped;
  } else if (ec.category() == http_category) {
    out.error = ErrorKind::protocol;
  } else {
    out.error = ErrorKind::dropped;
  }
  out.detail = step + ": " + ec.message();
  return out;
}

// 1xx other than 101 (which recgate never asks for, so it ends the exchange).
bool is_interim(unsigned status) { return status >= 100 && status < 200 && status != 101; }

// RFC 9110 token characters (method and field names).
bool is_token(std::string_view s) {
  static constexpr std::string_view extra = "!#$%&'*+-.^_`|~";
  if (s.empty()) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           extra.find(c) != std::string_view::npos;
  });
}

bool is_field_value(std::string_view s) {
  return std::none_of(s.begin(), s.end(), [](char c) { return c == '\r' || c == '\n' || c == '\0'; });
}

std::optional<Message> build_message(const ParsedUrl& url, Request& req, const ClientOptions& opts) {
  if (!is_token(req.method)) return std::nullopt;
  Message msg;
  const auto verb = http::string_to_verb(req.method);
  if (verb == http::verb::unknown) {
    msg.method_string(req.method);
  } else {
    msg.method(verb);
  }
  msg.target(url.target);
  msg.version(11);
  msg.keep_alive(true);
  msg.set(http::field::host, host_header_value(url));
  if (!opts.user_agent.empty()) msg.set(http::field::user_agent, opts.user_agent);
  for (auto& [name, value] : req.headers) {
    if (!is_token(name) || !is_field_value(value)) return std::nullopt;
    if (beast::iequals(name, "host") || beast::iequals(name, "content-length") ||
        beast::iequals(name, "transfer-encoding")) {
      continue;
    }
    if (beast::iequals(name, "user-agent")) {
      msg.set(http::field::user_agent, value);
    } else {
      msg.insert(name, value);
    }
  }
  msg.body() = std::move(req.body);
  msg.prepare_payload();
  return msg;
}

// "host:port" or "[v6]:port", for pool keys and error details.
std::string where(const ParsedUrl& url) {
  const bool ipv6 = url.host.find(':') != std::string::npos;
  return (ipv6 ? "[" + url.host + "]" : url.host) + ":" + std::to_string(url.port);
}

std::string origin_key(const ParsedUrl& url) { return url.scheme + "://" + where(url); }

// ssl::host_name_verification, plus a verify error that names the mismatch
// (OpenSSL otherwise reports only "unspecified certificate verification error").
struct VerifyHost {
  ssl::host_name_verification check;
  bool ip_literal;
  bool operator()(bool preverified, ssl::verify_context& ctx) const {
    const bool ok = check(preverified, ctx);
    if (preverified && !ok && X509_STORE_CTX_get_error_depth(ctx.native_handle()) == 0) {
      X509_STORE_CTX_set_error(ctx.native_handle(),
                               ip_literal ? X509_V_ERR_IP_ADDRESS_MISMATCH : X509_V_ERR_HOSTNAME_MISMATCH);
    }
    return ok;
  }
};

}  // namespace

namespace detail {

class ClientCore : public std::enable_shared_from_this<ClientCore> {
 public:
  ClientCore(net::any_io_executor ex, ClientOptions opts)
      : ex_(std::move(ex)),
        opts_(std::move(opts)),
        tls_(ssl::context::tls_client),
        reaper_timer_(net::make_strand(ex_)) {
    opts_.max_connections_per_origin = std::max(1, opts_.max_connections_per_origin);
    SSL_CTX_set_min_proto_version(tls_.native_handle(), TLS1_2_VERSION);
    tls_.set_verify_mode(ssl::verify_peer);
    if (!opts_.ca_file.empty()) {  // the operator's own file: a bad one stops start-up
      boost::system::error_code ec;
      tls_.load_verify_file(opts_.ca_file, ec);
      if (ec) throw std::runtime_error("upstream.ca_file: cannot load " + opts_.ca_file + ": " + ec.message());
    }
  }

  const ClientOptions& options() const { return opts_; }
  const net::any_io_executor& executor() const { return ex_; }

  ConnectionPtr make_connection(bool tls) {
    if (tls) std::call_once(system_trust_loaded_, [this] { load_system_trust(); });
    return std::make_shared<Connection>(ex_, tls ? &tls_ : nullptr);
  }

  // A slot at once (an idle connection or permission to open one), or a
  // waiter to await. fresh_only skips and closes the origin's idle connections.
  std::variant<Slot, WaiterPtr> try_acquire(const std::string& key, bool fresh_only, const net::any_io_executor& ex) {
    std::vector<ConnectionPtr> to_close;
    std::variant<Slot, WaiterPtr> out;
    {
      std::lock_guard lock(mutex_);
      auto& origin = origins_[key];
      const auto now = Clock::now();
      Slot slot;
      while (!origin.idle.empty()) {
        ConnectionPtr conn = std::move(origin.idle.back());
        origin.idle.pop_back();
        if (fresh_only || now - conn->idle_since >= opts_.idle_timeout) {
          --origin.open;
          to_close.push_back(std::move(conn));
          continue;
        }
        slot = Slot{true, std::move(conn)};
        break;
      }
      if (!slot.granted && origin.open < opts_.max_connections_per_origin) {
        ++origin.open;
        slot.granted = true;
      }
      if (slot.granted) {
        out = std::move(slot);
      } else {
        auto waiter = std::make_shared<Waiter>(ex);
        origin.waiters.push_back(waiter);
        out = std::move(waiter);
      }
    }
    for (auto& conn : to_close) close_later(std::move(conn), true);
    return out;
  }

  Slot finish_wait(const std::string& key, const WaiterPtr& waiter) {
    std::lock_guard lock(mutex_);
    if (waiter->granted) return Slot{true, std::move(waiter->conn)};
    auto& waiters = origins_[key].waiters;
    waiters.erase(std::remove(waiters.begin(), waiters.end(), waiter), waiters.end());
    return Slot{};
  }

  // Gives back the slot taken by try_acquire/finish_wait: the connection goes
  // to the first waiter or the idle list, or is closed and the slot passed on.
  void release(const std::string& key, ConnectionPtr conn, Disposition disposition) {
    WaiterPtr wake;
    ConnectionPtr to_close;
    bool start_reaper = false;
    {
      std::lock_guard lock(mutex_);
      auto& origin = origins_[key];
      if (disposition == Disposition::keep && !stopped_) {
        if (!origin.waiters.empty()) {
          wake = std::move(origin.waiters.front());
          origin.waiters.pop_front();
          wake->granted = true;
          wake->conn = std::move(conn);
        } else {
          conn->idle_since = Clock::now();
          origin.idle.push_back(std::move(conn));
          start_reaper = !std::exchange(reaper_running_, true);
        }
      } else {
        to_close = std::move(conn);
        if (!origin.waiters.empty()) {
          wake = std::move(origin.waiters.front());
          origin.waiters.pop_front();
          wake->granted = true;
        } else {
          --origin.open;
        }
      }
    }
    if (wake) wake->wake.try_send(boost::system::error_code{});
    if (to_close) close_later(std::move(to_close), disposition != Disposition::abort);
    if (start_reaper) {
      net::co_spawn(reaper_timer_.get_executor(), reap_idle(shared_from_this()),
                    LogFailure{"upstream: idle connection reaper failed"});
    }
  }

  void shutdown() {
    std::vector<ConnectionPtr> to_close;
    {
      std::lock_guard lock(mutex_);
      stopped_ = true;
      for (auto& [key, origin] : origins_) {
        origin.open -= static_cast<int>(origin.idle.size());
        for (auto& conn : origin.idle) to_close.push_back(std::move(conn));
        origin.idle.clear();
      }
    }
    for (auto& conn : to_close) close_later(std::move(conn), true);
    net::post(reaper_timer_.get_executor(), [self = shared_from_this()] { self->reaper_timer_.cancel(); });
  }

  void close_later(ConnectionPtr conn, bool graceful) {
    auto strand = conn->strand;
    net::co_spawn(strand, close_connection(std::move(conn), graceful),
                  LogFailure{"upstream: closing a connection failed"});
  }

 private:
  // Closes idle connections older than idle_timeout; the time of the next
  // expiry, or nothing when no idle connection is left (the reaper then ends).
  std::optional<Clock::time_point> sweep_idle(Clock::time_point now) {
    std::vector<ConnectionPtr> to_close;
    std::optional<Clock::time_point> next;
    {
      std::lock_guard lock(mutex_);
      for (auto it = origins_.begin(); it != origins_.end();) {
        auto& origin = it->second;
        auto expired = [&](const ConnectionPtr& c) { return stopped_ || now - c->idle_since >= opts_.idle_timeout; };
        for (auto& conn : origin.idle) {
          if (expired(conn)) {
            to_close.push_back(conn);
          } else if (!next || conn->idle_since + opts_.idle_timeout < *next) {
            next = conn->idle_since + opts_.idle_timeout;
          }
        }
        const auto removed = std::erase_if(origin.idle, expired);
        origin.open -= static_cast<int>(removed);
        if (origin.open == 0 && origin.waiters.empty()) {
          it = origins_.erase(it);
        } else {
          ++it;
        }
      }
      if (!next) reaper_running_ = false;
    }
    for (auto& conn : to_close) close_later(std::move(conn), true);
    return next;
  }

  static net::awaitable<void> reap_idle(std::shared_ptr<ClientCore> self) {
    while (auto next = self->sweep_idle(Clock::now())) {
      self->reaper_timer_.expires_at(*next);
      co_await self->reaper_timer_.async_wait(nothrow);
    }
  }

  static net::awaitable<void> close_connection(ConnectionPtr conn, bool graceful) {
    if (conn->secure && graceful) {
      conn->tcp().expires_after(tls_close_timeout);
      auto [ec] = co_await conn->secure->async_shutdown(nothrow);
      if (ec && ec != ssl::error::stream_truncated && ec != net::error::eof && ec != beast::error::timeout) {
        log_debug("upstream: TLS shutdown failed", {{"error", ec.message()}});
      }
    }
    boost::system::error_code ignored;
    conn->tcp().socket().shutdown(tcp::socket::shutdown_both, ignored);
    conn->tcp().close();
  }

  // The system CA bundle (~140 certificates, 50-150 ms to parse) is read
  // on the first TLS connection, not at start: start-up must not wait for
  // it ([perf] item 4), and a gateway on plain-http upstreams never needs it.
  void load_system_trust() {
    boost::system::error_code ec;
    tls_.set_default_verify_paths(ec);
    if (ec) log_warn("upstream: system CA paths not usable", {{"error", ec.message()}});
  }

  net::any_io_executor ex_;
  ClientOptions opts_;
  ssl::context tls_;
  std::once_flag system_trust_loaded_;
  net::steady_timer reaper_timer_;  // on its own strand
  std::mutex mutex_;
  std::unordered_map<std::string, Origin> origins_;
  bool stopped_ = false;
  bool reaper_running_ = false;
};

}  // namespace detail

namespace {

using CorePtr = std::shared_ptr<detail::ClientCore>;

net::awaitable<Slot> acquire(CorePtr core, std::string key, bool fresh_only, Clock::time_point deadline) {
  const auto ex = co_await net::this_coro::executor;
  auto decided = core->try_acquire(key, fresh_only, ex);
  Slot slot;
  if (auto* ready = std::get_if<Slot>(&decided)) {
    slot = std::move(*ready);
  } else {
    const WaiterPtr waiter = std::get<WaiterPtr>(std::move(decided));
    net::steady_timer timer(ex, deadline);
    co_await net::experimental::make_parallel_group(waiter->wake.async_receive(net::deferred),
                                                    timer.async_wait(net::deferred))
        .async_wait(net::experimental::wait_for_one(), net::use_awaitable);
    slot = core->finish_wait(key, waiter);
  }
  if (slot.granted && fresh_only && slot.conn) core->close_later(std::move(slot.conn), true);
  co_return slot;
}

// Resolve, connect and (for https) the verified TLS handshake, all within
// connect_timeout and the request deadline.
net::awaitable<Outcome> establish(CorePtr core, ConnectionPtr conn, ParsedUrl url, Clock::time_point deadline) {
  const auto state = co_await net::this_coro::cancellation_state;
  const auto connect_deadline = std::min(deadline, Clock::now() + core->options().connect_timeout);

  tcp::resolver resolver(conn->strand);
  net::steady_timer timer(conn->strand, connect_deadline);
  auto [order, resolve_ec, endpoints, timer_ec] =
      co_await net::experimental::make_parallel_group(
          resolver.async_resolve(url.host, std::to_string(url.port), tcp::resolver::numeric_service, net::deferred),
          timer.async_wait(net::deferred))
          .async_wait(net::experimental::wait_for_one(), net::use_awaitable);
  if (is_cancelled(state)) co_return cancelled_outcome();
  if (order[0] == 1) co_return failure(ErrorKind::timeout, "resolving " + url.host + " timed out");
  if (resolve_ec) co_return failure(ErrorKind::resolve_failed, "resolving " + url.host + ": " + resolve_ec.message());

  auto& stream = conn->tcp();
  stream.expires_at(connect_deadline);
  auto [connect_ec, endpoint] = co_await stream.async_connect(endpoints, nothrow);
  if (connect_ec) {
    Outcome out = io_failure(connect_ec, false, "connecting to " + where(url));
    if (out.error != ErrorKind::timeout) out.error = ErrorKind::connect_failed;
    co_return out;
  }
  boost::system::error_code ignored;
  stream.socket().set_option(tcp::no_delay(true), ignored);
  if (!conn->secure) co_return Outcome{};

  auto& tls = *conn->secure;
  boost::system::error_code not_ip;
  net::ip::make_address(url.host, not_ip);
  if (not_ip && SSL_set_tlsext_host_name(tls.native_handle(), url.host.c_str()) != 1) {
    co_return failure(ErrorKind::tls_failed, "cannot set SNI for " + url.host);
  }
  tls.set_verify_callback(VerifyHost{ssl::host_name_verification(url.host), !not_ip});
  if (is_cancelled(state)) co_return cancelled_outcome();
  stream.expires_at(connect_deadline);
  auto [handshake_ec] = co_await tls.async_handshake(ssl::stream_base::client, nothrow);
  if (handshake_ec) {
    Outcome out = io_failure(handshake_ec, false, "TLS handshake with " + where(url));
    if (out.error == ErrorKind::timeout || is_cancelled(state)) co_return out;
    out.error = ErrorKind::tls_failed;
    const long verify = SSL_get_verify_result(tls.native_handle());
    if (verify != X509_V_OK) out.detail += std::string(" (") + X509_verify_cert_error_string(verify) + ")";
    co_return out;
  }
  co_return Outcome{};
}

template <class Stream>
net::awaitable<Outcome> transact(Stream& stream, beast::flat_buffer& buffer, const Message& msg,
                                 std::size_t body_limit, Clock::time_point deadline) {
  const auto state = co_await net::this_coro::cancellation_state;
  auto& tcp_layer = beast::get_lowest_layer(stream);
  if (is_cancelled(state)) co_return cancelled_outcome();
  tcp_layer.expires_at(deadline);
  auto [write_ec, written] = co_await http::async_write(stream, msg, nothrow);
  if (write_ec) co_return io_failure(write_ec, false, "sending the request");

  // Interim 1xx answers (RFC 9110 §15.2: 100 Continue, 103 Early Hints) come
  // before the final one on the same connection. Returned as the answer, they
  // left the final one to be read as the answer to the next request.
  std::optional<http::response_parser<http::string_body>> answer;
  bool got_bytes = false;
  do {
    answer.emplace();
    auto& parser = *answer;
    parser.body_limit(body_limit);
    parser.header_limit(response_header_limit);
    if (msg.method() == http::verb::head) parser.skip(true);
    if (is_cancelled(state)) co_return cancelled_outcome();
    tcp_layer.expires_at(deadline);
    auto [read_ec, read] = co_await http::async_read(stream, buffer, parser, nothrow);
    got_bytes = got_bytes || parser.got_some() || read > 0 || buffer.size() > 0;
    if (read_ec) co_return io_failure(read_ec, got_bytes, "reading the response");
  } while (is_interim(answer->get().result_int()));
  tcp_layer.expires_never();
  auto& parser = *answer;

  Outcome out;
  out.got_bytes = true;
  auto& res = parser.get();
  out.response.status = static_cast<int>(res.result_int());
  for (const auto& field : res) {
    out.response.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  out.response.body = std::move(res.body());
  const bool reusable = parser.keep_alive() && msg.keep_alive() && buffer.size() == 0;
  out.disposition = reusable ? Disposition::keep : Disposition::close;
  co_return out;
}

// One attempt on one connection; runs on the connection's strand.
net::awaitable<Outcome> exchange(CorePtr core, ConnectionPtr conn, ParsedUrl url, std::shared_ptr<const Message> msg,
                                 bool fresh, Clock::time_point deadline) {
  co_await net::this_coro::throw_if_cancelled(false);
  if (fresh) {
    Outcome connected = co_await establish(core, conn, url, deadline);
    if (connected.error != ErrorKind::none) co_return connected;
  }
  const auto limit = core->options().max_response_bytes;
  if (conn->secure) co_return co_await transact(*conn->secure, conn->buffer, *msg, limit, deadline);
  co_return co_await transact(*conn->plain, conn->buffer, *msg, limit, deadline);
}

net::awaitable<Result> perform(CorePtr core, Request req) {
  co_await net::this_coro::throw_if_cancelled(false);
  const auto state = co_await net::this_coro::cancellation_state;
  const auto deadline = Clock::now() + core->options().request_timeout;
  const auto url = parse_url(req.url);
  if (!url) co_return Result{ErrorKind::bad_url, "not a valid http(s) URL", {}};
  auto built = build_message(*url, req, core->options());
  if (!built) co_return Result{ErrorKind::bad_url, "invalid method or header name/value", {}};
  const auto msg = std::make_shared<const Message>(std::move(*built));
  const std::string key = origin_key(*url);

  for (int attempt = 0;; ++attempt) {
    const bool retry = attempt > 0;
    Slot slot = co_await acquire(core, key, retry, deadline);
    if (!slot.granted) {
      if (is_cancelled(state)) co_return Result{ErrorKind::timeout, cancelled_outcome().detail, {}};
      co_return Result{ErrorKind::timeout, "no free connection to " + where(*url) + " before the deadline", {}};
    }
    if (is_cancelled(state) || Clock::now() >= deadline) {
      const auto disposition = slot.conn ? Disposition::keep : Disposition::abort;
      core->release(key, std::move(slot.conn), disposition);
      if (is_cancelled(state)) co_return Result{ErrorKind::timeout, cancelled_outcome().detail, {}};
      co_return Result{ErrorKind::timeout, "no free connection to " + where(*url) + " before the deadline", {}};
    }
    const bool fresh = !slot.conn;
    ConnectionPtr conn = fresh ? core->make_connection(url->scheme == "https") : std::move(slot.conn);
    auto strand = conn->strand;
    auto [error, outcome] = co_await net::co_spawn(strand, exchange(core, conn, *url, msg, fresh, deadline), nothrow);
    if (error) {
      core->release(key, std::move(conn), Disposition::abort);
      std::rethrow_exception(error);
    }
    core->release(key, std::move(conn), outcome.disposition);
    const bool stale_pooled = !fresh && !retry && outcome.error == ErrorKind::dropped && !outcome.got_bytes;
    if (stale_pooled && !is_cancelled(state) && Clock::now() < deadline) {
      log_debug("upstream: pooled connection was closed by the peer; retrying on a new one",
                {{"host", where(*url)}, {"error", outcome.detail}});
      continue;
    }
    co_return Result{outcome.error, std::move(outcome.detail), std::move(outcome.response)};
  }
}

}  // namespace

HttpClient::HttpClient(net::any_io_executor ex, ClientOptions opts)
    : core_(std::make_shared<detail::ClientCore>(std::move(ex), std::move(opts))) {}

HttpClient::~HttpClient() { core_->shutdown(); }

net::awaitable<Result> HttpClient::request(Request req) {
  return net::co_spawn(net::make_strand(core_->executor()), perform(core_, std::move(req)), net::use_awaitable);
}

void HttpClient::shutdown() { core_->shutdown(); }

}  // namespace recgate::upstream
