// [ops] and the operator-facing parts of [foundation]: /metrics parsed by the
// reference Prometheus parser with counters moving as requests are made,
// client keys, secrets absent from every output, and graceful drain
// (/readyz 503 while an in-flight request finishes, exit 0).
#include <doctest/doctest.h>
#include <signal.h>

#include <atomic>
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

// A series that must be present: an absent one is a failure, never a 0 that
// would make "unchanged" checks pass on a misspelt or missing series.
double get(const std::map<std::string, double>& m, const std::string& key) {
  auto it = m.find(key);
  CHECK_MESSAGE(it != m.end(), "series missing: " << key);
  return it == m.end() ? -1.0 : it->second;
}

}  // namespace

TEST_CASE("ops: /metrics parses with the reference parser and counters move as requests are made") {
  Sandbox sb;
  TempDir dir;
  Recgate rg(dir, test_config(dir, sb.port));
  // A miss and a hit on another category first, so every series compared below
  // exists in every scrape (get() fails on an absent one).
  const std::string pricing = "/v1/mws/main/recommendations?marketplace=ATVPDKIKX0DER&category=Pricing";
  REQUIRE(http_get(rg.port, pricing).header("cache-status") == "recgate; fwd=miss; stored");
  REQUIRE(http_get(rg.port, pricing).header("cache-status") == "recgate; hit");
  // recgate_http_requests_total counts a request once its answer is written, so
  // the client can read the answer a moment before the count moves: wait
  // (bounded) until it shows a given number of answered requests.
  const std::string http_ok =
      "recgate_http_requests_total{method=\"GET\",route=\"mws_recommendations\",status=\"200\"}";
  auto scrape_at = [&](double answered) {
    std::map<std::string, double> m;
    CHECK(wait_until([&] { return (m = scrape(rg.port, dir)).count(http_ok) && m.at(http_ok) == answered; },
                     std::chrono::seconds(10)));
    return m;
  };
  auto before = scrape_at(2);
  CHECK(get(before, "recgate_build_info{version=\"0.1.0\"}") == 1.0);

  REQUIRE(http_get(rg.port, kInventory).header("cache-status") == "recgate; fwd=miss; stored");
  auto after_miss = scrape_at(3);
  REQUIRE(http_get(rg.port, kInventory).header("cache-status") == "recgate; hit");
  auto after_hit = scrape_at(4);

  const std::string miss = "recgate_cache_lookups_total{api=\"mws\",result=\"miss\"}";
  const std::string hit = "recgate_cache_lookups_total{api=\"mws\",result=\"hit\"}";
  const std::string list_calls =
      "recgate_upstream_requests_total{api=\"mws\",operation=\"ListRecommendations\",status=\"200\"}";
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
      {"MWS_KEY_ID", "AKIASANDBOXEXAMPLE"},
      {"MWS_SECRET", "sandbox-secret-key-not-for-production"},
      {"MWS_TOKEN", "amzn.mws.sandbox-token"},
      {"ADS_SECRET", "sandbox-client-secret"},
      {"ADS_REFRESH", "Atzr|sandbox-refresh-token"}};
  std::string cfg = test_config(dir, sb.port, "\"clients\":[{\"name\":\"t\",\"key\":\"${CLIENT_KEY}\"}],\"log\":{\"level\":\"debug\"}");
  for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
           {"AKIASANDBOXEXAMPLE", "${MWS_KEY_ID}"},
           {"sandbox-secret-key-not-for-production", "${MWS_SECRET}"},
           {"amzn.mws.sandbox-token", "${MWS_TOKEN}"},
           {"sandbox-client-secret", "${ADS_SECRET}"},
           {"Atzr|sandbox-refresh-token", "${ADS_REFRESH}"}})
    cfg.replace(cfg.find(from), from.size(), to);
  // Every secret is substituted: none is left literal in the config.
  for (const auto& [name, secret] : env) REQUIRE_MESSAGE(cfg.find(secret) == std::string::npos, name);
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
  // The MWS calls were signed with the substituted key id: the sandbox saw it.
  CHECK(http_get(sb.port, "/admin/stats").body.find("AKIASANDBOXEXAMPLE") != std::string::npos);
}

TEST_CASE("ops: SIGTERM drains: /readyz answers 503, the queued request still finishes, exit 0") {
  Sandbox sb;
  TempDir dir;
  // One token, the next ~5.5 s later (0.2/s plus the margin): the queued
  // request waits that long, a window the poll below cannot miss, and is still
  // waiting when SIGTERM comes; it then finishes well within the 10 s drain.
  // max_pages 1: each request needs exactly one token.
  Recgate rg(dir, test_config(dir, sb.port,
                              "\"throttle\":{\"buckets\":{\"mws.ListRecommendations\":{\"capacity\":1,"
                              "\"restore_per_s\":0.2}}}",
                              "\"max_pages\":1"));
  REQUIRE(http_get(rg.port, kInventory).status == 200);  // spends the only token
  KeepAlive probe(rg.port);                               // connected before the drain starts
  REQUIRE(probe.request("GET", "/readyz").status == 200);
  HttpResponse queued;
  std::atomic<bool> answered{false};
  std::thread t([&] {
    queued = http_get(rg.port, "/v1/mws/main/recommendations?marketplace=ATVPDKIKX0DER&category=Pricing",
                      {{"Prefer", "wait=30"}, {"X-Request-Id", "drain-queued"}});
    answered = true;
  });
  // CHECK, not REQUIRE, while the client thread runs: a throw here would skip its join.
  CHECK(wait_until([&] { return http_get(rg.port, "/v1/status").body.find("\"waiters\":1") != std::string::npos; },
                   std::chrono::seconds(10)));
  rg.proc.signal(SIGTERM);
  CHECK(rg.proc.wait_for_line({"\"msg\":\"draining\""}, std::chrono::seconds(10)).has_value());
  auto draining = probe.request("GET", "/readyz");
  CHECK(draining.status == 503);
  CHECK(draining.body.find("draining") != std::string::npos);
  t.join();
  CHECK_MESSAGE(queued.status == 200, queued.error);
  CHECK(answered.load());
  CHECK(rg.proc.wait_exit() == 0);
  // The queued request was in flight when the drain began: its access log line
  // comes after the "draining" line, and its upstream call after the SIGTERM.
  const auto lines = rg.proc.lines();
  std::ptrdiff_t drain_at = -1, done_at = -1;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (drain_at < 0 && lines[i].find("\"msg\":\"draining\"") != std::string::npos) drain_at = static_cast<std::ptrdiff_t>(i);
    if (lines[i].find("\"request_id\":\"drain-queued\"") != std::string::npos &&
        lines[i].find("\"msg\":\"request\"") != std::string::npos)
      done_at = static_cast<std::ptrdiff_t>(i);
  }
  REQUIRE(drain_at >= 0);
  REQUIRE(done_at >= 0);
  CHECK(done_at > drain_at);
}

TEST_CASE("ops: /readyz is 503 not_ready while the database is not migrated, ready again once it is") {
  Sandbox sb;
  TempDir dir;
  Recgate rg(dir, test_config(dir, sb.port));
  REQUIRE(http_get(rg.port, "/readyz").status == 200);
  const std::string db = dir.file("db/recgate.db");
  auto sql = [&](const std::string& stmt) {
    Process p({"/usr/bin/python3", "-c",
               "import sqlite3,sys; c=sqlite3.connect(sys.argv[1], timeout=10); c.executescript(sys.argv[2]); c.commit()",
               db, stmt});
    REQUIRE_MESSAGE(p.wait_exit() == 0, p.output());
  };
  // Another writer empties the migration record: recgate cannot vouch for the schema.
  sql("CREATE TABLE saved_migrations AS SELECT * FROM schema_migrations; DELETE FROM schema_migrations;");
  auto r = http_get(rg.port, "/readyz");
  CHECK(r.status == 503);
  CHECK(r.header("content-type") == "application/json");
  CHECK(r.body == "{\"status\":\"not_ready\",\"reason\":\"database not open or not migrated\"}");
  CHECK(http_get(rg.port, "/healthz").status == 200);  // liveness checks no dependency
  sql("INSERT INTO schema_migrations SELECT * FROM saved_migrations; DROP TABLE saved_migrations;");
  CHECK(http_get(rg.port, "/readyz").status == 200);
}

TEST_CASE("ops: log.access false drops the per-request lines and keeps the others") {
  Sandbox sb;
  TempDir dir;
  Recgate rg(dir, test_config(dir, sb.port, "\"log\":{\"access\":false}"));
  REQUIRE(http_get(rg.port, kInventory, {{"X-Request-Id", "quiet-1"}}).status == 200);
  REQUIRE(http_get(rg.port, "/no/such", {{"X-Request-Id", "quiet-2"}}).status == 404);
  rg.proc.signal(SIGTERM);
  REQUIRE(rg.proc.wait_exit() == 0);
  const std::string out = rg.proc.output();
  CHECK(out.find("\"msg\":\"listening\"") != std::string::npos);  // start-up lines stay
  CHECK(out.find("\"msg\":\"request\"") == std::string::npos);
  CHECK(out.find("quiet-1") == std::string::npos);
  CHECK(out.find("quiet-2") == std::string::npos);
  // The same requests with the default (true) are logged, so the check above can fail.
  TempDir dir2;
  Recgate loud(dir2, test_config(dir2, sb.port));
  REQUIRE(http_get(loud.port, "/no/such", {{"X-Request-Id", "loud-2"}}).status == 404);
  CHECK(loud.proc.wait_for_line({"\"msg\":\"request\"", "loud-2"}, std::chrono::seconds(10)).has_value());
}
