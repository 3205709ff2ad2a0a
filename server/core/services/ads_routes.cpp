// Ads route adapter (see ads_routes.hpp): account -> Content-Type -> body
// validation -> AdsService -> the cached body, ETag from its hash.
#include "core/services/ads_routes.hpp"

#include <memory>

#include "core/ads/request.hpp"
#include "core/services/ads_service.hpp"
#include "core/services/routes.hpp"

namespace recgate::ads_routes {

namespace {

Problem unsupported_media_type(const std::string& got) {
  return to_problem(Error::unsupported_media_type,
                    "the request body must be sent with Content-Type: application/json; got " +
                        (got.empty() ? std::string("none") : "\"" + got + "\""));
}

http::Response render(http::Context& ctx, const AdsAnswer& a) {
  cache::BodyParts body;
  body.entry(a.entry);
  return svc::cached_response(ctx, body, a.cache, a.entry->hash);
}

}  // namespace

boost::asio::awaitable<http::Response> product_recommendations(AdsService& svc, http::Context& ctx) {
  const std::string account(ctx.param("account"));
  if (auto p = svc.check_account(account)) co_return http::problem_response(*p);
  const std::string content_type(ctx.header("Content-Type"));
  if (!ads::is_json_media_type(content_type)) co_return http::problem_response(unsupported_media_type(content_type));
  auto valid = ads::validate_request(ctx.req.body(), svc.max_asins());
  if (!valid) co_return http::problem_response(valid.error());
  // Built once and shared by pointer with the flight and its retries: a
  // coalesced or queued request copies no ASIN list.
  auto request = std::make_shared<const ads::ProductRequest>(std::move(*valid));
  const svc::RequestOptions opts = svc::request_options(ctx);
  auto answer = co_await svc.product_recommendations(account, std::move(request), opts);
  co_return svc::respond(ctx, answer, render);
}

}  // namespace recgate::ads_routes
