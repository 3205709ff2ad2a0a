// The MWS Recommendations endpoint as a function: an HTTP request's parts in,
// Amazon's answer (status, headers, XML, plus the fault to act out) out.
// Verification, throttling, faults and data in one narrow entry point that
// the route adapter and the unit tests both call; no sockets.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "sandbox/next_token.hpp"
#include "sandbox/request.hpp"
#include "sandbox/state.hpp"
#include "sandbox/wire.hpp"

namespace recgate::sandbox {

struct MwsOutcome {
  int status = 200;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  std::chrono::milliseconds latency{0};
  bool drop = false;  // send part of the response, then close
  WireMode wire = WireMode::none;  // act this fault out on the raw connection instead (wire_send.hpp)
  std::uint64_t wire_bytes = 0;
  std::string action;
  std::string error_code;
  std::string request_id;
};

MwsOutcome handle_mws(SandboxState& state, const HttpInput& in, Now now);

// One page of a ListRecommendations[ByNextToken] answer (pure).
std::string render_list_page(std::string_view action, const ListCursor& cursor, int page_size,
                             int items_per_category, std::string_view request_id);

std::string new_request_id();

}  // namespace recgate::sandbox
