// The coalescer: identical concurrent work runs once and everyone gets the
// result; a cancelled caller leaves; when the last one leaves the work is
// cancelled too. Single-threaded io_context driven with poll(): no sleeps.
#include <doctest/doctest.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>

#include "core/coalesce.hpp"

namespace net = boost::asio;
using recgate::Coalescer;

namespace {

struct Shared {
  int started = 0;
  bool aborted = false;
  net::steady_timer* gate = nullptr;
};

net::awaitable<int> slow_work(Shared* s, int value) {
  ++s->started;
  net::steady_timer t(co_await net::this_coro::executor, std::chrono::hours(1));
  s->gate = &t;
  auto [ec] = co_await t.async_wait(net::as_tuple(net::use_awaitable));
  s->gate = nullptr;
  if (ec && ec != net::error::operation_aborted) co_return -1;
  // Cancelled by the gate (released) or by the coalescer (everyone left).
  auto cs = co_await net::this_coro::cancellation_state;
  if (cs.cancelled() != net::cancellation_type::none) {
    s->aborted = true;
    co_return -2;
  }
  co_return value;
}

net::awaitable<void> caller(Coalescer<int>* c, Shared* s, std::optional<int>* out, bool* joined) {
  Coalescer<int>::Work work = [s]() { return slow_work(s, 42); };
  std::string key = "k";
  *out = co_await c->run(key, work, joined);
}

// Runs what is ready; restart() because an io_context that ran out of work stops.
void drain(net::io_context& io) {
  io.restart();
  io.poll();
}

}  // namespace

TEST_CASE("coalesce: ten identical concurrent calls run the work once and share its result") {
  net::io_context io;
  Coalescer<int> c(io.get_executor());
  Shared s;
  std::vector<std::optional<int>> results(10);
  bool joined[10] = {};
  for (int i = 0; i < 10; ++i) net::co_spawn(io, caller(&c, &s, &results[i], &joined[i]), net::detached);
  drain(io);
  CHECK(s.started == 1);
  CHECK(c.in_flight() == 1);
  REQUIRE(s.gate);
  s.gate->cancel();  // the upstream answers
  drain(io);
  CHECK(c.in_flight() == 0);
  int joiners = 0;
  for (int i = 0; i < 10; ++i) {
    CHECK(results[i] == 42);
    joiners += joined[i] ? 1 : 0;
  }
  CHECK(joiners == 9);
  // A later call starts new work.
  std::optional<int> later;
  bool later_joined = true;
  net::co_spawn(io, caller(&c, &s, &later, &later_joined), net::detached);
  drain(io);
  CHECK(s.started == 2);
  CHECK_FALSE(later_joined);
  REQUIRE(s.gate);
  s.gate->cancel();
  drain(io);
  CHECK(later == 42);
}

TEST_CASE("coalesce: a cancelled caller leaves - the last one leaving cancels the work") {
  net::io_context io;
  Coalescer<int> c(io.get_executor());
  Shared s;
  std::optional<int> r1 = 7, r2 = 7;
  bool j1 = false, j2 = false;
  net::cancellation_signal sig1, sig2;
  net::co_spawn(io, caller(&c, &s, &r1, &j1), net::bind_cancellation_slot(sig1.slot(), net::detached));
  net::co_spawn(io, caller(&c, &s, &r2, &j2), net::bind_cancellation_slot(sig2.slot(), net::detached));
  drain(io);
  REQUIRE(s.started == 1);
  sig1.emit(net::cancellation_type::terminal);
  drain(io);
  CHECK_FALSE(r1.has_value());  // left
  CHECK_FALSE(s.aborted);       // the other caller still waits
  sig2.emit(net::cancellation_type::terminal);
  drain(io);
  CHECK_FALSE(r2.has_value());
  CHECK(s.aborted);  // nobody left: the work itself was cancelled
  CHECK(c.in_flight() == 0);
}
