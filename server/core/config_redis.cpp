// The redis block of the configuration ([scale], docs/design.md §8): checks of
// redis.url and redis.key_prefix beyond their JSON types (the keys themselves
// are lines of the schema table in config.cpp).
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

}  // namespace recgate
