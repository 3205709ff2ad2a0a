// Synchronous one-shot GET used by `recgate --healthcheck URL` (I/O layer).
#include "core/healthcheck.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <chrono>
#include <cstdio>
#include <regex>
#include <string>

namespace recgate {

int healthcheck(const char* url) {
  namespace net = boost::asio;
  namespace beast = boost::beast;
  namespace http = beast::http;
  static const std::regex re(R"(http://([^/:]+|\[[^\]]+\])(?::([0-9]+))?(/.*)?)");
  std::cmatch m;
  if (!std::regex_match(url, m, re)) {
    std::fprintf(stderr, "healthcheck: URL must be http://host[:port]/path\n");
    return 2;
  }
  std::string host = m[1].str();
  if (!host.empty() && host.front() == '[') host = host.substr(1, host.size() - 2);
  std::string port = m[2].matched ? m[2].str() : "80";
  std::string target = m[3].matched ? m[3].str() : "/";
  try {
    net::io_context ioc;
    net::ip::tcp::resolver resolver(ioc);
    beast::tcp_stream stream(ioc);
    stream.expires_after(std::chrono::seconds(5));
    stream.connect(resolver.resolve(host, port));
    http::request<http::empty_body> req{http::verb::get, target, 11};
    req.set(http::field::host, host);
    req.set(http::field::user_agent, "recgate-healthcheck");
    http::write(stream, req);
    beast::flat_buffer buf;
    http::response<http::string_body> res;
    http::read(stream, buf, res);
    std::printf("%d %s\n", res.result_int(), res.body().substr(0, 200).c_str());
    return res.result_int() == 200 ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "healthcheck: %s\n", e.what());
    return 1;
  }
}

}  // namespace recgate
