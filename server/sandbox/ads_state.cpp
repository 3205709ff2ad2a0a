// AdsState: the sandbox's LWA token endpoint and Ads product recommendations
// endpoint with their checks, rate bucket, faults and statistics.
#include "sandbox/ads_state.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cctype>

#include "core/problem.hpp"
#include "sandbox/json_out.hpp"
#include "sandbox/signature.hpp"

namespace recgate::sandbox {

namespace {

using namespace json_out;

constexpr std::string_view kRequestType = "application/vnd.spproductrecommendation.v3+json";
constexpr std::string_view kAsinsType = "application/vnd.spproductrecommendationresponse.asins.v3+json";
constexpr std::string_view kThemesType = "application/vnd.spproductrecommendationresponse.themes.v3+json";

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The media type of a header value without parameters, lower case, trimmed.
std::string media_type(std::string_view v) {
  v = v.substr(0, v.find(';'));
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return lower(v);
}

ExactBucket make_bucket(const AdsSandboxConfig& cfg, std::chrono::steady_clock::time_point now) {
  const auto every = std::chrono::nanoseconds(static_cast<std::int64_t>(1e9 / cfg.rate_per_s));
  return ExactBucket(cfg.burst, std::max(every, std::chrono::nanoseconds(1)), now);
}

std::string lwa_error_body(std::string_view error, std::string_view description) {
  rapidjson::StringBuffer sb;
  Writer w(sb);
  w.StartObject();
  w.Key("error");
  w.String(error.data(), static_cast<rapidjson::SizeType>(error.size()));
  w.Key("error_description");
  w.String(description.data(), static_cast<rapidjson::SizeType>(description.size()));
  w.EndObject();
  return std::string(sb.GetString(), sb.GetSize());
}

AdsOutcome lwa_error(int status, std::string error, std::string_view description) {
  AdsOutcome o;
  o.status = status;
  o.body = lwa_error_body(error, description);
  o.headers.emplace_back("Content-Type", "application/json;charset=UTF-8");
  o.code = std::move(error);
  return o;
}

const std::string* form_value(const Params& p, std::string_view name) {
  for (const auto& [k, v] : p)
    if (k == name) return &v;
  return nullptr;
}

AdsAdminAnswer admin_problem(std::string detail) {
  return AdsAdminAnswer{400, problem_body(make_problem(400, "invalid_fault", std::move(detail))),
                        "application/problem+json"};
}

}  // namespace

AdsState::AdsState(AdsSandboxConfig cfg, TimePoint now)
    : cfg_(std::move(cfg)), limit_(cfg_), rng_(std::random_device{}()), bucket_(make_bucket(cfg_, now)) {}

std::string AdsState::new_access_token() {
  static const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string t = "Atza|IwEB";
  for (int i = 0; i < 48; ++i) t += alphabet[rng_() % 64];
  return t;
}

AdsOutcome AdsState::error(int status, std::string code, std::string details) {
  AdsOutcome o;
  o.status = status;
  o.body = ads_error_body(AdsError{status, code, std::move(details)});
  o.headers.emplace_back("Content-Type", "application/json");
  o.code = std::move(code);
  return o;
}

AdsOutcome AdsState::authentication_failed() {
  static const char* hex = "0123456789ABCDEF";
  std::string request_id;
  for (int i = 0; i < 20; ++i) request_id += hex[rng_() % 16];
  AdsOutcome o = error(401, "401", "Authentication failed");
  o.body = ads_error_body(AdsError{401, "401", "Authentication failed"}, request_id);
  return o;
}

AdsOutcome AdsState::throttled(int retry_after_s) {
  ++rate_limited_;
  AdsOutcome o;
  if (limit_.amazon_throttled) {
    o.status = 429;
    o.body = "{\"message\":\"Too Many Requests\"}";
    o.headers.emplace_back("Content-Type", "application/json");
    o.headers.emplace_back("amazon-advertising-api-throttled", "true");
    o.code = "429";
  } else {
    o = error(429, "429", "Request was rate-limited. Retry later.");
  }
  if (retry_after_s > 0) o.headers.emplace_back("Retry-After", std::to_string(retry_after_s));
  return o;
}

std::optional<AdsFault> AdsState::take_fault(std::string_view target) {
  for (auto it = faults_.begin(); it != faults_.end(); ++it) {
    if (it->target != target) continue;
    AdsFault f = *it;
    if (--it->remaining <= 0) faults_.erase(it);
    ++faults_applied_;
    return f;
  }
  return std::nullopt;
}

AdsOutcome AdsState::fault_outcome(const AdsFault& f, bool token_endpoint) {
  AdsOutcome o;
  if (token_endpoint) {
    o = f.status == 429 ? lwa_error(429, "slow_down", "Too many requests")
        : f.status >= 500 ? lwa_error(f.status, "server_error", "The authorization server encountered an error")
        : f.status == 401 ? lwa_error(401, "invalid_client", "Client authentication failed")
                          : lwa_error(f.status, "invalid_request", "Injected fault");
  } else if (f.status == 429) {
    o = throttled(f.retry_after_s >= 0 ? f.retry_after_s : limit_.retry_after_s);
  } else if (f.status == 401) {
    o = authentication_failed();
  } else {
    o = error(f.status, std::to_string(f.status),
              f.status >= 500 ? "Something went wrong on the server. Retry later." : "Injected fault");
  }
  if (f.status == 429 && token_endpoint) {
    const int ra = f.retry_after_s >= 0 ? f.retry_after_s : limit_.retry_after_s;
    if (ra > 0) o.headers.emplace_back("Retry-After", std::to_string(ra));
  }
  o.latency = std::chrono::milliseconds(f.latency_ms);
  return o;
}

// ---- LWA ---------------------------------------------------------------------

AdsOutcome AdsState::token(const TokenInput& in, TimePoint now) {
  std::lock_guard lk(mu_);
  ++token_requests_;
  AdsOutcome o = token_locked(in, now);
  if (o.status != 200) ++token_errors_[o.code];
  return o;
}

AdsOutcome AdsState::token_locked(const TokenInput& in, TimePoint now) {
  std::chrono::milliseconds latency{0};
  if (auto f = take_fault("token")) {
    if (f->status) return fault_outcome(*f, true);
    latency = std::chrono::milliseconds(f->latency_ms);
  }
  if (media_type(in.content_type) != "application/x-www-form-urlencoded")
    return lwa_error(400, "invalid_request",
                     "The request has an invalid parameter : Content-Type must be application/x-www-form-urlencoded");
  Params form;
  if (!parse_form(in.body, form)) return lwa_error(400, "invalid_request", "The request body is malformed");
  for (const char* required : {"grant_type", "client_id", "client_secret", "refresh_token"}) {
    const std::string* v = form_value(form, required);
    if (!v || v->empty())
      return lwa_error(400, "invalid_request", std::string("The request is missing a required parameter : ") + required);
  }
  if (*form_value(form, "grant_type") != "refresh_token")
    return lwa_error(400, "unsupported_grant_type",
                     "The authorization grant type is not supported by the authorization server");
  const AdsClient* client = nullptr;
  for (const auto& c : cfg_.clients)
    if (constant_time_equal(c.client_id, *form_value(form, "client_id"))) client = &c;
  if (!client || !constant_time_equal(client->client_secret, *form_value(form, "client_secret")))
    return lwa_error(401, "invalid_client", "Client authentication failed");
  if (!constant_time_equal(client->refresh_token, *form_value(form, "refresh_token")))
    return lwa_error(400, "invalid_grant",
                     "The request has an invalid grant parameter : refresh_token. User may have revoked or didn't "
                     "grant the permission.");
  const std::string access = new_access_token();
  tokens_[access] = IssuedToken{client->client_id, now + std::chrono::seconds(cfg_.token_lifetime_s)};
  // Forget long-expired tokens so the map stays small.
  for (auto it = tokens_.begin(); it != tokens_.end();)
    it = it->second.expires_at + std::chrono::hours(1) < now ? tokens_.erase(it) : std::next(it);
  ++tokens_issued_;
  rapidjson::StringBuffer sb;
  Writer w(sb);
  w.StartObject();
  key(w, "access_token");
  str(w, access);
  key(w, "refresh_token");
  str(w, client->refresh_token);
  key(w, "token_type");
  str(w, "bearer");
  key(w, "expires_in");
  w.Int(cfg_.token_lifetime_s);
  w.EndObject();
  AdsOutcome o;
  o.body.assign(sb.GetString(), sb.GetSize());
  o.headers.emplace_back("Content-Type", "application/json;charset=UTF-8");
  o.headers.emplace_back("Cache-Control", "no-store");
  o.latency = latency;
  return o;
}

// ---- Ads -------------------------------------------------------------------

AdsOutcome AdsState::recommendations(const AdsInput& in, TimePoint now) {
  std::lock_guard lk(mu_);
  ++ads_requests_;
  last_request_ = in;
  last_request_.authorization.clear();
  has_last_request_ = true;
  AdsOutcome o = recommendations_locked(in, now);
  ++ads_by_status_[o.status];
  if (!o.code.empty()) ++ads_errors_[o.code];
  return o;
}

AdsOutcome AdsState::recommendations_locked(const AdsInput& in, TimePoint now) {
  std::chrono::milliseconds latency{0};
  if (auto f = take_fault("ads")) {
    if (f->status) return fault_outcome(*f, false);
    latency = std::chrono::milliseconds(f->latency_ms);
  }
  // Who is calling: bearer token, application, advertiser (docs/upstreams.md B.1 errors).
  constexpr std::string_view bearer = "Bearer ";
  if (in.authorization.size() <= bearer.size() || in.authorization.compare(0, bearer.size(), bearer) != 0)
    return authentication_failed();
  auto tok = tokens_.find(in.authorization.substr(bearer.size()));
  if (tok == tokens_.end() || tok->second.expires_at <= now) return authentication_failed();
  if (in.client_id.empty())
    return error(401, "UNAUTHORIZED", "Unauthorized: Amazon-Advertising-API-ClientId header is missing");
  if (in.client_id != tok->second.client_id)
    return error(401, "UNAUTHORIZED", "Unauthorized: the ClientId does not match the access token's application");
  if (in.scope.empty()) return error(401, "UNAUTHORIZED", "Scope header is missing");
  if (std::find(cfg_.profile_ids.begin(), cfg_.profile_ids.end(), in.scope) == cfg_.profile_ids.end())
    return error(401, "UNAUTHORIZED", "No matching advertiser found for scope");

  // Media types: the request type is the spec's, the response type comes from Accept.
  const std::string ct = media_type(in.content_type);
  if (ct != kRequestType)
    return error(415, "415",
                 (ct == kAsinsType || ct == kThemesType
                      ? "Content-Type " + ct + " is a response media type; "
                      : "Unsupported Content-Type '" + std::string(in.content_type) + "'; ") +
                     "send Content-Type: " + std::string(kRequestType));
  std::string shape;
  std::string_view accept = in.accept;
  while (shape.empty() && !accept.empty()) {
    const auto comma = accept.find(',');
    const std::string mt = media_type(accept.substr(0, comma));
    if (mt == kAsinsType || mt == kThemesType) shape = mt;
    accept = comma == std::string_view::npos ? std::string_view() : accept.substr(comma + 1);
  }
  if (shape.empty())
    return error(406, "406",
                 "Unsupported Accept '" + in.accept + "'; accepted: " + std::string(kAsinsType) + ", " +
                     std::string(kThemesType));
  const bool themes = shape == kThemesType;

  if (!bucket_.try_take(now)) return throttled(limit_.retry_after_s);
  ++ads_by_shape_[themes ? "theme" : "asin"];

  auto q = parse_ads_query(in.body);
  if (auto* e = std::get_if<AdsError>(&q)) return error(e->status, e->code, e->details);
  auto rendered = render_recommendations(std::get<AdsQuery>(q), themes, cfg_);
  if (auto* e = std::get_if<AdsError>(&rendered)) return error(e->status, e->code, e->details);
  AdsOutcome o;
  o.body = std::move(std::get<std::string>(rendered));
  o.headers.emplace_back("Content-Type", shape);
  o.latency = latency;
  return o;
}

// ---- admin -------------------------------------------------------------------

AdsAdminAnswer AdsState::add_fault(std::string_view json_body, TimePoint now) {
  rapidjson::Document d;
  d.Parse(json_body.data(), json_body.size());
  if (d.HasParseError() || !d.IsObject()) return admin_problem("the body must be a JSON object");
  AdsFault f;
  bool expire = false;
  for (auto it = d.MemberBegin(); it != d.MemberEnd(); ++it) {
    const std::string k(it->name.GetString(), it->name.GetStringLength());
    const auto& v = it->value;
    auto bad = [&](const char* what) { return admin_problem(k + " must be " + what); };
    if (k == "status") {
      if (!v.IsInt() || v.GetInt() < 400 || v.GetInt() > 599) return bad("an integer 400..599");
      f.status = v.GetInt();
    } else if (k == "count") {
      if (!v.IsInt() || v.GetInt() < 1) return bad("an integer >= 1");
      f.remaining = v.GetInt();
    } else if (k == "retry_after_s") {
      if (!v.IsInt() || v.GetInt() < 0 || v.GetInt() > 3600) return bad("an integer 0..3600 (0: no Retry-After)");
      f.retry_after_s = v.GetInt();
    } else if (k == "latency_ms") {
      if (!v.IsInt() || v.GetInt() < 0 || v.GetInt() > 600000) return bad("an integer 0..600000");
      f.latency_ms = v.GetInt();
    } else if (k == "target") {
      if (!v.IsString() || (std::string_view(v.GetString()) != "ads" && std::string_view(v.GetString()) != "token"))
        return bad("\"ads\" or \"token\"");
      f.target = v.GetString();
    } else if (k == "expire_tokens") {
      if (!v.IsBool()) return bad("a boolean");
      expire = v.GetBool();
    } else {
      return admin_problem("unknown key " + k + "; allowed: status count retry_after_s latency_ms target expire_tokens");
    }
  }
  if (expire) expire_tokens(now);
  if (f.status == 0 && f.latency_ms == 0) {
    if (expire) return AdsAdminAnswer{200, "{\"expired\":true}"};
    return admin_problem("give status, latency_ms or expire_tokens");
  }
  std::lock_guard lk(mu_);
  faults_.push_back(f);
  return AdsAdminAnswer{200, expire ? "{\"added\":true,\"expired\":true}" : "{\"added\":true}"};
}

void AdsState::clear_faults() {
  std::lock_guard lk(mu_);
  faults_.clear();
}

void AdsState::expire_tokens(TimePoint now) {
  std::lock_guard lk(mu_);
  for (auto& [t, info] : tokens_) info.expires_at = std::min(info.expires_at, now);
}

// stats_json's sections: the Ads request counters and the last request seen.
void AdsState::write_request_counts(Writer& w) const {
  uint_field(w, "token_requests", token_requests_);
  uint_field(w, "tokens_issued", tokens_issued_);
  counts(w, "token_errors", token_errors_);
  key(w, "requests");
  w.StartObject();
  uint_field(w, "total", ads_requests_);
  counts(w, "by_status", ads_by_status_);
  counts(w, "by_shape", ads_by_shape_);
  counts(w, "errors", ads_errors_);
  w.EndObject();
  uint_field(w, "rate_limited", rate_limited_);
}

void AdsState::write_last_request(Writer& w) const {
  key(w, "last_request");
  if (!has_last_request_) {
    w.Null();
    return;
  }
  w.StartObject();
  str_field(w, "content_type", last_request_.content_type);
  str_field(w, "accept", last_request_.accept);
  str_field(w, "client_id", last_request_.client_id);
  str_field(w, "scope", last_request_.scope);
  str_field(w, "body", last_request_.body);
  w.EndObject();
}

std::string AdsState::stats_json() const {
  std::lock_guard lk(mu_);
  rapidjson::StringBuffer sb;
  Writer w(sb);
  w.StartObject();
  write_request_counts(w);
  key(w, "faults");
  w.StartObject();
  uint_field(w, "applied", faults_applied_);
  uint_field(w, "pending", faults_.size());
  w.EndObject();
  write_last_request(w);
  w.EndObject();
  return std::string(sb.GetString(), sb.GetSize());
}

AdsAdminAnswer AdsState::set_limit(std::string_view json_body, TimePoint now) {
  rapidjson::Document d;
  d.Parse(json_body.data(), json_body.size());
  if (d.HasParseError() || !d.IsObject()) return admin_problem("the body must be a JSON object");
  std::lock_guard lk(mu_);
  AdsSandboxConfig next = limit_;
  for (auto it = d.MemberBegin(); it != d.MemberEnd(); ++it) {
    const std::string k(it->name.GetString(), it->name.GetStringLength());
    const auto& v = it->value;
    auto bad = [&](const char* what) { return admin_problem(k + " must be " + what); };
    if (k == "burst") {
      if (!v.IsInt() || v.GetInt() < 1 || v.GetInt() > 1000000) return bad("an integer 1..1000000");
      next.burst = v.GetInt();
    } else if (k == "rate_per_s") {
      if (!v.IsNumber() || v.GetDouble() <= 0 || v.GetDouble() > 1e6) return bad("a number > 0 and <= 1000000");
      next.rate_per_s = v.GetDouble();
    } else if (k == "retry_after_s") {
      if (!v.IsInt() || v.GetInt() < 0 || v.GetInt() > 3600) return bad("an integer 0..3600 (0: no Retry-After)");
      next.retry_after_s = v.GetInt();
    } else if (k == "amazon_throttled") {
      if (!v.IsBool()) return bad("true or false");
      next.amazon_throttled = v.GetBool();
    } else {
      return admin_problem("unknown key " + k + "; allowed: burst rate_per_s retry_after_s amazon_throttled");
    }
  }
  // Carry the tokens held now into the new bucket, capped at its burst.
  const std::int64_t held = std::min<std::int64_t>(bucket_.tokens(now), next.burst);
  ExactBucket b = make_bucket(next, now);
  for (std::int64_t i = held; i < next.burst; ++i) b.try_take(now);
  bucket_ = b;
  limit_ = next;
  return AdsAdminAnswer{200, limit_json_locked()};
}

std::string AdsState::limit_json() const {
  std::lock_guard lk(mu_);
  return limit_json_locked();
}

std::string AdsState::limit_json_locked() const {
  rapidjson::StringBuffer sb;
  Writer w(sb);
  w.StartObject();
  w.Key("burst");
  w.Int(limit_.burst);
  w.Key("rate_per_s");
  w.Double(limit_.rate_per_s);
  w.Key("retry_after_s");
  w.Int(limit_.retry_after_s);
  w.Key("amazon_throttled");
  w.Bool(limit_.amazon_throttled);
  w.EndObject();
  return std::string(sb.GetString(), sb.GetSize());
}

void AdsState::reset(TimePoint now) {
  std::lock_guard lk(mu_);
  limit_ = cfg_;
  bucket_ = make_bucket(cfg_, now);
  tokens_.clear();
  faults_.clear();
  token_requests_ = tokens_issued_ = ads_requests_ = rate_limited_ = faults_applied_ = 0;
  token_errors_.clear();
  ads_by_status_.clear();
  ads_by_shape_.clear();
  ads_errors_.clear();
  last_request_ = AdsInput{};
  has_last_request_ = false;
}

}  // namespace recgate::sandbox
