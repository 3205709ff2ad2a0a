// Runs one coroutine to completion on the tests' io_context (unit tests of the
// Redis client and the shared bucket, which are awaitable-only). One context
// for the whole process: pooled connections outlive a call, and must not
// outlive the context their sockets belong to.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <exception>
#include <optional>
#include <utility>

#include "core/redis/client.hpp"

namespace recgate::test {

inline boost::asio::io_context& test_io_context() {
  static boost::asio::io_context ioc;
  return ioc;
}

// Client options for a redis-server on 127.0.0.1:port.
inline redis::ClientOptions loopback_client(int port,
                                            std::chrono::milliseconds timeout = std::chrono::milliseconds(1000)) {
  redis::ClientOptions o;
  o.url.host = "127.0.0.1";
  o.url.port = static_cast<std::uint16_t>(port);
  o.timeout = timeout;
  return o;
}

template <class T>
T run_coro(boost::asio::awaitable<T> a) {
  auto& ioc = test_io_context();
  ioc.restart();
  std::optional<T> out;
  std::exception_ptr err;
  boost::asio::co_spawn(ioc, std::move(a), [&](std::exception_ptr e, T v) {
    err = e;
    if (!e) out = std::move(v);
  });
  ioc.run();
  if (err) std::rethrow_exception(err);
  return std::move(*out);
}

}  // namespace recgate::test
