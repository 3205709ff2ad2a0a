// The HTTP adapter of MwsService: parses GET /v1/mws/{account}/recommendations
// and /last-updated into an account, a validated query and RequestOptions,
// calls the service, and renders its answer as JSON with ETag and
// Cache-Status (services/routes.hpp), or a problem.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <optional>

#include "core/http/server.hpp"

namespace recgate {

class MwsService;

namespace mws_routes {

boost::asio::awaitable<http::Response> recommendations(MwsService& svc, http::Context& ctx);
// The cache-hit fast path: a response from memory alone, or nullopt (then
// the router calls recommendations()).
std::optional<http::Response> try_hit(MwsService& svc, http::Context& ctx);
boost::asio::awaitable<http::Response> last_updated(MwsService& svc, http::Context& ctx);

}  // namespace mws_routes
}  // namespace recgate
