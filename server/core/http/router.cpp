// Route matching, 404/405/401 answers and the fast path (router.hpp).
#include "core/http/router.hpp"

#include <openssl/crypto.h>

#include "core/log.hpp"

namespace recgate::http {
namespace {

namespace bhttp = boost::beast::http;

std::array<unsigned char, SHA256_DIGEST_LENGTH> digest(std::string_view s) {
  std::array<unsigned char, SHA256_DIGEST_LENGTH> d{};
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), d.data());
  return d;
}

// Empty segments ("//") are skipped, as in the pattern.
bool next_segment(std::string_view path, std::size_t& pos, std::string_view& seg) {
  while (pos < path.size() && path[pos] == '/') ++pos;
  if (pos >= path.size()) return false;
  auto j = path.find('/', pos);
  if (j == std::string_view::npos) j = path.size();
  seg = path.substr(pos, j - pos);
  pos = j;
  return true;
}

Response unauthorized() {
  Problem p = make_problem(401, "unauthorized",
                           "this recgate requires \"Authorization: Bearer <key>\" with a configured client key");
  p.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"recgate\"");
  return problem_response(p);
}

Response method_not_allowed(Context& ctx, const std::string& allow) {
  ctx.route_name = "method_not_allowed";
  Problem p = make_problem(405, "method_not_allowed",
                           std::string(ctx.req.method_string()) + " is not allowed on " + ctx.path +
                               "; allowed: " + allow);
  p.headers.emplace_back("Allow", allow);
  return problem_response(p);
}

Response not_found(Context& ctx) {
  ctx.route_name = "not_found";
  return problem_response(make_problem(404, "not_found", "no route for " + ctx.path + "; see the README for the API"));
}

}  // namespace

ClientKeys::ClientKeys(const std::vector<Client>& clients) {
  for (const auto& c : clients) {
    digests_.push_back(digest(c.key));
    names_.push_back(c.name);
  }
}

bool ClientKeys::admit(Context& ctx) const {
  if (digests_.empty()) return true;
  std::string_view h = ctx.header("Authorization");
  constexpr std::string_view prefix = "Bearer ";
  if (h.size() <= prefix.size() || h.substr(0, prefix.size()) != prefix) return false;
  const Digest d = digest(h.substr(prefix.size()));
  std::size_t match = digests_.size();
  for (std::size_t i = 0; i < digests_.size(); ++i) {  // every key compared: no early exit
    const bool same = CRYPTO_memcmp(digests_[i].data(), d.data(), d.size()) == 0;
    match = same ? i : match;
  }
  if (match == digests_.size()) return false;
  ctx.client = names_[match];
  return true;
}

Router::Router(std::vector<Route> routes, ClientKeys keys) : routes_(std::move(routes)), keys_(std::move(keys)) {
  for (const auto& r : routes_) compiled_.push_back(compile(r.pattern));
}

Router::Compiled Router::compile(std::string_view p) {
  Compiled c;
  std::size_t pos = 0;
  std::string_view seg;
  while (next_segment(p, pos, seg)) {
    if (seg.size() > 2 && seg.front() == '{' && seg.back() == '}')
      c.segments.push_back({std::string(seg.substr(1, seg.size() - 2)), true});
    else
      c.segments.push_back({std::string(seg), false});
  }
  c.trailing_slash = p.size() > 1 && p.back() == '/';
  return c;
}

bool Router::matches(const Compiled& c, std::string_view path) {
  if (c.trailing_slash != (path.size() > 1 && path.back() == '/')) return false;
  std::size_t pos = 0;
  std::string_view seg;
  for (const auto& ps : c.segments) {
    if (!next_segment(path, pos, seg)) return false;
    if (!ps.param && ps.text != seg) return false;
  }
  return !next_segment(path, pos, seg);
}

void Router::bind_params(const Compiled& c, std::string_view path, Context& ctx) {
  ctx.path_params.clear();
  std::size_t pos = 0;
  std::string_view seg;
  for (const auto& ps : c.segments) {
    next_segment(path, pos, seg);
    if (ps.param) ctx.path_params.emplace_back(ps.text, std::string(seg));
  }
}

Router::Decision Router::route(Context& ctx) const {
  std::string allow;
  for (std::size_t i = 0; i < routes_.size(); ++i) {
    const Route& r = routes_[i];
    if (!matches(compiled_[i], ctx.path)) continue;
    // HEAD is served by the GET route; the session sends the headers only.
    const bool head_as_get = ctx.req.method() == bhttp::verb::head && r.method == bhttp::verb::get;
    if (r.method != ctx.req.method() && !head_as_get) {
      if (!allow.empty()) allow += ", ";
      allow += std::string(bhttp::to_string(r.method));
      if (r.method == bhttp::verb::get) allow += ", HEAD";
      continue;
    }
    bind_params(compiled_[i], ctx.path, ctx);
    ctx.route_name = r.name;
    return enter(r, ctx);
  }
  if (!allow.empty()) return {nullptr, method_not_allowed(ctx, allow)};
  return {nullptr, not_found(ctx)};
}

// The key check, then the fast path: a hit is answered before any coroutine.
Router::Decision Router::enter(const Route& r, Context& ctx) const {
  if (r.auth && !keys_.admit(ctx)) return {nullptr, unauthorized()};
  if (r.fast) {
    try {
      if (auto res = r.fast(ctx)) return {nullptr, std::move(res)};
    } catch (const std::exception& e) {
      log_error("fast path failed", {{"request_id", ctx.request_id}, {"error", e.what()}});
    }
  }
  return {&r, std::nullopt};
}

}  // namespace recgate::http
