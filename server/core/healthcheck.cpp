// One-shot GET used by `recgate --healthcheck URL` (I/O layer). One deadline
// covers resolving, connecting, writing and reading: a server that accepts
// and never answers fails the check instead of hanging it.
#include "core/healthcheck.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <regex>
#include <string>

namespace recgate {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

// The check's steps as a chain of completion handlers on one io_context;
// `result` is set once, by the last step or by the first error.
struct Check {
  Check(net::io_context& ioc, std::string h, std::string p, std::string t)
      : resolver(ioc), stream(ioc), host(std::move(h)), port(std::move(p)), target(std::move(t)) {}
  net::ip::tcp::resolver resolver;
  beast::tcp_stream stream;
  std::string host, port, target;
  http::request<http::empty_body> req;
  beast::flat_buffer buf;
  http::response<http::string_body> res;
  const char* failed_step = nullptr;  // set with `error` on failure
  beast::error_code error;
  bool done = false;

  void fail(const char* step, const beast::error_code& ec) {
    failed_step = step;
    error = ec;
    done = true;
  }

  void start() {
    resolver.async_resolve(host, port, [this](beast::error_code ec, net::ip::tcp::resolver::results_type r) {
      if (ec) return fail("resolve", ec);
      stream.async_connect(r, [this](beast::error_code ec2, const net::ip::tcp::endpoint&) {
        if (ec2) return fail("connect", ec2);
        req = {http::verb::get, target, 11};
        req.set(http::field::host, host);
        req.set(http::field::user_agent, "recgate-healthcheck");
        http::async_write(stream, req, [this](beast::error_code ec3, std::size_t) {
          if (ec3) return fail("write", ec3);
          http::async_read(stream, buf, res, [this](beast::error_code ec4, std::size_t) {
            if (ec4) return fail("read", ec4);
            done = true;
          });
        });
      });
    });
  }
};

}  // namespace

int healthcheck(const char* url, std::chrono::milliseconds timeout) {
  static const std::regex re(R"(http://([^/:]+|\[[^\]]+\])(?::([0-9]+))?(/.*)?)");
  std::cmatch m;
  if (!std::regex_match(url, m, re)) {
    std::fprintf(stderr, "healthcheck: URL must be http://host[:port]/path\n");
    return 2;
  }
  std::string host = m[1].str();
  if (!host.empty() && host.front() == '[') host = host.substr(1, host.size() - 2);
  net::io_context ioc;
  Check check(ioc, host, m[2].matched ? m[2].str() : "80", m[3].matched ? m[3].str() : "/");
  check.stream.expires_after(timeout);  // connect, write and read
  check.start();
  ioc.run_for(timeout);
  if (!check.done) {
    // Only name resolution can still run (getaddrinfo cannot be cancelled,
    // and destroying the io_context would wait for it): leave at once.
    std::fprintf(stderr, "healthcheck: no answer within %lld ms\n", static_cast<long long>(timeout.count()));
    std::fflush(stderr);
    std::_Exit(1);
  }
  if (check.failed_step) {
    if (check.error == beast::error::timeout)
      std::fprintf(stderr, "healthcheck: no answer within %lld ms (at %s)\n", static_cast<long long>(timeout.count()),
                   check.failed_step);
    else
      std::fprintf(stderr, "healthcheck: %s: %s\n", check.failed_step, check.error.message().c_str());
    return 1;
  }
  std::printf("%d %s\n", check.res.result_int(), check.res.body().substr(0, 200).c_str());
  return check.res.result_int() == 200 ? 0 : 1;
}

}  // namespace recgate
