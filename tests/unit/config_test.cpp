// Configuration parsing: good configs, each kind of bad one, ${NAME} and
// NAME_FILE substitution, unknown keys by path, masking of secrets.
#include <doctest/doctest.h>

#include <map>

#include <rapidjson/document.h>

#include "core/config.hpp"

using namespace recgate;

namespace {

ConfigEnv fake_env(std::map<std::string, std::string> vars, std::map<std::string, std::string> files = {}) {
  ConfigEnv e;
  e.getenv = [vars](const std::string& n) -> std::optional<std::string> {
    auto it = vars.find(n);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
  e.read_file = [files](const std::string& p) -> std::optional<std::string> {
    auto it = files.find(p);
    if (it == files.end()) return std::nullopt;
    return it->second;
  };
  return e;
}

bool has_error(const ConfigResult& r, const std::string& needle) {
  for (const auto& e : r.errors)
    if (e.find(needle) != std::string::npos) return true;
  return false;
}

const char* kMws = R"("mws":{"accounts":{"main":{"seller_id":"S1","access_key_id":"AK","secret_key":"SK"}}})";

}  // namespace

TEST_CASE("config: an empty object gives every default") {
  auto r = parse_config("{}", fake_env({}));
  REQUIRE(r.config);
  const Config& c = *r.config;
  CHECK(c.listen == "127.0.0.1:8080");
  CHECK(c.database == "data/recgate.db");
  CHECK(c.threads == 0);
  CHECK(c.log.level == "info");
  CHECK(c.clients.empty());
  CHECK(c.upstream.connect_timeout_ms == 3000);
  CHECK(c.upstream.request_timeout_ms == 20000);
  CHECK(c.throttle.max_wait_s == 30);
  CHECK(c.mws.check_interval_s == 60);
  CHECK(c.mws.listing_quality_ttl_s == 3600);
  CHECK(c.mws.max_stale_s == 86400);
  CHECK(c.mws.max_pages == 20);
  CHECK(c.ads.cache_ttl_s == 3600);
  CHECK(r.errors.empty());
}

TEST_CASE("config: good configs parse to the typed struct") {
  auto r = parse_config(std::string("{\"listen\":\"0.0.0.0:9000\",\"threads\":4,"
                                    "\"clients\":[{\"name\":\"pricing\",\"key\":\"0123456789abcdef\"}],"
                                    "\"throttle\":{\"max_wait_s\":5,\"buckets\":{\"mws.ListRecommendations\":"
                                    "{\"capacity\":4,\"restore_per_s\":0.25}}},") +
                            kMws + "}",
                        fake_env({}));
  REQUIRE(r.config);
  CHECK(r.config->listen == "0.0.0.0:9000");
  CHECK(r.config->threads == 4);
  REQUIRE(r.config->clients.size() == 1);
  CHECK(r.config->clients[0].name == "pricing");
  CHECK(r.config->throttle.max_wait_s == 5);
  CHECK(r.config->throttle.buckets.at("mws.ListRecommendations").capacity == 4);
  CHECK(r.config->throttle.buckets.at("mws.ListRecommendations").restore_per_s == 0.25);
  CHECK(r.config->mws.accounts.at("main").seller_id == "S1");
  CHECK(r.warnings.empty());  // not loopback, but clients are configured
}

TEST_CASE("config: each kind of bad value is named by its key path") {
  struct Case {
    const char* json;
    const char* expect;
  };
  const Case cases[] = {
      {"not json", "not valid JSON"},
      {"[]", "must be a JSON object"},
      {R"({"colour":"red"})", "unknown key colour"},
      {R"({"mws":{"colour":"red"}})", "unknown key mws.colour"},
      {R"({"threads":1,"threads":2})", "duplicate key threads"},
      {R"({"mws":{"accounts":{"main":{"seller_id":"S","access_key_id":"A","secret_key":"K","x":1}}}})",
       "unknown key mws.accounts.main.x"},
      {R"({"listen":"nowhere"})", "listen: must be host:port"},
      {R"({"listen":"1.2.3.4:99999"})", "listen: must be host:port"},
      {R"({"threads":-1})", "threads: must be an integer from 0 to 256"},
      {R"({"threads":"two"})", "threads: must be an integer"},
      {R"({"log":{"level":"loud"}})", "log.level: must be one of debug, info, warn, error"},
      {R"({"database":""})", "database: required"},
      {R"({"clients":{}})", "clients: must be an array"},
      {R"({"clients":[{"name":"a"}]})", "clients[0].key: required"},
      {R"({"clients":[{"name":"a","key":"k1234567890123456"},{"name":"a","key":"k2234567890123456"}]})",
       "duplicate client name"},
      {R"({"upstream":{"connect_timeout_ms":0}})", "upstream.connect_timeout_ms: must be an integer from 1"},
      {R"({"upstream":{"ca_file":"/nope.pem"}})", "upstream.ca_file: cannot read"},
      {R"({"throttle":{"buckets":{"mws.Foo":{"capacity":1}}}})", "throttle.buckets.mws.Foo: unknown bucket"},
      {R"({"throttle":{"buckets":{"mws.ListRecommendations":{"restore_per_s":0}}}})",
       "restore_per_s: must be a number greater than 0"},
      {R"({"mws":{"endpoint":"ftp://x"}})", "mws.endpoint: must be empty"},
      {R"({"mws":{"max_pages":0}})", "mws.max_pages: must be an integer from 1"},
      {R"({"mws":{"accounts":{"main":{"seller_id":"S"}}}})", "mws.accounts.main.access_key_id: required"},
      {R"({"mws":{"accounts":{"bad name":{"seller_id":"S","access_key_id":"A","secret_key":"K"}}}})",
       "account names are"},
      {R"({"ads":{"accounts":{"main":{"region":"XX","client_id":"c","client_secret":"s","refresh_token":"r","profile_id":"1"}}}})",
       "region: must be one of NA, EU, FE"},
      {R"({"ads":{"accounts":{"main":{"client_id":"c","client_secret":"s","refresh_token":"r","profile_id":"abc"}}}})",
       "profile_id: required, the numeric"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.json);
    auto r = parse_config(c.json, fake_env({}));
    CHECK_FALSE(r.config);
    CHECK(has_error(r, c.expect));
  }
}

TEST_CASE("config: ${NAME} from the environment, NAME_FILE from a file, missing ones named") {
  const std::string json =
      R"({"mws":{"accounts":{"main":{"seller_id":"S","access_key_id":"${AK}","secret_key":"${SK}","auth_token":"pre-${TOK}-post"}}}})";
  SUBCASE("from the environment") {
    auto r = parse_config(json, fake_env({{"AK", "akid"}, {"SK", "secret"}, {"TOK", "t"}}));
    REQUIRE(r.config);
    CHECK(r.config->mws.accounts.at("main").access_key_id == "akid");
    CHECK(r.config->mws.accounts.at("main").secret_key == "secret");
    CHECK(r.config->mws.accounts.at("main").auth_token == "pre-t-post");
  }
  SUBCASE("from NAME_FILE, trailing newline removed") {
    auto r = parse_config(json, fake_env({{"AK", "akid"}, {"SK_FILE", "/run/secrets/sk"}, {"TOK", "t"}},
                                         {{"/run/secrets/sk", "file-secret\n"}}));
    REQUIRE(r.config);
    CHECK(r.config->mws.accounts.at("main").secret_key == "file-secret");
  }
  SUBCASE("missing variable") {
    auto r = parse_config(json, fake_env({{"AK", "akid"}, {"TOK", "t"}}));
    CHECK_FALSE(r.config);
    CHECK(has_error(r, "mws.accounts.main.secret_key: environment variable SK is not set"));
  }
  SUBCASE("unreadable NAME_FILE") {
    auto r = parse_config(json, fake_env({{"AK", "akid"}, {"SK_FILE", "/missing"}, {"TOK", "t"}}));
    CHECK_FALSE(r.config);
    CHECK(has_error(r, "cannot read the file named by SK_FILE"));
  }
}

TEST_CASE("config: masking hides every secret and keeps the rest") {
  auto r = parse_config(
      R"({"clients":[{"name":"pricing","key":"client-key-secret-1"}],
          "mws":{"accounts":{"main":{"seller_id":"SELLER1","access_key_id":"AKIA-SECRET","secret_key":"mws-secret","auth_token":"mws-token"}}},
          "ads":{"accounts":{"main":{"client_id":"cid","client_secret":"ads-secret","refresh_token":"Atzr|refresh","profile_id":"42"}}}})",
      fake_env({}));
  REQUIRE(r.config);
  std::string out = config_to_masked_json(*r.config);
  for (const char* s : {"client-key-secret-1", "AKIA-SECRET", "mws-secret", "mws-token", "ads-secret", "Atzr|refresh"})
    CHECK_MESSAGE(out.find(s) == std::string::npos, s);
  CHECK(out.find("SELLER1") != std::string::npos);
  CHECK(out.find("\"pricing\"") != std::string::npos);
  CHECK(out.find("\"42\"") != std::string::npos);
  // The masked output is itself a valid config that parses (with masked values).
  CHECK(parse_config(out, fake_env({})).config.has_value());
}

TEST_CASE("config: a public listen address without clients is a warning, not an error") {
  auto r = parse_config(R"({"listen":"0.0.0.0:8080"})", fake_env({}));
  REQUIRE(r.config);
  REQUIRE(r.warnings.size() == 1);
  CHECK(r.warnings[0].find("no clients") != std::string::npos);
}

TEST_CASE("config: '_' keys are comments") {
  auto r = parse_config(R"({"_comment":"hi","mws":{"_x":"y","accounts":{"_doc":"z"}}})", fake_env({}));
  CHECK(r.config.has_value());
}

TEST_CASE("config: a bucket override keeps the group's default for every field it omits") {
  auto r = parse_config(R"({"throttle":{"buckets":{"ads.ProductRecommendations":{"capacity":20},
                            "lwa.Token":{"restore_per_s":3},"mws.GetServiceStatus":{"capacity":4}}}})",
                        fake_env({}));
  REQUIRE(r.config);
  const auto& b = r.config->throttle.buckets;
  CHECK(b.at("ads.ProductRecommendations").capacity == 20);
  CHECK(b.at("ads.ProductRecommendations").restore_per_s == 2);  // not MWS's 0.5
  CHECK(b.at("lwa.Token").capacity == 5);
  CHECK(b.at("lwa.Token").restore_per_s == 3);
  CHECK(b.at("mws.GetServiceStatus").restore_per_s == doctest::Approx(1.0 / 300));
  REQUIRE(default_bucket("ads.ProductRecommendations"));
  CHECK(default_bucket("ads.ProductRecommendations")->capacity == 10);
  CHECK_FALSE(default_bucket("ads.Nope"));
}

TEST_CASE("config: --check-config catches unusable endpoints, listen names, reserves and plain http") {
  struct Case {
    const char* name;
    const char* json;
    const char* error;    // nullptr: accepted
    const char* warning;  // nullptr: no warning expected
  };
  const Case cases[] = {
      {"user info", R"({"ads":{"endpoint":"https://bob:hunter2@ads.example.com"}})",
       "ads.endpoint: must be empty (Amazon's own hosts) or a URL like https://host[:port]; this one holds user info",
       nullptr},
      {"user info in the token endpoint", R"({"ads":{"token_endpoint":"https://bob:hunter2@lwa.example.com/t"}})",
       "ads.token_endpoint:", nullptr},
      {"port 99999", R"({"mws":{"endpoint":"https://mws.example.com:99999"}})", "mws.endpoint:", nullptr},
      {"port 99999 says why", R"({"mws":{"endpoint":"https://mws.example.com:99999"}})", "bad port (allowed: 1-65535)",
       nullptr},
      {"query in a base URL", R"({"mws":{"endpoint":"https://mws.example.com/?a=b"}})",
       "mws.endpoint: must be a base URL", nullptr},
      {"not a URL", R"({"mws":{"endpoint":"ftp://x"}})", "mws.endpoint: must be empty", nullptr},
      {"host name in listen", R"({"listen":"localhost:8080"})", "listen: the host must be an IP address", nullptr},
      {"IPv6 listen", R"({"listen":"[::1]:0"})", nullptr, nullptr},
      {"reserve equal to capacity", R"({"throttle":{"reserve_tokens":8}})", "throttle.reserve_tokens: 8", nullptr},
      {"reserve equal to an override's capacity",
       R"({"throttle":{"reserve_tokens":1,"buckets":{"mws.ListRecommendations":{"capacity":1}}}})",
       "does not fit bucket mws.ListRecommendations (capacity 1)", nullptr},
      {"reserve of part of a bucket", R"({"throttle":{"reserve_tokens":1.5}})", nullptr,
       "does not fit bucket mws.GetServiceStatus (capacity 2)"},
      {"capacity 1 without reserve (margin is capped by the bucket)",
       R"({"throttle":{"buckets":{"mws.ListRecommendations":{"capacity":1}}}})", nullptr, nullptr},
      {"reserve of exactly capacity - 1", R"({"throttle":{"reserve_tokens":1}})", nullptr, nullptr},
      {"reserve that still grants", R"({"throttle":{"reserve_tokens":0.5}})", nullptr, nullptr},
      {"plain http token endpoint", R"({"ads":{"token_endpoint":"http://api.example.com/auth/o2/token"}})",
       "ads.token_endpoint: plain http would send the LWA client secret", nullptr},
      {"plain http Ads endpoint", R"({"ads":{"endpoint":"http://ads.example.com"}})", "ads.endpoint: plain http",
       nullptr},
      {"plain http MWS endpoint", R"({"mws":{"endpoint":"http://mws.example.com"}})", "mws.endpoint: plain http",
       nullptr},
      {"plain http to loopback", R"({"ads":{"token_endpoint":"http://127.0.0.1:9/auth/o2/token"}})", nullptr,
       "ads.token_endpoint: plain http (to loopback 127.0.0.1)"},
      {"plain http to a listed host",
       R"({"upstream":{"plain_http_hosts":["sandbox"]},"ads":{"token_endpoint":"http://sandbox:8081/t"}})", nullptr,
       nullptr},
      {"plain_http_hosts not strings", R"({"upstream":{"plain_http_hosts":[1]}})",
       "upstream.plain_http_hosts: must be an array of strings", nullptr},
      {"max_asins zero", R"({"ads":{"max_asins":0}})", "ads.max_asins: must be an integer from 1 to 10000", nullptr},
      {"config nested too deep", R"({"_x":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]})",
       "the limit is 64", nullptr},
  };
  for (const auto& c : cases) {
    CAPTURE(c.name);
    const std::string name = c.name;
    CAPTURE(name);
    auto r = parse_config(c.json, fake_env({}));
    if (c.error) {
      CHECK_FALSE(r.config);
      CHECK(has_error(r, c.error));
    } else {
      CHECK(r.config);
      CHECK(r.errors.empty());
    }
    for (const auto& e : r.errors) CHECK(e.find("hunter2") == std::string::npos);
    bool warned = false;
    for (const auto& w : r.warnings) warned = warned || (c.warning && w.find(c.warning) != std::string::npos);
    CHECK(warned == (c.warning != nullptr));
  }
}

TEST_CASE("config: ads.max_asins and upstream.plain_http_hosts parse and appear in the effective config") {
  auto r = parse_config(R"({"ads":{"max_asins":25},"upstream":{"plain_http_hosts":["sandbox"]}})", fake_env({}));
  REQUIRE(r.config);
  CHECK(r.config->ads.max_asins == 25);
  CHECK(r.config->upstream.plain_http_hosts == std::vector<std::string>{"sandbox"});
  const std::string out = config_to_masked_json(*r.config);
  CHECK(out.find("\"max_asins\": 25") != std::string::npos);
  CHECK(out.find("\"plain_http_hosts\": [\n      \"sandbox\"") != std::string::npos);
  CHECK(parse_config("{}", fake_env({})).config->ads.max_asins == 100);
}

TEST_CASE("config: throttle.max_queue_per_client: default a quarter of max_queue, shown resolved, checked") {
  auto d = parse_config(R"({"throttle":{"max_queue":40}})", fake_env({}));
  REQUIRE(d.config);
  CHECK(d.config->throttle.max_queue_per_client == 0);
  CHECK(d.config->throttle.queue_share_per_client() == 10);
  CHECK(config_to_masked_json(*d.config).find("\"max_queue_per_client\": 10") != std::string::npos);
  auto set = parse_config(R"({"throttle":{"max_queue_per_client":3}})", fake_env({}));
  REQUIRE(set.config);
  CHECK(set.config->throttle.queue_share_per_client() == 3);
  auto bad = parse_config(R"({"throttle":{"max_queue_per_client":-1}})", fake_env({}));
  CHECK_FALSE(bad.config);
  REQUIRE_FALSE(bad.errors.empty());
  CHECK(bad.errors[0].find("throttle.max_queue_per_client") != std::string::npos);
}

// ---- The schema table (config.cpp root_entries) drives parsing and the dump;
// these cases catch a table line that is wrong: a key the dump leaves out, a
// secret left unmasked, or a secret-looking key not marked secret.
namespace {

// A config that fills every map and array, so every key path has a value.
const char* kEveryKey = R"({"clients":[{"name":"pricing","key":"client-key-secret-1"}],
  "throttle":{"buckets":{"lwa.Token":{"capacity":3}},"adaptive":{"ads.ProductRecommendations":{"quiet_s":5}}},
  "mws":{"accounts":{"main":{"seller_id":"SELLER1","access_key_id":"AKIA-SECRET","secret_key":"mws-secret","auth_token":"mws-token"}}},
  "ads":{"accounts":{"main":{"client_id":"cid","client_secret":"ads-secret","refresh_token":"Atzr|refresh","profile_id":"42"}}}})";

// The values at a schema path ("a.*.b", "clients[].key") in a parsed dump.
void values_at(const rapidjson::Value& v, std::string_view path, std::vector<const rapidjson::Value*>& out) {
  if (path.empty()) {
    out.push_back(&v);
    return;
  }
  const auto dot = path.find('.');
  std::string_view head = path.substr(0, dot);
  const std::string_view rest = dot == std::string_view::npos ? std::string_view() : path.substr(dot + 1);
  const bool array = head.size() > 2 && head.substr(head.size() - 2) == "[]";
  if (array) head.remove_suffix(2);
  if (head == "*") {
    for (auto it = v.MemberBegin(); v.IsObject() && it != v.MemberEnd(); ++it) values_at(it->value, rest, out);
    return;
  }
  const std::string name(head);
  if (!v.IsObject() || !v.HasMember(name.c_str())) return;
  const rapidjson::Value& child = v[name.c_str()];
  if (!array) return values_at(child, rest, out);
  for (rapidjson::SizeType i = 0; child.IsArray() && i < child.Size(); ++i) values_at(child[i], rest, out);
}

// The masked dump of kEveryKey, parsed back.
void dump_every_key(rapidjson::Document& dump) {
  auto r = parse_config(kEveryKey, fake_env({}));
  REQUIRE(r.config);
  dump.Parse(config_to_masked_json(*r.config).c_str());
  REQUIRE(dump.IsObject());
}

bool looks_secret(std::string_view path) {
  const std::string_view key = path.substr(path.find_last_of(".]") == std::string_view::npos ? 0 : path.find_last_of(".]") + 1);
  for (std::string_view end : {"secret", "secret_key", "_token", "password", "key", "key_id"})
    if (key.size() >= end.size() && key.substr(key.size() - end.size()) == end) return true;
  return false;
}

}  // namespace

TEST_CASE("config schema: every key in the table appears in the masked dump") {
  rapidjson::Document dump;
  dump_every_key(dump);
  const auto keys = config_keys();
  CHECK(keys.size() > 50);
  for (const auto& k : keys) {
    std::vector<const rapidjson::Value*> found;
    values_at(dump, k.path, found);
    CHECK_MESSAGE(!found.empty(), k.path);
  }
}

TEST_CASE("config schema: every secret key is masked, and every secret-looking key is marked secret") {
  rapidjson::Document dump;
  dump_every_key(dump);
  std::vector<std::string> secrets;
  for (const auto& k : config_keys()) {
    CHECK_MESSAGE(k.secret == looks_secret(k.path), k.path);
    if (!k.secret) continue;
    secrets.push_back(k.path);
    std::vector<const rapidjson::Value*> found;
    values_at(dump, k.path, found);
    REQUIRE_MESSAGE(!found.empty(), k.path);
    for (const auto* v : found) CHECK_MESSAGE(std::string(v->GetString()) == "********", k.path);
  }
  CHECK(secrets == std::vector<std::string>{"clients[].key", "mws.accounts.*.access_key_id",
                                            "mws.accounts.*.secret_key", "mws.accounts.*.auth_token",
                                            "ads.accounts.*.client_secret", "ads.accounts.*.refresh_token"});
}

TEST_CASE("config schema: every key in the table is accepted by the parser and rejects a wrong type by name") {
  for (const auto& k : config_keys()) {
    if (k.path.find('*') != std::string::npos || k.path.find("[]") != std::string::npos) continue;
    // {"a":{"b":[{}]}}: an array is the wrong type for every leaf key.
    std::string json = "[]";
    std::string_view p = k.path;
    for (auto dot = p.rfind('.');; dot = p.rfind('.')) {
      const std::string_view leaf = dot == std::string_view::npos ? p : p.substr(dot + 1);
      json = "{\"" + std::string(leaf) + "\":" + json + "}";
      if (dot == std::string_view::npos) break;
      p = p.substr(0, dot);
    }
    auto r = parse_config(json, fake_env({}));
    const bool is_list = k.path == "upstream.plain_http_hosts";
    CHECK_MESSAGE(!has_error(r, "unknown key"), k.path);
    if (!is_list) CHECK_MESSAGE(has_error(r, k.path + ": must be"), k.path);
  }
}
