// The route table and what it applies to every request before a handler
// runs: path and method matching (404, 405 with Allow), the client-key check
// for routes that declare `auth` (401), and a route's synchronous fast path.
// Built once, const afterwards; shared by every I/O thread without locks.
#pragma once

#include <openssl/sha.h>

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/http/message.hpp"

namespace recgate::http {

struct Route {
  Verb method;
  std::string pattern;  // "/v1/mws/{account}/recommendations": {x} matches one segment
  std::string name;     // metrics label, e.g. "mws_recommendations"
  Handler handler;
  // Watch the connection while the handler runs and cancel the handler when
  // the client goes away (routes that may queue for quota).
  bool watch_disconnect = false;
  // Tried before `handler`, after the key check (cache hits); may be empty.
  FastPath fast = nullptr;
  // A configured client key is required (ClientKeys); none configured: open.
  bool auth = false;
};

// The configured clients' keys, kept as SHA-256 digests and compared in
// constant time against "Authorization: Bearer KEY".
class ClientKeys {
 public:
  struct Client {
    std::string name;
    std::string key;
  };
  ClientKeys() = default;  // no keys: every request is admitted
  explicit ClientKeys(const std::vector<Client>& clients);
  // True when no key is configured or the request carries one of them; a
  // match names the client in ctx.client (its quota share is counted by name).
  bool admit(Context& ctx) const;

 private:
  using Digest = std::array<unsigned char, SHA256_DIGEST_LENGTH>;
  std::vector<Digest> digests_;
  std::vector<std::string> names_;  // parallel to digests_
};

class Router {
 public:
  // Implicit from a bare table: servers without client keys (the sandbox, tests).
  Router(std::vector<Route> routes, ClientKeys keys = {});

  // What routing decided: an answer already (404, 405, 401, or the fast
  // path's), or the route whose handler the session runs next.
  struct Decision {
    const Route* route = nullptr;
    std::optional<Response> answer;
  };
  // Matches ctx.path and the method; sets ctx.route_name and ctx.path_params.
  Decision route(Context& ctx) const;

 private:
  // A pattern split once at start-up, matched against a path without allocating.
  struct Segment {
    std::string text;  // literal text, or the parameter's name
    bool param = false;
  };
  struct Compiled {
    std::vector<Segment> segments;
    bool trailing_slash = false;
  };
  static Compiled compile(std::string_view pattern);
  static bool matches(const Compiled& c, std::string_view path);
  static void bind_params(const Compiled& c, std::string_view path, Context& ctx);
  Decision enter(const Route& r, Context& ctx) const;

  std::vector<Route> routes_;
  std::vector<Compiled> compiled_;  // compiled_[i] is routes_[i].pattern, split
  ClientKeys keys_;
};

}  // namespace recgate::http
