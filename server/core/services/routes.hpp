// What the MWS and Ads route adapters share: reading RequestOptions from the
// headers, and rendering an answer (200 with Cache-Status, Age, ETag, or a
// 304) or a problem. The only place the services meet HTTP.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/errors.hpp"
#include "core/http/server.hpp"
#include "core/services/common.hpp"

namespace recgate::svc {

// Cache-Control, Prefer: wait (capped at 3600 s), the client and request id.
RequestOptions request_options(const http::Context& ctx);

// A 200 with the cache headers, or a 304 when If-None-Match matches `etag`.
http::Response cached_response(http::Context& ctx, std::string body, const CacheFacts& cache, const std::string& etag);

// `"<16 hex digits>"`: a strong ETag from a 64-bit hash of the validators.
std::string etag_of_hash(std::uint64_t h);

// The answer rendered by `render`, or its problem.
template <class T, class Render>
http::Response respond(http::Context& ctx, const Expected<T>& answer, Render render) {
  if (!answer) return http::problem_response(answer.error());
  return render(ctx, *answer);
}

}  // namespace recgate::svc
