// Parses config/sandbox.json with RapidJSON into SandboxConfig, rejecting
// unknown keys and bad values with the JSON path that is wrong.
#include "sandbox/config.hpp"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <fstream>
#include <initializer_list>
#include <sstream>

#include "sandbox/catalog.hpp"

namespace recgate::sandbox {

namespace {

using Value = rapidjson::Value;

bool check_keys(const Value& obj, const std::string& path, std::initializer_list<std::string_view> allowed,
                std::string& error) {
  if (!obj.IsObject()) {
    error = path + ": must be an object";
    return false;
  }
  for (auto it = obj.MemberBegin(); it != obj.MemberEnd(); ++it) {
    std::string_view key(it->name.GetString(), it->name.GetStringLength());
    bool known = !key.empty() && key.front() == '_';
    for (auto a : allowed) known = known || a == key;
    if (!known) {
      error = path + "." + std::string(key) + ": unknown key";
      return false;
    }
  }
  return true;
}

bool get_string(const Value& obj, const char* key, const std::string& path, std::string& out, std::string& error) {
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd()) return true;
  if (!it->value.IsString()) {
    error = path + "." + key + ": must be a string";
    return false;
  }
  out.assign(it->value.GetString(), it->value.GetStringLength());
  return true;
}

bool get_int(const Value& obj, const char* key, const std::string& path, std::int64_t min, std::int64_t& out,
             std::string& error) {
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd()) return true;
  if (!it->value.IsInt64() || it->value.GetInt64() < min) {
    error = path + "." + key + ": must be an integer >= " + std::to_string(min);
    return false;
  }
  out = it->value.GetInt64();
  return true;
}

bool get_int(const Value& obj, const char* key, const std::string& path, int min, int& out, std::string& error) {
  std::int64_t v = out;
  if (!get_int(obj, key, path, static_cast<std::int64_t>(min), v, error)) return false;
  if (v > 1000000000) {
    error = path + "." + key + ": too large";
    return false;
  }
  out = static_cast<int>(v);
  return true;
}

bool parse_rule(const Value& obj, const std::string& path, ThrottleRule& rule, std::string& error) {
  if (!check_keys(obj, path, {"capacity", "restore_every_ms"}, error)) return false;
  std::int64_t ms = rule.restore_every.count();
  if (!get_int(obj, "capacity", path, 1, rule.capacity, error)) return false;
  if (!get_int(obj, "restore_every_ms", path, 1, ms, error)) return false;
  rule.restore_every = std::chrono::milliseconds(ms);
  return true;
}

bool parse_seller(const Value& obj, const std::string& path, SellerCredentials& s, std::string& error) {
  if (!check_keys(obj, path, {"seller_id", "access_key_id", "secret_key", "auth_token"}, error)) return false;
  s = SellerCredentials{};
  s.auth_token.clear();
  for (const char* k : {"seller_id", "access_key_id", "secret_key"}) {
    if (!obj.HasMember(k)) {
      error = path + "." + k + ": required";
      return false;
    }
  }
  if (!get_string(obj, "seller_id", path, s.seller_id, error) ||
      !get_string(obj, "access_key_id", path, s.access_key_id, error) ||
      !get_string(obj, "secret_key", path, s.secret_key, error) ||
      !get_string(obj, "auth_token", path, s.auth_token, error))
    return false;
  if (s.seller_id.empty() || s.access_key_id.empty() || s.secret_key.empty()) {
    error = path + ": seller_id, access_key_id and secret_key must not be empty";
    return false;
  }
  return true;
}

}  // namespace

std::optional<SandboxConfig> parse_sandbox_config(std::string_view json, std::string& error) {
  error.clear();
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  if (doc.HasParseError()) {
    error = "invalid JSON at offset " + std::to_string(doc.GetErrorOffset()) + ": " +
            rapidjson::GetParseError_En(doc.GetParseError());
    return std::nullopt;
  }
  SandboxConfig cfg;
  const std::string root = "$";
  if (!check_keys(doc, root,
                  {"listen", "threads", "log", "admin_token", "sellers", "throttle", "page_size",
                   "items_per_category", "timestamp_tolerance_s", "initially_empty_categories", "recent_requests",
                   "ads"},
                  error))
    return std::nullopt;
  if (!get_string(doc, "listen", root, cfg.listen, error) || !get_int(doc, "threads", root, 1, cfg.threads, error) ||
      !get_string(doc, "admin_token", root, cfg.admin_token, error) ||
      !get_int(doc, "page_size", root, 1, cfg.page_size, error) ||
      !get_int(doc, "items_per_category", root, 1, cfg.items_per_category, error) ||
      !get_int(doc, "recent_requests", root, 0, cfg.recent_requests, error))
    return std::nullopt;
  std::int64_t tol = cfg.timestamp_tolerance.count();
  if (!get_int(doc, "timestamp_tolerance_s", root, 0, tol, error)) return std::nullopt;
  cfg.timestamp_tolerance = std::chrono::seconds(tol);

  if (auto it = doc.FindMember("log"); it != doc.MemberEnd()) {
    if (!check_keys(it->value, "$.log", {"level"}, error) ||
        !get_string(it->value, "level", "$.log", cfg.log_level, error))
      return std::nullopt;
  }
  if (auto it = doc.FindMember("sellers"); it != doc.MemberEnd()) {
    if (!it->value.IsArray() || it->value.Empty()) {
      error = "$.sellers: must be a non-empty array";
      return std::nullopt;
    }
    cfg.sellers.clear();
    for (rapidjson::SizeType i = 0; i < it->value.Size(); ++i) {
      SellerCredentials s;
      const std::string path = "$.sellers[" + std::to_string(i) + "]";
      if (!parse_seller(it->value[i], path, s, error)) return std::nullopt;
      for (const auto& other : cfg.sellers) {
        if (other.access_key_id == s.access_key_id || other.seller_id == s.seller_id) {
          error = path + ": seller_id and access_key_id must be unique";
          return std::nullopt;
        }
      }
      cfg.sellers.push_back(std::move(s));
    }
  }
  if (auto it = doc.FindMember("throttle"); it != doc.MemberEnd()) {
    const Value& t = it->value;
    if (!check_keys(t, "$.throttle", {"ListRecommendations", "GetLastUpdatedTimeForRecommendations", "GetServiceStatus"},
                    error))
      return std::nullopt;
    struct Entry {
      const char* key;
      ThrottleRule* rule;
    };
    for (Entry e : {Entry{"ListRecommendations", &cfg.throttle.list_recommendations},
                    Entry{"GetLastUpdatedTimeForRecommendations", &cfg.throttle.get_last_updated},
                    Entry{"GetServiceStatus", &cfg.throttle.get_service_status}}) {
      if (auto r = t.FindMember(e.key); r != t.MemberEnd())
        if (!parse_rule(r->value, std::string("$.throttle.") + e.key, *e.rule, error)) return std::nullopt;
    }
  }
  if (auto it = doc.FindMember("ads"); it != doc.MemberEnd()) {
    if (!it->value.IsObject()) {
      error = "$.ads: must be an object";
      return std::nullopt;
    }
    rapidjson::StringBuffer sb;
    rapidjson::Writer<rapidjson::StringBuffer> w(sb);
    it->value.Accept(w);
    cfg.ads_json.assign(sb.GetString(), sb.GetSize());
  }
  if (auto it = doc.FindMember("initially_empty_categories"); it != doc.MemberEnd()) {
    if (!it->value.IsArray()) {
      error = "$.initially_empty_categories: must be an array of category names";
      return std::nullopt;
    }
    cfg.initially_empty_categories.clear();
    for (const auto& v : it->value.GetArray()) {
      if (!v.IsString() || !has_last_updated(v.GetString())) {
        error = "$.initially_empty_categories: each entry must be one of Inventory Selection Pricing Fulfillment "
                "GlobalSelling Advertising";
        return std::nullopt;
      }
      cfg.initially_empty_categories.emplace_back(v.GetString());
    }
  }
  return cfg;
}

std::optional<SandboxConfig> load_sandbox_config(const std::string& path, std::string& error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = "cannot read config file " + path;
    return std::nullopt;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  auto cfg = parse_sandbox_config(ss.str(), error);
  if (!cfg) error = path + ": " + error;
  return cfg;
}

const SellerCredentials* find_seller_by_key(const SandboxConfig& cfg, std::string_view access_key_id) {
  for (const auto& s : cfg.sellers)
    if (s.access_key_id == access_key_id) return &s;
  return nullptr;
}

const SellerCredentials* find_seller(const SandboxConfig& cfg, std::string_view seller_id) {
  for (const auto& s : cfg.sellers)
    if (s.seller_id == seller_id) return &s;
  return nullptr;
}

}  // namespace recgate::sandbox
