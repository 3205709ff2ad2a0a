// Unit tests for core/http/router: path and method matching (params, empty
// segments, trailing slash), 404 and 405 with Allow, HEAD on GET routes, the
// client-key check on `auth` routes (401 before the fast path runs), and the
// fast path (its answer, and the handler after it declines or throws).
#include <doctest/doctest.h>

#include <stdexcept>

#include "core/http/router.hpp"

using namespace recgate::http;

namespace {

boost::asio::awaitable<Response> never(Context&) { co_return text_response(200, "handler", "text/plain"); }

Request request(Verb v, std::string target, std::string authorization = "") {
  Request req{v, target, 11};
  if (!authorization.empty()) req.set("Authorization", authorization);
  return req;
}

// ctx.path as the session sets it: the target's path, decoded.
Context context(const Request& req) {
  Context ctx{req, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, "10.0.0.1"};
  ctx.path = std::string(req.target());
  return ctx;
}

ClientKeys keys() { return ClientKeys({{"shop", "k-shop"}, {"ops", "k-ops"}}); }

}  // namespace

TEST_CASE("router: patterns bind {params}, empty segments are skipped, a trailing slash must match") {
  const Router router({{Verb::get, "/v1/mws/{account}/recommendations", "recs", never},
                       {Verb::get, "/dir/", "dir", never}});
  struct Row {
    const char* path;
    const char* route;  // "" for no match (404)
    const char* account;
  };
  const Row rows[] = {
      {"/v1/mws/acme/recommendations", "recs", "acme"}, {"//v1//mws/acme/recommendations", "recs", "acme"},
      {"/v1/mws/recommendations", "", ""},              {"/v1/mws/a/b/recommendations", "", ""},
      {"/v1/mws/acme/recommendations/", "", ""},        {"/dir/", "dir", ""},
      {"/dir", "", ""},
  };
  for (const auto& r : rows) {
    CAPTURE(r.path);
    const Request req = request(Verb::get, r.path);
    Context ctx = context(req);
    const Router::Decision d = router.route(ctx);
    if (*r.route == '\0') {
      REQUIRE(d.answer);
      CHECK(d.answer->result_int() == 404);
      CHECK(ctx.route_name == "not_found");
    } else {
      REQUIRE(d.route);
      CHECK(d.route->name == r.route);
      CHECK(ctx.route_name == r.route);
      CHECK(ctx.param("account") == r.account);
    }
  }
}

TEST_CASE("router: a known path with another method is 405 naming what is allowed, HEAD is served by GET") {
  const Router router({{Verb::get, "/v1/cache", "get", never}, {Verb::delete_, "/v1/cache", "purge", never}});
  const Request post = request(Verb::post, "/v1/cache");
  Context ctx = context(post);
  Router::Decision d = router.route(ctx);
  REQUIRE(d.answer);
  CHECK(d.answer->result_int() == 405);
  CHECK((*d.answer)["Allow"] == "GET, HEAD, DELETE");
  CHECK(d.answer->body().find("POST is not allowed on /v1/cache; allowed: GET, HEAD, DELETE") != std::string::npos);
  CHECK((*d.answer)["Content-Type"] == "application/problem+json");

  const Request head = request(Verb::head, "/v1/cache");
  Context hctx = context(head);
  d = router.route(hctx);
  REQUIRE(d.route);
  CHECK(d.route->name == "get");
}

TEST_CASE("router: an auth route without a configured key is 401 before its fast path runs, a key names the client") {
  int fast_calls = 0;
  const Router router({{.method = Verb::get,
                        .pattern = "/hit",
                        .name = "hit",
                        .handler = never,
                        .fast = [&fast_calls](Context&) -> std::optional<Response> {
                          ++fast_calls;
                          return text_response(200, "fast", "text/plain");
                        },
                        .auth = true},
                       {Verb::get, "/open", "open", never}},
                      keys());
  for (const char* bad : {"", "Bearer", "Bearer ", "Bearer k-shopX", "Basic k-shop", "bearer k-shop"}) {
    CAPTURE(bad);
    const Request req = request(Verb::get, "/hit", bad);
    Context ctx = context(req);
    const Router::Decision d = router.route(ctx);
    REQUIRE(d.answer);
    CHECK(d.answer->result_int() == 401);
    CHECK((*d.answer)["WWW-Authenticate"] == "Bearer realm=\"recgate\"");
    CHECK(ctx.client == "10.0.0.1");
  }
  CHECK(fast_calls == 0);

  const Request ok = request(Verb::get, "/hit", "Bearer k-ops");
  Context ctx = context(ok);
  const Router::Decision d = router.route(ctx);
  REQUIRE(d.answer);
  CHECK(d.answer->body() == "fast");
  CHECK(ctx.client == "ops");
  CHECK(fast_calls == 1);

  const Request open = request(Verb::get, "/open");  // no auth declared: no key needed
  Context octx = context(open);
  CHECK(router.route(octx).route != nullptr);
}

TEST_CASE("router: with no client keys configured an auth route is open") {
  const Router router({{.method = Verb::get, .pattern = "/s", .name = "s", .handler = never, .auth = true}});
  const Request req = request(Verb::get, "/s");
  Context ctx = context(req);
  CHECK(router.route(ctx).route != nullptr);
}

TEST_CASE("router: a fast path that declines or throws leaves the request to the handler") {
  const Router router({{.method = Verb::get,
                        .pattern = "/declines",
                        .name = "declines",
                        .handler = never,
                        .fast = [](Context&) -> std::optional<Response> { return std::nullopt; }},
                       {.method = Verb::get,
                        .pattern = "/throws",
                        .name = "throws",
                        .handler = never,
                        .fast = [](Context&) -> std::optional<Response> { throw std::runtime_error("boom"); }}});
  for (const char* path : {"/declines", "/throws"}) {
    CAPTURE(path);
    const Request req = request(Verb::get, path);
    Context ctx = context(req);
    const Router::Decision d = router.route(ctx);
    CHECK_FALSE(d.answer);
    REQUIRE(d.route);
    CHECK(d.route->name == std::string(path + 1));
  }
}
