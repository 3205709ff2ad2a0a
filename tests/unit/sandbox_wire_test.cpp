// Unit tests of the sandbox's wire-level fault layouts (sandbox/wire.hpp):
// what an HTTP/1.1 parser makes of each prefix and lazy block.
#include <doctest/doctest.h>

#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <optional>
#include <string>

#include "sandbox/wire.hpp"

using namespace recgate::sandbox;
namespace http = boost::beast::http;

namespace {

WirePlan plan(WireMode mode, std::uint64_t lazy = kDefaultWireBytes) {
  WirePlan p;
  p.mode = mode;
  p.status = 200;
  p.headers = {{"Content-Type", "text/xml"}};
  p.body = "<Root><Item>one</Item><Item>two</Item></Root>";
  p.lazy_bytes = lazy;
  return p;
}

struct Parsed {
  boost::beast::error_code ec;
  bool header_done = false;
  bool done = false;
  std::optional<std::uint64_t> content_length;
  bool chunked = false;
  std::string body;
};

// Feeds `bytes` to a response parser with no body limit, as a client would.
Parsed parse(const std::string& bytes) {
  http::response_parser<http::string_body> parser;
  parser.body_limit(boost::none);
  parser.eager(true);
  Parsed out;
  std::size_t used = 0;
  while (used < bytes.size()) {
    const std::size_t n = parser.put(boost::asio::buffer(bytes.data() + used, bytes.size() - used), out.ec);
    used += n;
    if (out.ec || n == 0) break;
  }
  out.header_done = parser.is_header_done();
  out.done = parser.is_done();
  if (out.header_done) {
    if (const auto length = parser.content_length()) out.content_length = *length;
    out.chunked = parser.chunked();
    out.body = parser.get().body();
  }
  return out;
}

}  // namespace

TEST_CASE("sandbox wire: mode names round-trip and are all listed") {
  for (const auto mode : {WireMode::reset, WireMode::short_body, WireMode::stall, WireMode::bad_chunk,
                          WireMode::endless_chunk_ext, WireMode::huge, WireMode::huge_chunked}) {
    const auto name = wire_mode_name(mode);
    CAPTURE(name);
    CHECK(parse_wire_mode(name) == mode);
    CHECK(std::string(wire_mode_names()).find(std::string(name)) != std::string::npos);
  }
  CHECK_FALSE(parse_wire_mode("none"));
  CHECK_FALSE(parse_wire_mode("RESET"));
  CHECK_FALSE(parse_wire_mode(""));
}

TEST_CASE("sandbox wire: reset, short and stall promise the whole body and send half") {
  for (const auto mode : {WireMode::reset, WireMode::short_body, WireMode::stall}) {
    const WirePlan p = plan(mode);
    const Parsed r = parse(wire_prefix(p));
    CAPTURE(wire_mode_name(mode));
    CHECK_FALSE(r.ec);  // every byte taken, the message still open
    CHECK(r.header_done);
    CHECK_FALSE(r.done);
    CHECK(r.content_length == p.body.size());
    CHECK(r.body == p.body.substr(0, p.body.size() / 2));
    CHECK_FALSE(wire_is_lazy(mode));
  }
}

TEST_CASE("sandbox wire: bad_chunk breaks the chunked framing after one good chunk") {
  const WirePlan p = plan(WireMode::bad_chunk);
  const Parsed r = parse(wire_prefix(p));
  CHECK(r.chunked);
  CHECK(r.ec == http::error::bad_chunk);
}

TEST_CASE("sandbox wire: endless_chunk_ext leaves a chunk header open, its lazy part never closes it") {
  const WirePlan p = plan(WireMode::endless_chunk_ext, 3 * kWireBlock);
  CHECK(wire_is_lazy(p.mode));
  const std::string block = wire_block(p.mode, kWireBlock);
  CHECK(block.find('\n') == std::string::npos);
  const Parsed r = parse(wire_prefix(p) + block + block);
  CHECK(r.chunked);
  CHECK(r.ec == http::error::need_more);
  CHECK(r.body == p.body.substr(0, p.body.size() / 2));
}

TEST_CASE("sandbox wire: huge announces its length, huge_chunked frames blocks as chunks and ends") {
  // (A parser reserves an announced length: 3 blocks, not the 1 GiB default.)
  const WirePlan huge = plan(WireMode::huge, 3 * kWireBlock);
  const Parsed h = parse(wire_prefix(huge) + wire_block(huge.mode, kWireBlock));
  CHECK_FALSE(h.ec);
  CHECK_FALSE(h.done);
  CHECK(h.content_length == 3 * kWireBlock);
  CHECK(h.body.size() == kWireBlock);
  CHECK(wire_suffix(huge.mode).empty());

  const WirePlan chunked = plan(WireMode::huge_chunked, 10);
  CHECK(wire_block(chunked.mode, 10) == "a\r\nxxxxxxxxxx\r\n");
  const Parsed c = parse(wire_prefix(chunked) + wire_block(chunked.mode, kWireBlock) +
                         wire_block(chunked.mode, 10) + std::string(wire_suffix(chunked.mode)));
  CHECK_FALSE(c.ec);
  CHECK(c.done);
  CHECK(c.body.size() == kWireBlock + 10);
}
