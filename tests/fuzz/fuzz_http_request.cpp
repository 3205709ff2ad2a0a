// libFuzzer target: the HTTP request head, body limits and routing, through
// the real http::Server session (Beast's request_parser, limits, target
// decoding, route matching, 404/405, keep-alive and pipelining). The server
// runs in-process on loopback with recgate's route table; its handlers run
// the real pure validation (MWS query, Ads body). Input: the bytes a client
// sends on one connection, followed by its end of stream. Checks: the server
// answers with HTTP/1.x, never a 5xx but the 501 for a Transfer-Encoding
// other than chunked, and closes soon after the end of stream
// (well before its idle timeout); the session ends.
// The three upstream routes watch for the client leaving (watch_disconnect),
// as in app.cpp; RECGATE_FUZZ_WATCH_DISCONNECT=0 turns the watcher off, to
// tell a finding in it from one in the plain session.
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/awaitable.hpp>
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <thread>

#include "core/ads/request.hpp"
#include "core/config.hpp"
#include "core/http/server.hpp"
#include "core/log.hpp"
#include "core/mws/model.hpp"
#include "fuzz_util.hpp"

namespace {

namespace http = recgate::http;
using Awaitable = boost::asio::awaitable<http::Response>;

http::Response answer(const recgate::Problem& p) { return http::problem_response(p); }

Awaitable ok(http::Context&) { co_return http::json_response(200, "{\"status\":\"ok\"}"); }

Awaitable mws_recommendations(http::Context& c) {
  FUZZ_CHECK(!c.param("account").empty(), c.path);
  auto q = recgate::mws::validate_recommendations_query(c.query);
  co_return q ? http::json_response(200, "{}") : answer(q.error());
}

Awaitable mws_last_updated(http::Context& c) {
  auto q = recgate::mws::validate_last_updated_query(c.query);
  co_return q ? http::json_response(200, "{}") : answer(q.error());
}

Awaitable ads_recommendations(http::Context& c) {
  if (!recgate::ads::is_json_media_type(c.header("Content-Type")))
    co_return answer(recgate::make_problem(415, "unsupported_media_type", "send application/json"));
  auto r = recgate::ads::validate_request(c.req.body(), recgate::AdsConfig{}.max_asins);
  co_return r ? http::json_response(200, "{}") : answer(r.error());
}

bool watch() {
  const char* v = std::getenv("RECGATE_FUZZ_WATCH_DISCONNECT");
  return v == nullptr || std::string_view(v) != "0";
}

// recgate's route table (app.cpp), with handlers that stop at validation.
std::vector<http::Route> routes() {
  using V = http::Verb;
  return {
      {V::get, "/healthz", "healthz", ok},
      {V::get, "/readyz", "readyz", ok},
      {V::get, "/metrics", "metrics", ok},
      {V::get, "/v1/status", "status", ok},
      {V::get, "/v1/mws/{account}/recommendations", "mws_recommendations", mws_recommendations, watch()},
      {V::get, "/v1/mws/{account}/last-updated", "mws_last_updated", mws_last_updated, watch()},
      {V::post, "/v1/ads/{account}/product-recommendations", "ads_product_recommendations", ads_recommendations,
       watch()},
      {V::delete_, "/v1/cache", "cache_purge", ok},
  };
}

struct Harness {
  std::unique_ptr<http::Server> server;
  std::uint16_t port = 0;
  std::thread thread;
};

Harness& harness() {
  static Harness* h = [] {
    auto* x = new Harness;  // lives for the process: the fuzzer exits without unwinding
    recgate::set_log_level(recgate::LogLevel::error);
    http::ServerOptions o;
    o.listen = "127.0.0.1:0";
    o.threads = 1;
    o.max_header_bytes = 1024;  // small limits keep 431 and 413 within the fuzzer's input sizes
    o.max_body_bytes = 2048;
    o.read_timeout = std::chrono::milliseconds(30000);
    o.idle_timeout = std::chrono::milliseconds(30000);
    o.access_log = false;
    o.metrics = false;
    x->server = std::make_unique<http::Server>(o, routes());
    x->port = x->server->start();
    x->thread = std::thread([s = x->server.get()] { s->run(); });
    return x;
  }();
  return *h;
}

// libFuzzer's -timeout arms SIGALRM (every timeout/2 + 1 s) without
// SA_RESTART, so this thread's blocking calls can fail with EINTR while the
// server is fine: each call below retries, or waits on, an interrupted one.

// poll(2) for `events` until `deadline`, across interruptions; false on timeout.
bool wait_for(int fd, short events, std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd p{fd, events, 0};
    const int r = ::poll(&p, 1, static_cast<int>(std::max<std::int64_t>(left.count(), 0)));
    if (r > 0) return true;
    if (r == 0) return false;
    FUZZ_CHECK(errno == EINTR, "poll");
  }
}

int connect_loopback(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  FUZZ_CHECK(fd >= 0, "socket");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    // Interrupted, the connection goes on in the background: wait for it.
    FUZZ_CHECK(errno == EINTR, "connect");
    FUZZ_CHECK(wait_for(fd, POLLOUT, std::chrono::steady_clock::now() + std::chrono::seconds(8)), "connect");
    int err = 0;
    socklen_t len = sizeof err;
    FUZZ_CHECK(::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0, "connect");
  }
  return fd;
}

// Sends everything (or until the server closes), then half-closes: the
// server sees end of stream after the last byte and must finish on its own.
void send_all(int fd, std::string_view in) {
  while (!in.empty()) {
    const ssize_t n = ::send(fd, in.data(), in.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    in.remove_prefix(static_cast<std::size_t>(n));
  }
  ::shutdown(fd, SHUT_WR);
}

// Everything the server writes until it closes. The client has ended its
// stream, so the server must close within 8 s (its timeouts are 30 s).
std::string receive_all(int fd, std::string_view in) {
  std::string out;
  char buf[8192];
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(8);
  for (;;) {
    FUZZ_CHECK(wait_for(fd, POLLIN, deadline), in);  // still open 8 s after the client's end of stream
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // closed (or reset after a rejection)
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

// The one 5xx the session gives by design: a Transfer-Encoding it does not
// implement (RFC 9112 §6.1, as nginx answers it).
bool unsupported_coding(std::string_view out, std::size_t at) {
  return out.substr(at + 9, 4) == "501 " &&
         out.find("\"code\":\"unsupported_transfer_coding\"", at) != std::string_view::npos;
}

void check_responses(std::string_view out, std::string_view in) {
  if (out.empty()) return;
  FUZZ_CHECK(out.starts_with("HTTP/1."), out);
  for (std::size_t pos = 0; pos != std::string_view::npos; pos = out.find("\r\nHTTP/1.", pos + 1)) {
    const std::size_t at = pos == 0 ? 0 : pos + 2;
    if (out.size() >= at + 10) FUZZ_CHECK(out[at + 9] != '5' || unsupported_coding(out, at), in);  // "HTTP/1.1 5xx"
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Harness& h = harness();
  const std::string_view in = recgate::fuzz::as_view(data, size);
  const int fd = connect_loopback(h.port);
  send_all(fd, in);
  const std::string out = receive_all(fd, in);
  ::close(fd);
  check_responses(out, in);
  // The session coroutine must end too (no connection left behind).
  auto open = h.server->connections();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (open->load() != 0) {
    FUZZ_CHECK(std::chrono::steady_clock::now() < deadline, in);
    std::this_thread::yield();
  }
  return 0;
}
