// The redis block of the configuration ([scale], docs/design.md §8): checks of
// redis.url and redis.key_prefix beyond their JSON types, and the block's
// masked JSON. Kept apart from config.cpp so the Redis keys live in one place.
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "core/config.hpp"
#include "core/redis/url.hpp"

namespace recgate {

void check_redis_config(const RedisConfig& r, std::vector<std::string>& errors) {
  std::string fault;
  // The URL is never echoed: it may hold the password.
  if (!r.url.empty() && !redis::parse_url(r.url, &fault)) errors.push_back("redis.url: " + fault);
  if (r.key_prefix.empty() || r.key_prefix.size() > 64 ||
      r.key_prefix.find_first_of(" \t\r\n{}") != std::string::npos)
    errors.push_back("redis.key_prefix: must be 1 to 64 characters without spaces or braces, e.g. \"recgate:\"");
}

std::string redis_config_masked_json(const RedisConfig& r) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.StartObject();
  w.Key("url"); w.String(redis::mask_url(r.url));
  w.Key("key_prefix"); w.String(r.key_prefix);
  w.Key("timeout_ms"); w.Int(r.timeout_ms);
  w.Key("replicas"); w.Int(r.replicas);
  w.EndObject();
  return sb.GetString();
}

}  // namespace recgate
