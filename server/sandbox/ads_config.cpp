// Parses the sandbox's "ads" object (see ads_config.hpp) with RapidJSON.
#include "sandbox/ads_config.hpp"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace recgate::sandbox {

namespace {

using Value = rapidjson::Value;

bool known_key(std::string_view key, const std::vector<std::string_view>& allowed) {
  if (!key.empty() && key.front() == '_') return true;
  for (auto a : allowed)
    if (a == key) return true;
  return false;
}

bool check_keys(const Value& obj, const std::string& path, const std::vector<std::string_view>& allowed,
                std::string& error) {
  if (!obj.IsObject()) {
    error = path + ": must be an object";
    return false;
  }
  for (auto it = obj.MemberBegin(); it != obj.MemberEnd(); ++it) {
    std::string_view key(it->name.GetString(), it->name.GetStringLength());
    if (!known_key(key, allowed)) {
      std::string list;
      for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      error = path + "." + std::string(key) + ": unknown key; allowed: " + list;
      return false;
    }
  }
  return true;
}

bool get_string(const Value& obj, const char* key, const std::string& path, std::string& out, std::string& error) {
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd()) return true;
  if (!it->value.IsString() || it->value.GetStringLength() == 0) {
    error = path + "." + key + ": must be a non-empty string";
    return false;
  }
  out.assign(it->value.GetString(), it->value.GetStringLength());
  return true;
}

bool get_int(const Value& obj, const char* key, const std::string& path, int min, int max, int& out,
             std::string& error) {
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd()) return true;
  if (!it->value.IsInt() || it->value.GetInt() < min || it->value.GetInt() > max) {
    error = path + "." + key + ": must be an integer from " + std::to_string(min) + " to " + std::to_string(max);
    return false;
  }
  out = it->value.GetInt();
  return true;
}

}  // namespace

std::optional<AdsSandboxConfig> parse_ads_config(std::string_view json, std::string& error) {
  error.clear();
  rapidjson::Document d;
  d.Parse(json.data(), json.size());
  if (d.HasParseError()) {
    error = std::string("$.ads: invalid JSON: ") + rapidjson::GetParseError_En(d.GetParseError());
    return std::nullopt;
  }
  const std::string path = "$.ads";
  if (!check_keys(d, path,
                  {"clients", "profile_ids", "token_lifetime_s", "rate_per_s", "burst", "retry_after_s", "pool_size",
                   "asins_per_theme", "amazon_throttled"},
                  error))
    return std::nullopt;
  AdsSandboxConfig cfg;
  if (!get_int(d, "token_lifetime_s", path, 1, 86400, cfg.token_lifetime_s, error) ||
      !get_int(d, "burst", path, 1, 1000000, cfg.burst, error) ||
      !get_int(d, "retry_after_s", path, 0, 3600, cfg.retry_after_s, error) ||
      !get_int(d, "pool_size", path, 1, 1000, cfg.pool_size, error) ||
      !get_int(d, "asins_per_theme", path, 1, 1000, cfg.asins_per_theme, error))
    return std::nullopt;
  if (auto it = d.FindMember("rate_per_s"); it != d.MemberEnd()) {
    if (!it->value.IsNumber() || it->value.GetDouble() <= 0 || it->value.GetDouble() > 1e6) {
      error = path + ".rate_per_s: must be a number > 0 and <= 1000000";
      return std::nullopt;
    }
    cfg.rate_per_s = it->value.GetDouble();
  }
  if (auto it = d.FindMember("amazon_throttled"); it != d.MemberEnd()) {
    if (!it->value.IsBool()) {
      error = path + ".amazon_throttled: must be true or false";
      return std::nullopt;
    }
    cfg.amazon_throttled = it->value.GetBool();
  }
  if (cfg.asins_per_theme > cfg.pool_size) {
    error = path + ".asins_per_theme: must not exceed pool_size";
    return std::nullopt;
  }
  if (auto it = d.FindMember("clients"); it != d.MemberEnd()) {
    if (!it->value.IsArray() || it->value.Empty()) {
      error = path + ".clients: must be a non-empty array of {client_id, client_secret, refresh_token}";
      return std::nullopt;
    }
    cfg.clients.clear();
    for (rapidjson::SizeType i = 0; i < it->value.Size(); ++i) {
      const std::string p = path + ".clients[" + std::to_string(i) + "]";
      const Value& c = it->value[i];
      if (!check_keys(c, p, {"client_id", "client_secret", "refresh_token"}, error)) return std::nullopt;
      AdsClient client;
      for (const char* k : {"client_id", "client_secret", "refresh_token"}) {
        if (!c.HasMember(k)) {
          error = p + "." + k + ": required";
          return std::nullopt;
        }
      }
      if (!get_string(c, "client_id", p, client.client_id, error) ||
          !get_string(c, "client_secret", p, client.client_secret, error) ||
          !get_string(c, "refresh_token", p, client.refresh_token, error))
        return std::nullopt;
      for (const auto& other : cfg.clients) {
        if (other.client_id == client.client_id) {
          error = p + ".client_id: must be unique";
          return std::nullopt;
        }
      }
      cfg.clients.push_back(std::move(client));
    }
  }
  if (auto it = d.FindMember("profile_ids"); it != d.MemberEnd()) {
    if (!it->value.IsArray() || it->value.Empty()) {
      error = path + ".profile_ids: must be a non-empty array of numeric strings";
      return std::nullopt;
    }
    cfg.profile_ids.clear();
    for (const auto& v : it->value.GetArray()) {
      bool digits = v.IsString() && v.GetStringLength() > 0;
      for (rapidjson::SizeType i = 0; digits && i < v.GetStringLength(); ++i)
        digits = v.GetString()[i] >= '0' && v.GetString()[i] <= '9';
      if (!digits) {
        error = path + ".profile_ids: each entry must be a string of digits";
        return std::nullopt;
      }
      cfg.profile_ids.emplace_back(v.GetString(), v.GetStringLength());
    }
  }
  return cfg;
}

std::optional<std::string> merge_json_objects(std::string_view base, std::string_view overlay, std::string& error) {
  rapidjson::Document b, o;
  b.Parse(base.data(), base.size());
  o.Parse(overlay.data(), overlay.size());
  if (b.HasParseError() || !b.IsObject() || o.HasParseError() || !o.IsObject()) {
    error = "--ads-json: must be a JSON object, e.g. {\"token_lifetime_s\":2}";
    return std::nullopt;
  }
  for (auto it = o.MemberBegin(); it != o.MemberEnd(); ++it) {
    Value name(it->name, b.GetAllocator());
    Value value(it->value, b.GetAllocator());
    if (auto m = b.FindMember(it->name); m != b.MemberEnd()) m->value = value;
    else b.AddMember(name, value, b.GetAllocator());
  }
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  b.Accept(w);
  return std::string(sb.GetString(), sb.GetSize());
}

}  // namespace recgate::sandbox
