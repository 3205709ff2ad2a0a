// The HTTP/1.1 server on Beast coroutines, shared by recgate and the sandbox:
// accept loop, one session per connection on one I/O thread's io_context, limits and
// timeouts, request ids, access log, dispatch through a const route table,
// graceful drain. Handlers are coroutines returning a response.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/verb.hpp>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/problem.hpp"

namespace recgate::http {

using Request = boost::beast::http::request<boost::beast::http::string_body>;
using Response = boost::beast::http::response<boost::beast::http::string_body>;
using Verb = boost::beast::http::verb;
using QueryParams = std::vector<std::pair<std::string, std::string>>;

struct Context {
  const Request& req;
  std::string request_id;
  std::string path;                         // target without the query, percent-decoded
  std::string raw_query;                    // after '?', undecoded
  QueryParams query;                        // decoded pairs in order ('+' is a space)
  std::vector<std::pair<std::string, std::string>> path_params;  // {name} -> value
  std::chrono::steady_clock::time_point started;
  std::string_view route_name;              // the matched route's name (metrics label; static storage)
  // Fault injection (sandbox): write only this many bytes of the response, then close.
  std::optional<std::size_t> truncate_response_at;
  // Fault injection (sandbox): write the response on the connection with this
  // instead (bytes HTTP cannot express: broken framing, a reset, an endless
  // body); the server then closes the connection without reading from it again.
  std::function<boost::asio::awaitable<void>(boost::beast::tcp_stream&)> raw_response;
  // Extra fields for this request's access log line (e.g. cache status).
  std::vector<std::pair<std::string, std::string>> log_fields;
  // Who is asking, for per-client quota shares: the peer address, replaced by
  // the configured client's name once its key is checked.
  std::string client = {};

  std::string_view param(std::string_view name) const;  // path param, "" if absent
  std::string_view header(std::string_view name) const;  // request header, "" if absent
};

using Handler = std::function<boost::asio::awaitable<Response>(Context&)>;

struct Route {
  Verb method;
  std::string pattern;  // "/v1/mws/{account}/recommendations": {x} matches one segment
  std::string name;     // metrics label, e.g. "mws_recommendations"
  Handler handler;
  // Watch the connection while the handler runs and cancel the handler when
  // the client goes away (routes that may queue for quota).
  bool watch_disconnect = false;
  // Optional synchronous fast path tried before `handler` (cache hits): a
  // response, or nullopt to run the handler.
  std::function<std::optional<Response>(Context&)> fast = nullptr;
};

struct ServerOptions {
  std::string listen = "127.0.0.1:0";
  int threads = 1;
  std::size_t max_header_bytes = 16 * 1024;
  std::size_t max_body_bytes = 1024 * 1024;
  std::chrono::milliseconds read_timeout{10000};
  std::chrono::milliseconds idle_timeout{60000};
  std::chrono::milliseconds drain_timeout{10000};
  // A new connection's first request header must arrive within this.
  std::chrono::milliseconds header_timeout{5000};
  // Client connections open at once; 0: no limit. At the limit the one idle
  // longest is closed to admit a new client, else accepting waits.
  std::size_t max_connections = 0;
  // Pause after accept(2) fails (out of descriptors or kernel memory).
  std::chrono::milliseconds accept_retry{100};
  std::string server_name = "recgate";
  bool access_log = true;
  bool metrics = true;  // count recgate_http_* metrics
};

// Builds a JSON response / problem response with the right content types.
Response json_response(int status, std::string body);
Response problem_response(const Problem& p);
Response text_response(int status, std::string body, std::string_view content_type);

class Server {
 public:
  Server(ServerOptions opts, std::vector<Route> routes);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  boost::asio::io_context& ioc() { return ioc_; }

  // Binds and starts accepting; returns the bound port (listen port 0 allowed)
  // and logs the bound address. Throws std::runtime_error on bind failure.
  std::uint16_t start();
  // Runs the io_context on `threads` threads until stopped; returns after drain.
  void run();
  // Stop accepting, let in-flight requests finish (bounded by drain_timeout), then stop.
  // Safe from any thread and from a signal handler's asio callback.
  void shutdown();
  bool draining() const { return draining_.load(); }
  // Client connections open now (a gauge; shared so a metrics collector may outlive the server).
  std::shared_ptr<const std::atomic<std::int64_t>> connections() const;

  struct Impl;  // defined in server.cpp

 private:
  // The other I/O threads' io_contexts; declared first so they outlive ioc_,
  // whose pending accept may hold a socket bound to one of them.
  std::vector<std::unique_ptr<boost::asio::io_context>> workers_;
  boost::asio::io_context ioc_;
  std::unique_ptr<Impl> impl_;
  std::atomic<bool> draining_{false};
};

}  // namespace recgate::http
