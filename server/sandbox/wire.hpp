// Wire-level faults the sandbox acts out below HTTP: a reset or a stall
// mid-body, a body cut short of its Content-Length, broken chunked framing, an
// endless chunk header, a huge body streamed lazily. The byte layouts are pure
// functions (unit-tested); wire_send.cpp writes them on the connection.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace recgate::sandbox {

enum class WireMode {
  none,
  reset,              // head and half the body, then a TCP reset (SO_LINGER 0)
  short_body,         // head and half the body promised by Content-Length, then FIN
  stall,              // head and half the body, then silence until the peer closes
  bad_chunk,          // chunked: one good chunk, then a chunk-size line that is not hex
  endless_chunk_ext,  // chunked: one good chunk, then a chunk header whose extension never ends
  huge,               // Content-Length: body_bytes, streamed block by block
  huge_chunked,       // body_bytes in 64 KiB chunks, no length announced
};

std::optional<WireMode> parse_wire_mode(std::string_view name);
std::string_view wire_mode_name(WireMode mode);
// Every accepted name, space-separated (for error details).
std::string_view wire_mode_names();

// How many bytes of the lazy part huge* and endless_chunk_ext send by default.
inline constexpr std::uint64_t kDefaultWireBytes = 1ull << 30;
// Block size of the lazy part.
inline constexpr std::size_t kWireBlock = 64 * 1024;

struct WirePlan {
  WireMode mode = WireMode::none;
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;  // no framing headers (the mode sets them)
  std::string body;                                          // the answer the fault mangles
  std::uint64_t lazy_bytes = kDefaultWireBytes;              // huge*, endless_chunk_ext
};

// The bytes written before the lazy part: status line, the headers with the
// framing the mode needs, and whatever part of the body precedes the fault.
std::string wire_prefix(const WirePlan& plan);
// One framed block of the lazy part holding `payload` bytes of filler:
// raw for huge and endless_chunk_ext, a chunk for huge_chunked.
std::string wire_block(WireMode mode, std::size_t payload);
// What follows the last lazy block ("0\r\n\r\n" for huge_chunked, else "").
std::string_view wire_suffix(WireMode mode);
// Whether the mode streams a lazy part after the prefix.
bool wire_is_lazy(WireMode mode);

// What one act did, for /admin/stats: the bytes written and whether the peer
// closed or reset the connection before the act was over.
struct WireReport {
  WireMode mode = WireMode::none;
  std::uint64_t bytes_sent = 0;
  bool peer_closed = false;
};

}  // namespace recgate::sandbox
