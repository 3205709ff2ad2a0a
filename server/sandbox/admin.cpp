// Admin API logic: validation of the admin requests and their JSON answers.
#include "sandbox/admin.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "core/problem.hpp"
#include "sandbox/catalog.hpp"
#include "sandbox/request.hpp"
#include "sandbox/signature.hpp"

namespace recgate::sandbox {

namespace {

AdminAnswer problem(int status, std::string code, std::string detail) {
  return AdminAnswer{status, problem_body(make_problem(status, std::move(code), std::move(detail))),
                     "application/problem+json"};
}

const std::string* query_value(const QueryPairs& q, std::string_view name) {
  for (const auto& [k, v] : q)
    if (k == name) return &v;
  return nullptr;
}

// The upstream-fault keys (wire faults, replaced bodies, Retry-After): true
// when `k` is one of them; `error` is set when its value is unusable.
bool upstream_fault_key(const std::string& k, const rapidjson::Value& v, Fault& f, std::string& error) {
  if (k == "wire") {
    const auto mode = v.IsString() ? parse_wire_mode(v.GetString()) : std::nullopt;
    if (!mode) error = "wire must be one of: " + std::string(wire_mode_names());
    else f.wire = *mode;
  } else if (k == "wire_bytes") {
    if (!v.IsUint64() || v.GetUint64() < 1 || v.GetUint64() > (1ull << 40)) error = "wire_bytes must be 1..2^40";
    else f.wire_bytes = v.GetUint64();
  } else if (k == "invalid_xml") {
    if (!v.IsBool()) error = "invalid_xml must be a boolean";
    else f.invalid_xml = v.GetBool();
  } else if (k == "body" || k == "content_type" || k == "retry_after") {
    if (!v.IsString()) error = k + " must be a string";
    else if (k == "body") f.body = v.GetString();
    else (k == "content_type" ? f.content_type : f.retry_after) = v.GetString();
  } else {
    return false;
  }
  return true;
}

}  // namespace

bool admin_authorized(const SandboxConfig& cfg, std::string_view authorization, std::string_view x_admin_token) {
  if (cfg.admin_token.empty()) return true;
  constexpr std::string_view bearer = "Bearer ";
  if (authorization.size() > bearer.size() && authorization.substr(0, bearer.size()) == bearer &&
      constant_time_equal(authorization.substr(bearer.size()), cfg.admin_token))
    return true;
  return !x_admin_token.empty() && constant_time_equal(x_admin_token, cfg.admin_token);
}

AdminAnswer admin_unauthorized() {
  return problem(401, "admin_unauthorized", "this sandbox has an admin_token: send Authorization: Bearer <token>");
}

AdminAnswer admin_touch(SandboxState& state, const QueryPairs& query, std::chrono::system_clock::time_point now) {
  const SandboxConfig& cfg = state.config();
  std::string seller = cfg.sellers.front().seller_id;
  if (const auto* s = query_value(query, "seller")) seller = *s;
  if (!find_seller(cfg, seller)) return problem(400, "unknown_seller", "no configured seller " + seller);
  const auto* marketplace = query_value(query, "marketplace");
  if (!marketplace || !find_marketplace(*marketplace))
    return problem(400, "unknown_marketplace", "marketplace must be a known MarketplaceId");
  const auto* category = query_value(query, "category");
  if (!category || !category_offered(*marketplace, *category))
    return problem(400, "invalid_category", "category must be one the marketplace offers: Inventory Selection "
                                            "Pricing Fulfillment ListingQuality GlobalSelling Advertising (Brazil: "
                                            "no Fulfillment, no Advertising)");
  const CategorySnapshot snap = state.touch(seller, *marketplace, *category, now);
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.StartObject();
  w.Key("seller");
  w.String(seller.c_str());
  w.Key("marketplace");
  w.String(marketplace->c_str());
  w.Key("category");
  w.String(category->c_str());
  w.Key("generation");
  w.Uint64(snap.generation);
  w.Key("lastUpdated");
  if (snap.last_updated) w.String(format_iso_ms(*snap.last_updated).c_str());
  else w.Null();
  w.EndObject();
  return AdminAnswer{200, sb.GetString()};
}

AdminAnswer admin_add_fault(SandboxState& state, std::string_view json_body) {
  rapidjson::Document d;
  d.Parse(json_body.data(), json_body.size());
  if (d.HasParseError() || !d.IsObject()) return problem(400, "invalid_json", "the body must be a JSON object");
  Fault f;
  for (auto it = d.MemberBegin(); it != d.MemberEnd(); ++it) {
    const std::string k = it->name.GetString();
    const auto& v = it->value;
    auto bad = [&](const char* what) { return problem(400, "invalid_fault", k + " must be " + what); };
    if (k == "latency_ms") {
      if (!v.IsInt() || v.GetInt() < 0 || v.GetInt() > 600000) return bad("an integer 0..600000");
      f.latency_ms = v.GetInt();
    } else if (k == "status") {
      if (!v.IsInt() || v.GetInt() < 400 || v.GetInt() > 599) return bad("an integer 400..599");
      f.status = v.GetInt();
    } else if (k == "count") {
      if (!v.IsInt() || v.GetInt() < 1) return bad("an integer >= 1");
      f.remaining = v.GetInt();
    } else if (k == "malformed" || k == "drop") {
      if (!v.IsBool()) return bad("a boolean");
      (k == "drop" ? f.drop : f.malformed) = v.GetBool();
    } else if (k == "action" || k == "code" || k == "message") {
      if (!v.IsString()) return bad("a string");
      (k == "action" ? f.action : k == "code" ? f.code : f.message) = v.GetString();
    } else if (std::string error; upstream_fault_key(k, v, f, error)) {
      if (!error.empty()) return problem(400, "invalid_fault", error);
    } else {
      return problem(400, "invalid_fault",
                     "unknown key " + k +
                         "; allowed: latency_ms status code message malformed drop count action wire wire_bytes "
                         "invalid_xml body content_type retry_after");
    }
  }
  if (!f.action.empty() && !is_known_action(f.action))
    return problem(400, "invalid_fault", "action must be an MWS Recommendations action");
  if (f.latency_ms == 0 && f.status == 0 && !f.malformed && !f.drop && f.wire == WireMode::none && !f.invalid_xml &&
      !f.body)
    return problem(400, "invalid_fault",
                   "give at least one of latency_ms, status, malformed, drop, wire, invalid_xml, body");
  state.add_fault(f);
  return AdminAnswer{200, "{\"added\":true}"};
}

AdminAnswer admin_clear_faults(SandboxState& state) {
  state.clear_faults();
  return AdminAnswer{200, "{\"cleared\":true}"};
}

AdminAnswer admin_stats(const SandboxState& state, std::chrono::steady_clock::time_point now) {
  return AdminAnswer{200, state.stats_json(now)};
}

AdminAnswer admin_reset(SandboxState& state, Now now) {
  state.reset(now);
  return AdminAnswer{200, "{\"reset\":true}"};
}

}  // namespace recgate::sandbox
