// Configuration parsing and validation (docs/design.md §5): strict JSON walk that
// rejects unknown keys by path, substitutes ${NAME} / NAME_FILE, and checks
// every value against what is allowed. Every key is one line of the schema
// table (root_entries), which parsing and the masked dump both walk. Pure
// apart from the injected ConfigEnv.
#include "core/config.hpp"

#include <rapidjson/document.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <regex>
#include <set>
#include <sstream>
#include <type_traits>
#include <variant>

#include "core/http/url.hpp"
#include "core/json.hpp"
#include "core/redis/url.hpp"
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

  void boolean(const char* k, bool& out) {
    const Value* v = get(k);
    if (!v) return;
    if (v->IsBool()) out = v->GetBool();
    else ctx_.errors.push_back(key_path(k) + ": must be true or false");
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
void check_endpoint(Ctx& ctx, const std::string& path, const std::string& url, const UpstreamConfig& up,
                    bool base_only, const char* secret) {
  if (url.empty()) return;
  const auto parsed = upstream::parse_url(url);
  if (!parsed) {
    ctx.errors.push_back(path + ": must be empty (Amazon's own hosts) or a URL like https://host[:port]; this one " +
                         url_fault(url));
    return;
  }
  if (base_only && url.find_first_of("?#") != std::string::npos) {
    ctx.errors.push_back(path + ": must be a base URL like https://host[:port][/path], without query or fragment");
    return;
  }
  if (parsed->scheme != "http") return;
  const bool listed =
      std::find(up.plain_http_hosts.begin(), up.plain_http_hosts.end(), parsed->host) != up.plain_http_hosts.end();
  if (listed) return;
  if (is_loopback(parsed->host))
    ctx.warnings.push_back(path + ": plain http (to loopback " + parsed->host + ") carries " + secret +
                           " unencrypted");
  else
    ctx.errors.push_back(path + ": plain http would send " + secret + " in clear to " + parsed->host +
                         "; use https (http is allowed to loopback, or to hosts listed in upstream.plain_http_hosts)");
}

// A grant leaves reserve_tokens unspent, so it needs 1 + reserve_tokens
// tokens. The bucket caps that floor at capacity, so a reserve that does not
// fit is silently spent: at or above capacity it is an error (nothing of it
// would be kept), above capacity - 1 a warning (part of it would be spent).
void check_reserve(Ctx& ctx, const ThrottleConfig& t) {
  for (const auto& g : kBucketGroups) {
    const auto it = t.buckets.find(g.group);
    const BucketConfig& b = it == t.buckets.end() ? g.bucket : it->second;
    if (1 + t.reserve_tokens <= b.capacity) continue;
    std::ostringstream os;
    os << "throttle.reserve_tokens: " << t.reserve_tokens << " does not fit bucket " << g.group << " (capacity "
       << b.capacity << "): a grant needs 1 + reserve_tokens tokens, so "
       << (t.reserve_tokens >= b.capacity ? "none" : "part") << " of the reserve would be kept; keep it at most "
       << "capacity - 1 (or raise throttle.buckets." << g.group << ".capacity)";
    (t.reserve_tokens >= b.capacity ? ctx.errors : ctx.warnings).push_back(os.str());
  }
}

void check_listen(Ctx& ctx, const Config& c) {
  std::string host;
  std::uint16_t port = 0;
  if (!http::split_host_port(c.listen, host, port))
    ctx.errors.push_back("listen: must be host:port (port 0 picks a free port), e.g. 127.0.0.1:8080 or [::1]:8080; got \"" +
                         c.listen + "\"");
  else if (!is_ip_literal(host))
    ctx.errors.push_back("listen: the host must be an IP address (recgate does not resolve names to bind), e.g. "
                         "127.0.0.1:8080, 0.0.0.0:8080 or [::1]:8080; got \"" + c.listen + "\"");
  else if (c.clients.empty() && !is_loopback(host))
    ctx.warnings.push_back("listen is " + c.listen +
                           " but no clients are configured: anyone who can reach it can use your credentials");
}

// Checks that span sections (endpoints against upstream.plain_http_hosts,
// the reserve against every bucket) or need the environment; run once the
// whole file has been read.
void check_root(const Config& c, Ctx& ctx) {
  if (!c.upstream.ca_file.empty() && !ctx.env.read_file(c.upstream.ca_file))
    ctx.errors.push_back("upstream.ca_file: cannot read \"" + c.upstream.ca_file + "\" (a PEM file of CA certificates)");
  check_reserve(ctx, c.throttle);
  check_endpoint(ctx, "mws.endpoint", c.mws.endpoint, c.upstream, true, "signed MWS requests (with the auth token)");
  check_endpoint(ctx, "ads.endpoint", c.ads.endpoint, c.upstream, true, "the LWA access token");
  check_endpoint(ctx, "ads.token_endpoint", c.ads.token_endpoint, c.upstream, false,
                 "the LWA client secret and refresh token");
  check_listen(ctx, c);
  check_redis_config(c.redis, ctx.errors);
  if (c.database.empty()) ctx.errors.push_back("database: required, the path of the SQLite file (e.g. data/recgate.db)");
}

// ---- The declarative schema -------------------------------------------------
// One Field per config key: its JSON name, the member it fills, what values
// are allowed, and whether it is a secret. Parsing, the error messages and
// the masked dump (--check-config) are all generated from the same entry,
// so a key is spelled exactly once. Defaults stay on the struct members
// (config.hpp), which is where the rest of the code reads them.

using JsonOut = rapidjson::PrettyWriter<rapidjson::StringBuffer>;

template <class S>
using Member = std::variant<std::string S::*, std::vector<std::string> S::*, bool S::*, int S::*, std::size_t S::*,
                            double S::*>;

struct Range {
  double min = 0;
  double max = 0;
  bool above_min = false;  // min itself is not allowed (numbers only)
};

template <class S>
struct Field {
  const char* key;
  Member<S> member;
  Range range{};                      // ints, sizes and numbers
  bool secret = false;                // masked as ******** in the dump
  const char* required = nullptr;     // non-null: empty is an error; says what the value is
  const char* one_of = nullptr;       // non-null: the allowed values, ", "-separated
  int (*shown)(const S&) = nullptr;   // the dump shows this (a resolved value) instead of the member
};

bool listed_in(const std::string& value, std::string_view list) {
  for (std::size_t pos = 0; pos <= list.size();) {
    const auto end = std::min(list.find(", ", pos), list.size());
    if (list.substr(pos, end - pos) == value) return true;
    pos = end + 2;
  }
  return false;
}

template <class S>
void parse_field(Obj& o, S& s, const Field<S>& f) {
  std::visit(
      [&](auto m) {
        auto& out = s.*m;
        using T = std::decay_t<decltype(out)>;
        if constexpr (std::is_same_v<T, std::string>) o.str(f.key, out);
        else if constexpr (std::is_same_v<T, std::vector<std::string>>) o.strings(f.key, out);
        else if constexpr (std::is_same_v<T, bool>) o.boolean(f.key, out);
        else if constexpr (std::is_same_v<T, int>)
          o.integer(f.key, out, static_cast<int>(f.range.min), static_cast<int>(f.range.max));
        else if constexpr (std::is_same_v<T, std::size_t>)
          o.size(f.key, out, static_cast<std::uint64_t>(f.range.min), static_cast<std::uint64_t>(f.range.max));
        else o.number(f.key, out, f.range.min, f.range.max, f.range.above_min);
        if constexpr (std::is_same_v<T, std::string>) {
          if (f.required && out.empty()) o.error(o.key_path(f.key) + ": required (" + f.required + ")");
          if (f.one_of && !listed_in(out, f.one_of))
            o.error(o.key_path(f.key) + ": must be one of " + f.one_of + "; got \"" + out + "\"");
        }
      },
      f.member);
}

template <class S>
void dump_field(JsonOut& w, const S& s, const Field<S>& f) {
  w.Key(f.key);
  std::visit(
      [&](auto m) {
        const auto& v = s.*m;
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::string>) w.String(f.secret && !v.empty() ? "********" : v.c_str());
        else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
          w.StartArray();
          for (const auto& item : v) w.String(item);
          w.EndArray();
        } else if constexpr (std::is_same_v<T, bool>) w.Bool(v);
        else if constexpr (std::is_same_v<T, int>) w.Int(f.shown ? f.shown(s) : v);
        else if constexpr (std::is_same_v<T, std::size_t>) w.Uint64(v);
        else w.Double(v);
      },
      f.member);
}

// One key of an object: a Field, or a nested object, map or array, each as
// the three things done with it (read it, print it masked, list its paths).
template <class S>
struct Entry {
  std::string key;
  std::function<void(Obj&, S&)> parse;
  std::function<void(JsonOut&, const S&)> dump;
  std::function<void(const std::string& prefix, std::vector<ConfigKey>&)> keys;

  Entry(Field<S> f)  // NOLINT(google-explicit-constructor): tables list Fields and Entries side by side
      : key(f.key),
        parse([f](Obj& o, S& s) { parse_field(o, s, f); }),
        dump([f](JsonOut& w, const S& s) { dump_field(w, s, f); }),
        keys([f](const std::string& prefix, std::vector<ConfigKey>& out) {
          out.push_back({prefix + f.key, f.secret});
        }) {}
  Entry(std::string k, decltype(parse) p, decltype(dump) d, decltype(keys) l)
      : key(std::move(k)), parse(std::move(p)), dump(std::move(d)), keys(std::move(l)) {}
};

template <class T>
using Entries = std::vector<Entry<T>>;

template <class T>
void parse_all(Obj& o, T& t, const Entries<T>& es) {
  for (const auto& e : es) e.parse(o, t);
}

template <class T>
void dump_object(JsonOut& w, const T& t, const Entries<T>& es) {
  w.StartObject();
  for (const auto& e : es) e.dump(w, t);
  w.EndObject();
}

template <class T>
void list_keys(const std::string& prefix, const Entries<T>& es, std::vector<ConfigKey>& out) {
  for (const auto& e : es) e.keys(prefix, out);
}

// A nested object (e.g. "upstream") whose keys are `es`.
template <class S, class T>
Entry<S> section(const char* key, T S::*m, Entries<T> es) {
  auto shared = std::make_shared<const Entries<T>>(std::move(es));
  return Entry<S>(
      key, [key, m, shared](Obj& o, S& s) { o.object(key, [&](Obj& sub) { parse_all(sub, s.*m, *shared); }); },
      [key, m, shared](JsonOut& w, const S& s) {
        w.Key(key);
        dump_object(w, s.*m, *shared);
      },
      [key, shared](const std::string& prefix, std::vector<ConfigKey>& out) {
        list_keys(prefix + key + ".", *shared, out);
      });
}

// A map of named objects (accounts, buckets): `start` checks the name and
// gives the value its fields start from; `check` runs after the fields are read.
template <class T>
struct Named {
  std::function<T(const std::string& name, const std::string& path, Ctx&)> start =
      [](const std::string&, const std::string&, Ctx&) { return T{}; };
  std::function<void(const std::string& path, const T&, Ctx&)> check = [](const std::string&, const T&, Ctx&) {};
};

template <class S, class T>
Entry<S> named(const char* key, std::map<std::string, T> S::*m, Entries<T> es, Named<T> rules = {}) {
  auto shared = std::make_shared<const Entries<T>>(std::move(es));
  return Entry<S>(
      key,
      [key, m, shared, rules](Obj& o, S& s) {
        o.map(key, [&](const std::string& name, Obj& item) {
          const std::string path = o.key_path(key) + "." + name;
          T t = rules.start(name, path, item.ctx());
          parse_all(item, t, *shared);
          rules.check(path, t, item.ctx());
          (s.*m)[name] = std::move(t);
        });
      },
      [key, m, shared](JsonOut& w, const S& s) {
        w.Key(key);
        w.StartObject();
        for (const auto& [name, t] : s.*m) {
          w.Key(name.c_str());
          dump_object(w, t, *shared);
        }
        w.EndObject();
      },
      [key, shared](const std::string& prefix, std::vector<ConfigKey>& out) {
        list_keys(prefix + key + ".*.", *shared, out);
      });
}

bool valid_name(const std::string& s) {
  static const std::regex re("[A-Za-z0-9_.-]{1,64}");
  return std::regex_match(s, re);
}

template <class T>
T account_named(const std::string& name, const std::string& path, Ctx& ctx) {
  if (!valid_name(name))
    ctx.errors.push_back(path + ": account names are 1-64 characters of A-Z a-z 0-9 _ . -");
  return T{};
}

std::string unknown_bucket(const std::string& path) {
  return path + ": unknown bucket (allowed: " + join(group_names()) + ")";
}

// A throttle.buckets override starts from its group's built-in spec.
BucketConfig bucket_named(const std::string& name, const std::string& path, Ctx& ctx) {
  const auto group_default = default_bucket(name);
  if (!group_default) ctx.errors.push_back(unknown_bucket(path));
  return group_default.value_or(BucketConfig{});
}

AdaptiveConfig adaptive_named(const std::string& name, const std::string& path, Ctx& ctx) {
  if (!default_bucket(name))
    ctx.errors.push_back(unknown_bucket(path));
  return AdaptiveConfig{};
}

void check_adaptive(const std::string& path, const AdaptiveConfig& a, Ctx& ctx) {
  if (a.decrease >= 1) ctx.errors.push_back(path + ".decrease: must be below 1 (a cut)");
  if (a.ceiling_per_s > 0 && a.floor_per_s > a.ceiling_per_s)
    ctx.errors.push_back(path + ".floor_per_s: must not exceed ceiling_per_s");
}

void check_ads_account(const std::string& path, const AdsAccount& a, Ctx& ctx) {
  static const std::regex digits("[0-9]{1,20}");
  if (!std::regex_match(a.profile_id, digits))
    ctx.errors.push_back(path + ".profile_id: required, the numeric advertising profile id");
}

// "clients" is an array of {name, key}, the one key that is not an object.
void parse_client(Obj& o, const std::string& p, std::set<std::string>& names, Config& c) {
  ClientKey k;
  o.str("name", k.name);
  o.str("key", k.key);
  o.finish();
  if (!valid_name(k.name)) o.error(p + ".name: required, 1-64 characters of A-Z a-z 0-9 _ . -");
  if (k.key.empty()) o.error(p + ".key: required (the bearer key this client sends)");
  else if (k.key.size() < 16) o.ctx().warnings.push_back(p + ".key: shorter than 16 characters");
  if (!names.insert(k.name).second) o.error(p + ".name: duplicate client name \"" + k.name + "\"");
  c.clients.push_back(std::move(k));
}

void parse_clients(Obj& root, Config& c) {
  const Value* clients = root.get("clients");
  if (!clients) return;
  if (!clients->IsArray()) {
    root.error("clients: must be an array of {\"name\", \"key\"} objects");
    return;
  }
  std::set<std::string> names;
  for (rapidjson::SizeType i = 0; i < clients->Size(); ++i) {
    const std::string p = "clients[" + std::to_string(i) + "]";
    if (!(*clients)[i].IsObject()) {
      root.error(p + ": must be an object with \"name\" and \"key\"");
      continue;
    }
    Obj o((*clients)[i], p, root.ctx());
    parse_client(o, p, names, c);
  }
}

void dump_clients(JsonOut& w, const Config& c) {
  w.Key("clients");
  w.StartArray();
  for (const auto& k : c.clients) {
    w.StartObject();
    w.Key("name");
    w.String(k.name);
    w.Key("key");
    w.String(k.key.empty() ? "" : "********");
    w.EndObject();
  }
  w.EndArray();
}

Entry<Config> clients_entry() {
  return Entry<Config>("clients", parse_clients, dump_clients,
                       [](const std::string&, std::vector<ConfigKey>& out) {
                         out.push_back({"clients[].name", false});
                         out.push_back({"clients[].key", true});
                       });
}

constexpr bool kSecret = true;

// redis.url may carry a password inside it: the dump shows the URL with only
// the password masked (redis://:********@host:port/db), so it is not a
// whole-value secret like the keys marked kSecret.
Entry<RedisConfig> redis_url_entry() {
  return Entry<RedisConfig>(
      "url", [](Obj& o, RedisConfig& r) { o.str("url", r.url); },
      [](JsonOut& w, const RedisConfig& r) {
        w.Key("url");
        w.String(redis::mask_url(r.url));
      },
      [](const std::string& prefix, std::vector<ConfigKey>& out) { out.push_back({prefix + "url", false}); });
}

int shown_queue_share(const ThrottleConfig& t) { return t.queue_share_per_client(); }

// THE TABLE. To add a key, add one line to its section below, in the order
// --check-config should print it:
//   {"name", &Struct::member, {min, max}},                       int, size_t, double
//   {"name", &Struct::member, {}, kSecret, "what it is"},        secret, required
//   {"name", &Struct::member, {}, false, nullptr, "a, b, c"},    one of a list
// (bools, strings and string arrays need no range; prefix each line with
// Field<Struct> as below). A new section (as redis.* below) is a struct member of
// Config, one section("redis", &Config::redis, Entries<RedisConfig>{...})
// block here, and, for checks across keys, one call in check_root to a
// function that may live in its own file (config_redis.cpp:
// `check_redis_config`).
// The "config schema:" tests in config_test.cpp check every line: the key
// reaches the dump, secret-looking names are marked kSecret and masked.
const Entries<Config>& root_entries() {
  static const Entries<Config> kRoot = {
      Field<Config>{"listen", &Config::listen},
      Field<Config>{"database", &Config::database},
      Field<Config>{"threads", &Config::threads, {0, 256}},
      section("log", &Config::log,
              Entries<LogConfig>{
                  Field<LogConfig>{"level", &LogConfig::level, {}, false, nullptr, "debug, info, warn, error"},
                  Field<LogConfig>{"access", &LogConfig::access},
              }),
      clients_entry(),
      section("upstream", &Config::upstream,
              Entries<UpstreamConfig>{
                  Field<UpstreamConfig>{"plain_http_hosts", &UpstreamConfig::plain_http_hosts},
                  Field<UpstreamConfig>{"connect_timeout_ms", &UpstreamConfig::connect_timeout_ms, {1, 600000}},
                  Field<UpstreamConfig>{"request_timeout_ms", &UpstreamConfig::request_timeout_ms, {1, 600000}},
                  Field<UpstreamConfig>{"ca_file", &UpstreamConfig::ca_file},
                  Field<UpstreamConfig>{"max_response_bytes", &UpstreamConfig::max_response_bytes, {1024, 1ull << 30}},
                  Field<UpstreamConfig>{"max_connections_per_origin", &UpstreamConfig::max_connections_per_origin, {1, 1024}},
              }),
      section("throttle", &Config::throttle,
              Entries<ThrottleConfig>{
                  Field<ThrottleConfig>{"max_wait_s", &ThrottleConfig::max_wait_s, {0, 3600}},
                  Field<ThrottleConfig>{"margin_ms", &ThrottleConfig::margin_ms, {0, 10000}},
                  Field<ThrottleConfig>{"reserve_tokens", &ThrottleConfig::reserve_tokens, {0, 100}},
                  Field<ThrottleConfig>{"max_queue", &ThrottleConfig::max_queue, {1, 1000000}},
                  Field<ThrottleConfig>{"max_queue_per_client", &ThrottleConfig::max_queue_per_client, {0, 1000000},
                                        false, nullptr, nullptr, shown_queue_share},
                  named("adaptive", &ThrottleConfig::adaptive,
                        Entries<AdaptiveConfig>{
                            Field<AdaptiveConfig>{"enabled", &AdaptiveConfig::enabled},
                            Field<AdaptiveConfig>{"ceiling_per_s", &AdaptiveConfig::ceiling_per_s, {0, 100000}},
                            Field<AdaptiveConfig>{"floor_per_s", &AdaptiveConfig::floor_per_s, {0, 100000}},
                            Field<AdaptiveConfig>{"step_per_s", &AdaptiveConfig::step_per_s, {0, 100000}},
                            Field<AdaptiveConfig>{"decrease", &AdaptiveConfig::decrease, {0, 1, true}},
                            Field<AdaptiveConfig>{"quiet_s", &AdaptiveConfig::quiet_s, {1, 86400}},
                        },
                        Named<AdaptiveConfig>{adaptive_named, check_adaptive}),
                  named("buckets", &ThrottleConfig::buckets,
                        Entries<BucketConfig>{
                            Field<BucketConfig>{"capacity", &BucketConfig::capacity, {1, 100000}},
                            Field<BucketConfig>{"restore_per_s", &BucketConfig::restore_per_s, {0, 100000, true}},
                        },
                        Named<BucketConfig>{bucket_named}),
              }),
      section("mws", &Config::mws,
              Entries<MwsConfig>{
                  Field<MwsConfig>{"endpoint", &MwsConfig::endpoint},
                  Field<MwsConfig>{"check_interval_s", &MwsConfig::check_interval_s, {0, 86400 * 7}},
                  Field<MwsConfig>{"listing_quality_ttl_s", &MwsConfig::listing_quality_ttl_s, {0, 86400 * 30}},
                  Field<MwsConfig>{"max_stale_s", &MwsConfig::max_stale_s, {0, 86400 * 365}},
                  Field<MwsConfig>{"max_pages", &MwsConfig::max_pages, {1, 1000}},
                  named("accounts", &MwsConfig::accounts,
                        Entries<MwsAccount>{
                            Field<MwsAccount>{"seller_id", &MwsAccount::seller_id, {}, false,
                                              "the seller's merchant token, e.g. A1XEXAMPLEDF"},
                            Field<MwsAccount>{"access_key_id", &MwsAccount::access_key_id, {}, kSecret,
                                              "the MWS AWSAccessKeyId"},
                            Field<MwsAccount>{"secret_key", &MwsAccount::secret_key, {}, kSecret, "the MWS secret key"},
                            Field<MwsAccount>{"auth_token", &MwsAccount::auth_token, {}, kSecret},
                        },
                        Named<MwsAccount>{account_named<MwsAccount>}),
              }),
      section("ads", &Config::ads,
              Entries<AdsConfig>{
                  Field<AdsConfig>{"endpoint", &AdsConfig::endpoint},
                  Field<AdsConfig>{"token_endpoint", &AdsConfig::token_endpoint},
                  Field<AdsConfig>{"cache_ttl_s", &AdsConfig::cache_ttl_s, {0, 86400 * 30}},
                  Field<AdsConfig>{"token_refresh_margin_s", &AdsConfig::token_refresh_margin_s, {0, 3000}},
                  Field<AdsConfig>{"max_stale_s", &AdsConfig::max_stale_s, {0, 86400 * 365}},
                  Field<AdsConfig>{"max_asins", &AdsConfig::max_asins, {1, 10000}},
                  named("accounts", &AdsConfig::accounts,
                        Entries<AdsAccount>{
                            Field<AdsAccount>{"region", &AdsAccount::region, {}, false, nullptr, "NA, EU, FE"},
                            Field<AdsAccount>{"client_id", &AdsAccount::client_id, {}, false,
                                              "the LWA client id, amzn1.application-oa2-client...."},
                            Field<AdsAccount>{"client_secret", &AdsAccount::client_secret, {}, kSecret,
                                              "the LWA client secret"},
                            Field<AdsAccount>{"refresh_token", &AdsAccount::refresh_token, {}, kSecret,
                                              "the LWA refresh token, Atzr|..."},
                            Field<AdsAccount>{"profile_id", &AdsAccount::profile_id},
                        },
                        Named<AdsAccount>{account_named<AdsAccount>, check_ads_account}),
              }),
      section("cache", &Config::cache,
              Entries<CacheConfig>{
                  Field<CacheConfig>{"memory_entries", &CacheConfig::memory_entries, {0, 100000000}},
                  Field<CacheConfig>{"memory_bytes", &CacheConfig::memory_bytes, {0, 1ull << 40}},
                  Field<CacheConfig>{"max_db_bytes", &CacheConfig::max_db_bytes, {1ull << 20, 1ull << 40}},
                  Field<CacheConfig>{"prune_interval_s", &CacheConfig::prune_interval_s, {1, 86400}},
                  Field<CacheConfig>{"refresh_ahead", &CacheConfig::refresh_ahead},
                  Field<CacheConfig>{"refresh_hot_s", &CacheConfig::refresh_hot_s, {1, 86400 * 7}},
              }),
      section("redis", &Config::redis,
              Entries<RedisConfig>{
                  redis_url_entry(),
                  Field<RedisConfig>{"key_prefix", &RedisConfig::key_prefix},
                  Field<RedisConfig>{"timeout_ms", &RedisConfig::timeout_ms, {1, 60000}},
                  Field<RedisConfig>{"replicas", &RedisConfig::replicas, {1, 1000}},
              }),
      Field<Config>{"max_header_bytes", &Config::max_header_bytes, {1024, 1 << 20}},
      Field<Config>{"max_body_bytes", &Config::max_body_bytes, {1024, 64 << 20}},
      Field<Config>{"read_timeout_ms", &Config::read_timeout_ms, {100, 600000}},
      Field<Config>{"idle_timeout_ms", &Config::idle_timeout_ms, {100, 3600000}},
      Field<Config>{"drain_timeout_ms", &Config::drain_timeout_ms, {0, 600000}},
      Field<Config>{"max_connections", &Config::max_connections, {0, 1 << 24}},
      Field<Config>{"header_timeout_ms", &Config::header_timeout_ms, {100, 600000}},
  };
  return kRoot;
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
  for (const auto& e : root_entries()) e.parse(root, c);
  root.finish();
  check_root(c, ctx);
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
  JsonOut w(sb);
  w.SetIndent(' ', 2);
  w.StartObject();
  for (const auto& e : root_entries()) e.dump(w, c);
  w.EndObject();
  return std::string(sb.GetString()) + "\n";
}

std::vector<ConfigKey> config_keys() {
  std::vector<ConfigKey> out;
  for (const auto& e : root_entries()) e.keys("", out);
  return out;
}

}  // namespace recgate
