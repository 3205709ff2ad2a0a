// Typed configuration (docs/design.md §5): parsed from one JSON file, `${NAME}` and
// NAME_FILE substitution, validated once at start-up. Pure logic: no sockets;
// file and environment access go through the injected Env.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace recgate {

struct ClientKey {
  std::string name;
  std::string key;  // secret
};

struct UpstreamConfig {
  // Hosts an http:// endpoint may name besides loopback (an operator's
  // explicit choice, e.g. the compose network's "sandbox"); any other
  // plain-http endpoint is a config error, loopback a warning.
  std::vector<std::string> plain_http_hosts;
  int connect_timeout_ms = 3000;
  int request_timeout_ms = 20000;
  std::string ca_file;                 // extra trusted CAs (PEM), empty: system only
  std::size_t max_response_bytes = 16 * 1024 * 1024;
  int max_connections_per_origin = 8;
};

struct BucketConfig {
  double capacity = 8;
  double restore_per_s = 0.5;
};

// throttle.adaptive.GROUP: learn an unpublished limit (throttle/adaptive.hpp).
// Absent groups: on for ads.* and lwa.*, off for mws.* (published quotas).
struct AdaptiveConfig {
  bool enabled = true;
  double ceiling_per_s = 0;  // 0: the bucket's restore_per_s
  double floor_per_s = 0;    // 0: ceiling / 20
  double step_per_s = 0;     // 0: ceiling / 20
  double decrease = 0.5;     // rate factor after a throttle
  int quiet_s = 120;         // seconds without a throttle before each step up (slow probing: few throttles)
};

struct ThrottleConfig {
  int max_wait_s = 30;
  // Safety margin against arrival jitter between recgate's clock and Amazon's:
  // `margin_ms` bounds how much the grant-to-arrival delay may vary (±); a
  // token is granted only once the level reaches 1 + reserve_tokens +
  // 2·margin·rate (see throttle/token_bucket.hpp: a one-off cost of 0.25 token
  // per burst at the defaults, none on sustained rate); `reserve_tokens`
  // additionally keeps that many tokens of a burst unspent.
  int margin_ms = 250;
  double reserve_tokens = 0;
  int max_queue = 1000;  // waiters per bucket beyond which 429 is immediate
  // Places of one bucket's queue one client may hold (by client name when
  // clients are configured, else by peer address); 0: a quarter of max_queue.
  int max_queue_per_client = 0;

  // max_queue_per_client with 0 resolved (at least 1).
  int queue_share_per_client() const {
    return max_queue_per_client > 0 ? max_queue_per_client : (max_queue > 4 ? max_queue / 4 : 1);
  }
  // Key: "mws.<Operation>" or "ads.ProductRecommendations" / "lwa.Token".
  std::map<std::string, BucketConfig> buckets;
  std::map<std::string, AdaptiveConfig> adaptive;  // by bucket group
};

struct MwsAccount {
  std::string seller_id;
  std::string access_key_id;  // secret-ish: masked in output
  std::string secret_key;     // secret
  std::string auth_token;     // secret, optional
};

struct MwsConfig {
  std::string endpoint;  // empty: real regional host per marketplace
  int check_interval_s = 60;
  int listing_quality_ttl_s = 3600;
  int max_stale_s = 86400;
  int max_pages = 20;
  std::map<std::string, MwsAccount> accounts;
};

struct AdsAccount {
  std::string region = "NA";  // NA, EU, FE
  std::string client_id;
  std::string client_secret;  // secret
  std::string refresh_token;  // secret
  std::string profile_id;
};

struct AdsConfig {
  std::string endpoint;        // empty: regional host
  std::string token_endpoint;  // empty: regional LWA host
  int cache_ttl_s = 3600;
  int token_refresh_margin_s = 300;  // refresh this long before expires_in
  int max_stale_s = 86400;  // an expired answer may be served stale this long after fetched_at
  // adAsins per request; the API documents no maximum, see README.
  std::size_t max_asins = 100;
  std::map<std::string, AdsAccount> accounts;
};

struct CacheConfig {
  std::size_t memory_entries = 100000;       // hot entries kept in RAM
  std::size_t memory_bytes = 256 * 1024 * 1024;
  // The SQLite file's bound: past it the oldest answers are deleted first.
  std::size_t max_db_bytes = std::size_t{1} << 30;
  // How often answers that can no longer be served are removed from it.
  int prune_interval_s = 300;
  // [refresh] Refresh hot answers ahead with spare quota (docs/design.md §8):
  // an answer asked for within refresh_hot_s is refetched in the background
  // when its data changes (MWS) or before its TTL ends (Ads).
  bool refresh_ahead = true;
  int refresh_hot_s = 3600;
};

struct LogConfig {
  std::string level = "info";  // debug, info, warn, error
  bool access = true;          // one line per request (at info)
};

// [scale] shared state on Redis (config_redis.cpp). url empty: single process.
struct RedisConfig {
  std::string url;                     // redis://[:password@]host:port/db; a secret (masked)
  std::string key_prefix = "recgate:";
  int timeout_ms = 200;                // every Redis command, connect included
  int replicas = 1;                    // replicas sharing an account: local share while Redis is down
};

struct Config {
  std::string listen = "127.0.0.1:8080";
  std::string database = "data/recgate.db";
  int threads = 0;  // 0: number of cores
  LogConfig log;
  std::vector<ClientKey> clients;
  UpstreamConfig upstream;
  ThrottleConfig throttle;
  MwsConfig mws;
  AdsConfig ads;
  CacheConfig cache;
  RedisConfig redis;
  // server limits
  std::size_t max_header_bytes = 16 * 1024;
  std::size_t max_body_bytes = 1024 * 1024;
  int read_timeout_ms = 10000;
  int idle_timeout_ms = 60000;
  int drain_timeout_ms = 10000;
  // connection limits (hostile or too many clients)
  std::size_t max_connections = 0;  // 0: derived at start from RLIMIT_NOFILE
  int header_timeout_ms = 5000;     // a new connection's first request header must arrive within it
};

// Where ${NAME} and NAME_FILE come from; injected so tests need no real env.
struct ConfigEnv {
  std::function<std::optional<std::string>(const std::string&)> getenv;
  std::function<std::optional<std::string>(const std::string&)> read_file;
  static ConfigEnv process();  // the real environment and file system
};

struct ConfigResult {
  std::optional<Config> config;
  std::vector<std::string> errors;  // each names the key path and what is allowed
  std::vector<std::string> warnings;
};

ConfigResult parse_config(const std::string& json_text, const ConfigEnv& env);

// The built-in spec of a bucket group (MWS from Amazon's documentation, the
// rest defaults); nullopt for an unknown group. A throttle.buckets override
// starts from it, so a field the override omits keeps the group's value.
std::optional<BucketConfig> default_bucket(std::string_view group);
ConfigResult load_config_file(const std::string& path, const ConfigEnv& env);

// The effective configuration as pretty JSON with every secret masked.
std::string config_to_masked_json(const Config& cfg);

// Every key the config schema knows, as a path ("mws.accounts.*.secret_key",
// "clients[].key"), and whether the masked dump hides its value.
struct ConfigKey {
  std::string path;
  bool secret = false;
};
std::vector<ConfigKey> config_keys();

// The redis block's checks beyond each key's type and range (config_redis.cpp).
void check_redis_config(const RedisConfig& r, std::vector<std::string>& errors);

}  // namespace recgate
