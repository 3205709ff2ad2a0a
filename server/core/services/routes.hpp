// What the MWS and Ads route adapters share: reading RequestOptions from the
// headers, and rendering an answer (200 with Cache-Status, Age, ETag, Vary,
// identity or gzip as Accept-Encoding allows, or a 304) or a problem. The
// only place the services meet HTTP.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/cache/body_parts.hpp"
#include "core/errors.hpp"
#include "core/http/server.hpp"
#include "core/services/answer_memo.hpp"
#include "core/services/common.hpp"

namespace recgate::svc {

// Cache-Control, Prefer: wait (capped at 3600 s), the client and request id.
RequestOptions request_options(const http::Context& ctx);

// A 200 with the cache headers, or a 304 when If-None-Match matches the ETag
// of the representation chosen. Accept-Encoding allowing gzip
// (http::accepts_gzip) selects the gzip one: Content-Encoding: gzip, the
// entries' stored deflate streams as they are, ETag etag_of_hash(h, true).
// Both carry Vary: Accept-Encoding. The body is sent by reference
// (Context::body_ref).
http::Response cached_response(http::Context& ctx, const cache::BodyParts& body, const CacheFacts& cache,
                               std::uint64_t etag_hash);

// The same for a cache hit made of exactly `entries` (each a hit): the body
// and ETag this thread rendered for them before (AnswerMemo), else `parts`
// and `etag_hash` are called and what they make is remembered.
http::Response remembered_response(http::Context& ctx, std::vector<cache::EntryPtr> entries, const CacheFacts& cache,
                                   const std::function<cache::BodyParts()>& parts,
                                   const std::function<std::uint64_t()>& etag_hash);

// A strong ETag from a 64-bit hash of the validators: `"<16 hex digits>"`
// for identity, `"<16 hex digits>-gz"` for gzip (each representation its own,
// RFC 9110 §8.8.3).
std::string etag_of_hash(std::uint64_t h, bool gzip = false);

// The answer rendered by `render`, or its problem.
template <class T, class Render>
http::Response respond(http::Context& ctx, const Expected<T>& answer, Render render) {
  if (!answer) return http::problem_response(answer.error());
  return render(ctx, *answer);
}

}  // namespace recgate::svc
