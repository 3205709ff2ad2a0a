// The accept loop and the server's life: at the connection limit it closes
// the connection idle longest (or waits for one to close), backs off when
// accept(2) fails for want of descriptors, hands each connection to one I/O
// thread's session (session.hpp), and drains on shutdown.
#include "core/http/server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include "core/http/connections.hpp"
#include "core/http/session.hpp"
#include "core/http/url.hpp"
#include "core/log.hpp"

namespace recgate::http {

namespace net = boost::asio;
namespace beast = boost::beast;
using tcp = net::ip::tcp;
using net::awaitable;
constexpr auto tuple_awaitable = net::as_tuple(net::use_awaitable);

struct Server::Impl {
  ServerOptions opts;
  Router router;
  IoThreads& threads;
  Drain& drain;
  tcp::acceptor acceptor;
  std::shared_ptr<ConnectionTable> table;
  // The acceptor's pause: waiting for a free slot, or backing off after accept failed.
  net::steady_timer accept_timer;
  RepeatLimiter accept_errors;  // both used by the accept loop only
  RepeatLimiter limit_reached;
  std::unique_ptr<net::steady_timer> drain_timer;

  Impl(IoThreads& t, Drain& d, ServerOptions o, Router r)
      : opts(std::move(o)),
        router(std::move(r)),
        threads(t),
        drain(d),
        acceptor(t.main()),
        table(std::make_shared<ConnectionTable>(opts.max_connections)),
        accept_timer(t.main()) {
    // A closing connection wakes a paused acceptor on the acceptor's thread.
    table->set_wake([ioc = &t.main(), timer = &accept_timer] { net::post(*ioc, [timer] { timer->cancel(); }); });
    // The last request of a drain stops the threads.
    drain.on_idle([&t] { t.stop(); });
  }

  ~Impl() { table->set_wake(nullptr); }  // sessions may outlive this; the timer does not

  SessionEnv env() { return SessionEnv{&opts, &router, &drain, table.get()}; }
};

namespace {

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

awaitable<void> run_session(SessionEnv env, tcp::socket socket, SlotGuard guard) {
  beast::tcp_stream stream(std::move(socket));
  Session<beast::tcp_stream> session(stream, env, *guard.slot);
  co_await session.run();
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

awaitable<void> accept_loop(Server::Impl* implp) {
  Server::Impl& impl = *implp;
  for (;;) {
    if (!impl.acceptor.is_open()) co_return;
    if (impl.table->full()) {
      const beast::error_code ec = co_await client_waiting(impl);
      if (!impl.acceptor.is_open()) co_return;
      if (ec) co_await back_off(impl, ec);
      else if (impl.table->full()) co_await make_room(impl);
      continue;
    }
    auto [ec, socket] = co_await impl.acceptor.async_accept(impl.threads.next(), tuple_awaitable);
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
    net::co_spawn(ex, run_session(impl.env(), std::move(socket), std::move(guard)), log_session_exception);
  }
}

}  // namespace

Server::Server(IoThreads& threads, Drain& drain, ServerOptions opts, Router router)
    : threads_(threads), drain_(drain), impl_(std::make_unique<Impl>(threads, drain, std::move(opts), std::move(router))) {}

Server::Server(ServerOptions opts, Router router)
    : own_threads_(std::make_unique<IoThreads>(opts.threads)),
      own_drain_(std::make_unique<Drain>()),
      threads_(*own_threads_),
      drain_(*own_drain_),
      impl_(std::make_unique<Impl>(threads_, drain_, std::move(opts), std::move(router))) {}

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
  net::co_spawn(threads_.main(), accept_loop(impl_.get()), log_session_exception);
  return bound.port();
}

void Server::run() { threads_.run(); }

std::shared_ptr<const std::atomic<std::int64_t>> Server::connections() const { return impl_->table->open(); }

void Server::shutdown() {
  net::post(threads_.main(), [this] {
    if (!drain_.start()) return;
    log_info("draining", {{"inflight", drain_.inflight()},
                          {"timeout_ms", static_cast<std::int64_t>(impl_->opts.drain_timeout.count())}});
    beast::error_code ignored;
    impl_->acceptor.close(ignored);
    impl_->accept_timer.cancel();  // an acceptor paused at the limit or backing off
    if (drain_.inflight() == 0) {
      threads_.stop();
      return;
    }
    impl_->drain_timer = std::make_unique<net::steady_timer>(threads_.main(), impl_->opts.drain_timeout);
    impl_->drain_timer->async_wait([this](beast::error_code) {
      if (drain_.inflight() > 0)
        log_warn("drain timeout; closing with requests in flight", {{"inflight", drain_.inflight()}});
      threads_.stop();
    });
  });
}

}  // namespace recgate::http
