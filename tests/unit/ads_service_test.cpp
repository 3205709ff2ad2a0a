// Service-level tests of AdsService against a scripted fake upstream (LWA
// and Ads answers queued separately, requests recorded): no sockets, a
// temporary SQLite file, one io_context run to completion per step.
#include <doctest/doctest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <cstdlib>
#include <deque>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/config.hpp"
#include "core/services/ads_service.hpp"
#include "core/store.hpp"
#include "core/throttle/throttler.hpp"
#include "core/upstream/call.hpp"

using namespace recgate;
namespace net = boost::asio;
namespace bhttp = boost::beast::http;

namespace {

constexpr const char* kTokenUrl = "http://lwa.test/auth/o2/token";
constexpr const char* kAdsBase = "http://ads.test";

upstream::Result answer(int status, std::string body) {
  upstream::Result r;
  r.response.status = status;
  r.response.body = std::move(body);
  return r;
}

upstream::Result token(const std::string& access) {
  return answer(200, R"({"access_token":")" + access + R"(","token_type":"bearer","expires_in":3600})");
}

// LWA and Ads answers in two scripts; an unscripted call fails the test.
class ScriptedUpstream final : public upstream::Upstream {
 public:
  std::deque<upstream::Result> lwa;
  std::deque<upstream::Result> ads;
  std::vector<upstream::Request> lwa_sent;
  std::vector<upstream::Request> ads_sent;

  net::awaitable<upstream::Result> request(upstream::Request req) override {
    const bool is_lwa = req.url == kTokenUrl;
    auto& script = is_lwa ? lwa : ads;
    (is_lwa ? lwa_sent : ads_sent).push_back(std::move(req));
    REQUIRE_FALSE(script.empty());
    upstream::Result r = std::move(script.front());
    script.pop_front();
    co_return r;
  }
};

std::string header_of(const upstream::Request& r, const std::string& name) {
  for (const auto& [k, v] : r.headers)
    if (k == name) return v;
  return {};
}

struct Call {
  http::Request req;
  http::Context ctx{req, {}, {}, {}, {}, {}, std::chrono::steady_clock::now(), {}, {}, {}};
  std::optional<http::Response> res;

  Call(const std::string& body, const std::string& cache_control) {
    req.method(bhttp::verb::post);
    req.target("/v1/ads/main/product-recommendations");
    req.set(bhttp::field::content_type, "application/json");
    if (!cache_control.empty()) req.set(bhttp::field::cache_control, cache_control);
    req.body() = body;
    ctx.path_params = {{"account", "main"}};
    ctx.request_id = "test";
    ctx.client = "test-client";
  }
};

net::awaitable<void> run_call(AdsService* svc, Call* call) { call->res = co_await svc->product_recommendations(call->ctx); }

struct Rig {
  std::filesystem::path dir;
  Config cfg;
  net::io_context io;
  std::unique_ptr<Store> store;
  std::unique_ptr<Throttler> throttler;
  ScriptedUpstream up;
  std::unique_ptr<AdsService> svc;

  Rig() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "rg-ads-svc-XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    dir = tmpl;
    cfg.ads.endpoint = kAdsBase;
    cfg.ads.token_endpoint = kTokenUrl;
    cfg.ads.accounts["main"] = AdsAccount{"NA", "amzn1.application-oa2-client.t", "client-secret", "Atzr|refresh", "1"};
    store = Store::open((dir / "db.sqlite").string());
    throttler = std::make_unique<Throttler>(cfg.throttle, nullptr);
    svc = std::make_unique<AdsService>(cfg, *store, up, *throttler, io.get_executor());
  }
  ~Rig() {
    svc.reset();
    throttler.reset();
    store.reset();
    std::filesystem::remove_all(dir);
  }

  // Runs the calls concurrently to completion.
  void run(std::vector<Call*> calls) {
    for (Call* c : calls) net::co_spawn(io, run_call(svc.get(), c), net::detached);
    io.restart();
    io.run();
    for (Call* c : calls) REQUIRE(c->res);
  }
  http::Response one(const std::string& body, const std::string& cache_control = "") {
    Call c(body, cache_control);
    run({&c});
    return std::move(*c.res);
  }
};

const std::string kBody = R"({"adAsins":["B09LJWZT6G"]})";

std::string cache_status(const http::Response& r) { return std::string(r["Cache-Status"]); }

}  // namespace

TEST_CASE("ads service: a 401 refreshes the LWA token once and retries with the new one") {
  Rig rig;
  rig.up.lwa = {token("Atza|one"), token("Atza|two")};
  rig.up.ads = {answer(401, R"({"code":"UNAUTHORIZED"})"), answer(200, R"({"recommendations":[]})")};
  auto res = rig.one(kBody);
  CHECK(res.result_int() == 200);
  CHECK(res.body() == R"({"recommendations":[]})");
  REQUIRE(rig.up.ads_sent.size() == 2);
  CHECK(header_of(rig.up.ads_sent[0], "Authorization") == "Bearer Atza|one");
  CHECK(header_of(rig.up.ads_sent[1], "Authorization") == "Bearer Atza|two");
  CHECK(rig.up.lwa_sent.size() == 2);
}

TEST_CASE("ads service: a second 401 is the client's 502, not a loop") {
  Rig rig;
  rig.up.lwa = {token("Atza|one"), token("Atza|two")};
  rig.up.ads = {answer(401, R"({"code":"UNAUTHORIZED"})"), answer(401, R"({"code":"UNAUTHORIZED"})")};
  auto res = rig.one(kBody);
  CHECK(res.result_int() == 502);
  CHECK(rig.up.ads_sent.size() == 2);
}

TEST_CASE("ads service: an upstream failure serves the stored answer, marked stale") {
  Rig rig;
  rig.up.lwa = {token("Atza|one")};
  rig.up.ads = {answer(200, R"({"first":true})"), answer(500, R"({"code":"INTERNAL_ERROR"})")};
  auto miss = rig.one(kBody);
  REQUIRE(miss.result_int() == 200);
  CHECK(cache_status(miss).find("fwd=miss") != std::string::npos);
  auto hit = rig.one(kBody);
  CHECK(cache_status(hit).find("hit") != std::string::npos);
  CHECK(rig.up.ads_sent.size() == 1);
  // no-cache forces the upstream call; its failure falls back to the stored answer.
  auto stale = rig.one(kBody, "no-cache");
  CHECK(stale.result_int() == 200);
  CHECK(stale.body() == R"({"first":true})");
  CHECK(cache_status(stale).find("stale") != std::string::npos);
  CHECK(rig.up.ads_sent.size() == 2);
}

TEST_CASE("ads service: identical concurrent requests make one upstream call") {
  Rig rig;
  rig.up.lwa = {token("Atza|one")};
  rig.up.ads = {answer(200, R"({"shared":true})")};
  Call a(kBody, ""), b(kBody, ""), c(kBody, "");
  rig.run({&a, &b, &c});
  CHECK(rig.up.ads_sent.size() == 1);
  CHECK(rig.up.lwa_sent.size() == 1);
  for (Call* x : {&a, &b, &c}) {
    CHECK(x->res->result_int() == 200);
    CHECK(x->res->body() == R"({"shared":true})");
  }
}
