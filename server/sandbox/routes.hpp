// The sandbox's HTTP surface for the shared Beast server: route lists that
// main concatenates (MWS here, admin and health here, Ads/LWA in ads_*.cpp).
// Handlers adapt Context to the pure functions and back.
#pragma once

#include <vector>

#include "core/http/server.hpp"
#include "sandbox/state.hpp"

namespace recgate::sandbox {

// POST /Recommendations/{version}
std::vector<http::Route> mws_routes(SandboxState& state);
// /admin/touch, /admin/faults, /admin/stats, /admin/reset, /healthz
std::vector<http::Route> admin_routes(SandboxState& state);

}  // namespace recgate::sandbox
