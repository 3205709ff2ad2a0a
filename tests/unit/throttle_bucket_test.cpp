// Unit tests of the token-bucket arithmetic (server/core/throttle/token_bucket),
// the 429 decision and the RateLimit header values, plus simulations that
// replay recgate's grants, jittered, into an exact model of Amazon's bucket.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "core/throttle/token_bucket.hpp"

using namespace recgate;

namespace {

BucketSpec mws_spec(double margin_s = 0.25, double reserve = 0, double rate_margin = 0.001) {
  BucketSpec s;
  s.capacity = 8;
  s.restore_per_s = 0.5;
  s.margin_s = margin_s;
  s.reserve_tokens = reserve;
  s.rate_margin = rate_margin;
  return s;
}

int take_all(TokenBucket& b, double now) {
  int n = 0;
  while (b.try_take(now)) ++n;
  return n;
}

// Amazon's MWS bucket on Amazon's clock: 8 requests, one restored every 2.000 s,
// full before the first request. Continuous restore, or whole tokens added at
// phase + 2k (another plausible implementation).
class AmazonBucket {
 public:
  explicit AmazonBucket(bool discrete = false, double phase = 0) : discrete_(discrete), phase_(phase) {}
  bool arrive(double t) {
    if (first_) {
      first_ = false;
      at_ = t;
    }
    if (discrete_) {
      double ticks = std::floor((t - phase_) / 2.0) - std::floor((at_ - phase_) / 2.0);
      level_ = std::min(8.0, level_ + std::max(0.0, ticks));
    } else {
      level_ = std::min(8.0, level_ + std::max(0.0, t - at_) / 2.0);
    }
    at_ = std::max(at_, t);
    if (level_ + 1e-12 < 1.0) return false;
    level_ -= 1.0;
    return true;
  }

 private:
  bool discrete_;
  double phase_;
  bool first_ = true;
  double level_ = 8;
  double at_ = 0;
};

int replay_rejections(std::vector<double> arrivals, bool discrete = false, double phase = 0) {
  std::sort(arrivals.begin(), arrivals.end());
  AmazonBucket amazon(discrete, phase);
  int rejected = 0;
  for (double a : arrivals) rejected += amazon.arrive(a) ? 0 : 1;
  return rejected;
}

// Serves `demand` (arrival times, sorted) in FIFO order from a bucket, each as
// early as the bucket allows; returns the grant times. Every `restart_every`
// grants the bucket is rebuilt from its persisted form (level, updated_at in
// whole milliseconds rounded up), as a restart does.
std::vector<double> serve(const BucketSpec& spec, const std::vector<double>& demand, int restart_every = 0) {
  TokenBucket bucket(spec, spec.capacity, demand.empty() ? 0 : demand.front());
  std::vector<double> grants;
  double t_prev = -std::numeric_limits<double>::infinity();
  for (double d : demand) {
    double t = std::max(d, t_prev);
    t += bucket.wait_for(t, 1);
    // At epoch scale a double resolves ~0.2 µs: step on if rounding left the
    // token a hair short (the throttler's timers re-arm the same way).
    for (int i = 0; !bucket.try_take(t); ++i) {
      REQUIRE(i < 10);
      t += std::max(bucket.wait_for(t, 1), 1e-6);
    }
    grants.push_back(t);
    t_prev = t;
    if (restart_every > 0 && grants.size() % static_cast<std::size_t>(restart_every) == 0)
      bucket = TokenBucket(spec, bucket.level(), std::ceil(bucket.updated_at() * 1000.0) / 1000.0);
  }
  return grants;
}

}  // namespace

TEST_CASE("token bucket: burst, restore with margin, reserve") {
  struct Row {
    const char* name;
    BucketSpec spec;
    int burst;            // grants at once from a full bucket
    double next_wait_s;   // then: wait for the next grant
  };
  const double r = 0.5 / 1.001;
  const Row rows[] = {
      {"no margin: the full 8", mws_spec(0, 0, 0), 8, 2.0},
      {"margin 250 ms: 7 at once, the 8th 0.5 s later", mws_spec(0.25), 7, 0.25 / r},
      {"margin 500 ms: 7, the 8th 1 s later", mws_spec(0.5), 7, 0.5 / r},
      {"reserve 1 token", mws_spec(0.25, 1), 6, 0.25 / r},
      {"reserve 0.5 and margin 250 ms", mws_spec(0.25, 0.5), 7, 0.75 / r},
  };
  for (const auto& row : rows) {
    CAPTURE(row.name);
    TokenBucket b(row.spec, row.spec.capacity, 1000.0);
    CHECK(b.available(1000.0) == row.burst);
    CHECK(take_all(b, 1000.0) == row.burst);
    CHECK(b.available(1000.0) == 0);
    CHECK(b.wait_for(1000.0, 1) == doctest::Approx(row.next_wait_s));
    CHECK_FALSE(b.try_take(1000.0 + row.next_wait_s - 0.01));
    CHECK(b.try_take(1000.0 + row.next_wait_s));
  }
}

TEST_CASE("token bucket: sustained restore and queue positions") {
  const BucketSpec spec = mws_spec(0.25);
  const double r = spec.effective_rate();
  TokenBucket b(spec, 0, 0);
  // From empty: a grant needs 1.25 tokens, each next one one more.
  CHECK(b.wait_for(0, 1) == doctest::Approx(1.25 / r));
  CHECK(b.wait_for(0, 2) == doctest::Approx(2.25 / r));
  CHECK(b.wait_for(0, 8) == doctest::Approx(8.25 / r));
  CHECK(b.wait_for(0, 0) == doctest::Approx(1.25 / r));  // position < 1 means the next
  // Grants at the predicted times: consecutive grants one period (2.002 s) apart.
  double t = 0;
  for (int i = 0; i < 5; ++i) {
    double w = b.wait_for(t, 1);
    t += w;
    REQUIRE(b.try_take(t));
    if (i > 0) CHECK(w == doctest::Approx(1 / r));
  }
  // Restores to capacity, never beyond.
  CHECK(b.tokens(t + 1e6) == doctest::Approx(8));
  CHECK(b.available(t + 1e6) == 7);
}

TEST_CASE("token bucket: clock jumps") {
  const BucketSpec spec = mws_spec(0, 0, 0);
  SUBCASE("backwards: no tokens created, last time stays") {
    TokenBucket b(spec, 8, 100);
    CHECK(take_all(b, 100) == 8);
    CHECK(b.tokens(50) == 0);
    CHECK_FALSE(b.try_take(50));
    CHECK(b.updated_at() == 100);
    CHECK_FALSE(b.try_take(101.9));  // not 51.9: time 50 counted as no time
    CHECK(b.try_take(102));
    CHECK(b.updated_at() == 102);
    // Back again to 90, then forward to 104: 2 s since 102, not 14 s since 90.
    CHECK_FALSE(b.try_take(90));
    CHECK(b.tokens(104) == doctest::Approx(1));
  }
  SUBCASE("forward: at most capacity") {
    TokenBucket b(spec, 0, 100);
    CHECK(b.tokens(100 + 86400 * 365.0) == 8);
    CHECK(take_all(b, 100 + 86400 * 365.0) == 8);
  }
  SUBCASE("constructed with a future time (clock stepped back across a restart)") {
    TokenBucket b(spec, 3, 200);
    CHECK(b.tokens(100) == 3);
    CHECK(b.wait_for(100, 4) == doctest::Approx(100 + 2));  // nothing restores before 200
    CHECK(take_all(b, 100) == 3);                           // existing tokens may be spent
    CHECK(b.updated_at() == 200);
  }
  SUBCASE("constructed above capacity or below zero: clamped") {
    CHECK(TokenBucket(spec, 20, 0).tokens(0) == 8);
    CHECK(TokenBucket(spec, -3, 0).tokens(0) == 0);
  }
}

TEST_CASE("token bucket: drain, hold, give back") {
  const BucketSpec spec = mws_spec(0.25);
  const double r = spec.effective_rate();
  TokenBucket b(spec, 8, 0);
  b.drain(10);
  CHECK(b.tokens(10) == 0);
  CHECK(b.wait_for(10, 1) == doctest::Approx(1.25 / r));

  b.hold_until(40);
  CHECK(b.held_until() == 40);
  CHECK(b.tokens(39) == 0);  // nothing restores during the hold
  CHECK(b.available(39) == 0);
  CHECK_FALSE(b.try_take(39));
  CHECK(b.wait_for(10, 1) == doctest::Approx(30 + 1.25 / r));
  CHECK(b.wait_for(10, 3) == doctest::Approx(30 + 3.25 / r));
  CHECK(b.updated_at() == 40);  // the hold survives persistence as a future time
  CHECK(b.try_take(40 + 1.25 / r));

  SUBCASE("a hold does not let tokens be granted even when some are left") {
    TokenBucket h(spec, 8, 0);
    h.hold_until(5);
    CHECK_FALSE(h.try_take(4));
    CHECK(h.available(4.99) == 0);
    CHECK(h.try_take(5));
  }
  SUBCASE("give back returns a granted token, capped at capacity") {
    TokenBucket g(spec, 2, 0);
    REQUIRE(g.try_take(0));
    g.give_back(0);
    CHECK(g.tokens(0) == doctest::Approx(2));
    g.give_back(1e6);
    CHECK(g.tokens(1e6) == 8);
  }
}

TEST_CASE("429 decision: wait against the client's limit, Retry-After rounded up") {
  struct Row {
    double wait_s, max_wait_s;
    bool serve;
    int retry_after_s;
  };
  const Row rows[] = {
      {0, 0, true, 0},
      {0, 30, true, 0},
      {2.5, 2.5, true, 0},
      {29.9999999999, 30, true, 0},  // rounding noise does not reject
      {2.5, 2.4, false, 3},
      {0.3, 0, false, 1},
      {1.0000000001, 0.5, false, 1},
      {6.5, 5, false, 7},
      {60, 30, false, 60},
      {std::numeric_limits<double>::infinity(), 30, false, 86400},
  };
  for (const auto& row : rows) {
    CAPTURE(row.wait_s);
    CAPTURE(row.max_wait_s);
    auto d = decide_wait(row.wait_s, row.max_wait_s);
    CHECK(d.serve == row.serve);
    if (!row.serve) CHECK(d.retry_after_s == row.retry_after_s);
  }

  // Queue positions on an empty exact bucket (one token per 2 s).
  struct PosRow {
    double position, max_wait_s;
    bool serve;
    int retry_after_s;
  };
  const PosRow pos_rows[] = {
      {1, 2, true, 0}, {1, 1.9, false, 2}, {3, 6, true, 0}, {3, 5, false, 6}, {10, 30, true, 0}, {16, 30, false, 32},
  };
  TokenBucket empty(mws_spec(0, 0, 0), 0, 0);
  for (const auto& row : pos_rows) {
    CAPTURE(row.position);
    CAPTURE(row.max_wait_s);
    auto d = decide_wait(empty, 0, row.position, row.max_wait_s);
    CHECK(d.serve == row.serve);
    if (!row.serve) CHECK(d.retry_after_s == row.retry_after_s);
  }
}

TEST_CASE("RateLimit-Policy and RateLimit values (draft-ietf-httpapi-ratelimit-headers)") {
  CHECK(ratelimit_policy_name("mws.ListRecommendations") == "mws-ListRecommendations");
  CHECK(ratelimit_policy_value("mws.ListRecommendations", mws_spec()) == "\"mws-ListRecommendations\";q=8;w=16");

  BucketSpec status;
  status.capacity = 2;
  status.restore_per_s = 1.0 / 300;
  CHECK(ratelimit_policy_value("mws.GetServiceStatus", status) == "\"mws-GetServiceStatus\";q=2;w=600");
  BucketSpec ads;
  ads.capacity = 10;
  ads.restore_per_s = 2;
  CHECK(ratelimit_policy_value("ads.ProductRecommendations", ads) == "\"ads-ProductRecommendations\";q=10;w=5");
  BucketSpec odd;
  odd.capacity = 5;
  odd.restore_per_s = 0.3;  // 16.67 s, rounded up
  CHECK(ratelimit_policy_value("lwa.Token", odd) == "\"lwa-Token\";q=5;w=17");

  TokenBucket full(mws_spec(), 8, 0);
  CHECK(ratelimit_value("mws.ListRecommendations", full, 0) == "\"mws-ListRecommendations\";r=7;t=0");
  TokenBucket empty(mws_spec(), 0, 0);
  CHECK(ratelimit_value("mws.ListRecommendations", empty, 0) == "\"mws-ListRecommendations\";r=0;t=3");
  TokenBucket exact(mws_spec(0, 0, 0), 0, 0);
  CHECK(ratelimit_value("mws.ListRecommendations", exact, 0) == "\"mws-ListRecommendations\";r=0;t=2");
}

TEST_CASE("simulation: demand above quota, ±250 ms arrival jitter, Amazon never throttles") {
  const BucketSpec spec = mws_spec(0.25);  // the defaults: throttle.margin_ms 250
  std::mt19937_64 rng(20261122);
  std::uniform_real_distribution<double> jitter(-0.25, 0.25);

  SUBCASE("saturated: internal clients push 1 request/s for 3 hours, with restarts") {
    std::vector<double> demand;
    std::exponential_distribution<double> gap(1.0);
    for (double t = 1.7e9; t < 1.7e9 + 3 * 3600;) demand.push_back(t += gap(rng));
    auto grants = serve(spec, demand, 97);
    REQUIRE(grants.size() > 5000);

    std::vector<double> arrivals;
    for (double g : grants) arrivals.push_back(g + 0.08 + jitter(rng));
    CHECK(replay_rejections(arrivals) == 0);
    for (double phase : {0.0, 0.4, 1.3, 1.999}) CHECK(replay_rejections(arrivals, true, phase) == 0);

    double rate = static_cast<double>(grants.size() - 8) / (grants.back() - grants.front());
    MESSAGE("grants: " << grants.size() << ", achieved rate " << rate << "/s = " << rate / 0.5 * 100
                       << "% of Amazon's 0.5/s");
    CHECK(rate >= 0.88 * 0.5);
    CHECK(rate >= 0.998 * 0.5);  // the margin costs no sustained quota, the rate margin 0.1%
  }

  SUBCASE("bursty: busy periods and idle gaps, so the bucket refills and bursts again") {
    std::vector<double> demand;
    std::uniform_real_distribution<double> idle(0, 40);
    std::uniform_int_distribution<int> burst(1, 40);
    double t = 1.7e9;
    for (int cycle = 0; cycle < 400; ++cycle) {
      int n = burst(rng);
      for (int i = 0; i < n; ++i) demand.push_back(t += 0.01);
      t += idle(rng);
    }
    auto grants = serve(spec, demand, 13);
    REQUIRE(grants.size() == demand.size());
    for (int run = 0; run < 20; ++run) {
      std::vector<double> arrivals;
      for (double g : grants) arrivals.push_back(g + jitter(rng));
      CHECK(replay_rejections(arrivals) == 0);
      CHECK(replay_rejections(arrivals, true, 2.0 * run / 20) == 0);
    }
  }
}

TEST_CASE("simulation: worst-case ±250 ms jitter (early grants late, later grants early)") {
  // The adversary delays every grant before a cut by +250 ms and advances every
  // grant after it by −250 ms: any window straddling the cut shrinks by 500 ms,
  // the most ±250 ms allows. Every cut position is tried.
  auto worst_case_rejections = [](const std::vector<double>& grants) {
    int worst = 0;
    for (std::size_t cut = 0; cut <= grants.size(); ++cut) {
      std::vector<double> arrivals;
      for (std::size_t i = 0; i < grants.size(); ++i) arrivals.push_back(grants[i] + (i < cut ? 0.25 : -0.25));
      worst = std::max(worst, replay_rejections(arrivals));
    }
    return worst;
  };
  // Demand: a burst of 30, a pause that refills the bucket, another burst.
  std::vector<double> demand;
  for (int i = 0; i < 30; ++i) demand.push_back(0.001 * i);
  for (int i = 0; i < 30; ++i) demand.push_back(200 + 0.001 * i);

  CHECK(worst_case_rejections(serve(mws_spec(0.25), demand)) == 0);
  CHECK(worst_case_rejections(serve(mws_spec(0.25), demand, 5)) == 0);  // restarts in between

  // Why not stretch the restore period to 2.25 s instead: 11% less sustained
  // quota, and the 9th request of a burst can reach Amazon 1.75 s after the
  // 1st, when only 0.875 tokens have come back.
  BucketSpec stretched = mws_spec(0, 0, 0);
  stretched.restore_per_s = 1 / 2.25;
  CHECK(worst_case_rejections(serve(stretched, demand)) > 0);
  // And without any margin, exact replay works only without jitter.
  CHECK(replay_rejections(serve(mws_spec(0, 0, 0), demand)) == 0);
  CHECK(worst_case_rejections(serve(mws_spec(0, 0, 0), demand)) > 0);
}
