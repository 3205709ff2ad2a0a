// MWS route adapter (see mws_routes.hpp): request -> (account, query,
// options) -> MwsService -> JSON body, ETag from the entries' validators.
#include "core/services/mws_routes.hpp"

#include <array>
#include <functional>
#include <optional>
#include <string_view>

#include "core/cache/policy.hpp"
#include "core/mws/model.hpp"
#include "core/services/mws_service.hpp"
#include "core/services/routes.hpp"

namespace recgate::mws_routes {

namespace {

using svc::json_opt_string;
using svc::json_string;

// Strong validator over what the body shows: account, marketplace and, per
// category, its lastUpdated, fetch time and list hash.
std::uint64_t etag_of(const MwsAnswer& a) {
  std::uint64_t h = cache::fnv1a64(a.account);
  h = cache::fnv1a64(a.marketplace_id, h);
  for (const auto& c : a.categories) {
    h = cache::fnv1a64(c.category, h);
    h = cache::fnv1a64(c.entry->has_validator() ? c.entry->validator_view() : std::string_view("-"), h);
    h = cache::fnv1a64(std::to_string(c.entry->fetched_at_ms), h);
    h = cache::fnv1a64(svc::hex64(c.entry->hash), h);
  }
  return h;
}

// The wrapper text is built once with its size reserved; each list is a part
// taken from its cached entry as it is stored (cache::BodyParts).
cache::BodyParts recommendation_parts(const MwsAnswer& a) {
  cache::BodyParts parts;
  std::string& body = parts.text();
  body.reserve(64 + 160 * a.categories.size());
  body += "{\"account\":";
  json_string(body, a.account);
  body += ",\"marketplaceId\":";
  json_string(body, a.marketplace_id);
  body += ",\"categories\":[";
  for (std::size_t i = 0; i < a.categories.size(); ++i) {
    const auto& c = a.categories[i];
    if (i) body += ',';
    body += "{\"category\":";
    json_string(body, c.category);
    body += ",\"lastUpdated\":";
    if (c.entry->has_validator()) json_string(body, c.entry->validator_view());
    else body += "null";
    body += ",\"fetchedAt\":";
    json_string(body, svc::iso_seconds(c.entry->fetched_at_ms));
    body += ",\"cache\":\"";
    body += cache::outcome_name(c.outcome);
    body += "\",\"recommendations\":";
    parts.entry(c.entry);
    body += '}';
  }
  body += "]}";
  return parts;
}

http::Response render_recommendations(http::Context& ctx, const MwsAnswer& a) {
  return svc::cached_response(ctx, recommendation_parts(a), a.cache, etag_of(a));
}

// The queries this thread validated last, by their raw text: validation is
// a function of the text alone (static tables), so a query asked again is
// not parsed into categories and filters again. Direct-mapped; queries over
// kMaxRememberedQuery bytes are validated every time. The query returned
// lives in this thread's slots: valid until the thread's next call (the
// synchronous fast path uses it and returns before that).
constexpr std::size_t kQuerySlots = 256;
constexpr std::size_t kMaxRememberedQuery = 512;

const mws::Query* valid_query(const http::Context& ctx) {
  struct Slot {
    std::string raw;
    std::optional<mws::Query> query;
  };
  thread_local std::array<Slot, kQuerySlots> slots;
  Slot& s = slots[std::hash<std::string_view>{}(ctx.raw_query) % kQuerySlots];
  if (s.query && s.raw == ctx.raw_query) return &*s.query;
  auto q = mws::validate_recommendations_query(ctx.query);
  if (!q) return nullptr;
  if (ctx.raw_query.size() > kMaxRememberedQuery) {
    thread_local mws::Query last;
    last = std::move(*q);
    return &last;
  }
  s.raw = ctx.raw_query;
  s.query = std::move(*q);
  return &*s.query;
}

// A hit (every category's outcome "hit"): rendered once per thread for the
// same entries, then sent from the memo (svc::remembered_response).
http::Response render_hit(http::Context& ctx, const MwsAnswer& a) {
  std::vector<cache::EntryPtr> entries;
  entries.reserve(a.categories.size());
  for (const auto& c : a.categories) entries.push_back(c.entry);
  return svc::remembered_response(
      ctx, std::move(entries), a.cache, [&a] { return recommendation_parts(a); }, [&a] { return etag_of(a); });
}

http::Response render_last_updated(http::Context& ctx, const MwsLastUpdatedAnswer& a) {
  cache::BodyParts parts;
  std::string& body = parts.text();
  body = "{\"account\":";
  json_string(body, a.account);
  body += ",\"marketplaceId\":";
  json_string(body, a.marketplace_id);
  body += ",\"checkedAt\":";
  json_string(body, svc::iso_seconds(a.checked_at_ms));
  body += ",\"cache\":\"";
  body += cache::outcome_name(a.outcome);
  body += '"';
  const std::size_t times_at = body.size();
  body += ",\"lastUpdated\":";
  svc::json_named_times(body, a.last_updated);
  body += '}';
  // The ETag covers the times only: a re-check that changes none keeps it.
  return svc::cached_response(ctx, parts, a.cache, cache::fnv1a64(std::string_view(body).substr(times_at)));
}

}  // namespace

boost::asio::awaitable<http::Response> recommendations(MwsService& svc, http::Context& ctx) {
  const std::string account(ctx.param("account"));
  if (auto p = svc.check_account(account)) co_return http::problem_response(*p);
  auto q = mws::validate_recommendations_query(ctx.query);
  if (!q) co_return http::problem_response(q.error());
  const svc::RequestOptions opts = svc::request_options(ctx);
  auto answer = co_await svc.recommendations(account, *q, opts);
  co_return svc::respond(ctx, answer, render_recommendations);
}

std::optional<http::Response> try_hit(MwsService& svc, http::Context& ctx) {
  const mws::Query* q = valid_query(ctx);
  if (!q) return std::nullopt;  // the handler answers the problem
  const std::string_view cc = ctx.header("Cache-Control");
  const auto directives = cc.empty() ? cache::RequestDirectives{} : cache::parse_cache_control(std::string(cc));
  auto answer = svc.try_hit(std::string(ctx.param("account")), *q, directives);
  if (!answer) return std::nullopt;
  return render_hit(ctx, *answer);
}

boost::asio::awaitable<http::Response> last_updated(MwsService& svc, http::Context& ctx) {
  const std::string account(ctx.param("account"));
  if (auto p = svc.check_account(account)) co_return http::problem_response(*p);
  auto mpid = mws::validate_last_updated_query(ctx.query);
  if (!mpid) co_return http::problem_response(mpid.error());
  const svc::RequestOptions opts = svc::request_options(ctx);
  auto answer = co_await svc.last_updated(account, *mpid, opts);
  co_return svc::respond(ctx, answer, render_last_updated);
}

}  // namespace recgate::mws_routes
