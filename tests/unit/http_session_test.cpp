// Unit tests for core/http/session on boost::beast::test::stream (no sockets,
// no timers): what a client receives for the bytes it sends, then its end of
// stream. Framing (smuggling shapes refused), keep-alive and pipelining,
// limits (431, 413), malformed input (400), HEAD, handler failures (500),
// and a watched handler cancelled when the client leaves.
#include <doctest/doctest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/_experimental/test/stream.hpp>
#include <stdexcept>

#include "core/http/session.hpp"

using namespace recgate::http;
namespace net = boost::asio;
using TestStream = boost::beast::test::stream;

namespace {

net::awaitable<Response> echo(Context& c) {
  co_return text_response(200, "echo " + c.path + " " + std::to_string(c.req.body().size()), "text/plain");
}

net::awaitable<Response> fails(Context&) {
  throw std::runtime_error("handler bug");
  co_return text_response(200, "", "text/plain");
}

// A body held elsewhere (a cached answer's bytes), sent by reference.
net::awaitable<Response> shared_body(Context& c) {
  c.body_ref = std::make_shared<const std::string>("shared bytes");
  c.fields_ref = std::make_shared<const std::string>("ETag: \"fixed\"\r\n");
  co_return text_response(200, "", "text/plain");
}

// Waits an hour unless cancelled: only the client leaving ends it.
net::awaitable<Response> slow(Context&) {
  net::steady_timer t(co_await net::this_coro::executor, std::chrono::hours(1));
  co_await t.async_wait(net::use_awaitable);
  co_return text_response(200, "late", "text/plain");
}

net::awaitable<void> drive(TestStream* stream, const SessionEnv* env, ConnectionSlot* slot) {
  Session<TestStream> session(*stream, *env, *slot);
  co_await session.run();
}

struct Rig {
  net::io_context ioc;
  ServerOptions opts = [] {
    ServerOptions o;
    o.max_header_bytes = 512;
    o.max_body_bytes = 64;
    o.access_log = false;
    o.metrics = false;
    return o;
  }();
  Router router{{{Verb::get, "/echo", "echo", echo},
                 {Verb::post, "/echo", "echo", echo},
                 {Verb::get, "/fails", "fails", fails},
                 {Verb::get, "/shared", "shared", shared_body},
                 {Verb::get, "/slow", "slow", slow, true}}};
  Drain drain;
  std::shared_ptr<ConnectionTable> table = std::make_shared<ConnectionTable>(0);
  SessionEnv env{&opts, &router, &drain, table.get()};

  // What the client receives for `input` followed by its end of stream; the
  // session must end within the bound.
  std::string exchange(std::string_view input) {
    TestStream server(ioc), client(ioc);
    server.connect(client);
    server.append(input);
    server.close_remote();
    auto slot = table->admit(ioc.get_executor());
    bool ended = false;
    net::co_spawn(ioc, drive(&server, &env, slot.get()), [&](std::exception_ptr e) {
      ended = true;
      if (e) std::rethrow_exception(e);
    });
    ioc.run_for(std::chrono::seconds(5));
    ioc.restart();
    table->release(*slot);
    CHECK(ended);
    CHECK(drain.inflight() == 0);
    return std::string(client.str());
  }
};

std::size_t count(const std::string& s, std::string_view what) {
  std::size_t n = 0;
  for (auto p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("session: pipelined keep-alive requests are answered in order on one connection") {
  Rig rig;
  const std::string got = rig.exchange(
      "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n"
      "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
      "GET /%65cho?x=1 HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(count(got, "HTTP/1.1 200 OK\r\n") == 3);
  const auto a = got.find("echo /echo 0"), b = got.find("echo /echo 5"), c = got.find("echo /echo 0", a + 1);
  CHECK(a < b);
  CHECK(b < c);
  CHECK(c != std::string::npos);
  CHECK(count(got, "X-Request-Id: ") == 3);
  CHECK(count(got, "Connection: close") == 0);
}

TEST_CASE("session: Connection: close and HTTP/1.0 end the connection after one answer") {
  Rig rig;
  std::string got = rig.exchange(
      "GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
      "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(count(got, "HTTP/1.1 200") == 1);
  CHECK(got.find("Connection: close\r\n") != std::string::npos);
  got = rig.exchange("GET /echo HTTP/1.0\r\n\r\nGET /echo HTTP/1.0\r\n\r\n");
  CHECK(count(got, "HTTP/1.0 200") == 1);
}

TEST_CASE("session: a request id the client sends is kept, an unusable one is replaced") {
  Rig rig;
  std::string got = rig.exchange("GET /echo HTTP/1.1\r\nHost: x\r\nX-Request-Id: abc-123\r\n\r\n");
  CHECK(got.find("X-Request-Id: abc-123\r\n") != std::string::npos);
  got = rig.exchange("GET /echo HTTP/1.1\r\nHost: x\r\nX-Request-Id: a\"b\r\n\r\n");
  CHECK(got.find("X-Request-Id: a\"b") == std::string::npos);
  CHECK(count(got, "X-Request-Id: ") == 1);
  const auto at = got.find("X-Request-Id: ") + 14;
  const std::string id = got.substr(at, got.find("\r\n", at) - at);
  CHECK(id.size() == 16);  // a fresh one: 16 lower-case hex digits
  CHECK(id.find_first_not_of("0123456789abcdef") == std::string::npos);
}

TEST_CASE("session: HEAD gets the GET answer's headers and Content-Length without the body") {
  Rig rig;
  const std::string got = rig.exchange("HEAD /echo HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(got.find("HTTP/1.1 200 OK\r\n") == 0);
  CHECK(got.find("Content-Length: 12\r\n") != std::string::npos);
  CHECK(got.substr(got.size() - 4) == "\r\n\r\n");
}

TEST_CASE("session: a body and header lines sent by reference, framed by the body's length, HEAD leaves the body out") {
  Rig rig;
  const std::string got = rig.exchange("GET /shared HTTP/1.1\r\nHost: x\r\n\r\nGET /shared HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(count(got, "HTTP/1.1 200 OK\r\n") == 2);
  CHECK(count(got, "Content-Length: 12\r\n") == 2);
  CHECK(count(got, "\r\n\r\nshared bytes") == 2);
  CHECK(count(got, "\r\nETag: \"fixed\"\r\n") == 2);
  const std::string head = rig.exchange("HEAD /shared HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(head.find("Content-Length: 12\r\n") != std::string::npos);
  CHECK(head.substr(head.size() - 4) == "\r\n\r\n");
}

TEST_CASE("session: requests that could smuggle another are refused and the connection closed") {
  struct Row {
    const char* name;
    const char* head;
    const char* status;
  };
  const Row rows[] = {
      {"TE with CL", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
       "HTTP/1.1 400"},
      {"TE not chunked", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", "HTTP/1.1 501"},
      {"TE twice", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
       "HTTP/1.1 501"},
      {"TE in HTTP/1.0", "POST /echo HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", "HTTP/1.1 400"},
  };
  for (const auto& r : rows) {
    CAPTURE(r.name);
    Rig rig;
    const std::string got = rig.exchange(std::string(r.head) + "0\r\n\r\nGET /echo HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(got.find(r.status) == 0);
    CHECK(count(got, "HTTP/1.1 ") == 1);  // the smuggled request is never answered
    CHECK(got.find("Connection: close\r\n") != std::string::npos);
    CHECK(got.find("application/problem+json") != std::string::npos);
  }
}

TEST_CASE("session: limits answer 431 and 413 with a problem naming the limit") {
  Rig rig;
  std::string got = rig.exchange("GET /echo HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(600, 'a') + "\r\n\r\n");
  CHECK(got.find("HTTP/1.1 431") == 0);
  CHECK(got.find("exceeds 512 bytes") != std::string::npos);
  got = rig.exchange("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 65\r\n\r\n" + std::string(65, 'b'));
  CHECK(got.find("HTTP/1.1 413") == 0);
  CHECK(got.find("exceeds 64 bytes") != std::string::npos);
  got = rig.exchange("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n41\r\n" +
                     std::string(65, 'c') + "\r\n0\r\n\r\n");
  CHECK(got.find("HTTP/1.1 413") == 0);
}

TEST_CASE("session: malformed requests and targets are 400, a bad target keeps the connection") {
  Rig rig;
  std::string got = rig.exchange("GET /echo HTTP/9.9 nonsense\r\n\r\n");
  CHECK(got.find("HTTP/1.1 400") == 0);
  CHECK(got.find("malformed HTTP request") != std::string::npos);
  got = rig.exchange("GET /%zz HTTP/1.1\r\nHost: x\r\n\r\nGET echo HTTP/1.1\r\nHost: x\r\n\r\n"
                     "GET /echo HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(count(got, "HTTP/1.1 400 Bad Request\r\n") == 2);
  CHECK(got.find("valid %XX escapes") != std::string::npos);
  CHECK(got.find("echo /echo 0") != std::string::npos);
}

TEST_CASE("session: a handler that throws is a 500 and the connection goes on") {
  Rig rig;
  const std::string got = rig.exchange("GET /fails HTTP/1.1\r\nHost: x\r\n\r\nGET /echo HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(got.find("HTTP/1.1 500") == 0);
  CHECK(got.find("internal_error") != std::string::npos);
  CHECK(got.find("echo /echo 0") != std::string::npos);
}

TEST_CASE("session: a watched handler is cancelled when the client leaves, and nothing is written") {
  Rig rig;
  const std::string got = rig.exchange("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(got.empty());
}

TEST_CASE("session: while draining, an answer says Connection: close") {
  Rig rig;
  REQUIRE(rig.drain.start());
  const std::string got = rig.exchange("GET /echo HTTP/1.1\r\nHost: x\r\n\r\nGET /echo HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(count(got, "HTTP/1.1 200") == 1);
  CHECK(got.find("Connection: close\r\n") != std::string::npos);
}
