// The HTTP adapter of AdsService: parses POST /v1/ads/{account}/
// product-recommendations (account, Content-Type, body) into a validated
// request and RequestOptions, calls the service, and renders upstream's body
// unchanged with ETag and Cache-Status (services/routes.hpp), or a problem.
#pragma once

#include <boost/asio/awaitable.hpp>

#include "core/http/server.hpp"

namespace recgate {

class AdsService;

namespace ads_routes {

boost::asio::awaitable<http::Response> product_recommendations(AdsService& svc, http::Context& ctx);

}  // namespace ads_routes
}  // namespace recgate
