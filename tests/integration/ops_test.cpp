// [ops] and the operator-facing parts of [foundation]: /metrics parsed by the
// reference Prometheus parser with counters moving as requests are made,
// client keys, secrets absent from every output, and graceful drain
// (/readyz 503 while an in-flight request finishes, exit 0).
#include <doctest/doctest.h>
#include <signal.h>

#include <map>
#include <regex>
#include <thread>

#include "harness.hpp"

using namespace rgtest;

namespace {

const std::string kInventory = "/v1/mws/main/recommendations?marketplace=ATVPDKIKX0DER&category=Inventory";

// name{labels} -> value, via tests/tools/parse_metrics.py (prometheus_client).
std::map<std::string, double> scrape(int port, const TempDir& dir) {
  auto r = http_get(port, "/metrics");
  REQUIRE(r.status == 200);
  CHECK(r.header("content-type").find("text/plain; version=0.0.4") == 0);
  write_file(dir.file("metrics.txt"), r.body);
  Process p({"/usr/bin/python3", std::string(RECGATE_SOURCE_DIR) + "/tests/tools/parse_metrics.py", dir.file("metrics.txt")});
  REQUIRE_MESSAGE(p.wait_exit() == 0, p.output());
  std::map<std::string, double> out;
  static const std::regex line(R"(^(\S+\{[^}]*\}) (\S+)$)");
  for (const auto& l : p.lines()) {
    std::smatch m;
    if (std::regex_match(l, m, line)) out[m[1].str()] = std::stod(m[2].str());
  }
  REQUIRE(!out.empty());
  return out;
}

double get(const std::map<std::string, double>& m, const std::string& key) {
  auto it = m.find(key);
  return it == m.end() ? 0.0 : it->second;
}

}  // namespace

TEST_CASE("ops: /metrics parses with the reference parser and counters move as requests are made") {
  Sandbox sb;
  TempDir dir;
  Recgate rg(dir, test_config(dir, sb.port));
  auto before = scrape(rg.port, dir);
  CHECK(get(before, "recgate_build_info{version=\"0.1.0\"}") == 1.0);

  REQUIRE(http_get(rg.port, kInventory).header("cache-status") == "recgate; fwd=miss; stored");
  auto after_miss = scrape(rg.port, dir);
  REQUIRE(http_get(rg.port, kInventory).header("cache-status") == "recgate; hit");
  auto after_hit = scrape(rg.port, dir);

  const std::string miss = "recgate_cache_lookups_total{api=\"mws\",result=\"miss\"}";
  const std::string hit = "recgate_cache_lookups_total{api=\"mws\",result=\"hit\"}";
  const std::string list_calls =
      "recgate_upstream_requests_total{api=\"mws\",operation=\"ListRecommendations\",status=\"200\"}";
  const std::string http_ok =
      "recgate_http_requests_total{method=\"GET\",route=\"mws_recommendations\",status=\"200\"}";
  CHECK(get(after_miss, miss) == get(before, miss) + 1);
  CHECK(get(after_miss, hit) == get(before, hit));
  CHECK(get(after_miss, list_calls) == get(before, list_calls) + 1);
  CHECK(get(after_hit, hit) == get(after_miss, hit) + 1);
  CHECK(get(after_hit, miss) == get(after_miss, miss));
  CHECK(get(after_hit, list_calls) == get(after_miss, list_calls));  // a hit makes no upstream call
  CHECK(get(after_hit, http_ok) == get(before, http_ok) + 2);
  CHECK(get(after_hit, "recgate_http_request_duration_seconds_count{route=\"mws_recommendations\"}") >= 2);
  CHECK(get(after_hit, "recgate_upstream_request_duration_seconds_count{api=\"mws\",operation=\"ListRecommendations\"}") >= 1);
  CHECK(get(after_hit, "recgate_cache_entries{api=\"mws\"}") >= 1);
  CHECK(after_hit.count("recgate_bucket_tokens{account=\"main\",operation=\"mws.ListRecommendations\"}") == 1);
  CHECK(after_hit.count("recgate_bucket_waiters{account=\"main\",operation=\"mws.ListRecommendations\"}") == 1);

  // Open connections: the scrape's own, then two idle keep-alive ones more.
  // (A connection closed just before may take a moment to leave the count.)
  auto open_now = [&] { return get(scrape(rg.port, dir), "recgate_http_connections{}"); };
  CHECK(wait_until([&] { return open_now() == 1.0; }, std::chrono::seconds(10)));
  {
    KeepAlive a(rg.port), b(rg.port);
    REQUIRE(a.request("GET", "/healthz").status == 200);
    REQUIRE(b.request("GET", "/healthz").status == 200);
    CHECK(wait_until([&] { return open_now() == 3.0; }, std::chrono::seconds(10)));
  }
}

TEST_CASE("ops: client keys guard /v1 (constant-time compare) - health and metrics need none") {
  Sandbox sb;
  TempDir dir;
  Recgate rg(dir, test_config(dir, sb.port, "\"clients\":[{\"name\":\"pricing\",\"key\":\"${PRICING_KEY}\"}]"),
             {{"PRICING_KEY", "k3y-for-pricing-0123456789"}});
  auto none = http_get(rg.port, kInventory);
  CHECK(none.status == 401);
  CHECK(none.header("www-authenticate").find("Bearer") == 0);
  CHECK(none.body.find("\"code\":\"unauthorized\"") != std::string::npos);
  CHECK(http_get(rg.port, kInventory, {{"Authorization", "Bearer wrong"}}).status == 401);
  CHECK(http_get(rg.port, "/v1/status", {{"Authorization", "Bearer k3y-for-pricing-012345678"}}).status == 401);
  CHECK(http_get(rg.port, kInventory, {{"Authorization", "Bearer k3y-for-pricing-0123456789"}}).status == 200);
  CHECK(http_get(rg.port, "/v1/status", {{"Authorization", "Bearer k3y-for-pricing-0123456789"}}).status == 200);
  CHECK(http_request(rg.port, "DELETE", "/v1/cache").status == 401);
  CHECK(http_get(rg.port, "/healthz").status == 200);
  CHECK(http_get(rg.port, "/readyz").status == 200);
  CHECK(http_get(rg.port, "/metrics").status == 200);
}

TEST_CASE("ops: no configured secret appears in logs, errors, status or metrics") {
  Sandbox sb;
  TempDir dir;
  const std::vector<std::pair<std::string, std::string>> env = {
      {"CLIENT_KEY", "client-key-SECRET-4242"},
      {"MWS_SECRET", "sandbox-secret-key-not-for-production"},
      {"MWS_TOKEN", "amzn.mws.sandbox-token"},
      {"ADS_SECRET", "sandbox-client-secret"},
      {"ADS_REFRESH", "Atzr|sandbox-refresh-token"}};
  std::string cfg = test_config(dir, sb.port, "\"clients\":[{\"name\":\"t\",\"key\":\"${CLIENT_KEY}\"}],\"log\":{\"level\":\"debug\"}");
  for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
           {"sandbox-secret-key-not-for-production", "${MWS_SECRET}"},
           {"amzn.mws.sandbox-token", "${MWS_TOKEN}"},
           {"sandbox-client-secret", "${ADS_SECRET}"},
           {"Atzr|sandbox-refresh-token", "${ADS_REFRESH}"}})
    cfg.replace(cfg.find(from), from.size(), to);
  Recgate rg(dir, cfg, env);
  const std::vector<std::pair<std::string, std::string>> auth = {{"Authorization", "Bearer client-key-SECRET-4242"}};
  std::string seen;
  for (const auto& target : {kInventory, std::string("/v1/mws/main/last-updated?marketplace=ATVPDKIKX0DER"),
                             std::string("/v1/mws/main/recommendations?marketplace=BAD"), std::string("/v1/status"),
                             std::string("/metrics")}) {
    auto r = http_get(rg.port, target, auth);
    seen += r.body;
    for (const auto& [k, v] : r.headers) seen += k + ": " + v + "\n";
  }
  seen += http_get(rg.port, kInventory, {{"Authorization", "Bearer nope"}}).body;
  seen += http_request(rg.port, "POST", "/v1/ads/main/product-recommendations",
                       "{\"adAsins\":[\"B09LJWZT6G\"],\"count\":3}", {auth[0], {"Content-Type", "application/json"}})
              .body;
  Process check({RECGATE_BIN, "--check-config", "--config", dir.file("recgate.json")}, env);
  CHECK(check.wait_exit() == 0);
  rg.proc.signal(SIGTERM);
  const int code = rg.proc.wait_exit();
  CHECK(code == 0);
  const std::string all = seen + rg.proc.output() + check.output();
  for (const auto& [name, secret] : env) CHECK_MESSAGE(all.find(secret) == std::string::npos, name, " leaked");
}

TEST_CASE("ops: SIGTERM drains: /readyz answers 503, the queued request still finishes, exit 0") {
  Sandbox sb;
  TempDir dir;
  Recgate rg(dir, test_config(dir, sb.port,
                              "\"throttle\":{\"buckets\":{\"mws.ListRecommendations\":{\"capacity\":1,"
                              "\"restore_per_s\":2}}}"));
  REQUIRE(http_get(rg.port, kInventory).status == 200);  // spends the only token
  KeepAlive probe(rg.port);                               // connected before the drain starts
  REQUIRE(probe.request("GET", "/readyz").status == 200);
  HttpResponse queued;
  std::thread t([&] {
    queued = http_get(rg.port, "/v1/mws/main/recommendations?marketplace=ATVPDKIKX0DER&category=Pricing",
                      {{"Prefer", "wait=30"}});
  });
  REQUIRE(wait_until([&] { return http_get(rg.port, "/v1/status").body.find("\"waiters\":1") != std::string::npos; },
                     std::chrono::seconds(10)));
  rg.proc.signal(SIGTERM);
  REQUIRE(rg.proc.wait_for_line({"\"msg\":\"draining\""}, std::chrono::seconds(10)).has_value());
  auto draining = probe.request("GET", "/readyz");
  CHECK(draining.status == 503);
  CHECK(draining.body.find("draining") != std::string::npos);
  t.join();
  CHECK_MESSAGE(queued.status == 200, queued.error);
  CHECK(rg.proc.wait_exit() == 0);
}
