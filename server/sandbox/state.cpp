// SandboxState: the mutex-guarded bookkeeping behind the MWS and admin
// handlers, and its JSON statistics.
#include "sandbox/state.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <stdexcept>

#include "sandbox/catalog.hpp"
#include "sandbox/json_out.hpp"

namespace recgate::sandbox {

namespace {

using namespace json_out;

AdsSandboxConfig ads_config_or_throw(const std::string& json) {
  std::string error;
  auto c = parse_ads_config(json, error);
  if (!c) throw std::invalid_argument(error);
  return *c;
}

}  // namespace

SandboxState::SandboxState(SandboxConfig cfg, Now now)
    : cfg_(std::move(cfg)), epoch_(now.wall), ads_(ads_config_or_throw(cfg_.ads_json), now.mono) {}

const ThrottleRule& SandboxState::rule_for(std::string_view group) const {
  if (group == "GetServiceStatus") return cfg_.throttle.get_service_status;
  if (group == "GetLastUpdatedTimeForRecommendations") return cfg_.throttle.get_last_updated;
  return cfg_.throttle.list_recommendations;
}

bool SandboxState::take_token(const std::string& seller_id, std::string_view group,
                              std::chrono::steady_clock::time_point now) {
  std::lock_guard lock(mu_);
  auto k = std::make_pair(seller_id, std::string(group));
  auto it = buckets_.find(k);
  if (it == buckets_.end()) {
    const ThrottleRule& r = rule_for(group);
    it = buckets_.emplace(k, BucketEntry{ExactBucket(r.capacity, r.restore_every, now), 0, 0, r.capacity}).first;
  }
  BucketEntry& e = it->second;
  if (!e.bucket.try_take(now)) {
    ++e.throttled;
    ++throttled_total_;
    ++throttled_[seller_id][std::string(group)];
    return false;
  }
  ++e.accepted;
  e.min_tokens = std::min(e.min_tokens, e.bucket.tokens(now));
  return true;
}

SandboxState::CategoryEntry& SandboxState::entry(const std::string& seller_id, const std::string& marketplace_id,
                                                 const std::string& category) {
  const std::string k = seller_id + '\x1f' + marketplace_id + '\x1f' + category;
  auto it = categories_.find(k);
  if (it != categories_.end()) return it->second;
  CategoryEntry e{1, std::nullopt};
  const auto& empty = cfg_.initially_empty_categories;
  if (std::find(empty.begin(), empty.end(), category) != empty.end()) {
    e.generation = 0;
  } else if (has_last_updated(category)) {
    e.last_updated = std::chrono::floor<std::chrono::minutes>(epoch_) - std::chrono::hours(category_index(category) + 1);
  }
  return categories_.emplace(k, e).first->second;
}

CategorySnapshot SandboxState::snapshot(const std::string& seller_id, const std::string& marketplace_id,
                                        const std::string& category) {
  std::lock_guard lock(mu_);
  const CategoryEntry& e = entry(seller_id, marketplace_id, category);
  return CategorySnapshot{category, e.generation, e.last_updated};
}

CategorySnapshot SandboxState::touch(const std::string& seller_id, const std::string& marketplace_id,
                                     const std::string& category, std::chrono::system_clock::time_point now) {
  std::lock_guard lock(mu_);
  CategoryEntry& e = entry(seller_id, marketplace_id, category);
  ++e.generation;
  if (has_last_updated(category)) {
    std::chrono::system_clock::time_point t = std::chrono::floor<std::chrono::milliseconds>(now);
    if (e.last_updated && t <= *e.last_updated) t = *e.last_updated + std::chrono::milliseconds(1);
    e.last_updated = t;
  }
  return CategorySnapshot{category, e.generation, e.last_updated};
}

void SandboxState::add_fault(Fault f) {
  std::lock_guard lock(mu_);
  faults_.push_back(std::move(f));
}

void SandboxState::clear_faults() {
  std::lock_guard lock(mu_);
  faults_.clear();
}

std::optional<Fault> SandboxState::take_fault(std::string_view action) {
  std::lock_guard lock(mu_);
  for (auto it = faults_.begin(); it != faults_.end(); ++it) {
    if (!it->action.empty() && it->action != action) continue;
    Fault f = *it;
    if (--it->remaining <= 0) faults_.erase(it);
    ++faults_applied_;
    return f;
  }
  return std::nullopt;
}

void SandboxState::record_wire(const WireReport& report) {
  std::lock_guard lock(mu_);
  last_wire_ = report;
}

void SandboxState::record(RequestRecord r) {
  std::lock_guard lock(mu_);
  ++total_requests_;
  ++by_action_[r.action.empty() ? "(none)" : r.action];
  ++by_status_[r.status];
  if (!r.code.empty()) ++by_error_[r.code];
  for (auto& [k, v] : r.params)
    if (k == "MWSAuthToken") v = "***";
  if (cfg_.recent_requests <= 0) return;
  recent_.push_back(std::move(r));
  while (recent_.size() > static_cast<std::size_t>(cfg_.recent_requests)) recent_.pop_front();
}

void SandboxState::record_signature_failure(std::string expected_string_to_sign, std::string host, std::string time) {
  std::lock_guard lock(mu_);
  ++signature_failures_;
  last_signature_failure_ = std::make_pair(std::move(expected_string_to_sign), std::move(host));
  last_signature_failure_time_ = std::move(time);
}

// Each write_* puts one section of the statistics; stats_json strings them
// together under the lock.
void SandboxState::write_requests(Writer& w) const {
  key(w, "requests");
  w.StartObject();
  uint_field(w, "total", total_requests_);
  counts(w, "by_action", by_action_);
  counts(w, "by_status", by_status_);
  w.EndObject();
  counts(w, "errors", by_error_);
}

void SandboxState::write_throttled(Writer& w) const {
  key(w, "throttled");
  w.StartObject();
  uint_field(w, "total", throttled_total_);
  key(w, "by_seller");
  w.StartObject();
  for (const auto& [seller, groups] : throttled_) counts(w, seller, groups);
  w.EndObject();
  w.EndObject();
}

void SandboxState::write_buckets(Writer& w, std::chrono::steady_clock::time_point now) const {
  key(w, "buckets");
  w.StartArray();
  for (const auto& [k, e] : buckets_) {
    w.StartObject();
    str_field(w, "seller", k.first);
    str_field(w, "operation", k.second);
    key(w, "capacity");
    w.Int64(e.bucket.capacity());
    key(w, "restore_every_ms");
    w.Int64(std::chrono::duration_cast<std::chrono::milliseconds>(e.bucket.restore_every()).count());
    key(w, "tokens");
    w.Int64(e.bucket.tokens(now));
    key(w, "min_tokens");
    w.Int64(e.min_tokens);
    uint_field(w, "accepted", e.accepted);
    uint_field(w, "throttled", e.throttled);
    w.EndObject();
  }
  w.EndArray();
}

void SandboxState::write_signature_failures(Writer& w) const {
  uint_field(w, "signature_failures", signature_failures_);
  key(w, "last_signature_failure");
  if (!last_signature_failure_) {
    w.Null();
    return;
  }
  w.StartObject();
  str_field(w, "time", last_signature_failure_time_);
  str_field(w, "host", last_signature_failure_->second);
  str_field(w, "expected_string_to_sign", last_signature_failure_->first);
  w.EndObject();
}

void SandboxState::write_faults(Writer& w) const {
  key(w, "faults");
  w.StartObject();
  uint_field(w, "applied", faults_applied_);
  key(w, "pending");
  w.StartArray();
  for (const auto& f : faults_) {
    w.StartObject();
    str_field(w, "action", f.action);
    key(w, "latency_ms");
    w.Int(f.latency_ms);
    key(w, "status");
    w.Int(f.status);
    key(w, "malformed");
    w.Bool(f.malformed);
    key(w, "drop");
    w.Bool(f.drop);
    key(w, "remaining");
    w.Int(f.remaining);
    str_field(w, "wire", wire_mode_name(f.wire));
    w.EndObject();
  }
  w.EndArray();
  write_last_wire(w);
  w.EndObject();
}

void SandboxState::write_last_wire(Writer& w) const {
  key(w, "last_wire");
  if (!last_wire_) {
    w.Null();
    return;
  }
  w.StartObject();
  str_field(w, "mode", wire_mode_name(last_wire_->mode));
  uint_field(w, "bytes_sent", last_wire_->bytes_sent);
  key(w, "peer_closed");
  w.Bool(last_wire_->peer_closed);
  w.EndObject();
}

void SandboxState::write_recent(Writer& w) const {
  key(w, "recent");
  w.StartArray();
  for (const auto& r : recent_) {
    w.StartObject();
    str_field(w, "time", r.time);
    str_field(w, "request_id", r.request_id);
    str_field(w, "action", r.action);
    str_field(w, "seller", r.seller_id);
    key(w, "status");
    w.Int(r.status);
    str_field(w, "code", r.code);
    key(w, "params");
    w.StartObject();
    for (const auto& [k, v] : r.params) str_field(w, k, v);
    w.EndObject();
    w.EndObject();
  }
  w.EndArray();
}

std::string SandboxState::stats_json(std::chrono::steady_clock::time_point now) const {
  std::lock_guard lock(mu_);
  rapidjson::StringBuffer sb;
  Writer w(sb);
  w.StartObject();
  write_requests(w);
  write_throttled(w);
  write_buckets(w, now);
  write_signature_failures(w);
  write_faults(w);
  write_recent(w);
  key(w, "ads");
  const std::string ads = ads_.stats_json();
  w.RawValue(ads.c_str(), ads.size(), rapidjson::kObjectType);
  w.EndObject();
  return std::string(sb.GetString(), sb.GetSize());
}

void SandboxState::reset(Now now) {
  std::lock_guard lock(mu_);
  epoch_ = now.wall;
  buckets_.clear();
  categories_.clear();
  faults_.clear();
  total_requests_ = 0;
  by_action_.clear();
  by_status_.clear();
  by_error_.clear();
  throttled_.clear();
  throttled_total_ = 0;
  signature_failures_ = 0;
  last_signature_failure_.reset();
  last_signature_failure_time_.clear();
  faults_applied_ = 0;
  last_wire_.reset();
  recent_.clear();
  ads_.reset(now.mono);
}

}  // namespace recgate::sandbox
