// Byte layouts of the wire-level faults (see wire.hpp). Pure.
#include "sandbox/wire.hpp"

#include <array>
#include <cstdio>

namespace recgate::sandbox {

namespace {

struct ModeName {
  WireMode mode;
  std::string_view name;
};

constexpr std::array<ModeName, 7> kModes{{
    {WireMode::reset, "reset"},
    {WireMode::short_body, "short"},
    {WireMode::stall, "stall"},
    {WireMode::bad_chunk, "bad_chunk"},
    {WireMode::endless_chunk_ext, "endless_chunk_ext"},
    {WireMode::huge, "huge"},
    {WireMode::huge_chunked, "huge_chunked"},
}};

std::string hex(std::uint64_t n) {
  char buf[20];
  std::snprintf(buf, sizeof buf, "%llx", static_cast<unsigned long long>(n));
  return buf;
}

std::string_view reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Status";
  }
}

std::string chunk(std::string_view data) { return hex(data.size()) + "\r\n" + std::string(data) + "\r\n"; }

bool chunked(WireMode mode) {
  return mode == WireMode::bad_chunk || mode == WireMode::endless_chunk_ext || mode == WireMode::huge_chunked;
}

}  // namespace

std::optional<WireMode> parse_wire_mode(std::string_view name) {
  for (const auto& m : kModes)
    if (m.name == name) return m.mode;
  return std::nullopt;
}

std::string_view wire_mode_name(WireMode mode) {
  for (const auto& m : kModes)
    if (m.mode == mode) return m.name;
  return "none";
}

std::string_view wire_mode_names() { return "reset short stall bad_chunk endless_chunk_ext huge huge_chunked"; }

bool wire_is_lazy(WireMode mode) {
  return mode == WireMode::huge || mode == WireMode::huge_chunked || mode == WireMode::endless_chunk_ext;
}

std::string wire_prefix(const WirePlan& plan) {
  std::string out = "HTTP/1.1 " + std::to_string(plan.status) + " " + std::string(reason(plan.status)) + "\r\n";
  for (const auto& [k, v] : plan.headers) out += k + ": " + v + "\r\n";
  if (chunked(plan.mode)) {
    out += "Transfer-Encoding: chunked\r\n";
  } else {
    const std::uint64_t length = plan.mode == WireMode::huge ? plan.lazy_bytes : plan.body.size();
    out += "Content-Length: " + std::to_string(length) + "\r\n";
  }
  out += "\r\n";
  const std::string_view half = std::string_view(plan.body).substr(0, plan.body.size() / 2);
  switch (plan.mode) {
    case WireMode::reset:
    case WireMode::short_body:
    case WireMode::stall:
      out += half;
      break;
    case WireMode::bad_chunk:
      // A size line must be 1*HEXDIG: "zz" is the mid-stream break.
      out += chunk(half) + "zz\r\n";
      break;
    case WireMode::endless_chunk_ext:
      // A size line whose chunk-ext goes on for lazy_bytes without its CRLF.
      out += chunk(half) + "10;x=";
      break;
    case WireMode::none:
    case WireMode::huge:
    case WireMode::huge_chunked:
      break;
  }
  return out;
}

std::string wire_block(WireMode mode, std::size_t payload) {
  const std::string filler(payload, 'x');
  return mode == WireMode::huge_chunked ? chunk(filler) : filler;
}

std::string_view wire_suffix(WireMode mode) { return mode == WireMode::huge_chunked ? "0\r\n\r\n" : ""; }

}  // namespace recgate::sandbox
