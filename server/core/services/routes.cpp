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

namespace {

// Which representation the client gets, its ETag, and whether the client
// already has it (If-None-Match).
struct Choice {
  bool gzip = false;
  std::string etag;
  bool not_modified = false;
};

Choice choose(const http::Context& ctx, std::uint64_t etag_hash) {
  Choice c;
  c.gzip = http::accepts_gzip(ctx.header("Accept-Encoding"));
  c.etag = etag_of_hash(etag_hash, c.gzip);
  c.not_modified = cache::if_none_match(std::string(ctx.header("If-None-Match")), c.etag);
  return c;
}

// The header lines every answer of this representation carries, rendered
// once (Context::fields_ref): for a 200 its type and coding, and for both
// Vary, ETag and Cache-Control.
SharedBody fixed_fields(const Choice& c) {
  std::string f;
  f.reserve(128);
  if (!c.not_modified) f += c.gzip ? "Content-Type: application/json\r\nContent-Encoding: gzip\r\n"
                                   : "Content-Type: application/json\r\n";
  f += "Vary: Accept-Encoding\r\nETag: ";
  f += c.etag;
  f += "\r\nCache-Control: private, no-cache\r\n";
  return std::make_shared<const std::string>(std::move(f));
}

// The 200 (its body sent by reference, Context::body_ref) or the 304; what
// changes per request (Cache-Status, Age) in the Response's own fields.
http::Response answer(http::Context& ctx, const Choice& c, SharedBody body, SharedBody fields,
                      const CacheFacts& cache) {
  http::Response res{c.not_modified ? boost::beast::http::status::not_modified : boost::beast::http::status::ok, 11};
  if (!c.not_modified) ctx.body_ref = std::move(body);
  ctx.fields_ref = std::move(fields);
  res.set("Cache-Status", cache.status);
  res.set("Age", std::to_string(cache.age_s));
  ctx.log_fields.emplace_back("cache", cache.status);
  return res;
}

}  // namespace

http::Response cached_response(http::Context& ctx, const cache::BodyParts& body, const CacheFacts& cache,
                               std::uint64_t etag_hash) {
  const Choice c = choose(ctx, etag_hash);
  SharedBody b;
  if (!c.not_modified) b = std::make_shared<const std::string>(c.gzip ? body.gzip() : body.identity());
  return answer(ctx, c, std::move(b), fixed_fields(c), cache);
}

http::Response remembered_response(http::Context& ctx, std::vector<cache::EntryPtr> entries, const CacheFacts& cache,
                                   const std::function<cache::BodyParts()>& parts,
                                   const std::function<std::uint64_t()>& etag_hash) {
  thread_local AnswerMemo memo;
  Rendered* r = memo.find(entries);
  if (!r) r = &memo.remember(std::move(entries), etag_hash());
  const Choice c = choose(ctx, r->etag_hash);
  if (c.not_modified) return answer(ctx, c, nullptr, fixed_fields(c), cache);
  Representation rep = c.gzip ? r->gzip : r->identity;
  if (!rep.body) {
    const cache::BodyParts p = parts();
    rep = memo.keep(*r, c.gzip, Representation{std::make_shared<const std::string>(c.gzip ? p.gzip() : p.identity()),
                                                fixed_fields(c)});
  }
  return answer(ctx, c, std::move(rep.body), std::move(rep.fields), cache);
}

std::string etag_of_hash(std::uint64_t h, bool gzip) { return "\"" + hex64(h) + (gzip ? "-gz\"" : "\""); }

}  // namespace recgate::svc
