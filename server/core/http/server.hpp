// The HTTP/1.1 server on Beast coroutines, shared by recgate and the sandbox:
// the accept loop (connection limit, idle eviction, back-off when out of
// descriptors), one session per connection on one I/O thread (session.hpp),
// routing through a const Router (router.hpp), graceful drain.
#pragma once

#include <boost/asio/io_context.hpp>
#include <atomic>
#include <cstdint>
#include <memory>

#include "core/http/io_threads.hpp"
#include "core/http/message.hpp"
#include "core/http/options.hpp"
#include "core/http/router.hpp"

namespace recgate::http {

class Server {
 public:
  // On the caller's I/O threads and drain state (built before the services
  // that share them).
  Server(IoThreads& threads, Drain& drain, ServerOptions opts, Router router);
  // With its own I/O threads (opts.threads) and drain state.
  Server(ServerOptions opts, Router router);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  boost::asio::io_context& ioc() { return threads_.main(); }

  // Binds and starts accepting; returns the bound port (listen port 0 allowed)
  // and logs the bound address. Throws std::runtime_error on bind failure.
  std::uint16_t start();
  // Runs the I/O threads until stopped; returns after drain.
  void run();
  // Stop accepting, let in-flight requests finish (bounded by drain_timeout), then stop.
  // Safe from any thread and from a signal handler's asio callback.
  void shutdown();
  bool draining() const { return drain_.draining(); }
  // Client connections open now (a gauge; shared so a metrics collector may outlive the server).
  std::shared_ptr<const std::atomic<std::int64_t>> connections() const;

  struct Impl;  // defined in server.cpp

 private:
  // Only for the second constructor; declared first so they outlive impl_.
  std::unique_ptr<IoThreads> own_threads_;
  std::unique_ptr<Drain> own_drain_;
  IoThreads& threads_;
  Drain& drain_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace recgate::http
