// send_wire_fault (see wire_send.hpp): every write and wait under a deadline,
// so a peer that neither reads nor closes cannot hold the sandbox forever.
#include "sandbox/wire_send.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <string>

namespace recgate::sandbox {

namespace net = boost::asio;
namespace beast = boost::beast;

namespace {

constexpr auto nothrow = net::as_tuple(net::use_awaitable);
constexpr auto kWriteTimeout = std::chrono::seconds(30);  // one block to a peer that stopped reading
constexpr auto kHoldTimeout = std::chrono::seconds(120);  // how long a stalled or broken answer stays open

// Reads and discards until the peer closes (true) or kHoldTimeout passes (false).
net::awaitable<bool> until_peer_closes(beast::tcp_stream& stream) {
  stream.expires_after(kHoldTimeout);
  std::array<char, 512> sink{};
  for (;;) {
    auto [ec, n] = co_await stream.async_read_some(net::buffer(sink), nothrow);
    if (ec) co_return ec != beast::error::timeout;
  }
}

void reset(beast::tcp_stream& stream) {
  boost::system::error_code ignored;
  stream.socket().set_option(net::socket_base::linger(true, 0), ignored);
  stream.socket().close(ignored);
}

}  // namespace

net::awaitable<WireReport> send_wire_fault(beast::tcp_stream& stream, WirePlan plan) {
  WireReport report;
  report.mode = plan.mode;
  const std::string prefix = wire_prefix(plan);
  stream.expires_after(kWriteTimeout);
  auto [prefix_ec, prefix_n] = co_await net::async_write(stream, net::buffer(prefix), nothrow);
  report.bytes_sent += prefix_n;
  if (prefix_ec) {
    report.peer_closed = prefix_ec != beast::error::timeout;
    co_return report;
  }
  if (plan.mode == WireMode::reset) {
    reset(stream);
    co_return report;
  }
  if (plan.mode == WireMode::stall || plan.mode == WireMode::bad_chunk) {
    report.peer_closed = co_await until_peer_closes(stream);
    co_return report;
  }
  if (!wire_is_lazy(plan.mode)) co_return report;  // short: the server closes after the prefix

  const std::string block = wire_block(plan.mode, kWireBlock);
  for (std::uint64_t left = plan.lazy_bytes; left > 0;) {
    const std::size_t payload = static_cast<std::size_t>(std::min<std::uint64_t>(left, kWireBlock));
    const std::string last = payload < kWireBlock ? wire_block(plan.mode, payload) : std::string();
    const std::string& bytes = payload < kWireBlock ? last : block;
    stream.expires_after(kWriteTimeout);
    auto [ec, n] = co_await net::async_write(stream, net::buffer(bytes), nothrow);
    report.bytes_sent += n;
    if (ec) {
      report.peer_closed = ec != beast::error::timeout;
      co_return report;
    }
    left -= payload;
  }
  const std::string_view suffix = wire_suffix(plan.mode);
  if (!suffix.empty()) {
    stream.expires_after(kWriteTimeout);
    auto [ec, n] = co_await net::async_write(stream, net::buffer(suffix.data(), suffix.size()), nothrow);
    report.bytes_sent += n;
    report.peer_closed = ec && ec != beast::error::timeout;
  }
  if (plan.mode == WireMode::endless_chunk_ext) report.peer_closed = co_await until_peer_closes(stream);
  co_return report;
}

}  // namespace recgate::sandbox
