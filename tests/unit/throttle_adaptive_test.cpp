// Learning an unpublished limit (issue 15 item 1): the AIMD arithmetic, the
// Retry-After forms, and the throttler's adaptive buckets on a fake clock
// (cut on a throttle, raised after quiet periods, shown in status, kept in
// SQLite across a restart). No sockets, no sleeps.
#include <doctest/doctest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <filesystem>
#include <limits>
#include <optional>
#include <string>

#include "core/store.hpp"
#include "core/throttle/adaptive.hpp"
#include "core/throttle/throttler.hpp"

using namespace recgate;

namespace {

AdaptiveSpec spec_2_per_s() {
  AdaptiveSpec s;
  s.ceiling_per_s = 2;
  s.floor_per_s = 0.1;
  s.step_per_s = 0.1;
  s.decrease = 0.5;
  s.quiet_s = 30;
  s.ceiling_capacity = 10;
  return s;
}

constexpr double kNever = -std::numeric_limits<double>::infinity();

std::optional<BucketStatus> status_of(const Throttler& th, const std::string& op) {
  for (const auto& s : th.status())
    if (s.operation == op) return s;
  return std::nullopt;
}

}  // namespace

TEST_CASE("adaptive: a throttle halves rate and burst once per burst of answers, quiet periods add a step") {
  AdaptiveRate a(spec_2_per_s(), 2, kNever, 0);
  CHECK(a.capacity() == 10);
  CHECK(a.on_throttle(100));
  CHECK(a.rate() == doctest::Approx(1));
  CHECK(a.capacity() == 5);
  // More 429s answering calls sent before the cut: not news.
  CHECK_FALSE(a.on_throttle(100.2));
  CHECK_FALSE(a.on_throttle(100.9));
  CHECK(a.rate() == doctest::Approx(1));
  // A throttle a full restore period later cuts again.
  CHECK(a.on_throttle(102));
  CHECK(a.rate() == doctest::Approx(0.5));
  CHECK(a.capacity() == 2);
  // No increase before a quiet period, then one step per period.
  CHECK_FALSE(a.on_success(120));
  CHECK(a.on_success(132));
  CHECK(a.rate() == doctest::Approx(0.6));
  CHECK_FALSE(a.on_success(150));
  CHECK(a.on_success(162));
  CHECK(a.rate() == doctest::Approx(0.7));
  // Never below the floor, never above the ceiling.
  AdaptiveRate low(spec_2_per_s(), 0.15, kNever, 0);
  CHECK(low.on_throttle(10));
  CHECK(low.rate() == doctest::Approx(0.1));
  CHECK(low.capacity() == 1);
  AdaptiveRate high(spec_2_per_s(), 5, kNever, 0);
  CHECK(high.rate() == 2);
  CHECK_FALSE(high.on_success(1000));
}

TEST_CASE("adaptive: Retry-After as seconds or as an HTTP date") {
  const double now = 784111777;  // Sun, 06 Nov 1994 08:49:37 GMT
  CHECK(parse_retry_after_header("120", now) == 120.0);
  CHECK(parse_retry_after_header(" 3 ", now) == 3.0);
  CHECK(parse_retry_after_header("Sun, 06 Nov 1994 08:50:07 GMT", now) == 30.0);
  CHECK(parse_retry_after_header("Sun, 06 Nov 1994 08:49:00 GMT", now) == 0.0);  // past: now
  CHECK_FALSE(parse_retry_after_header("", now));
  CHECK_FALSE(parse_retry_after_header("-1", now));
  CHECK_FALSE(parse_retry_after_header("1.5", now));
  CHECK_FALSE(parse_retry_after_header("Sun, 06 Foo 1994 08:49:37 GMT", now));
  CHECK_FALSE(parse_retry_after_header("Sunday, 06-Nov-94 08:49:37 GMT", now));
}

TEST_CASE("adaptive: Ads and LWA buckets learn by default, MWS keeps its published rate, config overrides") {
  ThrottleConfig cfg;
  BucketSpec ads{10, 2};
  auto a = adaptive_spec_for(cfg, "ads.ProductRecommendations", ads);
  REQUIRE(a);
  CHECK(a->ceiling_per_s == 2);
  CHECK(a->floor_per_s == doctest::Approx(0.1));
  CHECK(a->step_per_s == doctest::Approx(0.1));
  CHECK(a->ceiling_capacity == 10);
  CHECK(adaptive_spec_for(cfg, "lwa.Token", BucketSpec{5, 1}));
  CHECK_FALSE(adaptive_spec_for(cfg, "mws.ListRecommendations", BucketSpec{8, 0.5}));
  cfg.adaptive["mws.ListRecommendations"] = AdaptiveConfig{true, 0, 0.2, 0.05, 0.7, 10};
  auto m = adaptive_spec_for(cfg, "mws.ListRecommendations", BucketSpec{8, 0.5});
  REQUIRE(m);
  CHECK(m->floor_per_s == doctest::Approx(0.2));
  CHECK(m->decrease == doctest::Approx(0.7));
  cfg.adaptive["ads.ProductRecommendations"].enabled = false;
  CHECK_FALSE(adaptive_spec_for(cfg, "ads.ProductRecommendations", ads));
}

TEST_CASE("adaptive: the throttler cuts an Ads bucket on a throttle, raises it after quiet, and keeps it across a restart") {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() /
                       ("recgate-adaptive-test-" +
                        std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
  fs::create_directories(dir);
  const std::string path = (dir / "recgate.db").string();
  double now = 1.8e9;
  ThrottleConfig cfg;
  cfg.margin_ms = 0;
  {
    auto store = Store::open(path);
    Throttler th(cfg, store.get(), [&now] { return now; });
    th.on_upstream_throttled("main", "ads.ProductRecommendations", std::nullopt);
    auto s = status_of(th, "ads.ProductRecommendations");
    REQUIRE(s);
    REQUIRE(s->learnt_restore_per_s);
    CHECK(*s->learnt_restore_per_s == doctest::Approx(1));
    CHECK(s->capacity == 5);
    CHECK(s->restore_per_s == doctest::Approx(1));
    REQUIRE(s->last_throttle_at);
    CHECK(*s->last_throttle_at == now);
    // Quiet for 120 s (the default): the next success raises the rate a step (ceiling / 20).
    now += 60;
    th.on_upstream_success("main", "ads.ProductRecommendations");
    CHECK(*status_of(th, "ads.ProductRecommendations")->learnt_restore_per_s == doctest::Approx(1));
    now += 61;
    th.on_upstream_success("main", "ads.ProductRecommendations");
    CHECK(*status_of(th, "ads.ProductRecommendations")->learnt_restore_per_s == doctest::Approx(1.1));
    // MWS buckets are not adaptive by default.
    th.on_upstream_throttled("main", "mws.ListRecommendations", 1.0);
    auto mws = status_of(th, "mws.ListRecommendations");
    REQUIRE(mws);
    CHECK_FALSE(mws->learnt_restore_per_s);
    CHECK(mws->restore_per_s == doctest::Approx(0.5));
    store->flush();
  }
  {
    auto store = Store::open(path);  // a restart: the learnt rate is not forgotten
    Throttler th(cfg, store.get(), [&now] { return now; });
    boost::asio::io_context io;
    boost::asio::co_spawn(
        io,
        [&th]() -> boost::asio::awaitable<void> {
          co_await th.acquire("main", "ads.ProductRecommendations", std::chrono::milliseconds(0));
        },
        boost::asio::detached);
    io.run();
    auto s = status_of(th, "ads.ProductRecommendations");
    REQUIRE(s);
    REQUIRE(s->learnt_restore_per_s);
    CHECK(*s->learnt_restore_per_s == doctest::Approx(1.1));
    CHECK(s->capacity == 5);
    REQUIRE(s->last_throttle_at);
  }
  fs::remove_all(dir);
}
