// Configuration parsing and validation (docs/design.md §5): strict JSON walk that
// rejects unknown keys by path, substitutes ${NAME} / NAME_FILE, and checks
// every value against what is allowed. Pure apart from the injected ConfigEnv.
#include "core/config.hpp"

#include <rapidjson/document.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "core/http/url.hpp"
#include "core/json.hpp"
#include "core/upstream/url.hpp"

namespace recgate {
namespace {

using rapidjson::Value;

struct GroupDefault {
  const char* group;
  BucketConfig bucket;
};

// MWS figures: docs/upstreams.md A.1 (8, one per 2 s; GetServiceStatus
// as documented for other sections: 2, one per 5 min). Ads and LWA limits are
// undocumented: these are defaults.
constexpr GroupDefault kBucketGroups[] = {
    {"mws.GetLastUpdatedTimeForRecommendations", {8, 0.5}},
    {"mws.ListRecommendations", {8, 0.5}},
    {"mws.GetServiceStatus", {2, 1.0 / 300}},
    {"ads.ProductRecommendations", {10, 2}},
    {"lwa.Token", {5, 1}},
};

std::vector<std::string> group_names() {
  std::vector<std::string> out;
  for (const auto& g : kBucketGroups) out.emplace_back(g.group);
  return out;
}

struct Ctx {
  const ConfigEnv& env;
  std::vector<std::string> errors;
  std::vector<std::string> warnings;
};

std::string join(const std::vector<std::string>& v, const char* sep = ", ") {
  std::string out;
  for (const auto& s : v) {
    if (!out.empty()) out += sep;
    out += s;
  }
  return out;
}

const char* type_name(const Value& v) {
  if (v.IsNull()) return "null";
  if (v.IsBool()) return "a boolean";
  if (v.IsString()) return "a string";
  if (v.IsNumber()) return "a number";
  if (v.IsArray()) return "an array";
  return "an object";
}

// ${NAME} -> env NAME, else the contents of the file named by NAME_FILE.
bool substitute(const std::string& in, const std::string& path, Ctx& ctx, std::string& out) {
  static const std::regex var(R"(\$\{([A-Za-z_][A-Za-z0-9_]*)\})");
  out.clear();
  std::size_t last = 0;
  for (std::sregex_iterator it(in.begin(), in.end(), var), end; it != end; ++it) {
    const auto& m = *it;
    out.append(in, last, static_cast<std::size_t>(m.position(0)) - last);
    const std::string name = m[1].str();
    if (auto v = ctx.env.getenv(name)) {
      out += *v;
    } else if (auto f = ctx.env.getenv(name + "_FILE")) {
      auto content = ctx.env.read_file(*f);
      if (!content) {
        ctx.errors.push_back(path + ": cannot read the file named by " + name + "_FILE");
        return false;
      }
      std::string c = *content;
      while (!c.empty() && (c.back() == '\n' || c.back() == '\r')) c.pop_back();
      out += c;
    } else {
      ctx.errors.push_back(path + ": environment variable " + name + " is not set (nor " + name +
                           "_FILE naming a file that holds it)");
      return false;
    }
    last = static_cast<std::size_t>(m.position(0) + m.length(0));
  }
  out.append(in, last, std::string::npos);
  return true;
}

class Obj {
 public:
  Obj(const Value& v, std::string path, Ctx& ctx) : v_(v), path_(std::move(path)), ctx_(ctx) {}

  std::string key_path(const char* k) const { return path_.empty() ? k : path_ + "." + k; }

  const Value* get(const char* k) {
    allowed_.push_back(k);
    auto it = v_.FindMember(k);
    return it == v_.MemberEnd() ? nullptr : &it->value;
  }

  void str(const char* k, std::string& out) {
    const Value* v = get(k);
    if (!v) return;
    if (!v->IsString()) {
      ctx_.errors.push_back(key_path(k) + ": must be a string, got " + type_name(*v));
      return;
    }
    std::string s;
    if (substitute(v->GetString(), key_path(k), ctx_, s)) out = s;
  }

  void strings(const char* k, std::vector<std::string>& out) {
    const Value* v = get(k);
    if (!v) return;
    std::vector<std::string> items;
    for (rapidjson::SizeType i = 0; v->IsArray() && i < v->Size(); ++i) {
      if (!(*v)[i].IsString()) break;
      items.emplace_back((*v)[i].GetString(), (*v)[i].GetStringLength());
    }
    if (!v->IsArray() || items.size() != v->Size()) {
      ctx_.errors.push_back(key_path(k) + ": must be an array of strings");
      return;
    }
    out = std::move(items);
  }

  void integer(const char* k, int& out, int min, int max) {
    const Value* v = get(k);
    if (!v) return;
    if (!v->IsInt() || v->GetInt() < min || v->GetInt() > max) {
      ctx_.errors.push_back(key_path(k) + ": must be an integer from " + std::to_string(min) + " to " +
                            std::to_string(max));
      return;
    }
    out = v->GetInt();
  }

  void size(const char* k, std::size_t& out, std::uint64_t min, std::uint64_t max) {
    const Value* v = get(k);
    if (!v) return;
    if (!v->IsUint64() || v->GetUint64() < min || v->GetUint64() > max) {
      ctx_.errors.push_back(key_path(k) + ": must be an integer from " + std::to_string(min) + " to " +
                            std::to_string(max));
      return;
    }
    out = static_cast<std::size_t>(v->GetUint64());
  }

  void number(const char* k, double& out, double min, double max, bool min_exclusive = false) {
    const Value* v = get(k);
    if (!v) return;
    if (!v->IsNumber() || v->GetDouble() > max || v->GetDouble() < min ||
        (min_exclusive && v->GetDouble() == min)) {
      std::ostringstream os;
      os << key_path(k) << ": must be a number " << (min_exclusive ? "greater than " : "from ") << min << " to "
         << max;
      ctx_.errors.push_back(os.str());
      return;
    }
    out = v->GetDouble();
  }

  // Calls fn(Obj&) when k is present and an object.
  template <class F>
  void object(const char* k, F fn) {
    const Value* v = get(k);
    if (!v) return;
    if (!v->IsObject()) {
      ctx_.errors.push_back(key_path(k) + ": must be an object, got " + type_name(*v));
      return;
    }
    Obj o(*v, key_path(k), ctx_);
    fn(o);
    o.finish();
  }

  // Calls fn(name, Obj&) for every member of the object at k.
  template <class F>
  void map(const char* k, F fn) {
    const Value* v = get(k);
    if (!v) return;
    if (!v->IsObject()) {
      ctx_.errors.push_back(key_path(k) + ": must be an object, got " + type_name(*v));
      return;
    }
    for (auto it = v->MemberBegin(); it != v->MemberEnd(); ++it) {
      std::string name = it->name.GetString();
      if (!name.empty() && name[0] == '_') continue;
      std::string p = key_path(k) + "." + name;
      if (!it->value.IsObject()) {
        ctx_.errors.push_back(p + ": must be an object, got " + type_name(it->value));
        continue;
      }
      Obj o(it->value, p, ctx_);
      fn(name, o);
      o.finish();
    }
  }

  void finish() {
    std::set<std::string> seen;
    for (auto it = v_.MemberBegin(); it != v_.MemberEnd(); ++it) {
      std::string name = it->name.GetString();
      if (!seen.insert(name).second)
        ctx_.errors.push_back("duplicate key " + (path_.empty() ? name : path_ + "." + name) +
                              " (JSON objects must not repeat a key)");
      if (!name.empty() && name[0] == '_') continue;  // "_comment" keys document the file
      bool known = false;
      for (const auto& a : allowed_) known = known || a == name;
      if (!known)
        ctx_.errors.push_back("unknown key " + (path_.empty() ? name : path_ + "." + name) +
                              " (allowed here: " + join(allowed_) + ")");
    }
  }

  void error(const std::string& msg) { ctx_.errors.push_back(msg); }
  Ctx& ctx() { return ctx_; }
  const Value& value() const { return v_; }

 private:
  const Value& v_;
  std::string path_;
  Ctx& ctx_;
  std::vector<std::string> allowed_;
};

bool valid_name(const std::string& s) {
  static const std::regex re("[A-Za-z0-9_.-]{1,64}");
  return std::regex_match(s, re);
}


void require(Obj& o, const char* key, const std::string& value, const char* what) {
  if (value.empty()) o.error(o.key_path(key) + ": required (" + what + ")");
}

bool is_loopback(const std::string& host) {
  return host == "127.0.0.1" || host == "::1" || host == "localhost" || host.rfind("127.", 0) == 0;
}

bool is_ip_literal(const std::string& host) {
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

// Why an endpoint URL is unusable, without echoing it (it may hold a password).
std::string url_fault(const std::string& url) {
  const auto sep = url.find("://");
  const std::string authority =
      sep == std::string::npos ? std::string() : url.substr(sep + 3, url.find_first_of("/?#", sep + 3) - (sep + 3));
  if (authority.find('@') != std::string::npos)
    return "holds user info (user:password@), which is not allowed: credentials belong in the accounts";
  if (const auto colon = authority.rfind(':'); colon != std::string::npos && authority.back() != ']')
    return "has a bad port (allowed: 1-65535)";
  return "has no http:// or https:// scheme with a valid host";
}

// An upstream endpoint: empty (Amazon's hosts), or an http(s) URL without
// user info and with a valid port. Plain http sends `secret` in clear, so it
// is allowed only to loopback (with a warning) or to a host the operator
// listed in upstream.plain_http_hosts.
void check_endpoint(Obj& o, const char* key, const std::string& url, const UpstreamConfig& up, bool base_only,
                    const char* secret) {
  if (url.empty()) return;
  const std::string path = o.key_path(key);
  const auto parsed = upstream::parse_url(url);
  if (!parsed) {
    o.error(path + ": must be empty (Amazon's own hosts) or a URL like https://host[:port]; this one " +
            url_fault(url));
    return;
  }
  if (base_only && url.find_first_of("?#") != std::string::npos) {
    o.error(path + ": must be a base URL like https://host[:port][/path], without query or fragment");
    return;
  }
  if (parsed->scheme != "http") return;
  const bool listed =
      std::find(up.plain_http_hosts.begin(), up.plain_http_hosts.end(), parsed->host) != up.plain_http_hosts.end();
  if (listed) return;
  if (is_loopback(parsed->host))
    o.ctx().warnings.push_back(path + ": plain http (to loopback " + parsed->host + ") carries " + secret +
                               " unencrypted");
  else
    o.error(path + ": plain http would send " + secret + " in clear to " + parsed->host +
            "; use https (http is allowed to loopback, or to hosts listed in upstream.plain_http_hosts)");
}

// A grant leaves reserve_tokens unspent, so it needs 1 + reserve_tokens
// tokens. The bucket caps that floor at capacity, so a reserve that does not
// fit is silently spent: at or above capacity it is an error (nothing of it
// would be kept), above capacity - 1 a warning (part of it would be spent).
void check_reserve(Obj& o, const ThrottleConfig& t) {
  for (const auto& g : kBucketGroups) {
    const auto it = t.buckets.find(g.group);
    const BucketConfig& b = it == t.buckets.end() ? g.bucket : it->second;
    if (1 + t.reserve_tokens <= b.capacity) continue;
    std::ostringstream os;
    os << "throttle.reserve_tokens: " << t.reserve_tokens << " does not fit bucket " << g.group << " (capacity "
       << b.capacity << "): a grant needs 1 + reserve_tokens tokens, so "
       << (t.reserve_tokens >= b.capacity ? "none" : "part") << " of the reserve would be kept; keep it at most "
       << "capacity - 1 (or raise throttle.buckets." << g.group << ".capacity)";
    if (t.reserve_tokens >= b.capacity) o.error(os.str());
    else o.ctx().warnings.push_back(os.str());
  }
}

void parse_root(Obj& root, Config& c) {
  root.str("listen", c.listen);
  root.str("database", c.database);
  root.integer("threads", c.threads, 0, 256);
  root.object("log", [&](Obj& o) {
    o.str("level", c.log.level);
    if (const Value* a = o.get("access")) {
      if (a->IsBool()) c.log.access = a->GetBool();
      else o.error("log.access: must be true or false");
    }
    if (c.log.level != "debug" && c.log.level != "info" && c.log.level != "warn" && c.log.level != "error")
      o.error("log.level: must be one of debug, info, warn, error; got \"" + c.log.level + "\"");
  });
  if (const Value* clients = root.get("clients")) {
    if (!clients->IsArray()) {
      root.error("clients: must be an array of {\"name\", \"key\"} objects");
    } else {
      std::set<std::string> names;
      for (rapidjson::SizeType i = 0; i < clients->Size(); ++i) {
        std::string p = "clients[" + std::to_string(i) + "]";
        if (!(*clients)[i].IsObject()) {
          root.error(p + ": must be an object with \"name\" and \"key\"");
          continue;
        }
        Obj o((*clients)[i], p, root.ctx());
        ClientKey k;
        o.str("name", k.name);
        o.str("key", k.key);
        o.finish();
        if (!valid_name(k.name)) o.error(p + ".name: required, 1-64 characters of A-Z a-z 0-9 _ . -");
        if (k.key.empty()) o.error(p + ".key: required (the bearer key this client sends)");
        else if (k.key.size() < 16) root.ctx().warnings.push_back(p + ".key: shorter than 16 characters");
        if (!names.insert(k.name).second) o.error(p + ".name: duplicate client name \"" + k.name + "\"");
        c.clients.push_back(std::move(k));
      }
    }
  }
  root.object("upstream", [&](Obj& o) {
    o.strings("plain_http_hosts", c.upstream.plain_http_hosts);
    o.integer("connect_timeout_ms", c.upstream.connect_timeout_ms, 1, 600000);
    o.integer("request_timeout_ms", c.upstream.request_timeout_ms, 1, 600000);
    o.str("ca_file", c.upstream.ca_file);
    o.size("max_response_bytes", c.upstream.max_response_bytes, 1024, 1ull << 30);
    o.integer("max_connections_per_origin", c.upstream.max_connections_per_origin, 1, 1024);
    if (!c.upstream.ca_file.empty() && !o.ctx().env.read_file(c.upstream.ca_file))
      o.error("upstream.ca_file: cannot read \"" + c.upstream.ca_file + "\" (a PEM file of CA certificates)");
  });
  root.object("throttle", [&](Obj& o) {
    o.integer("max_wait_s", c.throttle.max_wait_s, 0, 3600);
    o.integer("margin_ms", c.throttle.margin_ms, 0, 10000);
    o.number("reserve_tokens", c.throttle.reserve_tokens, 0, 100);
    o.integer("max_queue", c.throttle.max_queue, 1, 1000000);
    o.integer("max_queue_per_client", c.throttle.max_queue_per_client, 0, 1000000);
    o.map("buckets", [&](const std::string& name, Obj& b) {
      const auto group_default = default_bucket(name);
      if (!group_default)
        b.error("throttle.buckets." + name + ": unknown bucket (allowed: " + join(group_names()) + ")");
      BucketConfig bc = group_default.value_or(BucketConfig{});
      b.number("capacity", bc.capacity, 1, 100000);
      b.number("restore_per_s", bc.restore_per_s, 0, 100000, true);
      c.throttle.buckets[name] = bc;
    });
    check_reserve(o, c.throttle);
    o.map("adaptive", [&](const std::string& name, Obj& a) {
      if (!default_bucket(name))
        a.error("throttle.adaptive." + name + ": unknown bucket (allowed: " + join(group_names()) + ")");
      AdaptiveConfig ac;
      if (const Value* e = a.get("enabled")) {
        if (e->IsBool()) ac.enabled = e->GetBool();
        else a.error("throttle.adaptive." + name + ".enabled: must be true or false");
      }
      a.number("ceiling_per_s", ac.ceiling_per_s, 0, 100000);
      a.number("floor_per_s", ac.floor_per_s, 0, 100000);
      a.number("step_per_s", ac.step_per_s, 0, 100000);
      a.number("decrease", ac.decrease, 0, 1, true);
      a.integer("quiet_s", ac.quiet_s, 1, 86400);
      if (ac.decrease >= 1) a.error("throttle.adaptive." + name + ".decrease: must be below 1 (a cut)");
      if (ac.ceiling_per_s > 0 && ac.floor_per_s > ac.ceiling_per_s)
        a.error("throttle.adaptive." + name + ".floor_per_s: must not exceed ceiling_per_s");
      c.throttle.adaptive[name] = ac;
    });
  });
  root.object("mws", [&](Obj& o) {
    o.str("endpoint", c.mws.endpoint);
    check_endpoint(o, "endpoint", c.mws.endpoint, c.upstream, true, "signed MWS requests (with the auth token)");
    o.integer("check_interval_s", c.mws.check_interval_s, 0, 86400 * 7);
    o.integer("listing_quality_ttl_s", c.mws.listing_quality_ttl_s, 0, 86400 * 30);
    o.integer("max_stale_s", c.mws.max_stale_s, 0, 86400 * 365);
    o.integer("max_pages", c.mws.max_pages, 1, 1000);
    o.map("accounts", [&](const std::string& name, Obj& a) {
      MwsAccount acc;
      a.str("seller_id", acc.seller_id);
      a.str("access_key_id", acc.access_key_id);
      a.str("secret_key", acc.secret_key);
      a.str("auth_token", acc.auth_token);
      if (!valid_name(name)) a.error("mws.accounts." + name + ": account names are 1-64 characters of A-Z a-z 0-9 _ . -");
      require(a, "seller_id", acc.seller_id, "the seller's merchant token, e.g. A1XEXAMPLEDF");
      require(a, "access_key_id", acc.access_key_id, "the MWS AWSAccessKeyId");
      require(a, "secret_key", acc.secret_key, "the MWS secret key");
      c.mws.accounts[name] = std::move(acc);
    });
  });
  root.object("ads", [&](Obj& o) {
    o.str("endpoint", c.ads.endpoint);
    o.str("token_endpoint", c.ads.token_endpoint);
    check_endpoint(o, "endpoint", c.ads.endpoint, c.upstream, true, "the LWA access token");
    check_endpoint(o, "token_endpoint", c.ads.token_endpoint, c.upstream, false,
                   "the LWA client secret and refresh token");
    o.size("max_asins", c.ads.max_asins, 1, 10000);
    o.integer("cache_ttl_s", c.ads.cache_ttl_s, 0, 86400 * 30);
    o.integer("token_refresh_margin_s", c.ads.token_refresh_margin_s, 0, 3000);
    o.integer("max_stale_s", c.ads.max_stale_s, 0, 86400 * 365);
    o.map("accounts", [&](const std::string& name, Obj& a) {
      AdsAccount acc;
      a.str("region", acc.region);
      a.str("client_id", acc.client_id);
      a.str("client_secret", acc.client_secret);
      a.str("refresh_token", acc.refresh_token);
      a.str("profile_id", acc.profile_id);
      if (!valid_name(name)) a.error("ads.accounts." + name + ": account names are 1-64 characters of A-Z a-z 0-9 _ . -");
      if (acc.region != "NA" && acc.region != "EU" && acc.region != "FE")
        a.error("ads.accounts." + name + ".region: must be one of NA, EU, FE; got \"" + acc.region + "\"");
      require(a, "client_id", acc.client_id, "the LWA client id, amzn1.application-oa2-client....");
      require(a, "client_secret", acc.client_secret, "the LWA client secret");
      require(a, "refresh_token", acc.refresh_token, "the LWA refresh token, Atzr|...");
      static const std::regex digits("[0-9]{1,20}");
      if (!std::regex_match(acc.profile_id, digits))
        a.error("ads.accounts." + name + ".profile_id: required, the numeric advertising profile id");
      c.ads.accounts[name] = std::move(acc);
    });
  });
  root.object("cache", [&](Obj& o) {
    o.size("memory_entries", c.cache.memory_entries, 0, 100000000);
    o.size("memory_bytes", c.cache.memory_bytes, 0, 1ull << 40);
    o.size("max_db_bytes", c.cache.max_db_bytes, 1ull << 20, 1ull << 40);
    o.integer("prune_interval_s", c.cache.prune_interval_s, 1, 86400);
  });
  root.size("max_header_bytes", c.max_header_bytes, 1024, 1 << 20);
  root.size("max_body_bytes", c.max_body_bytes, 1024, 64 << 20);
  root.integer("read_timeout_ms", c.read_timeout_ms, 100, 600000);
  root.integer("idle_timeout_ms", c.idle_timeout_ms, 100, 3600000);
  root.integer("drain_timeout_ms", c.drain_timeout_ms, 0, 600000);
  root.size("max_connections", c.max_connections, 0, 1 << 24);
  root.integer("header_timeout_ms", c.header_timeout_ms, 100, 600000);

  std::string host;
  std::uint16_t port = 0;
  if (!http::split_host_port(c.listen, host, port))
    root.error("listen: must be host:port (port 0 picks a free port), e.g. 127.0.0.1:8080 or [::1]:8080; got \"" +
               c.listen + "\"");
  else if (!is_ip_literal(host))
    root.error("listen: the host must be an IP address (recgate does not resolve names to bind), e.g. "
               "127.0.0.1:8080, 0.0.0.0:8080 or [::1]:8080; got \"" + c.listen + "\"");
  else if (c.clients.empty() && !is_loopback(host))
    root.ctx().warnings.push_back("listen is " + c.listen +
                                  " but no clients are configured: anyone who can reach it can use your credentials");
  if (c.database.empty()) root.error("database: required, the path of the SQLite file (e.g. data/recgate.db)");
}

void put_secret(rapidjson::PrettyWriter<rapidjson::StringBuffer>& w, const char* k, const std::string& v) {
  w.Key(k);
  w.String(v.empty() ? "" : "********");
}

}  // namespace

std::optional<BucketConfig> default_bucket(std::string_view group) {
  for (const auto& g : kBucketGroups)
    if (group == g.group) return g.bucket;
  return std::nullopt;
}

ConfigEnv ConfigEnv::process() {
  ConfigEnv e;
  e.getenv = [](const std::string& n) -> std::optional<std::string> {
    const char* v = std::getenv(n.c_str());
    if (!v) return std::nullopt;
    return std::string(v);
  };
  e.read_file = [](const std::string& p) -> std::optional<std::string> {
    std::ifstream f(p, std::ios::binary);
    if (!f) return std::nullopt;
    std::ostringstream ss;
    ss << f.rdbuf();
    return ss.str();
  };
  return e;
}

ConfigResult parse_config(const std::string& json_text, const ConfigEnv& env) {
  ConfigResult r;
  rapidjson::Document doc;
  json::ParseOptions opts;
  opts.comments = true;
  if (auto e = json::parse(doc, json_text, opts)) {
    r.errors.push_back("config is not valid JSON: " + e->message);
    return r;
  }
  if (!doc.IsObject()) {
    r.errors.push_back("config must be a JSON object");
    return r;
  }
  Ctx ctx{env, {}, {}};
  Config c;
  Obj root(doc, "", ctx);
  parse_root(root, c);
  root.finish();
  r.errors = std::move(ctx.errors);
  r.warnings = std::move(ctx.warnings);
  if (r.errors.empty()) r.config = std::move(c);
  return r;
}

ConfigResult load_config_file(const std::string& path, const ConfigEnv& env) {
  auto text = env.read_file(path);
  if (!text) {
    ConfigResult r;
    r.errors.push_back("cannot read config file " + path);
    return r;
  }
  return parse_config(*text, env);
}

std::string config_to_masked_json(const Config& c) {
  rapidjson::StringBuffer sb;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> w(sb);
  w.SetIndent(' ', 2);
  w.StartObject();
  w.Key("listen"); w.String(c.listen);
  w.Key("database"); w.String(c.database);
  w.Key("threads"); w.Int(c.threads);
  w.Key("log"); w.StartObject(); w.Key("level"); w.String(c.log.level); w.Key("access"); w.Bool(c.log.access); w.EndObject();
  w.Key("clients");
  w.StartArray();
  for (const auto& k : c.clients) {
    w.StartObject();
    w.Key("name"); w.String(k.name);
    put_secret(w, "key", k.key);
    w.EndObject();
  }
  w.EndArray();
  w.Key("upstream");
  w.StartObject();
  w.Key("plain_http_hosts");
  w.StartArray();
  for (const auto& h : c.upstream.plain_http_hosts) w.String(h);
  w.EndArray();
  w.Key("connect_timeout_ms"); w.Int(c.upstream.connect_timeout_ms);
  w.Key("request_timeout_ms"); w.Int(c.upstream.request_timeout_ms);
  w.Key("ca_file"); w.String(c.upstream.ca_file);
  w.Key("max_response_bytes"); w.Uint64(c.upstream.max_response_bytes);
  w.Key("max_connections_per_origin"); w.Int(c.upstream.max_connections_per_origin);
  w.EndObject();
  w.Key("throttle");
  w.StartObject();
  w.Key("max_wait_s"); w.Int(c.throttle.max_wait_s);
  w.Key("margin_ms"); w.Int(c.throttle.margin_ms);
  w.Key("reserve_tokens"); w.Double(c.throttle.reserve_tokens);
  w.Key("max_queue"); w.Int(c.throttle.max_queue);
  w.Key("max_queue_per_client"); w.Int(c.throttle.queue_share_per_client());
  w.Key("adaptive");
  w.StartObject();
  for (const auto& [name, a] : c.throttle.adaptive) {
    w.Key(name.c_str());
    w.StartObject();
    w.Key("enabled"); w.Bool(a.enabled);
    w.Key("ceiling_per_s"); w.Double(a.ceiling_per_s);
    w.Key("floor_per_s"); w.Double(a.floor_per_s);
    w.Key("step_per_s"); w.Double(a.step_per_s);
    w.Key("decrease"); w.Double(a.decrease);
    w.Key("quiet_s"); w.Int(a.quiet_s);
    w.EndObject();
  }
  w.EndObject();
  w.Key("buckets");
  w.StartObject();
  for (const auto& [name, b] : c.throttle.buckets) {
    w.Key(name.c_str());
    w.StartObject();
    w.Key("capacity"); w.Double(b.capacity);
    w.Key("restore_per_s"); w.Double(b.restore_per_s);
    w.EndObject();
  }
  w.EndObject();
  w.EndObject();
  w.Key("mws");
  w.StartObject();
  w.Key("endpoint"); w.String(c.mws.endpoint);
  w.Key("check_interval_s"); w.Int(c.mws.check_interval_s);
  w.Key("listing_quality_ttl_s"); w.Int(c.mws.listing_quality_ttl_s);
  w.Key("max_stale_s"); w.Int(c.mws.max_stale_s);
  w.Key("max_pages"); w.Int(c.mws.max_pages);
  w.Key("accounts");
  w.StartObject();
  for (const auto& [name, a] : c.mws.accounts) {
    w.Key(name.c_str());
    w.StartObject();
    w.Key("seller_id"); w.String(a.seller_id);
    put_secret(w, "access_key_id", a.access_key_id);
    put_secret(w, "secret_key", a.secret_key);
    put_secret(w, "auth_token", a.auth_token);
    w.EndObject();
  }
  w.EndObject();
  w.EndObject();
  w.Key("ads");
  w.StartObject();
  w.Key("endpoint"); w.String(c.ads.endpoint);
  w.Key("token_endpoint"); w.String(c.ads.token_endpoint);
  w.Key("cache_ttl_s"); w.Int(c.ads.cache_ttl_s);
  w.Key("token_refresh_margin_s"); w.Int(c.ads.token_refresh_margin_s);
  w.Key("max_stale_s"); w.Int(c.ads.max_stale_s);
  w.Key("max_asins"); w.Uint64(c.ads.max_asins);
  w.Key("accounts");
  w.StartObject();
  for (const auto& [name, a] : c.ads.accounts) {
    w.Key(name.c_str());
    w.StartObject();
    w.Key("region"); w.String(a.region);
    w.Key("client_id"); w.String(a.client_id);
    put_secret(w, "client_secret", a.client_secret);
    put_secret(w, "refresh_token", a.refresh_token);
    w.Key("profile_id"); w.String(a.profile_id);
    w.EndObject();
  }
  w.EndObject();
  w.EndObject();
  w.Key("cache");
  w.StartObject();
  w.Key("memory_entries"); w.Uint64(c.cache.memory_entries);
  w.Key("memory_bytes"); w.Uint64(c.cache.memory_bytes);
  w.Key("max_db_bytes"); w.Uint64(c.cache.max_db_bytes);
  w.Key("prune_interval_s"); w.Int(c.cache.prune_interval_s);
  w.EndObject();
  w.Key("max_header_bytes"); w.Uint64(c.max_header_bytes);
  w.Key("max_body_bytes"); w.Uint64(c.max_body_bytes);
  w.Key("read_timeout_ms"); w.Int(c.read_timeout_ms);
  w.Key("idle_timeout_ms"); w.Int(c.idle_timeout_ms);
  w.Key("drain_timeout_ms"); w.Int(c.drain_timeout_ms);
  w.Key("max_connections"); w.Uint64(c.max_connections);
  w.Key("header_timeout_ms"); w.Int(c.header_timeout_ms);
  w.EndObject();
  return std::string(sb.GetString()) + "\n";
}

}  // namespace recgate
