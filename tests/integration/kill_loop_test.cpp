// [proof] crash safety: SIGKILL while concurrent MWS and Ads requests (and
// their cache writes) are in flight; after each restart integrity_check is ok,
// every "stored" answer is served from the cache and the sandbox throttled
// nothing. RECGATE_KILL_CYCLES: cycles (ctest 25; tests/bench/kill_loop.sh 100).
#include <doctest/doctest.h>
#include <signal.h>
#include <sqlite3.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <rapidjson/document.h>

#include "harness.hpp"

using namespace rgtest;

namespace {

const char* const kAdsPath = "/v1/ads/main/product-recommendations";
const char* const kMarketplaces[] = {"ATVPDKIKX0DER", "A2EUQ1WTGCTBG2"};
const char* const kAccounts[] = {"main", "second"};
const char* const kCategories[] = {"Inventory", "Pricing", "Fulfillment", "Advertising"};
constexpr int kClients = 4;

int cycles_from_env() {
  const char* v = std::getenv("RECGATE_KILL_CYCLES");
  const int n = v ? std::atoi(v) : 25;
  return n > 0 && n <= 10000 ? n : 25;
}

// A sandbox with two MWS sellers and quick MWS buckets, so that a cycle does
// not wait seconds for quota after each restart (recgate's buckets start
// empty after a kill -9). recgate is configured with exactly these figures.
std::string sandbox_config() {
  return R"({"listen":"127.0.0.1:0","threads":2,"log":{"level":"info"},"admin_token":"",
"sellers":[{"seller_id":"A1XEXAMPLEDF","access_key_id":"AKIASANDBOXEXAMPLE","secret_key":"sandbox-secret-key-not-for-production","auth_token":"amzn.mws.sandbox-token"},
{"seller_id":"A2SECONDSELLER","access_key_id":"AKIASANDBOXSECOND","secret_key":"sandbox-second-secret-not-for-production","auth_token":"amzn.mws.sandbox-second"}],
"throttle":{"ListRecommendations":{"capacity":20,"restore_every_ms":100},
"GetLastUpdatedTimeForRecommendations":{"capacity":20,"restore_every_ms":100},
"GetServiceStatus":{"capacity":2,"restore_every_ms":300000}},
"page_size":3,"items_per_category":8,"timestamp_tolerance_s":900,"initially_empty_categories":["GlobalSelling"],
"recent_requests":50,
"ads":{"clients":[{"client_id":"amzn1.application-oa2-client.sandbox","client_secret":"sandbox-client-secret","refresh_token":"Atzr|sandbox-refresh-token"}],
"profile_ids":["904444984714944"],"token_lifetime_s":3600,"rate_per_s":5,"burst":10,"retry_after_s":1}})";
}

std::string recgate_config(const TempDir& dir, int sandbox_port) {
  const std::string base = "http://127.0.0.1:" + std::to_string(sandbox_port);
  return "{\"listen\":\"127.0.0.1:0\",\"database\":\"" + dir.file("db/recgate.db") +
         "\",\"threads\":2,\"log\":{\"access\":false},"
         "\"throttle\":{\"buckets\":{\"mws.ListRecommendations\":{\"capacity\":20,\"restore_per_s\":10},"
         "\"mws.GetLastUpdatedTimeForRecommendations\":{\"capacity\":20,\"restore_per_s\":10},"
         "\"ads.ProductRecommendations\":{\"capacity\":10,\"restore_per_s\":5},"
         "\"lwa.Token\":{\"capacity\":5,\"restore_per_s\":5}}},"
         "\"mws\":{\"endpoint\":\"" +
         base +
         "\",\"check_interval_s\":604800,\"accounts\":{"
         "\"main\":{\"seller_id\":\"A1XEXAMPLEDF\",\"access_key_id\":\"AKIASANDBOXEXAMPLE\","
         "\"secret_key\":\"sandbox-secret-key-not-for-production\",\"auth_token\":\"amzn.mws.sandbox-token\"},"
         "\"second\":{\"seller_id\":\"A2SECONDSELLER\",\"access_key_id\":\"AKIASANDBOXSECOND\","
         "\"secret_key\":\"sandbox-second-secret-not-for-production\",\"auth_token\":\"amzn.mws.sandbox-second\"}}},"
         "\"ads\":{\"endpoint\":\"" +
         base + "\",\"token_endpoint\":\"" + base +
         "/auth/o2/token\",\"accounts\":{\"main\":{\"region\":\"NA\",\"client_id\":\"amzn1.application-oa2-client.sandbox\","
         "\"client_secret\":\"sandbox-client-secret\",\"refresh_token\":\"Atzr|sandbox-refresh-token\","
         "\"profile_id\":\"904444984714944\"}}}}";
}

// One request a client sent, enough to send it again.
struct Ask {
  bool ads = false;
  std::string target;  // MWS: the GET target; Ads: the POST body
};

struct Stored {
  Ask ask;
  std::string etag;
  std::string body;
};

HttpResponse send(int port, const Ask& a, const std::vector<std::pair<std::string, std::string>>& extra = {}) {
  auto headers = extra;
  if (!a.ads) return http_request(port, "GET", a.target, "", headers, std::chrono::seconds(60));
  headers.emplace_back("Content-Type", "application/json");
  return http_request(port, "POST", kAdsPath, a.target, headers, std::chrono::seconds(60));
}

// The request a client sends as its n-th of a cycle: a new Ads request, a
// new filtered MWS list (both misses that write the cache), or an unfiltered
// category this client owns (a miss the first time, then hits).
Ask next_ask(int client, int cycle, int n) {
  char id[32];
  std::snprintf(id, sizeof id, "%d%03d%04d", client, cycle % 1000, n % 10000);
  const char* account = kAccounts[(cycle + n) % 2];
  const char* mp = kMarketplaces[(cycle / 2 + n) % 2];
  switch (n % 3) {
    case 0: {
      char asin[16];
      std::snprintf(asin, sizeof asin, "B%09d", std::atoi(id) % 1000000000);
      return {true, std::string("{\"adAsins\":[\"") + asin + "\"],\"count\":" + std::to_string(1 + n % 7) + "}"};
    }
    case 1:
      return {false, std::string("/v1/mws/") + account + "/recommendations?marketplace=" + mp +
                         "&category=Selection&filter=BrandName%3DK" + id};
    default:
      return {false, std::string("/v1/mws/") + account + "/recommendations?marketplace=" + mp +
                         "&category=" + kCategories[client % 4]};
  }
}

// What the clients of one cycle saw before the kill.
struct CycleLog {
  std::mutex mu;
  std::vector<Stored> stored;
  std::vector<std::string> errors;  // any answer but 200 before the kill
  std::atomic<int> stored_count{0};
  std::atomic<int> answered{0};
};

void run_client(int port, int client, int cycle, const std::atomic<bool>& killed, CycleLog& log) {
  for (int n = client; n < 100000 && !killed.load(); n += kClients) {
    const Ask a = next_ask(client, cycle, n);
    const HttpResponse r = send(port, a);
    if (r.status == 0 && killed.load()) return;  // cut by the kill: nothing was promised
    if (r.status != 200) {
      std::lock_guard lk(log.mu);
      log.errors.push_back(std::to_string(r.status) + " " + a.target + " " + r.body + r.error);
      return;
    }
    ++log.answered;
    if (r.header("cache-status").find("stored") == std::string::npos) continue;
    std::lock_guard lk(log.mu);
    log.stored.push_back({a, r.header("etag"), r.body});
    ++log.stored_count;
  }
}

std::string integrity_check(const std::string& path) {
  sqlite3* db = nullptr;
  std::string out;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    out = "cannot open";
  } else {
    sqlite3_busy_timeout(db, 10000);
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, nullptr) == SQLITE_OK)
      while (sqlite3_step(st) == SQLITE_ROW) out += reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    else
      out = sqlite3_errmsg(db);
    sqlite3_finalize(st);
  }
  sqlite3_close_v2(db);
  return out;
}

// Throttles the sandbox recorded: MWS (throttled.total) plus Ads 429s.
long long sandbox_throttles(int sandbox_port) {
  rapidjson::Document d;
  d.Parse(http_get(sandbox_port, "/admin/stats").body.c_str());
  if (d.HasParseError() || !d.IsObject()) return -1;
  return d["throttled"]["total"].GetInt64() + d["ads"]["rate_limited"].GetInt64();
}

// An MWS body says per category whether it came from the cache ("cache":
// "miss" when stored, "hit" afterwards); everything else must be the same.
std::string without_cache_field(std::string body) {
  const std::string k = "\"cache\":\"";
  for (auto at = body.find(k); at != std::string::npos; at = body.find(k, at + k.size()))
    body.erase(at + k.size(), body.find('"', at + k.size()) - at - k.size());
  return body;
}

// Each of `keys` is served from the cache as it was stored; returns the mismatches.
std::vector<std::string> check_cached(int port, const std::map<std::string, Stored>& durable,
                                      const std::vector<std::string>& keys) {
  std::vector<std::string> bad;
  for (const auto& k : keys) {
    const Stored& s = durable.at(k);
    const HttpResponse r = send(port, s.ask, {{"Cache-Control", "only-if-cached"}});
    const bool same_body = without_cache_field(r.body) == without_cache_field(s.body);
    if (r.status != 200 || r.header("etag") != s.etag || !same_body)
      bad.push_back(std::to_string(r.status) + " " + k + " etag " + r.header("etag") + " (was " + s.etag +
                    ") body " + (same_body ? "same" : "differs: " + r.body.substr(0, 200)));
  }
  return bad;
}

std::string first(const std::vector<std::string>& v) { return v.empty() ? std::string() : v.front(); }

}  // namespace

TEST_CASE("kill loop: SIGKILL under concurrent MWS and Ads load loses no stored answer and no integrity") {
  const int cycles = cycles_from_env();
  TempDir dir;
  write_file(dir.file("sandbox.json"), sandbox_config());
  Sandbox sb({"--config", dir.file("sandbox.json")});
  const std::string cfg = recgate_config(dir, sb.port);
  std::map<std::string, Stored> durable;  // latest stored answer per request
  std::vector<std::string> all_keys;  // the keys of `durable` before this cycle
  std::size_t sample_at = 0;
  int total_answered = 0;
  auto rg = std::make_unique<Recgate>(dir, cfg);
  for (int cycle = 1; cycle <= cycles; ++cycle) {
    CAPTURE(cycle);
    CycleLog log;
    std::atomic<bool> killed{false};
    std::vector<std::thread> clients;
    for (int c = 0; c < kClients; ++c)
      clients.emplace_back(run_client, rg->port, c, cycle, std::cref(killed), std::ref(log));
    // Kill once a few answers were stored this cycle: the clients keep
    // sending, so requests (and their cache writes) are in flight.
    const bool enough = wait_until([&] { return log.stored_count.load() >= 3 + cycle % 4; }, std::chrono::seconds(60));
    killed = true;
    rg->proc.signal(SIGKILL);
    for (auto& t : clients) t.join();
    REQUIRE_MESSAGE(rg->proc.wait_exit() == 128 + SIGKILL, rg->proc.output());
    REQUIRE_MESSAGE(enough, "fewer answers stored than expected before the kill: ", log.stored_count.load());
    REQUIRE_MESSAGE(log.errors.empty(), first(log.errors));
    total_answered += log.answered.load();
    std::vector<std::string> to_check;
    for (auto& s : log.stored) {
      to_check.push_back((s.ask.ads ? "ads " : "mws ") + s.ask.target);
      durable[to_check.back()] = std::move(s);
    }
    // This cycle's answers, then a rotating window of the older ones.
    for (std::size_t i = 0; i < 24 && !all_keys.empty(); ++i, ++sample_at)
      to_check.push_back(all_keys[sample_at % all_keys.size()]);
    rg.reset();
    rg = std::make_unique<Recgate>(dir, cfg);
    REQUIRE(http_get(rg->port, "/readyz").status == 200);
    CHECK(integrity_check(dir.file("db/recgate.db")) == "ok");
    const auto bad = check_cached(rg->port, durable, to_check);
    all_keys.clear();
    for (const auto& kv : durable) all_keys.push_back(kv.first);
    REQUIRE_MESSAGE(bad.empty(), first(bad));
    CHECK(sandbox_throttles(sb.port) == 0);
  }
  // At the end, every stored answer of every cycle, once more.
  all_keys.clear();
  for (const auto& kv : durable) all_keys.push_back(kv.first);
  const auto bad = check_cached(rg->port, durable, all_keys);
  CHECK_MESSAGE(bad.empty(), first(bad));
  CHECK(sandbox_throttles(sb.port) == 0);
  MESSAGE("kill loop: ", cycles, " cycles, ", total_answered, " answers before kills, ", durable.size(),
          " stored answers all served from the cache afterwards");
}
