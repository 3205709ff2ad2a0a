// Shared route-adapter code (see routes.hpp).
#include "core/services/routes.hpp"

#include <algorithm>

#include "core/cache/policy.hpp"
#include "core/http/accept_encoding.hpp"

namespace recgate::svc {

RequestOptions request_options(const http::Context& ctx) {
  RequestOptions o;
  o.directives = cache::parse_cache_control(std::string(ctx.header("Cache-Control")));
  if (auto w = cache::parse_prefer_wait(std::string(ctx.header("Prefer")))) o.wait_s = std::min(*w, 3600);
  o.client = ctx.client;
  o.request_id = ctx.request_id;
  return o;
}

http::Response cached_response(http::Context& ctx, const cache::BodyParts& body, const CacheFacts& cache,
                               std::uint64_t etag_hash) {
  const bool gzip = http::accepts_gzip(ctx.header("Accept-Encoding"));
  const std::string etag = etag_of_hash(etag_hash, gzip);
  const bool not_modified = cache::if_none_match(std::string(ctx.header("If-None-Match")), etag);
  http::Response res = not_modified ? http::text_response(304, "", "application/json")
                                    : http::json_response(200, gzip ? body.gzip() : body.identity());
  if (not_modified) res.erase(boost::beast::http::field::content_type);
  else if (gzip) res.set(boost::beast::http::field::content_encoding, "gzip");
  res.set(boost::beast::http::field::vary, "Accept-Encoding");
  res.set("Cache-Status", cache.status);
  res.set("Age", std::to_string(cache.age_s));
  res.set(boost::beast::http::field::etag, etag);
  res.set(boost::beast::http::field::cache_control, "private, no-cache");
  ctx.log_fields.emplace_back("cache", cache.status);
  return res;
}

std::string etag_of_hash(std::uint64_t h, bool gzip) { return "\"" + hex64(h) + (gzip ? "-gz\"" : "\""); }

}  // namespace recgate::svc
