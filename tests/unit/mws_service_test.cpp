// Service-level tests of MwsService against a scripted fake upstream (the
// MWS answers queued in order, each request's Action recorded): no sockets,
// a temporary SQLite file, one io_context run to completion per request.
#include <doctest/doctest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "core/config.hpp"
#include "core/services/mws_service.hpp"
#include "core/store.hpp"
#include "core/throttle/throttler.hpp"
#include "core/upstream/call.hpp"

using namespace recgate;
namespace net = boost::asio;
namespace bhttp = boost::beast::http;

namespace {

std::string fixture(const std::string& name) {
  std::ifstream in(std::string(RECGATE_SOURCE_DIR) + "/tests/fixtures/mws/" + name);
  REQUIRE(in.good());
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

upstream::Result answer(int status, std::string body) {
  upstream::Result r;
  r.response.status = status;
  r.response.body = std::move(body);
  return r;
}

const std::string kCorrupted =
    "<?xml version=\"1.0\"?><ErrorResponse xmlns=\"http://mws.amazonaws.com/doc/2009-01-01/\"><Error>"
    "<Type>Sender</Type><Code>NextTokenCorrupted</Code><Message>bad token</Message></Error>"
    "<RequestId>r-1</RequestId></ErrorResponse>";

// Answers in order; records each request's Action (from the signed form body).
class ScriptedUpstream final : public upstream::Upstream {
 public:
  std::deque<upstream::Result> script;
  std::vector<std::string> actions;

  net::awaitable<upstream::Result> request(upstream::Request req) override {
    const auto at = req.body.find("Action=");
    actions.push_back(req.body.substr(at + 7, req.body.find('&', at) - at - 7));
    REQUIRE_FALSE(script.empty());
    upstream::Result r = std::move(script.front());
    script.pop_front();
    co_return r;
  }
};

struct Call {
  http::Request req;
  http::Context ctx{req, {}, {}, {}, {}, {}, std::chrono::steady_clock::now(), {}, {}, {}};
  std::optional<http::Response> res;

  explicit Call(const std::string& category) {
    req.method(bhttp::verb::get);
    ctx.query = {{"marketplace", "ATVPDKIKX0DER"}, {"category", category}};
    ctx.path_params = {{"account", "main"}};
    ctx.request_id = "test";
    ctx.client = "test-client";
  }
};

net::awaitable<void> run_call(MwsService* svc, Call* call) { call->res = co_await svc->recommendations(call->ctx); }

struct Rig {
  std::filesystem::path dir;
  Config cfg;
  net::io_context io;
  std::unique_ptr<Store> store;
  std::unique_ptr<Throttler> throttler;
  ScriptedUpstream up;
  std::unique_ptr<MwsService> svc;

  Rig() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "rg-mws-svc-XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    dir = tmpl;
    cfg.mws.endpoint = "http://mws.test/";
    cfg.mws.accounts["main"] = MwsAccount{"A1XEXAMPLEDF", "AKIAEXAMPLE", "secret", ""};
    store = Store::open((dir / "db.sqlite").string());
    throttler = std::make_unique<Throttler>(cfg.throttle, nullptr);
    svc = std::make_unique<MwsService>(cfg, *store, up, *throttler, io.get_executor());
  }
  ~Rig() {
    svc.reset();
    throttler.reset();
    store.reset();
    std::filesystem::remove_all(dir);
  }

  http::Response one(const std::string& category) {
    Call c(category);
    net::co_spawn(io, run_call(svc.get(), &c), net::detached);
    io.restart();
    io.run();
    REQUIRE(c.res);
    return std::move(*c.res);
  }
};

}  // namespace

TEST_CASE("mws service: NextTokenCorrupted restarts the listing once from ListRecommendations") {
  Rig rig;
  rig.up.script = {answer(200, fixture("last_updated.xml")), answer(200, fixture("list_recommendations.xml")),
                   answer(400, kCorrupted), answer(200, fixture("list_recommendations.xml")),
                   answer(200, fixture("list_recommendations_by_next_token.xml"))};
  auto res = rig.one("Inventory");
  CHECK(res.result_int() == 200);
  CHECK(rig.up.actions == std::vector<std::string>{"GetLastUpdatedTimeForRecommendations", "ListRecommendations",
                                                   "ListRecommendationsByNextToken", "ListRecommendations",
                                                   "ListRecommendationsByNextToken"});
  // The restarted listing reached its last page (the ByNextToken fixture's member).
  CHECK(res.body().find("\"Bolt <M6> & nut\"") != std::string::npos);
}

TEST_CASE("mws service: a second NextTokenCorrupted is the client's 502") {
  Rig rig;
  rig.up.script = {answer(200, fixture("last_updated.xml")), answer(200, fixture("list_recommendations.xml")),
                   answer(400, kCorrupted), answer(200, fixture("list_recommendations.xml")),
                   answer(400, kCorrupted)};
  auto res = rig.one("Inventory");
  CHECK(res.result_int() == 502);
  CHECK(res.body().find("NextTokenCorrupted") != std::string::npos);
  CHECK(rig.up.actions.size() == 5);
}
