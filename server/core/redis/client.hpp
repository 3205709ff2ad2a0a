// The Redis client ([scale] item 5): hiredis's RESP reader and command
// formatter driven by Asio sockets on the caller's executor, so no Redis call
// ever blocks an I/O thread. Pooled connections, pipelines, one deadline per
// call (redis.timeout_ms), and a backoff while Redis is unreachable.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/redis/url.hpp"

namespace recgate::redis {

// One reply, copied out of hiredis's redisReply (so no C object outlives a call).
struct Reply {
  enum class Type { string, status, error, integer, nil, array };
  Type type = Type::nil;
  std::string str;  // string, status and error text
  long long integer = 0;
  std::vector<Reply> elements;

  bool is_error() const { return type == Type::error; }
};

// One command: its arguments, binary-safe (e.g. {"SET", key, value, "PX", "5000"}).
using Command = std::vector<std::string>;

struct ClientOptions {
  Url url;
  std::chrono::milliseconds timeout{200};        // connect + AUTH + SELECT + write + every reply
  std::size_t max_connections = 16;               // busy beyond: the call fails at once
  std::chrono::milliseconds backoff_min{100};     // first wait after a failure
  std::chrono::milliseconds backoff_max{5000};    // doubling up to this
};

class Client {
 public:
  explicit Client(ClientOptions opts);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Sends every command in one write on one pooled connection and reads their
  // replies in order. nullopt when Redis is unreachable, slow (past the
  // timeout), or inside the backoff after a failure (then at once, without
  // touching the network). A Redis error reply is a Reply, not a failure.
  // Awaitable from any coroutine; the socket work runs on its executor.
  boost::asio::awaitable<std::optional<std::vector<Reply>>> pipeline(std::vector<Command> commands);
  // One command: pipeline({command})[0].
  boost::asio::awaitable<std::optional<Reply>> command(Command command);

  // The last call reached Redis (false from the first failure until a call
  // succeeds again). Exported as recgate_redis_up.
  bool up() const;
  // Why the last failure happened (no password in it), for logs and status.
  std::string last_error() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace recgate::redis
