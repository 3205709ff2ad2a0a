// The sandbox's Ads/LWA HTTP surface: route adapters from Context to the
// AdsState functions and back (POST /auth/o2/token, POST
// /sp/targets/products/recommendations, POST|DELETE /admin/ads/faults).
#pragma once

#include <vector>

#include "core/http/server.hpp"
#include "sandbox/state.hpp"

namespace recgate::sandbox {

std::vector<http::Route> ads_routes(SandboxState& state);

}  // namespace recgate::sandbox
