// The sandbox's admin API as plain functions over SandboxState (JSON in,
// status and JSON out): touch a category, inject or clear faults, read
// statistics, reset. The route adapter in routes.cpp only moves bytes.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sandbox/state.hpp"

namespace recgate::sandbox {

struct AdminAnswer {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
};

// True when no admin_token is configured, or `authorization` is
// "Bearer <admin_token>" (or `x_admin_token` equals it).
bool admin_authorized(const SandboxConfig& cfg, std::string_view authorization, std::string_view x_admin_token);

using QueryPairs = std::vector<std::pair<std::string, std::string>>;

AdminAnswer admin_touch(SandboxState& state, const QueryPairs& query, std::chrono::system_clock::time_point now);
AdminAnswer admin_add_fault(SandboxState& state, std::string_view json_body);
AdminAnswer admin_clear_faults(SandboxState& state);
AdminAnswer admin_stats(const SandboxState& state, std::chrono::steady_clock::time_point now);
AdminAnswer admin_reset(SandboxState& state, Now now);
AdminAnswer admin_unauthorized();

}  // namespace recgate::sandbox
