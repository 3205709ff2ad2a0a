// [ads] end to end with the real binaries: answers round-trip byte for byte,
// validation problems, one LWA refresh for many callers, short-lived tokens
// over a 10-second run, LWA rejections, upstream 429 and 401 handling,
// cursor/no-cache/only-if-cached/stale/timeout, restart, purge, status, and
// that no configured secret or token ever appears in recgate's output.
#include <doctest/doctest.h>
#include <rapidjson/document.h>
#include <signal.h>

#include <thread>

#include "../support/sandbox_admin.hpp"
#include "harness.hpp"
#include "../support/json_body.hpp"

using namespace rgtest;

namespace {

const std::string kPath = "/v1/ads/main/product-recommendations";
const std::string kAsinsType = "application/vnd.spproductrecommendationresponse.asins.v3+json";
const std::string kThemesType = "application/vnd.spproductrecommendationresponse.themes.v3+json";
const std::vector<std::string> kSecrets = {"sandbox-client-secret", "Atzr|sandbox-refresh-token", "Atzr%7C", "Atza|"};

using Headers = std::vector<std::pair<std::string, std::string>>;

HttpResponse ads_post(int port, const std::string& body, Headers extra = {}, const std::string& path = kPath) {
  Headers h{{"Content-Type", "application/json"}};
  for (auto& kv : extra) h.push_back(std::move(kv));
  return http_request(port, "POST", path, body, h);
}

// The "ads" object of the sandbox's /admin/stats.
rapidjson::Document ads_stats(int sandbox_port) {
  rapidjson::Document all = parse(http_get(sandbox_port, "/admin/stats").body);
  rapidjson::Document d;
  d.CopyFrom(all["ads"], d.GetAllocator());
  return d;
}

int token_requests(int sandbox_port) { return ads_stats(sandbox_port)["token_requests"].GetInt(); }
int ads_requests(int sandbox_port) { return ads_stats(sandbox_port)["requests"]["total"].GetInt(); }
int ads_status_count(int sandbox_port, const char* status) {
  auto d = ads_stats(sandbox_port);
  const auto& by = d["requests"]["by_status"];
  return by.HasMember(status) ? by[status].GetInt() : 0;
}

// A token straight from the sandbox's LWA endpoint, for calling it directly.
std::string sandbox_token(int sandbox_port) {
  auto r = http_request(sandbox_port, "POST", "/auth/o2/token",
                        "grant_type=refresh_token&refresh_token=Atzr%7Csandbox-refresh-token&client_id=amzn1."
                        "application-oa2-client.sandbox&client_secret=sandbox-client-secret",
                        {{"Content-Type", "application/x-www-form-urlencoded;charset=UTF-8"}});
  REQUIRE(r.status == 200);
  return parse(r.body)["access_token"].GetString();
}

HttpResponse sandbox_direct(int sandbox_port, const std::string& token, const std::string& body,
                            const std::string& accept) {
  return http_request(sandbox_port, "POST", "/sp/targets/products/recommendations", body,
                      {{"Content-Type", "application/vnd.spproductrecommendation.v3+json"},
                       {"Accept", accept},
                       {"Amazon-Advertising-API-ClientId", "amzn1.application-oa2-client.sandbox"},
                       {"Amazon-Advertising-API-Scope", "904444984714944"},
                       {"Authorization", "Bearer " + token}});
}

std::string problem_code(const HttpResponse& r) {
  auto d = parse(r.body);
  return d.HasMember("code") ? d["code"].GetString() : "";
}

std::string member(const HttpResponse& r, const char* name) {
  auto d = parse(r.body);
  return d.HasMember(name) && d[name].IsString() ? d[name].GetString() : "";
}

void check_no_secrets(const Process& p, const std::vector<std::string>& extra = {}) {
  const std::string out = p.output();
  for (const auto& s : kSecrets) CHECK_MESSAGE(out.find(s) == std::string::npos, "recgate output contains " << s);
  for (const auto& s : extra) CHECK_MESSAGE(out.find(s) == std::string::npos, "recgate output contains " << s);
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (auto pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size())) s.replace(pos, from.size(), to);
  return s;
}

}  // namespace

TEST_CASE("ads: asin and theme answers are upstream's bodies byte for byte, the second request is a hit") {
  Sandbox sb;
  TempDir dir;
  Recgate rg(dir, test_config(dir, sb.port));
  const std::string asin_body = R"({"adAsins":["B09LJWZT6G","0316769487"],"count":5,"locale":"de_DE"})";
  auto first = ads_post(rg.port, asin_body);
  REQUIRE_MESSAGE(first.status == 200, first.body);
  CHECK(first.header("content-type") == "application/json");
  CHECK(first.header("cache-status") == "recgate; fwd=miss; stored");
  CHECK(first.header("age") == "0");
  CHECK_FALSE(first.header("etag").empty());
  // What recgate sent: the spec's media types, the scope, an integer count.
  auto last = ads_stats(sb.port);
  CHECK(std::string(last["last_request"]["content_type"].GetString()) ==
        "application/vnd.spproductrecommendation.v3+json");
  CHECK(std::string(last["last_request"]["accept"].GetString()) == kAsinsType);
  CHECK(std::string(last["last_request"]["scope"].GetString()) == "904444984714944");
  CHECK(std::string(last["last_request"]["body"].GetString()) ==
        R"({"adAsins":["B09LJWZT6G","0316769487"],"count":5,"locale":"de_DE"})");

  const std::string theme_body = R"({"adAsins":["0316769487"],"count":3,"locale":"ja_JP","groupBy":"theme"})";
  auto themes = ads_post(rg.port, theme_body);
  REQUIRE_MESSAGE(themes.status == 200, themes.body);
  CHECK(std::string(ads_stats(sb.port)["last_request"]["accept"].GetString()) == kThemesType);
  CHECK(std::string(ads_stats(sb.port)["last_request"]["body"].GetString()) ==
        R"({"adAsins":["0316769487"],"count":3,"locale":"jp_JP"})");
  CHECK(token_requests(sb.port) == 1);
  const int upstream_calls = ads_requests(sb.port);
  CHECK(upstream_calls == 2);

  // The same requests straight to the sandbox give the same bytes.
  const std::string token = sandbox_token(sb.port);
  auto direct_asins = sandbox_direct(sb.port, token, asin_body, kAsinsType);
  REQUIRE(direct_asins.status == 200);
  CHECK(first.body == direct_asins.body);
  auto direct_themes =
      sandbox_direct(sb.port, token, R"({"adAsins":["0316769487"],"count":3,"locale":"jp_JP"})", kThemesType);
  REQUIRE(direct_themes.status == 200);
  CHECK(themes.body == direct_themes.body);
  CHECK(parse(themes.body)["recommendations"][0]["theme"].GetString() == std::string("コンバージョン上位のターゲット"));

  // Identical request again (members in another order, defaults spelled out): a hit, no upstream call.
  const int before = ads_requests(sb.port);
  auto second = ads_post(rg.port, R"({"locale":"de_DE","count":5,"cursor":null,"groupBy":"asin","adAsins":["B09LJWZT6G","0316769487"]})");
  REQUIRE(second.status == 200);
  CHECK(second.header("cache-status") == "recgate; hit");
  CHECK(second.body == first.body);
  CHECK(second.header("etag") == first.header("etag"));
  CHECK(ads_requests(sb.port) == before);
  auto not_modified = ads_post(rg.port, asin_body, {{"If-None-Match", first.header("etag")}});
  CHECK(not_modified.status == 304);
  CHECK(not_modified.body.empty());
  CHECK(ads_requests(sb.port) == before);

  auto metrics = http_get(rg.port, "/metrics").body;
  CHECK(metrics.find("recgate_token_refreshes_total{account=\"main\",result=\"ok\"} 1") != std::string::npos);
  CHECK(metrics.find("recgate_cache_lookups_total{api=\"ads\",result=\"hit\"} 2") != std::string::npos);
  CHECK(metrics.find("recgate_upstream_requests_total{api=\"ads\",operation=\"ProductRecommendations\",status=\"200\"} 2") !=
        std::string::npos);
  check_no_secrets(rg.proc);
}

TEST_CASE("ads: invalid requests are problems naming what is wrong, with no upstream call") {
  Sandbox sb;
  TempDir dir;
  Recgate rg(dir, test_config(dir, sb.port));
  struct Case {
    const char* body;
    int status;
    const char* code;
    const char* says;
  };
  const Case cases[] = {
      {R"({"adAsins":["B09LJWZT6G"],"count":"5"})", 400, "invalid_field", "count must be a JSON integer"},
      {R"({"adAsins":["B09LJWZT6G"],"count":0})", 400, "invalid_field", "count must be an integer from 1"},
      {R"({"adAsins":["B09LJWZT6"]})", 400, "invalid_field", "10 characters"},
      {R"({"adAsins":[]})", 400, "invalid_field", "non-empty array"},
      {R"({"adAsins":["B09LJWZT6G"],"locale":"pt_BR"})", 400, "invalid_field", "jp_JP"},
      {R"({"adAsins":["B09LJWZT6G"],"groupBy":"brand"})", 400, "invalid_field", "\"asin\" (the default) or \"theme\""},
      {R"({"adAsins":["B09LJWZT6G"],"page":2})", 400, "invalid_body", "unknown member \"page\""},
      {"adAsins=B09LJWZT6G", 400, "invalid_body", "not valid JSON"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.body);
    auto r = ads_post(rg.port, c.body);
    CHECK(r.status == c.status);
    CHECK(r.header("content-type") == "application/problem+json");
    CHECK(problem_code(r) == c.code);
    CHECK(member(r, "detail").find(c.says) != std::string::npos);
  }
  auto wrong_type = http_request(rg.port, "POST", kPath, R"({"adAsins":["B09LJWZT6G"]})",
                                 {{"Content-Type", "application/vnd.spproductrecommendation.v3+json"}});
  CHECK(wrong_type.status == 415);
  CHECK(problem_code(wrong_type) == "unsupported_media_type");
  auto no_type = http_request(rg.port, "POST", kPath, R"({"adAsins":["B09LJWZT6G"]})");
  CHECK(no_type.status == 415);
  auto unknown = ads_post(rg.port, R"({"adAsins":["B09LJWZT6G"]})", {}, "/v1/ads/nobody/product-recommendations");
  CHECK(unknown.status == 404);
  CHECK(problem_code(unknown) == "unknown_account");
  CHECK(member(unknown, "detail").find("configured: main") != std::string::npos);
  CHECK(http_get(rg.port, kPath).status == 405);  // the guide's GET
  CHECK(token_requests(sb.port) == 0);
  CHECK(ads_requests(sb.port) == 0);
}

TEST_CASE("ads: 20 concurrent requests before any token exists make exactly one token request") {
  Sandbox sb({"--ads-json", R"({"rate_per_s":100,"burst":100})"});
  TempDir dir;
  Recgate rg(dir, test_config(dir, sb.port,
                              R"("throttle":{"buckets":{"ads.ProductRecommendations":{"capacity":40,"restore_per_s":20}}})"));
  std::vector<int> statuses(20, 0);
  std::vector<std::thread> threads;
  for (int i = 0; i < 20; ++i)
    threads.emplace_back([&, i] {
      // Distinct requests (count differs), so only the token refresh is shared.
      statuses[static_cast<std::size_t>(i)] =
          ads_post(rg.port, R"({"adAsins":["B09LJWZT6G"],"count":)" + std::to_string(i + 1) + "}").status;
    });
  for (auto& t : threads) t.join();
  for (int s : statuses) CHECK(s == 200);
  CHECK(token_requests(sb.port) == 1);
  CHECK(ads_requests(sb.port) == 20);
  check_no_secrets(rg.proc);
}

TEST_CASE("ads: 30 concurrent identical cold requests make exactly one upstream call and get the same answer") {
  Sandbox sb({"--ads-json", R"({"rate_per_s":100,"burst":100})"});
  TempDir dir;
  Recgate rg(dir, test_config(dir, sb.port));
  std::vector<HttpResponse> answers(30);
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < answers.size(); ++i)
    threads.emplace_back([&, i] { answers[i] = ads_post(rg.port, R"({"adAsins":["B09LJWZT6G"],"count":4})"); });
  for (auto& t : threads) t.join();
  for (const auto& a : answers) {
    CHECK(a.status == 200);
    CHECK(a.body == answers[0].body);
  }
  CHECK(ads_requests(sb.port) == 1);
  CHECK(token_requests(sb.port) == 1);
}

TEST_CASE("ads: with 2-second tokens, a 10-second run refreshes about 5 times and no 401 reaches a client") {
  Sandbox sb({"--ads-json", R"({"token_lifetime_s":2,"rate_per_s":50,"burst":50})"});
  TempDir dir;
  Recgate rg(dir, test_config(dir, sb.port));
  // The bounds on the number of refreshes come from what this run observed
  // (when each request was in flight), not from an assumed request rate, so a
  // slow machine (ASan, -j2) changes the expectation rather than failing it.
  using Clock = std::chrono::steady_clock;
  struct Span {
    Clock::time_point sent, received;
  };
  std::vector<Span> upstream_calls;
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  int requests = 0;
  int ok = 0;
  while (Clock::now() < deadline && requests < 1000) {
    // no-cache: every request goes upstream (paced by recgate's own ads bucket).
    const auto sent = Clock::now();
    auto r = ads_post(rg.port, R"({"adAsins":["B09LJWZT6G"],"count":3})", {{"Cache-Control", "no-cache"}});
    ++requests;
    if (r.status == 200) ++ok;
    else FAIL_CHECK("status " << r.status << ": " << r.body);
    if (r.header("cache-status") == "recgate; fwd=request; stored") upstream_calls.push_back({sent, Clock::now()});
  }
  CHECK(requests >= 10);
  CHECK(ok == requests);
  REQUIRE(upstream_calls.size() >= 2);
  // Lower bound: a token lives 2 s from issue, so two calls that cannot both
  // fall within 2 s (the later one sent more than 2 s after the earlier one
  // was answered) used different tokens. A greedy chain of such calls counts
  // tokens that must have been fetched.
  int must = 1;
  auto chain_end = upstream_calls.front().received;
  for (const auto& c : upstream_calls)
    if (c.sent - chain_end > std::chrono::seconds(2)) {
      ++must;
      chain_end = c.received;
    }
  // Upper bound: recgate refreshes only once its token is within the margin
  // (a tenth of the 2 s lifetime) of expiring, so refreshes it starts itself
  // are at least 1.8 s apart within the run; each sandbox 401 may add one more.
  const double span_s =
      std::chrono::duration<double>(upstream_calls.back().received - upstream_calls.front().sent).count();
  const int sandbox_401s = ads_status_count(sb.port, "401");
  const int may = static_cast<int>(span_s / 1.8) + 1 + sandbox_401s;
  const int refreshes = token_requests(sb.port);
  INFO("requests " << requests << ", upstream calls " << upstream_calls.size() << ", span " << span_s << " s, refreshes "
                   << refreshes << " (bounds " << must << ".." << may << "), sandbox 401s " << sandbox_401s);
  CHECK(refreshes >= must);
  CHECK(refreshes <= may);
  CHECK(must >= 3);  // the run did span several token lifetimes
  auto metrics = http_get(rg.port, "/metrics").body;
  CHECK(metrics.find("recgate_token_refreshes_total{account=\"main\",result=\"ok\"} " + std::to_string(refreshes)) !=
        std::string::npos);
  check_no_secrets(rg.proc);
}

TEST_CASE("ads: rejected LWA credentials are a 502 lwa_error naming the LWA code, never the secret") {
  Sandbox sb;
  SUBCASE("wrong client secret: invalid_client") {
    TempDir dir;
    Recgate rg(dir, replace_all(test_config(dir, sb.port), "sandbox-client-secret", "wrong-secret-1234"));
    auto r = ads_post(rg.port, R"({"adAsins":["B09LJWZT6G"]})");
    CHECK(r.status == 502);
    CHECK(problem_code(r) == "lwa_error");
    CHECK(member(r, "upstreamCode") == "invalid_client");
    CHECK(member(r, "detail").find("invalid_client") != std::string::npos);
    CHECK(member(r, "detail").find("client_secret") != std::string::npos);
    CHECK(r.body.find("wrong-secret-1234") == std::string::npos);
    CHECK(ads_requests(sb.port) == 0);
    check_no_secrets(rg.proc, {"wrong-secret-1234"});
    auto metrics = http_get(rg.port, "/metrics").body;
    CHECK(metrics.find("recgate_token_refreshes_total{account=\"main\",result=\"rejected\"} 1") != std::string::npos);
  }
  SUBCASE("revoked refresh token: invalid_grant") {
    TempDir dir;
    Recgate rg(dir, replace_all(test_config(dir, sb.port), "Atzr|sandbox-refresh-token", "Atzr|revoked-5678"));
    auto r = ads_post(rg.port, R"({"adAsins":["B09LJWZT6G"]})");
    CHECK(r.status == 502);
    CHECK(problem_code(r) == "lwa_error");
    CHECK(member(r, "upstreamCode") == "invalid_grant");
    CHECK(member(r, "detail").find("refresh token") != std::string::npos);
    CHECK(r.body.find("revoked-5678") == std::string::npos);
    check_no_secrets(rg.proc, {"revoked-5678"});
  }
}

TEST_CASE("ads: upstream 429 is retried within the client's wait, with and without Retry-After") {
  Sandbox sb;
  TempDir dir;
  Recgate rg(dir, test_config(dir, sb.port));
  const std::string body = R"({"adAsins":["B09LJWZT6G"],"count":4})";
  REQUIRE(ads_post(rg.port, body).status == 200);

  SandboxAdmin(sb.port).add_ads_fault(R"({"status":429,"count":1,"retry_after_s":1})");
  auto t0 = std::chrono::steady_clock::now();
  auto with_ra = ads_post(rg.port, body, {{"Cache-Control", "no-cache"}});
  CHECK_MESSAGE(with_ra.status == 200, with_ra.body);
  CHECK(std::chrono::steady_clock::now() - t0 >= std::chrono::milliseconds(900));  // honoured Retry-After: 1

  SandboxAdmin(sb.port).add_ads_fault(R"({"status":429,"count":1,"retry_after_s":0})");
  auto without_ra = ads_post(rg.port, body, {{"Cache-Control", "no-cache"}});
  CHECK_MESSAGE(without_ra.status == 200, without_ra.body);
  CHECK(ads_stats(sb.port)["rate_limited"].GetInt() == 2);

  // The client waits 2 s (enough for a token of recgate's own bucket, which the
  // last 429 emptied), but upstream asks for 5: 429, saying why. Nothing stored.
  SandboxAdmin(sb.port).add_ads_fault(R"({"status":429,"count":1,"retry_after_s":5})");
  auto impatient = ads_post(rg.port, R"({"adAsins":["B09LJWZT6G"],"count":11})", {{"Prefer", "wait=2"}});
  CHECK(impatient.status == 429);
  CHECK(problem_code(impatient) == "quota_wait_exceeded");
  CHECK_MESSAGE(member(impatient, "detail").find("the Ads API answered 429") != std::string::npos, impatient.body);
  CHECK_FALSE(impatient.header("retry-after").empty());
  CHECK(ads_stats(sb.port)["faults"]["pending"].GetInt() == 0);
  // With a stored answer, the same situation serves it stale (docs/design.md §3, §4).
  auto stale = ads_post(rg.port, body, {{"Cache-Control", "no-cache"}, {"Prefer", "wait=0"}});
  CHECK(stale.status == 200);
  CHECK(stale.header("cache-status") == "recgate; hit; fwd=stale");
  check_no_secrets(rg.proc);
}

TEST_CASE("ads: a 401 from the Ads API triggers one refresh and one retry") {
  Sandbox sb;
  TempDir dir;
  Recgate rg(dir, test_config(dir, sb.port));
  const std::string body = R"({"adAsins":["B09LJWZT6G"],"count":2})";
  REQUIRE(ads_post(rg.port, body).status == 200);
  CHECK(token_requests(sb.port) == 1);

  SandboxAdmin(sb.port).add_ads_fault(R"({"status":401})");
  auto after_fault = ads_post(rg.port, body, {{"Cache-Control", "no-cache"}});
  CHECK(after_fault.status == 200);
  CHECK(token_requests(sb.port) == 2);

  SandboxAdmin(sb.port).add_ads_fault(R"({"expire_tokens":true})");
  auto after_expiry = ads_post(rg.port, body, {{"Cache-Control", "no-cache"}});
  CHECK(after_expiry.status == 200);
  CHECK(token_requests(sb.port) == 3);

  // Still 401 after the refresh: reported, not retried again.
  SandboxAdmin(sb.port).add_ads_fault(R"({"status":401,"count":2})");
  auto twice = ads_post(rg.port, R"({"adAsins":["B09LJWZT6G"],"count":9})");
  CHECK(twice.status == 502);
  CHECK(problem_code(twice) == "upstream_error");
  CHECK(member(twice, "upstreamCode") == "401");
  CHECK(token_requests(sb.port) == 4);
  CHECK(ads_status_count(sb.port, "401") == 4);
  check_no_secrets(rg.proc);
}

TEST_CASE("ads: cursor requests are never cached, only-if-cached and no-cache") {
  Sandbox sb;
  TempDir dir;
  Recgate rg(dir, test_config(dir, sb.port));
  auto first = ads_post(rg.port, R"({"adAsins":["B09LJWZT6G"],"count":3})");
  REQUIRE(first.status == 200);
  const std::string cursor = parse(first.body)["nextCursor"].GetString();
  const std::string paged = R"({"adAsins":["B09LJWZT6G"],"count":3,"cursor":")" + cursor + "\"}";
  const int before = ads_requests(sb.port);
  auto p1 = ads_post(rg.port, paged);
  auto p2 = ads_post(rg.port, paged);
  REQUIRE(p1.status == 200);
  REQUIRE(p2.status == 200);
  CHECK(p1.header("cache-status") == "recgate; fwd=bypass");
  CHECK(p2.header("cache-status") == "recgate; fwd=bypass");
  CHECK(p1.body == p2.body);
  CHECK(p1.body != first.body);
  CHECK(ads_requests(sb.port) == before + 2);
  CHECK(std::string(ads_stats(sb.port)["last_request"]["body"].GetString()).find("\"cursor\":\"" + cursor) !=
        std::string::npos);

  auto cursor_cached_only = ads_post(rg.port, paged, {{"Cache-Control", "only-if-cached"}});
  CHECK(cursor_cached_only.status == 504);
  CHECK(problem_code(cursor_cached_only) == "not_cached");
  auto uncached = ads_post(rg.port, R"({"adAsins":["B0000000AA"]})", {{"Cache-Control", "only-if-cached"}});
  CHECK(uncached.status == 504);
  auto cached = ads_post(rg.port, R"({"adAsins":["B09LJWZT6G"],"count":3})", {{"Cache-Control", "only-if-cached"}});
  CHECK(cached.status == 200);
  CHECK(cached.header("cache-status") == "recgate; hit");
  CHECK(ads_requests(sb.port) == before + 2);

  auto refetch = ads_post(rg.port, R"({"adAsins":["B09LJWZT6G"],"count":3})", {{"Cache-Control", "no-cache"}});
  CHECK(refetch.status == 200);
  CHECK(refetch.header("cache-status") == "recgate; fwd=request; stored");
  CHECK(ads_requests(sb.port) == before + 3);
  check_no_secrets(rg.proc);
}

TEST_CASE("ads: upstream failures serve a stored answer as stale, else 502, timeouts are 504") {
  Sandbox sb;
  TempDir dir;
  // TTL 0: every stored answer is expired at once but may be served stale (ads.max_stale_s).
  Recgate rg(dir, test_config(dir, sb.port, R"("upstream":{"request_timeout_ms":1000})", "", R"("cache_ttl_s":0)"));
  const std::string body = R"({"adAsins":["B09LJWZT6G"],"count":2})";
  auto first = ads_post(rg.port, body);
  REQUIRE(first.status == 200);
  SandboxAdmin(sb.port).add_ads_fault(R"({"status":500})");
  auto stale = ads_post(rg.port, body);
  CHECK(stale.status == 200);
  CHECK(stale.header("cache-status") == "recgate; hit; fwd=stale");
  CHECK(stale.body == first.body);

  SandboxAdmin(sb.port).add_ads_fault(R"({"status":500})");
  auto failed = ads_post(rg.port, R"({"adAsins":["B09LJWZT6G"],"count":7})");
  CHECK(failed.status == 502);
  CHECK(problem_code(failed) == "upstream_error");
  CHECK(member(failed, "upstreamCode") == "500");

  SandboxAdmin(sb.port).add_ads_fault(R"({"latency_ms":3000})");
  auto slow = ads_post(rg.port, R"({"adAsins":["B09LJWZT6G"],"count":8})");
  CHECK(slow.status == 504);
  CHECK(problem_code(slow) == "upstream_timeout");
  check_no_secrets(rg.proc);
}

TEST_CASE("ads: tokens and answers survive a restart") {
  Sandbox sb;
  TempDir dir;
  const std::string body = R"({"adAsins":["B09LJWZT6G"],"count":6})";
  {
    Recgate rg(dir, test_config(dir, sb.port));
    REQUIRE(ads_post(rg.port, body).status == 200);
    rg.proc.signal(SIGTERM);
    REQUIRE(rg.proc.wait_exit() == 0);
    check_no_secrets(rg.proc);
  }
  REQUIRE(token_requests(sb.port) == 1);
  const int calls = ads_requests(sb.port);
  Recgate rg(dir, test_config(dir, sb.port));
  auto hit = ads_post(rg.port, body);
  CHECK(hit.status == 200);
  CHECK(hit.header("cache-status") == "recgate; hit");
  CHECK(ads_requests(sb.port) == calls);
  auto other = ads_post(rg.port, R"({"adAsins":["B09LJWZT6G"],"count":1})");
  CHECK(other.status == 200);
  CHECK(token_requests(sb.port) == 1);  // the stored token was still good
  CHECK(rg.proc.output().find("lwa token loaded") != std::string::npos);
  check_no_secrets(rg.proc);
}

TEST_CASE("ads: DELETE /v1/cache purges the account's answers, /v1/status shows expiry, never the token") {
  Sandbox sb;
  TempDir dir;
  Recgate rg(dir, test_config(dir, sb.port));
  const std::string body = R"({"adAsins":["B09LJWZT6G"],"count":2})";
  REQUIRE(ads_post(rg.port, body).status == 200);
  auto status = http_get(rg.port, "/v1/status");
  REQUIRE(status.status == 200);
  auto s = parse(status.body);
  CHECK(s["cache"]["ads"]["memoryEntries"].GetInt() == 1);
  REQUIRE(s["lwaTokens"].Size() == 1);
  CHECK(std::string(s["lwaTokens"][0]["account"].GetString()) == "main");
  CHECK(s["lwaTokens"][0]["expiresAtMs"].GetInt64() > 0);
  CHECK(status.body.find("Atza|") == std::string::npos);

  // A category names MWS entries only: the Ads answer stays.
  CHECK(http_request(rg.port, "DELETE", "/v1/cache?account=main&category=Inventory").status == 200);
  CHECK(ads_post(rg.port, body).header("cache-status") == "recgate; hit");
  auto purged = http_request(rg.port, "DELETE", "/v1/cache?account=main");
  REQUIRE(purged.status == 200);
  CHECK(parse(purged.body)["purged"].GetInt() >= 1);
  CHECK(ads_post(rg.port, body).header("cache-status") == "recgate; fwd=miss; stored");
  check_no_secrets(rg.proc);
}
