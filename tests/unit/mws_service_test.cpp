// Service-level tests of MwsService against a scripted fake upstream (the
// MWS answers queued in order, each request's Action recorded) and a fake
// clock: plain data in and out, no HTTP, no sockets (tests/support/service_rig.hpp).
#include <doctest/doctest.h>

#include <deque>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "../support/mws_fixture.hpp"
#include "../support/service_rig.hpp"
#include "core/mws/model.hpp"
#include "core/services/mws_service.hpp"
#include "core/upstream/call.hpp"

using namespace recgate;
namespace net = boost::asio;

namespace {

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
    if (script.empty()) co_return answer(599, "unscripted");
    upstream::Result r = std::move(script.front());
    script.pop_front();
    co_return r;
  }
};

using Result = std::optional<Expected<MwsAnswer>>;

net::awaitable<void> ask(MwsService* svc, mws::Query q, Result* out) {
  svc::RequestOptions o;
  o.client = "test-client";
  o.request_id = "test";
  out->emplace(co_await svc->recommendations("main", q, o));
}

struct Rig : rgtest::ServiceRig<MwsService, ScriptedUpstream> {
  Rig() : ServiceRig("rg-mws-svc") {
    cfg.mws.endpoint = "http://mws.test/";
    cfg.mws.accounts["main"] = MwsAccount{"A1XEXAMPLEDF", "AKIAEXAMPLE", "secret", ""};
    start();
  }

  Expected<MwsAnswer> one(const std::string& category) {
    auto q = mws::validate_recommendations_query({{"marketplace", "ATVPDKIKX0DER"}, {"category", category}});
    REQUIRE(q);
    Result r;
    spawn(ask(svc.get(), *q, &r));
    run_until([&] { return r.has_value(); });
    return std::move(*r);
  }
};

}  // namespace

TEST_CASE("mws service: NextTokenCorrupted restarts the listing once from ListRecommendations") {
  Rig rig;
  rig.up.script = {answer(200, rgtest::mws_fixture("last_updated.xml")), answer(200, rgtest::mws_fixture("list_recommendations.xml")),
                   answer(400, kCorrupted), answer(200, rgtest::mws_fixture("list_recommendations.xml")),
                   answer(200, rgtest::mws_fixture("list_recommendations_by_next_token.xml"))};
  auto res = rig.one("Inventory");
  REQUIRE(res);
  REQUIRE(res->categories.size() == 1);
  CHECK(rig.up.actions == std::vector<std::string>{"GetLastUpdatedTimeForRecommendations", "ListRecommendations",
                                                   "ListRecommendationsByNextToken", "ListRecommendations",
                                                   "ListRecommendationsByNextToken"});
  // The restarted listing reached its last page (the ByNextToken fixture's member).
  CHECK(res->categories[0].entry->body().find("\"Bolt <M6> & nut\"") != std::string::npos);
}

TEST_CASE("mws service: a second NextTokenCorrupted is the client's 502") {
  Rig rig;
  rig.up.script = {answer(200, rgtest::mws_fixture("last_updated.xml")), answer(200, rgtest::mws_fixture("list_recommendations.xml")),
                   answer(400, kCorrupted), answer(200, rgtest::mws_fixture("list_recommendations.xml")),
                   answer(400, kCorrupted)};
  auto res = rig.one("Inventory");
  REQUIRE_FALSE(res);
  CHECK(res.error().status == 502);
  CHECK(res.error().detail.find("NextTokenCorrupted") != std::string::npos);
  CHECK(rig.up.actions.size() == 5);
}

TEST_CASE("mws service: the snapshot is re-checked once mws.check_interval_s has passed on the injected clock") {
  Rig rig;
  rig.up.script = {answer(200, rgtest::mws_fixture("last_updated.xml")), answer(200, rgtest::mws_fixture("list_recommendations.xml")),
                   answer(200, rgtest::mws_fixture("list_recommendations_by_next_token.xml")),
                   answer(200, rgtest::mws_fixture("last_updated.xml"))};
  REQUIRE(rig.one("Inventory"));
  CHECK(rig.up.actions.size() == 3);
  rig.clock.now += rig.cfg.mws.check_interval_s * 1000 - 1;  // not yet due: a hit, no call
  auto hit = rig.one("Inventory");
  REQUIRE(hit);
  CHECK(hit->categories[0].outcome == cache::Outcome::hit);
  CHECK(hit->cache.age_s == rig.cfg.mws.check_interval_s - 1);
  CHECK(rig.up.actions.size() == 3);
  rig.clock.now += 2;  // due: one GetLastUpdatedTime; the list's time is unchanged, so it stays a hit
  auto rechecked = rig.one("Inventory");
  REQUIRE(rechecked);
  CHECK(rechecked->categories[0].outcome == cache::Outcome::hit);
  CHECK(rig.up.actions == std::vector<std::string>{"GetLastUpdatedTimeForRecommendations", "ListRecommendations",
                                                   "ListRecommendationsByNextToken",
                                                   "GetLastUpdatedTimeForRecommendations"});
}
