// The one asynchronous HTTP(S) client recgate uses for every upstream call
// (MWS, Ads, LWA): pooled keep-alive connections per origin, verified TLS,
// a deadline on every step. I/O layer, called by the MWS/Ads/LWA services.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "core/upstream/call.hpp"
#include "core/upstream/message.hpp"
#include "core/upstream/url.hpp"

namespace recgate::upstream {

namespace detail {
class ClientCore;
}

struct ClientOptions {
  std::chrono::milliseconds connect_timeout{3000};   // resolve + connect + TLS handshake
  std::chrono::milliseconds request_timeout{20000};  // whole request, from the call to the last body byte
  std::string ca_file;                               // extra trusted CAs (PEM), added to the system store
  std::size_t max_response_bytes = 16 << 20;         // body limit
  int max_connections_per_origin = 8;
  std::chrono::milliseconds idle_timeout{30000};  // a pooled connection unused this long is closed
  std::string user_agent;  // sent when not empty and the request has none
};

class HttpClient final : public Upstream {
 public:
  // Throws std::runtime_error if ca_file is set but cannot be loaded.
  HttpClient(boost::asio::any_io_executor ex, ClientOptions opts);
  // Calls shutdown(). Must run before the executor's io_context is destroyed.
  ~HttpClient() override;
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Network outcomes are values in Result, never exceptions. Safe to call
  // concurrently from any thread or strand; the HttpClient may be destroyed
  // while requests are in flight. Cancelling the awaiting coroutine aborts the
  // request (Result: timeout) and discards its connection.
  boost::asio::awaitable<Result> request(Request req) override;

  // Closes idle connections and stops pooling, so that io_context::run()
  // can return at process shutdown. In-flight requests finish; later
  // requests still work, each on a connection closed after use.
  void shutdown();

 private:
  std::shared_ptr<detail::ClientCore> core_;
};

}  // namespace recgate::upstream
