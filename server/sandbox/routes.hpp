// The sandbox's HTTP surface for the shared Beast server: route lists that
// main concatenates (MWS here, admin and health here, Ads/LWA in ads_*.cpp).
// Handlers adapt Context to the pure functions and back.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "core/http/server.hpp"
#include "sandbox/state.hpp"

namespace recgate::sandbox {

// A response with the given status, headers and body (Content-Length set).
http::Response make_response(int status, std::string body,
                             const std::vector<std::pair<std::string, std::string>>& headers);

// POST /Recommendations/{version}
std::vector<http::Route> mws_routes(SandboxState& state);
// /admin/touch, /admin/faults, /admin/stats, /admin/reset, /healthz
std::vector<http::Route> admin_routes(SandboxState& state);

}  // namespace recgate::sandbox
