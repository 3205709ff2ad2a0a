// The Redis client; see client.hpp. hiredis does the protocol (redisReader
// parses replies, redisFormatCommandArgv encodes commands); Asio does the I/O.
#include "core/redis/client.hpp"

#include <hiredis/hiredis.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <mutex>
#include <stdexcept>

#include "core/log.hpp"
#include "core/metrics.hpp"

namespace recgate::redis {
namespace net = boost::asio;
using net::awaitable;
using net::use_awaitable;
using net::ip::tcp;
using Steady = std::chrono::steady_clock;

namespace {

struct ReaderFree {
  void operator()(redisReader* r) const { redisReaderFree(r); }
};

// A failure of the exchange (protocol, AUTH, I/O): the connection is dropped.
struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

Reply convert(const redisReply& r) {
  Reply out;
  // hiredis 0.14 (Debian 12) speaks RESP2: these six types are all there is.
  switch (r.type) {
    case REDIS_REPLY_STRING: out.type = Reply::Type::string; out.str.assign(r.str, r.len); break;
    case REDIS_REPLY_STATUS: out.type = Reply::Type::status; out.str.assign(r.str, r.len); break;
    case REDIS_REPLY_ERROR: out.type = Reply::Type::error; out.str.assign(r.str, r.len); break;
    case REDIS_REPLY_INTEGER: out.type = Reply::Type::integer; out.integer = r.integer; break;
    case REDIS_REPLY_ARRAY:
      out.type = Reply::Type::array;
      for (std::size_t i = 0; i < r.elements; ++i) out.elements.push_back(convert(*r.element[i]));
      break;
    default: out.type = Reply::Type::nil; break;
  }
  return out;
}

// RESP encoding of every command, concatenated: one write per pipeline.
std::string format(const std::vector<Command>& commands) {
  std::string out;
  std::vector<const char*> argv;
  std::vector<std::size_t> lens;
  for (const auto& c : commands) {
    argv.clear();
    lens.clear();
    for (const auto& a : c) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    char* cmd = nullptr;
    int n = redisFormatCommandArgv(&cmd, static_cast<int>(argv.size()), argv.data(), lens.data());
    if (n < 0) throw Failure("cannot encode a command");
    out.append(cmd, static_cast<std::size_t>(n));
    redisFreeCommand(cmd);
  }
  return out;
}

struct Connection {
  explicit Connection(const net::any_io_executor& ex) : socket(ex), reader(redisReaderCreate()) {
    if (!reader) throw std::bad_alloc();
  }
  tcp::socket socket;
  std::unique_ptr<redisReader, ReaderFree> reader;
  bool ready = false;  // connected, authenticated, database selected
};

// Writes `wire` and reads `n` replies.
awaitable<std::vector<Reply>> exchange(Connection& c, const std::string& wire, std::size_t n) {
  co_await net::async_write(c.socket, net::buffer(wire), use_awaitable);
  std::vector<Reply> replies;
  char buf[16 * 1024];
  while (replies.size() < n) {
    void* raw = nullptr;
    if (redisReaderGetReply(c.reader.get(), &raw) != REDIS_OK) throw Failure("protocol error from Redis");
    if (raw) {
      replies.push_back(convert(*static_cast<redisReply*>(raw)));
      freeReplyObject(raw);
      continue;
    }
    std::size_t got = co_await c.socket.async_read_some(net::buffer(buf), use_awaitable);
    if (redisReaderFeed(c.reader.get(), buf, got) != REDIS_OK) throw Failure("protocol error from Redis");
  }
  co_return replies;
}

// Connects and sends AUTH and SELECT (one pipeline) when the URL asks for them.
awaitable<void> open(Connection& c, const Url& url) {
  tcp::resolver resolver(c.socket.get_executor());
  auto endpoints = co_await resolver.async_resolve(url.host, std::to_string(url.port), use_awaitable);
  co_await net::async_connect(c.socket, endpoints, use_awaitable);
  c.socket.set_option(tcp::no_delay(true));
  std::vector<Command> hello;
  if (!url.password.empty()) hello.push_back({"AUTH", url.password});
  if (url.db != 0) hello.push_back({"SELECT", std::to_string(url.db)});
  if (hello.empty()) co_return;
  for (const auto& r : co_await exchange(c, format(hello), hello.size()))
    if (r.is_error()) throw Failure(hello.front()[0] == "AUTH" ? "AUTH refused" : "SELECT refused");
}

}  // namespace

struct Client::State {
  ClientOptions opts;
  std::mutex mu;
  std::vector<std::unique_ptr<Connection>> idle;
  std::size_t open = 0;  // connections in use or idle
  bool up = true;        // optimistic: the first call tells
  std::chrono::milliseconds backoff{0};
  Steady::time_point next_attempt{};
  std::string last_error;
  Gauge* up_gauge = nullptr;

  // A connection to use, or null: inside the backoff, or every connection busy.
  std::unique_ptr<Connection> take(const net::any_io_executor& ex, std::string& why) {
    std::lock_guard lock(mu);
    if (!up) {
      if (Steady::now() < next_attempt) {
        why = "Redis is down (" + last_error + "); next attempt in backoff";
        return nullptr;
      }
      next_attempt = Steady::now() + backoff;  // this call is the probe; the rest wait
    }
    if (!idle.empty()) {
      auto c = std::move(idle.back());
      idle.pop_back();
      return c;
    }
    if (open >= opts.max_connections) {
      why = "all " + std::to_string(opts.max_connections) + " Redis connections are busy";
      return nullptr;
    }
    ++open;
    return std::make_unique<Connection>(ex);
  }

  void succeeded(std::unique_ptr<Connection> c) {
    std::lock_guard lock(mu);
    if (!up) log_info("redis: reachable again", {{"host", opts.url.host}});
    up = true;
    backoff = std::chrono::milliseconds{0};
    idle.push_back(std::move(c));
    up_gauge->set(1);
  }

  void failed(const std::string& why) {
    std::lock_guard lock(mu);
    --open;
    // The other idle connections most likely died with this one.
    open -= idle.size();
    idle.clear();
    backoff = backoff.count() == 0 ? opts.backoff_min : std::min(opts.backoff_max, backoff * 2);
    next_attempt = Steady::now() + backoff;
    if (up) log_warn("redis: unreachable, retrying with backoff", {{"host", opts.url.host}, {"error", why}});
    up = false;
    last_error = why;
    up_gauge->set(0);
  }
};

Client::Client(ClientOptions opts) : state_(std::make_shared<State>()) {
  state_->opts = std::move(opts);
  state_->up_gauge = &Metrics::instance().gauge("recgate_redis_up", "1 while the last Redis call succeeded");
  state_->up_gauge->set(1);
}

Client::~Client() = default;

bool Client::up() const {
  std::lock_guard lock(state_->mu);
  return state_->up;
}

std::string Client::last_error() const {
  std::lock_guard lock(state_->mu);
  return state_->last_error;
}

awaitable<std::optional<std::vector<Reply>>> Client::pipeline(std::vector<Command> commands) {
  using namespace net::experimental::awaitable_operators;
  auto st = state_;  // the state outlives this call even if the client goes first
  if (commands.empty()) co_return std::vector<Reply>{};
  auto ex = co_await net::this_coro::executor;
  std::string why;
  auto conn = st->take(ex, why);
  if (!conn) co_return std::nullopt;
  auto& hist = Metrics::instance().histogram("recgate_redis_command_duration_seconds",
                                             "Redis call duration, connect included (one pipeline is one call)",
                                             {{"command", commands.front().front()}});
  const auto started = Steady::now();
  std::vector<Reply> replies;
  try {
    const std::string wire = format(commands);
    auto work = [&]() -> awaitable<void> {
      if (!conn->ready) {
        co_await open(*conn, st->opts.url);
        conn->ready = true;
      }
      replies = co_await exchange(*conn, wire, commands.size());
    };
    net::steady_timer timer(ex, st->opts.timeout);
    auto which = co_await (work() || timer.async_wait(use_awaitable));
    if (which.index() == 1)
      throw Failure("no answer within redis.timeout_ms (" + std::to_string(st->opts.timeout.count()) + " ms)");
  } catch (const std::exception& e) {
    hist.observe(std::chrono::duration<double>(Steady::now() - started).count());
    st->failed(e.what());
    co_return std::nullopt;
  }
  hist.observe(std::chrono::duration<double>(Steady::now() - started).count());
  st->succeeded(std::move(conn));
  co_return replies;
}

awaitable<std::optional<Reply>> Client::command(Command command) {
  std::vector<Command> one;
  one.push_back(std::move(command));
  auto replies = co_await pipeline(std::move(one));
  if (!replies) co_return std::nullopt;
  co_return std::move(replies->front());
}

}  // namespace recgate::redis
