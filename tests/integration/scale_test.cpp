// [scale] several replicas, one seller quota, with real processes: Debian's
// redis-server (no persistence, free loopback port), three recgate processes on
// the same redis.url and one sandbox whose strict MWS buckets (8, one more per
// 2 s) count every throttle. Waits poll status and stats in bounded loops.
#include <doctest/doctest.h>
#include <rapidjson/document.h>
#include <signal.h>

#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "../support/json_body.hpp"
#include "../support/redis_server.hpp"
#include "../support/sandbox_admin.hpp"
#include "harness.hpp"

using namespace rgtest;
using recgate::test::RedisServer;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kReplicas = 3;
constexpr int kClientsPerReplica = 1;  // each always has a request queued: demand far above 0.5/s
// throttle.max_wait_s and every client's Prefer: wait: the three queued
// requests (6 s of quota) fit, so no client spins on 429s. A replica that loses
// Redis holds its local share this long (slots reserved before still run).
constexpr int kMaxWaitS = 10;
// Amazon's ListRecommendations bucket (docs/upstreams.md A.1), as the sandbox enforces it.
constexpr double kBurst = 8;
constexpr double kRestorePerS = 0.5;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::string brand_query(int i) {
  return "/v1/mws/main/recommendations?marketplace=ATVPDKIKX0DER&category=Selection&filter=BrandName%3DScale" +
         std::to_string(i);
}

// ListRecommendations calls the sandbox served (the NextToken pages share the bucket).
int list_calls(const SandboxAdmin& admin) {
  return admin.mws_requests("ListRecommendations") + admin.mws_requests("ListRecommendationsByNextToken");
}

// The three replicas: one config each (its own database), the same redis.url
// (none when `redis_url` is empty: three independent single processes).
struct Replicas {
  Replicas(int sandbox_port, const std::string& redis_url) {
    std::string extra = "\"throttle\":{\"max_wait_s\":" + std::to_string(kMaxWaitS) + "}";
    if (!redis_url.empty())
      extra += ",\"redis\":{\"url\":\"" + redis_url + "\",\"replicas\":" + std::to_string(kReplicas) + "}";
    for (int i = 0; i < kReplicas; ++i) {
      dirs.push_back(std::make_unique<TempDir>());
      procs.push_back(std::make_unique<Recgate>(*dirs.back(), test_config(*dirs.back(), sandbox_port, extra)));
    }
  }
  std::vector<int> ports() const {
    std::vector<int> out;
    for (const auto& p : procs) out.push_back(p->port);
    return out;
  }
  // Every replica's /v1/status quotaMode is `mode`.
  bool all_in_mode(const std::string& mode) const {
    for (const auto& p : procs) {
      auto r = http_get(p->port, "/v1/status");
      if (r.status != 200 || std::string(parse(r.body)["quotaMode"].GetString()) != mode) return false;
    }
    return true;
  }
  // /readyz of every replica: how many answered 200.
  int ready_count() const {
    int n = 0;
    for (const auto& p : procs) n += http_get(p->port, "/readyz").status == 200 ? 1 : 0;
    return n;
  }
  std::vector<std::unique_ptr<TempDir>> dirs;
  std::vector<std::unique_ptr<Recgate>> procs;
};

// Over-quota demand: kClientsPerReplica clients per replica, each sending
// distinct cold requests (every one needs a ListRecommendations call) one
// after another with Prefer: wait=kMaxWaitS, counting the 200s per replica.
class Demand {
 public:
  explicit Demand(std::vector<int> ports) : ports_(std::move(ports)) {
    for (std::size_t r = 0; r < ports_.size(); ++r)
      for (int c = 0; c < kClientsPerReplica; ++c) threads_.emplace_back([this, r] { run(r); });
  }
  ~Demand() { stop(); }
  // Stops sending; the caller kills the replicas first so queued requests end at once.
  void stop() {
    stop_ = true;
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }
  int ok(std::size_t replica) const { return ok_[replica].load(); }
  // A query this replica answered 200 (now in its cache); -1: none yet.
  int answered(std::size_t replica) const { return answered_[replica].load(); }
  int rejected() const { return rejected_.load(); }  // 429 quota_wait_exceeded
  int errors() const { return errors_.load(); }      // anything but 200 and 429

 private:
  void run(std::size_t r) {
    while (!stop_) {
      const int key = next_++;
      auto res = http_request(ports_[r], "GET", brand_query(key), "", {{"Prefer", "wait=" + std::to_string(kMaxWaitS)}},
                              std::chrono::seconds(60));
      if (stop_) return;
      if (res.status == 200) {
        ++ok_[r];
        int none = -1;
        answered_[r].compare_exchange_strong(none, key);
      } else if (res.status == 429) {
        ++rejected_;  // the quota is further away than the wait: expected while a share is held
      } else {
        ++errors_;
        MESSAGE("replica " << r << ": status " << res.status << " " << res.body.substr(0, 300));
      }
    }
  }
  std::vector<int> ports_;
  std::atomic<bool> stop_{false};
  std::atomic<int> next_{0};
  std::array<std::atomic<int>, kReplicas> ok_{};
  std::array<std::atomic<int>, kReplicas> answered_{-1, -1, -1};
  std::atomic<int> rejected_{0};
  std::atomic<int> errors_{0};
  std::vector<std::thread> threads_;
};

// A fresh Redis makes every shared bucket start EMPTY (shared_bucket.cpp: it
// cannot tell a first start from a restart that lost what the replicas spent).
// A deployment whose Redis has been up longer than one refill (16 s) has full
// buckets, like the sandbox: the marker key says the data began a minute ago.
void age_redis(const RedisServer& redis) {
  const long long began = std::chrono::duration_cast<std::chrono::seconds>(
                              std::chrono::system_clock::now().time_since_epoch()).count() - 60;
  REQUIRE(redis.cli("SET recgate:alive " + std::to_string(began)) == "OK");
}

// Ends the replicas first (queued requests fail at once), then the clients.
void stop_all(Replicas& reps, Demand& demand) {
  for (auto& p : reps.procs) p->proc.signal(SIGKILL);
  demand.stop();
}

}  // namespace

TEST_CASE("scale: 30 s of over-quota demand over three replicas: no throttle, at least 90 % of Amazon's maximum") {
  Sandbox sb;
  RedisServer redis;
  age_redis(redis);
  Replicas reps(sb.port, redis.url());
  REQUIRE(reps.all_in_mode("shared"));
  SandboxAdmin admin(sb.port);
  const int calls_before = list_calls(admin);

  const auto t0 = Clock::now();
  Demand demand(reps.ports());
  // The measurement window: the sandbox is polled so a throttle shows early in the log.
  int throttled = 0;
  while (seconds_since(t0) < 30.0) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    throttled = admin.mws_throttled();
    if (throttled > 0) break;
  }
  const double t = seconds_since(t0);
  const int calls = list_calls(admin) - calls_before;
  throttled = admin.mws_throttled();
  const double maximum = kBurst + kRestorePerS * t;
  MESSAGE("over " << t << " s: " << calls << " ListRecommendations calls, Amazon's maximum " << maximum << " ("
                  << 100.0 * calls / maximum << " %), throttled " << throttled << ", answers per replica "
                  << demand.ok(0) << "/" << demand.ok(1) << "/" << demand.ok(2));
  stop_all(reps, demand);
  CHECK(demand.errors() == 0);
  CHECK(throttled == 0);
  CHECK(calls >= 0.9 * maximum);
  CHECK(calls <= maximum);
  for (std::size_t r = 0; r < kReplicas; ++r) CHECK(demand.ok(r) > 0);  // the quota is shared, not taken by one
}

TEST_CASE("scale: Redis killed under load: fallback to the 1/N share without throttles, restarted: shared again") {
  Sandbox sb;
  RedisServer redis;
  age_redis(redis);
  Replicas reps(sb.port, redis.url());
  SandboxAdmin admin(sb.port);
  Demand demand(reps.ports());

  // Shared phase: the burst and a few refills have gone upstream.
  REQUIRE(wait_until([&] { return list_calls(admin) >= 10; }, std::chrono::seconds(60)));
  for (std::size_t r = 0; r < kReplicas; ++r)
    REQUIRE(wait_until([&] { return demand.answered(r) >= 0; }, std::chrono::seconds(60)));

  redis.kill();
  int not_ready = 0;
  const bool fell_back = wait_until(
      [&] {
        not_ready += kReplicas - reps.ready_count();
        return reps.all_in_mode("fallback");
      },
      std::chrono::seconds(30));
  REQUIRE(fell_back);

  // Fallback window: every replica keeps calling upstream on its 1/3 share.
  const auto tf0 = Clock::now();
  const int calls_f0 = list_calls(admin);
  std::array<int, kReplicas> ok_f0{};
  for (std::size_t r = 0; r < kReplicas; ++r) ok_f0[r] = demand.ok(r);
  int cached_ok = 0;
  while (seconds_since(tf0) < 24.0) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    not_ready += kReplicas - reps.ready_count();
  }
  const double tf = seconds_since(tf0);
  const int calls_f = list_calls(admin) - calls_f0;
  std::array<int, kReplicas> ok_f{};
  for (std::size_t r = 0; r < kReplicas; ++r) ok_f[r] = demand.ok(r) - ok_f0[r];
  // Cached answers need no quota: each replica answers one it served before at once.
  for (std::size_t r = 0; r < kReplicas; ++r)
    cached_ok += http_request(reps.procs[r]->port, "GET", brand_query(demand.answered(r)), "",
                              {{"Prefer", "wait=0"}}).status == 200 ? 1 : 0;
  const bool still_fallback = reps.all_in_mode("fallback");
  MESSAGE("fallback for " << tf << " s: " << calls_f << " ListRecommendations calls (1/3 share each: "
                          << kRestorePerS * tf << " at the full rate together), per replica " << ok_f[0] << "/"
                          << ok_f[1] << "/" << ok_f[2] << ", cached answers " << cached_ok << "/3");

  REQUIRE(redis.restart());
  const bool shared_again = wait_until([&] { return reps.all_in_mode("shared"); }, std::chrono::seconds(30));
  const int calls_r0 = list_calls(admin);
  // The shared bucket restarts empty (fresh Redis data): the next grant comes after a refill.
  const bool calls_resume = wait_until([&] { return list_calls(admin) >= calls_r0 + 2; }, std::chrono::seconds(30));
  not_ready += kReplicas - reps.ready_count();
  const int throttled = admin.mws_throttled();
  MESSAGE("after the restart: shared " << shared_again << ", throttled in total " << throttled
                                       << ", /readyz not 200: " << not_ready << ", 429s " << demand.rejected()
                                       << ", other errors " << demand.errors());
  stop_all(reps, demand);

  CHECK(still_fallback);
  CHECK(not_ready == 0);
  CHECK(cached_ok == kReplicas);
  for (std::size_t r = 0; r < kReplicas; ++r) CHECK(ok_f[r] >= 1);
  // Together the three shares make Amazon's rate: each starts empty and held
  // for kMaxWaitS, then loses at most one token to the first grant's floor; and
  // no share spends a whole burst of its own (that would be 3 x 8 + 1.5/s).
  CHECK(calls_f >= 0.9 * kRestorePerS * (tf - kMaxWaitS) - kReplicas);
  CHECK(calls_f <= kRestorePerS * tf + kBurst);
  CHECK(shared_again);
  CHECK(calls_resume);
  CHECK(throttled == 0);
}
