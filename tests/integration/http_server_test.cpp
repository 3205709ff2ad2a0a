// recgate's HTTP server in-process (one I/O thread, port 0) with test routes:
// a response larger than the socket buffers goes out in full to a slow reader
// without holding up other connections, a reader that stops reading is
// dropped after read_timeout, and framing that could smuggle a request
// (Transfer-Encoding other than chunked, or with Content-Length) is refused.
#include <doctest/doctest.h>

#include <boost/asio/co_spawn.hpp>
#include <string>
#include <thread>

#include "core/http/server.hpp"
#include "harness.hpp"

using namespace rgtest;
namespace http = recgate::http;

namespace {

// 8 MiB, more than the socket buffers can hold (Linux's default tcp_wmem
// maximum is 4 MiB; the client's window is kept small), with a pattern that
// shows any lost or reordered byte.
const std::string& big_body() {
  static const std::string body = [] {
    std::string b;
    b.reserve(8u << 20);
    for (unsigned i = 0; b.size() < (8u << 20); ++i) b += std::to_string(i) + '\n';
    return b;
  }();
  return body;
}

boost::asio::awaitable<http::Response> big(http::Context&) {
  co_return http::text_response(200, big_body(), "text/plain");
}

boost::asio::awaitable<http::Response> small(http::Context&) {
  co_return http::text_response(200, "small", "text/plain");
}

// A route that watches for the client leaving (as recgate's upstream routes
// do) and answers at once, with the request body's size.
boost::asio::awaitable<http::Response> watched(http::Context& c) {
  co_return http::text_response(200, "body " + std::to_string(c.req.body().size()), "text/plain");
}

// The server on its own thread for the scope of a test.
struct InProcessServer {
  explicit InProcessServer(std::chrono::milliseconds read_timeout) {
    http::ServerOptions opts;
    opts.threads = 1;
    opts.read_timeout = read_timeout;
    opts.access_log = false;
    opts.metrics = false;
    std::vector<http::Route> routes;
    routes.push_back(http::Route{http::Verb::get, "/big", "big", big});
    routes.push_back(http::Route{http::Verb::get, "/small", "small", small});
    routes.push_back(http::Route{http::Verb::get, "/watched", "watched", watched, true});
    routes.push_back(http::Route{http::Verb::post, "/watched", "watched", watched, true});
    server = std::make_unique<http::Server>(opts, std::move(routes));
    port = server->start();
    thread = std::thread([this] { server->run(); });
  }
  ~InProcessServer() {
    server->shutdown();
    thread.join();
  }
  std::unique_ptr<http::Server> server;
  int port = 0;
  std::thread thread;
};

constexpr int kSmallWindow = 4096;

// Another client asks for /small and must get its whole answer: with one I/O
// thread, this shows a pending write to a slow reader blocks nobody.
void check_other_client_served(int port) {
  RawConnection other(port);
  REQUIRE(other.send("GET /small HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  std::string got;
  CHECK(other.read_to_close(got) == RawConnection::Outcome::closed);
  CHECK(got.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  REQUIRE(got.size() >= 5);
  CHECK(got.substr(got.size() - 5) == "small");
}

}  // namespace

TEST_CASE("http server: a response larger than the socket buffers reaches a slow reader whole, and others are served meanwhile") {
  InProcessServer srv(std::chrono::seconds(30));
  RawConnection slow(srv.port, kSmallWindow);
  REQUIRE(slow.send("GET /big HTTP/1.1\r\nHost: x\r\n\r\n"));
  // The slow client has read nothing: the server's write is pending.
  check_other_client_served(srv.port);
  std::string got;

  // Now read the big answer to its last byte.
  const std::string length_line = "Content-Length: " + std::to_string(big_body().size()) + "\r\n";
  REQUIRE(slow.read_until("\r\n\r\n", got) == RawConnection::Outcome::found);
  CHECK(got.find(length_line) != std::string::npos);
  std::string body = got.substr(got.find("\r\n\r\n") + 4);
  // The server keeps the connection open (keep-alive): read up to the last
  // line of the body, which is unique in it.
  std::string rest;
  if (body.size() < big_body().size()) {
    const std::string last_line = big_body().substr(big_body().rfind('\n', big_body().size() - 2) + 1);
    CHECK(slow.read_until(last_line, rest, std::chrono::seconds(60)) == RawConnection::Outcome::found);
    body += rest;
  }
  CHECK(body.size() == big_body().size());
  CHECK(body == big_body());
}

TEST_CASE("http server: a client that stops reading its answer is dropped after read_timeout") {
  InProcessServer srv(std::chrono::milliseconds(300));
  RawConnection stalled(srv.port, kSmallWindow);
  REQUIRE(stalled.send("GET /big HTTP/1.1\r\nHost: x\r\n\r\n"));
  check_other_client_served(srv.port);  // while the stalled write is pending
  // The server gives up on the stalled connection: its count drops to zero
  // (the other one closed after its answer).
  CHECK(wait_until([&] { return srv.server->connections()->load() == 0; }, std::chrono::seconds(10)));
  // Reading now drains what the kernels had buffered, then meets the close:
  // the body is cut short.
  std::string all;
  CHECK(stalled.read_to_close(all) == RawConnection::Outcome::closed);
  CHECK(all.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(all.size() < big_body().size());
}

TEST_CASE("http server: Transfer-Encoding other than exactly chunked, or with Content-Length, is refused and the connection closed") {
  InProcessServer srv(std::chrono::seconds(10));
  // Each request is followed by a second one: were the first's framing taken
  // at its word, the second would be served as a request of its own.
  const std::string smuggled = "GET /big HTTP/1.1\r\nHost: x\r\n\r\n";
  struct Row {
    const char* name;
    std::string head;  // request line and fields, up to the blank line
    std::string body;
    int status;
    const char* code;
  };
  const Row rows[] = {
      {"gzip alone", "POST /small HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n", "", 501,
       "unsupported_transfer_coding"},
      {"gzip, chunked", "POST /small HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n", "0\r\n\r\n", 501,
       "unsupported_transfer_coding"},
      {"chunked, gzip", "POST /small HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n", "", 501,
       "unsupported_transfer_coding"},
      {"two fields", "POST /small HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n",
       "0\r\n\r\n", 501, "unsupported_transfer_coding"},
      {"chunked twice", "POST /small HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
       "0\r\n\r\n", 501, "unsupported_transfer_coding"},
      {"chunked then Content-Length",
       "POST /small HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n", "0\r\n\r\n", 400,
       "bad_request"},
      {"Content-Length then chunked",
       "POST /small HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n", 400,
       "bad_request"},
      {"gzip with Content-Length", "POST /small HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\nContent-Length: 5\r\n",
       "hello", 400, "bad_request"},
      {"HTTP/1.0 chunked", "POST /small HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n", 400,
       "bad_request"},
  };
  for (const auto& r : rows) {
    CAPTURE(r.name);
    RawConnection c(srv.port);
    REQUIRE(c.send(r.head + "\r\n" + r.body + smuggled));
    std::string got;
    CHECK(c.read_to_close(got) == RawConnection::Outcome::closed);
    CHECK(got.rfind("HTTP/1.1 " + std::to_string(r.status) + " ", 0) == 0);
    CHECK(got.find("\"code\":\"" + std::string(r.code) + "\"") != std::string::npos);
    CHECK(got.find("Connection: close\r\n") != std::string::npos);
    // One answer only: the bytes after the first request were not served.
    CHECK(got.find("HTTP/1.1", 1) == std::string::npos);
  }
  // Exactly "chunked" (in any case) is the one coding accepted; the
  // connection stays open for the next request.
  RawConnection ok(srv.port);
  REQUIRE(ok.send("GET /small HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
                  "GET /small HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  std::string both;
  CHECK(ok.read_to_close(both) == RawConnection::Outcome::closed);
  CHECK(both.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(both.find("HTTP/1.1 200 OK\r\n", 1) != std::string::npos);
}

TEST_CASE("http server: a client that half-closes after a request on a watched route gets its answer, then the close") {
  // idle_timeout is 60 s (the default): a connection left open after the
  // answer would outlive the bound below by far.
  InProcessServer srv(std::chrono::seconds(10));
  struct Row {
    std::string name;
    std::string request;
    std::string body_line;
  };
  const Row rows[] = {
      {"GET", "GET /watched HTTP/1.1\r\nHost: x\r\n\r\n", "body 0"},
      {"POST, Content-Length", "POST /watched HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", "body 5"},
      // The fuzzer's input (tests/fuzz/corpus/http_request/crash-eof-lost-after-watched-request).
      {"POST, chunked", "POST /watched HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                        "3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n", "body 7"},
  };
  // The watcher and the handler race: repeat so that either order is met.
  for (int round = 0; round < 20; ++round) {
    for (const auto& r : rows) {
      CAPTURE(r.name);
      CAPTURE(round);
      RawConnection c(srv.port);
      REQUIRE(c.send(r.request));
      REQUIRE(c.shutdown_send());
      std::string got;
      REQUIRE(c.read_to_close(got, std::chrono::seconds(5)) == RawConnection::Outcome::closed);
      CHECK(got.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
      CHECK(got.ends_with(r.body_line));
      // The server knew the client had ended its stream: it said so.
      CHECK(got.find("Connection: close\r\n") != std::string::npos);
    }
  }
  CHECK(wait_until([&] { return srv.server->connections()->load() == 0; }, std::chrono::seconds(5)));
}
