// Unit tests of the throttle layer (server/core/throttle/throttler) on a real
// io_context. Time is a fake clock the tests move by hand, then
// Throttler::reevaluate() and io.poll(): no sleeps, no assertions on elapsed
// wall time. Persistence uses a temporary SQLite database.
#include <doctest/doctest.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/metrics.hpp"
#include "core/store.hpp"
#include "core/throttle/throttler.hpp"

using namespace recgate;
namespace net = boost::asio;
using std::chrono::milliseconds;

namespace {

struct Outcome {
  bool done = false;
  int order = -1;
  std::optional<Grant> grant;
  std::optional<Problem> problem;
};
using OutcomePtr = std::shared_ptr<Outcome>;

struct Sequence {
  std::atomic<int> next{0};
  std::atomic<int> failures{0};
};

net::awaitable<void> acquire_into(Throttler* th, std::string account, std::string op, milliseconds max_wait,
                                  OutcomePtr out, std::shared_ptr<Sequence> seq) {
  auto r = co_await th->acquire(std::move(account), std::move(op), max_wait);
  out->order = seq->next++;
  if (r) {
    out->grant = *r;
  } else {
    out->problem = r.error();
  }
  out->done = true;
}

// A session's shape: the handler races the client's disconnect (here a timer
// the test cancels); operator|| cancels the loser.
net::awaitable<void> acquire_or_disconnect(Throttler* th, net::steady_timer* disconnect, OutcomePtr out,
                                           std::shared_ptr<Sequence> seq) {
  using namespace net::experimental::awaitable_operators;
  auto which = co_await (acquire_into(th, "main", "mws.ListRecommendations", milliseconds(30000), out, seq) ||
                         disconnect->async_wait(net::as_tuple(net::use_awaitable)));
  if (which.index() == 1) out->order = -2;  // the disconnect won
}

struct Harness {
  net::io_context io;
  double now = 1.8e9;
  std::shared_ptr<Sequence> seq = std::make_shared<Sequence>();

  Throttler::Clock clock() {
    return [this] { return now; };
  }

  OutcomePtr spawn(Throttler& th, std::string op, milliseconds max_wait, std::string account = "main",
                   net::cancellation_slot slot = {}) {
    auto out = std::make_shared<Outcome>();
    net::co_spawn(io, acquire_into(&th, std::move(account), std::move(op), max_wait, out, seq),
                  net::bind_cancellation_slot(slot, [seq = seq](std::exception_ptr e) {
                    if (e) ++seq->failures;
                  }));
    return out;
  }

  void poll() {
    io.restart();
    io.poll();
  }

  // Moves the fake clock and lets the throttler act on it.
  void advance(Throttler& th, double seconds) {
    now += seconds;
    th.reevaluate();
    poll();
  }
};

ThrottleConfig exact_config(double capacity = 2, double restore_per_s = 1) {
  ThrottleConfig cfg;
  cfg.margin_ms = 0;
  cfg.buckets["mws.ListRecommendations"] = BucketConfig{capacity, restore_per_s};
  return cfg;
}

std::optional<BucketStatus> find_status(const Throttler& th, const std::string& account, const std::string& op) {
  for (const auto& s : th.status())
    if (s.account == account && s.operation == op) return s;
  return std::nullopt;
}

std::string header(const Problem& p, const std::string& name) {
  for (const auto& [k, v] : p.headers)
    if (k == name) return v;
  return "<absent>";
}

// One period of the exact test bucket (1 per s, restored 0.1% slower), plus a hair.
constexpr double kPeriod = 1.001;
constexpr double kHair = 1e-6;

}  // namespace

TEST_CASE("throttle groups and bucket specs") {
  CHECK(throttle_group("mws.ListRecommendationsByNextToken") == "mws.ListRecommendations");
  CHECK(throttle_group("mws.ListRecommendations") == "mws.ListRecommendations");
  CHECK(throttle_group("mws.GetLastUpdatedTimeForRecommendations") == "mws.GetLastUpdatedTimeForRecommendations");

  ThrottleConfig cfg;
  struct Row {
    const char* op;
    double capacity, restore_per_s;
  };
  const Row rows[] = {
      {"mws.GetLastUpdatedTimeForRecommendations", 8, 0.5},
      {"mws.ListRecommendations", 8, 0.5},
      {"mws.ListRecommendationsByNextToken", 8, 0.5},
      {"mws.GetServiceStatus", 2, 1.0 / 300},
      {"ads.ProductRecommendations", 10, 2},
      {"lwa.Token", 5, 1},
  };
  for (const auto& row : rows) {
    CAPTURE(row.op);
    auto spec = bucket_spec_for(cfg, row.op);
    REQUIRE(spec);
    CHECK(spec->capacity == row.capacity);
    CHECK(spec->restore_per_s == doctest::Approx(row.restore_per_s));
    CHECK(spec->margin_s == doctest::Approx(0.25));
    CHECK(spec->reserve_tokens == 0);
  }
  CHECK_FALSE(bucket_spec_for(cfg, "mws.Nope"));

  cfg.buckets["ads.ProductRecommendations"] = BucketConfig{4, 0.25};
  cfg.margin_ms = 100;
  cfg.reserve_tokens = 1;
  auto ads = bucket_spec_for(cfg, "ads.ProductRecommendations");
  REQUIRE(ads);
  CHECK(ads->capacity == 4);
  CHECK(ads->restore_per_s == 0.25);
  CHECK(ads->margin_s == doctest::Approx(0.1));
  CHECK(ads->reserve_tokens == 1);
}

TEST_CASE("throttler: immediate grants, then FIFO - ByNextToken shares the ListRecommendations bucket") {
  Harness h;
  Throttler th(exact_config(), nullptr, h.clock());

  auto a = h.spawn(th, "mws.ListRecommendations", milliseconds(10000));
  auto b = h.spawn(th, "mws.ListRecommendationsByNextToken", milliseconds(10000));
  h.poll();
  REQUIRE(a->done);
  REQUIRE(b->done);
  REQUIRE(a->grant);
  REQUIRE(b->grant);
  CHECK(a->grant->position == 0);
  CHECK(a->grant->waited_s == 0);
  CHECK(a->grant->granted_at == h.now);

  auto c = h.spawn(th, "mws.ListRecommendationsByNextToken", milliseconds(10000));
  auto d = h.spawn(th, "mws.ListRecommendations", milliseconds(10000));
  auto e = h.spawn(th, "mws.ListRecommendations", milliseconds(10000));
  h.poll();
  CHECK_FALSE(c->done);
  CHECK_FALSE(d->done);
  CHECK_FALSE(e->done);
  REQUIRE(th.status().size() == 1);
  auto s = find_status(th, "main", "mws.ListRecommendations");
  REQUIRE(s);
  CHECK(s->waiters == 3);
  CHECK(s->capacity == 2);
  CHECK(s->restore_per_s == 1);
  CHECK(s->tokens == doctest::Approx(0));
  CHECK(s->next_token_s == doctest::Approx(kPeriod));

  h.advance(th, kPeriod * 0.5);
  CHECK_FALSE(c->done);
  h.advance(th, kPeriod * 0.5 + kHair);
  CHECK(c->done);
  CHECK_FALSE(d->done);
  h.advance(th, kPeriod);
  CHECK(d->done);
  CHECK_FALSE(e->done);
  h.advance(th, kPeriod);
  REQUIRE(e->done);

  REQUIRE(c->grant);
  REQUIRE(d->grant);
  REQUIRE(e->grant);
  CHECK(c->order < d->order);
  CHECK(d->order < e->order);
  CHECK(c->grant->position == 1);
  CHECK(e->grant->position == 3);
  CHECK(c->grant->waited_s == doctest::Approx(kPeriod).epsilon(1e-4));
  CHECK(e->grant->waited_s == doctest::Approx(3 * kPeriod).epsilon(1e-4));
  CHECK(find_status(th, "main", "mws.ListRecommendations")->waiters == 0);

  // Another account has its own bucket.
  auto other = h.spawn(th, "mws.ListRecommendations", milliseconds(0), "second");
  h.poll();
  REQUIRE(other->grant);
  CHECK(th.status().size() == 2);
  CHECK(h.seq->failures == 0);
}

TEST_CASE("throttler: 429 at once when this request's turn is beyond the client's wait") {
  Harness h;
  ThrottleConfig cfg = exact_config();
  SUBCASE("by queue position") {
    Throttler th(cfg, nullptr, h.clock());
    Counter& rejections = Metrics::instance().counter("recgate_throttle_rejections_total", "",
                                                      {{"operation", "mws.ListRecommendations"}});
    const double before = rejections.value();
    h.spawn(th, "mws.ListRecommendations", milliseconds(0));
    h.spawn(th, "mws.ListRecommendations", milliseconds(0));
    auto x = h.spawn(th, "mws.ListRecommendations", milliseconds(500));
    h.poll();  // no time passes: the decision is made on arrival
    REQUIRE(x->done);
    REQUIRE(x->problem);
    CHECK(x->problem->status == 429);
    CHECK(x->problem->code == "quota_wait_exceeded");
    CHECK(x->problem->detail.find("main") != std::string::npos);
    CHECK(x->problem->detail.find("mws.ListRecommendations") != std::string::npos);
    CHECK(header(*x->problem, "Retry-After") == "2");
    CHECK(header(*x->problem, "RateLimit-Policy") == "\"mws-ListRecommendations\";q=2;w=2");
    CHECK(header(*x->problem, "RateLimit") == "\"mws-ListRecommendations\";r=0;t=2");

    auto q1 = h.spawn(th, "mws.ListRecommendations", milliseconds(10000));
    auto q2 = h.spawn(th, "mws.ListRecommendations", milliseconds(10000));
    auto late = h.spawn(th, "mws.ListRecommendations", milliseconds(2500));   // 3rd in line: 3.003 s
    auto fits = h.spawn(th, "mws.ListRecommendations", milliseconds(3100));   // also 3rd: 3.003 s
    h.poll();
    REQUIRE(late->done);
    REQUIRE(late->problem);
    CHECK(header(*late->problem, "Retry-After") == "4");
    CHECK_FALSE(fits->done);
    CHECK(find_status(th, "main", "mws.ListRecommendations")->waiters == 3);
    CHECK(rejections.value() - before == 2);

    for (int i = 0; i < 3; ++i) h.advance(th, kPeriod + kHair);  // the bucket holds 2 at most
    CHECK(q1->grant);
    CHECK(q2->grant);
    CHECK(fits->grant);
  }
  SUBCASE("by queue length (throttle.max_queue)") {
    cfg.max_queue = 2;
    Throttler th(cfg, nullptr, h.clock());
    h.spawn(th, "mws.ListRecommendations", milliseconds(0));
    h.spawn(th, "mws.ListRecommendations", milliseconds(0));
    auto q1 = h.spawn(th, "mws.ListRecommendations", milliseconds(60000));
    auto q2 = h.spawn(th, "mws.ListRecommendations", milliseconds(60000));
    auto q3 = h.spawn(th, "mws.ListRecommendations", milliseconds(60000));
    h.poll();
    REQUIRE(q3->problem);
    CHECK(q3->problem->status == 429);
    CHECK(q3->problem->detail.find("full") != std::string::npos);
    h.advance(th, 2 * kPeriod + kHair);
    CHECK(q1->grant);
    CHECK(q2->grant);
  }
  CHECK(h.seq->failures == 0);
}

TEST_CASE("throttler: a cancelled waiter leaves the queue, spends no token, the others move up") {
  Harness h;
  Throttler th(exact_config(), nullptr, h.clock());
  h.spawn(th, "mws.ListRecommendations", milliseconds(0));
  h.spawn(th, "mws.ListRecommendations", milliseconds(0));

  SUBCASE("cancelled while queued") {
    net::cancellation_signal sig;
    auto a = h.spawn(th, "mws.ListRecommendations", milliseconds(10000), "main", sig.slot());
    auto b = h.spawn(th, "mws.ListRecommendations", milliseconds(10000));
    auto c = h.spawn(th, "mws.ListRecommendations", milliseconds(10000));
    h.poll();
    CHECK(find_status(th, "main", "mws.ListRecommendations")->waiters == 3);

    sig.emit(net::cancellation_type::terminal);
    h.poll();
    REQUIRE(a->done);
    REQUIRE(a->problem);
    CHECK(a->problem->status == 499);
    auto s = find_status(th, "main", "mws.ListRecommendations");
    CHECK(s->waiters == 2);
    CHECK(s->tokens == doctest::Approx(0));

    h.advance(th, kPeriod + kHair);  // b now has a's place
    REQUIRE(b->grant);
    CHECK(b->grant->waited_s == doctest::Approx(kPeriod).epsilon(1e-4));
    CHECK_FALSE(c->done);
    h.advance(th, kPeriod);
    CHECK(c->grant);
  }
  SUBCASE("cancelled after its token was granted but before it resumed: the token is handed on") {
    net::cancellation_signal sig;
    auto a = h.spawn(th, "mws.ListRecommendations", milliseconds(10000), "main", sig.slot());
    auto b = h.spawn(th, "mws.ListRecommendations", milliseconds(10000));
    h.poll();
    h.now += kPeriod + kHair;
    th.reevaluate();  // grants a's token, posts its wake-up
    sig.emit(net::cancellation_type::terminal);
    h.poll();
    REQUIRE(a->problem);
    CHECK(a->problem->status == 499);
    REQUIRE(b->grant);  // got the token a gave back
    CHECK(b->grant->waited_s == doctest::Approx(kPeriod).epsilon(1e-4));
    CHECK(find_status(th, "main", "mws.ListRecommendations")->tokens == doctest::Approx(0).epsilon(1e-4));
  }
  SUBCASE("through awaitable operator || (the session's disconnect watch)") {
    net::steady_timer disconnect(h.io, net::steady_timer::time_point::max());
    auto a = std::make_shared<Outcome>();
    net::co_spawn(h.io, acquire_or_disconnect(&th, &disconnect, a, h.seq), [seq = h.seq](std::exception_ptr e) {
      if (e) ++seq->failures;
    });
    auto b = h.spawn(th, "mws.ListRecommendations", milliseconds(10000));
    h.poll();
    CHECK(find_status(th, "main", "mws.ListRecommendations")->waiters == 2);
    disconnect.cancel();
    h.poll();
    CHECK(a->order == -2);
    CHECK_FALSE(a->grant);
    CHECK(find_status(th, "main", "mws.ListRecommendations")->waiters == 1);
    h.advance(th, kPeriod + kHair);
    REQUIRE(b->grant);
    CHECK(b->grant->waited_s == doctest::Approx(kPeriod).epsilon(1e-4));
  }
  CHECK(h.seq->failures == 0);
}

TEST_CASE("throttler: upstream throttle empties the bucket and holds it (Retry-After or 2, 4, 8 .. 60 s)") {
  Harness h;
  Throttler th(exact_config(), nullptr, h.clock());
  Counter& throttles = Metrics::instance().counter("recgate_upstream_throttles_total", "",
                                                   {{"api", "mws"}, {"operation", "mws.ListRecommendations"}});
  const double before = throttles.value();
  auto next_token = [&] { return find_status(th, "main", "mws.ListRecommendations")->next_token_s; };

  th.on_upstream_throttled("main", "mws.ListRecommendations", std::nullopt);
  auto s = find_status(th, "main", "mws.ListRecommendations");
  REQUIRE(s);
  CHECK(s->tokens == 0);
  CHECK(s->available == 0);
  CHECK(next_token() == doctest::Approx(2 + kPeriod));
  th.on_upstream_throttled("main", "mws.ListRecommendationsByNextToken", std::nullopt);
  CHECK(next_token() == doctest::Approx(4 + kPeriod));
  th.on_upstream_throttled("main", "mws.ListRecommendations", std::nullopt);
  CHECK(next_token() == doctest::Approx(8 + kPeriod));
  for (int i = 0; i < 6; ++i) th.on_upstream_throttled("main", "mws.ListRecommendations", std::nullopt);
  CHECK(next_token() == doctest::Approx(60 + kPeriod));
  CHECK(throttles.value() - before == 9);

  h.now += 61;  // the hold is over
  th.on_upstream_success("main", "mws.ListRecommendations");
  th.on_upstream_throttled("main", "mws.ListRecommendations", 7.0);  // Retry-After honoured
  CHECK(next_token() == doctest::Approx(7 + kPeriod));

  h.now += 600;  // the streak is forgotten after 5 quiet minutes
  th.on_upstream_throttled("main", "mws.ListRecommendations", std::nullopt);
  CHECK(next_token() == doctest::Approx(2 + kPeriod));

  // A waiter whose turn a new backoff pushes past its limit is answered at once.
  auto w = h.spawn(th, "mws.ListRecommendations", milliseconds(4000));  // 3.001 s: fits
  h.poll();
  CHECK_FALSE(w->done);
  th.on_upstream_throttled("main", "mws.ListRecommendations", std::nullopt);  // 4 s hold: 5.001 s
  h.poll();
  REQUIRE(w->done);
  REQUIRE(w->problem);
  CHECK(w->problem->status == 429);
  CHECK(header(*w->problem, "Retry-After") == "6");
  CHECK(h.seq->failures == 0);
}

TEST_CASE("throttler: levels persist in SQLite - a restart never grants a fresh burst") {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() /
                 ("recgate-throttle-test-" + std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
  fs::create_directories(dir);
  const std::string path = (dir / "recgate.db").string();
  Harness h;
  ThrottleConfig cfg;  // the defaults: MWS 8 / 0.5 per s, margin 250 ms
  const double r = 0.5 / 1.001;
  const double t0 = h.now;
  {
    auto store = Store::open(path);
    Throttler th(cfg, store.get(), h.clock());
    std::vector<OutcomePtr> burst;
    for (int i = 0; i < 8; ++i) burst.push_back(h.spawn(th, "mws.ListRecommendations", milliseconds(0)));
    h.poll();
    int granted = 0;
    for (const auto& o : burst) granted += o->grant ? 1 : 0;
    CHECK(granted == 7);  // the margin keeps 0.25 of a token back
    th.on_upstream_throttled("main", "ads.ProductRecommendations", 30.0);
    store->flush();  // the writes were posted at grant time
    store->mark_clean_shutdown();  // a clean stop: the levels are trusted (an unclean one starts empty)
  }
  h.now = t0 + 1;
  {
    auto store = Store::open(path);  // a new process: reopened from disk
    Throttler th(cfg, store.get(), h.clock());
    auto s = find_status(th, "main", "mws.ListRecommendations");
    REQUIRE(s);
    CHECK(s->tokens == doctest::Approx(1 + r).epsilon(1e-3));
    auto ads = find_status(th, "main", "ads.ProductRecommendations");
    REQUIRE(ads);
    CHECK(ads->tokens == 0);
    CHECK(ads->next_token_s > 29);  // the hold survived the restart

    auto one = h.spawn(th, "mws.ListRecommendations", milliseconds(0));
    auto two = h.spawn(th, "mws.ListRecommendations", milliseconds(0));
    h.poll();
    CHECK(one->grant);
    REQUIRE(two->problem);
    CHECK(two->problem->status == 429);

    // A bucket with no stored row has never granted: it starts full.
    CHECK_FALSE(find_status(th, "main", "mws.GetLastUpdatedTimeForRecommendations"));
    auto fresh = h.spawn(th, "mws.GetLastUpdatedTimeForRecommendations", milliseconds(0));
    h.poll();
    CHECK(fresh->grant);
    CHECK(find_status(th, "main", "mws.GetLastUpdatedTimeForRecommendations")->tokens == doctest::Approx(7));
    th.save_all();
    store->mark_clean_shutdown();
  }
  h.now = t0 + 2;
  {
    auto store = Store::open(path);
    Throttler th(cfg, store.get(), h.clock());
    CHECK(find_status(th, "main", "mws.ListRecommendations")->tokens ==
          doctest::Approx(1 + 2 * r - 1).epsilon(1e-3));
    CHECK(find_status(th, "main", "mws.GetLastUpdatedTimeForRecommendations")->tokens ==
          doctest::Approx(7 + r).epsilon(1e-3));
    store->mark_clean_shutdown();
  }
  h.now = t0 - 3600;  // the wall clock stepped back an hour across a restart
  {
    auto store = Store::open(path);
    Throttler th(cfg, store.get(), h.clock());
    // Nothing restores before the stored time: the level written at t0 + 1.
    CHECK(find_status(th, "main", "mws.ListRecommendations")->tokens == doctest::Approx(r).epsilon(1e-3));
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
  CHECK(h.seq->failures == 0);
}

TEST_CASE("throttler: acquirers on their own strands across 4 threads never exceed the bucket") {
  ThrottleConfig cfg;
  cfg.margin_ms = 0;
  cfg.buckets["lwa.Token"] = BucketConfig{3, 400};
  Throttler th(cfg, nullptr);  // the real wall clock
  net::io_context io(4);
  auto seq = std::make_shared<Sequence>();
  std::vector<OutcomePtr> outcomes;
  for (int i = 0; i < 200; ++i) {
    auto out = std::make_shared<Outcome>();
    outcomes.push_back(out);
    net::co_spawn(net::make_strand(io), acquire_into(&th, "main", "lwa.Token", milliseconds(60000), out, seq),
                  [seq](std::exception_ptr e) {
                    if (e) ++seq->failures;
                  });
  }
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) threads.emplace_back([&io] { io.run(); });
  for (auto& t : threads) t.join();

  CHECK(seq->failures == 0);
  std::vector<double> grants;
  for (const auto& o : outcomes) {
    REQUIRE(o->done);
    REQUIRE(o->grant);
    grants.push_back(o->grant->granted_at);
  }
  std::sort(grants.begin(), grants.end());
  // Every run of n grants spanning Δ seconds: n ≤ capacity + rate·Δ.
  const double rate = 400 / 1.001;
  int worst_excess = 0;
  for (std::size_t i = 0; i < grants.size(); ++i)
    for (std::size_t j = i; j < grants.size(); ++j) {
      double allowed = 3 + rate * (grants[j] - grants[i]) + 1e-6;
      if (static_cast<double>(j - i + 1) > allowed) ++worst_excess;
    }
  CHECK(worst_excess == 0);
  CHECK(find_status(th, "main", "lwa.Token")->waiters == 0);
}

// ---- per-client queue share (issue 11 item 8) ------------------------------

namespace {

net::awaitable<void> acquire_as(Throttler* th, std::string client, OutcomePtr out, std::shared_ptr<Sequence> seq) {
  auto r = co_await th->acquire("main", "mws.ListRecommendations", th->limit_for(milliseconds(3600 * 1000)),
                                std::move(client));
  out->order = seq->next++;
  if (r) {
    out->grant = *r;
  } else {
    out->problem = r.error();
  }
  out->done = true;
}

OutcomePtr spawn_as(Harness& h, Throttler& th, const std::string& client) {
  auto out = std::make_shared<Outcome>();
  net::co_spawn(h.io, acquire_as(&th, client, out, h.seq), net::detached);
  return out;
}

}  // namespace

TEST_CASE("throttler: one client holds at most max_queue_per_client places of a bucket's queue") {
  Harness h;
  ThrottleConfig cfg = exact_config(1, 1);
  cfg.max_queue = 100;
  cfg.max_queue_per_client = 2;
  Throttler th(cfg, nullptr, h.clock());
  auto first = spawn_as(h, th, "greedy");  // takes the only token
  h.poll();
  REQUIRE(first->grant);
  std::vector<OutcomePtr> greedy;
  for (int i = 0; i < 3; ++i) greedy.push_back(spawn_as(h, th, "greedy"));
  auto polite = spawn_as(h, th, "polite");
  h.poll();
  CHECK_FALSE(greedy[0]->done);
  CHECK_FALSE(greedy[1]->done);
  REQUIRE(greedy[2]->done);  // over its share: 429 at once
  REQUIRE(greedy[2]->problem);
  CHECK(greedy[2]->problem->status == 429);
  CHECK(greedy[2]->problem->code == "quota_wait_exceeded");
  CHECK(greedy[2]->problem->detail.find("throttle.max_queue_per_client = 2") != std::string::npos);
  CHECK(header(*greedy[2]->problem, "Retry-After") != "<absent>");
  CHECK_FALSE(polite->done);  // another client still gets a place
  CHECK(find_status(th, "main", "mws.ListRecommendations")->waiters == 3);
  // Once one of its requests is served, the client may queue another.
  h.advance(th, kPeriod + kHair);
  CHECK(greedy[0]->grant);
  auto again = spawn_as(h, th, "greedy");
  h.poll();
  CHECK_FALSE(again->done);
  // Every queued request is served in order.
  for (int i = 0; i < 3; ++i) h.advance(th, kPeriod + kHair);
  CHECK(greedy[1]->grant);
  CHECK(polite->grant);
  CHECK(again->grant);
}

TEST_CASE("throttler: the default client share is a quarter of max_queue, requests without a client are not limited by it") {
  ThrottleConfig cfg;
  cfg.max_queue = 1000;
  CHECK(cfg.queue_share_per_client() == 250);
  cfg.max_queue = 3;
  CHECK(cfg.queue_share_per_client() == 1);
  cfg.max_queue_per_client = 7;
  CHECK(cfg.queue_share_per_client() == 7);

  Harness h;
  ThrottleConfig small = exact_config(1, 1);
  small.max_queue = 8;  // share: 2
  Throttler th(small, nullptr, h.clock());
  auto first = spawn_as(h, th, "");
  std::vector<OutcomePtr> anonymous;
  for (int i = 0; i < 4; ++i) anonymous.push_back(spawn_as(h, th, ""));
  h.poll();
  REQUIRE(first->grant);
  for (const auto& o : anonymous) CHECK_FALSE(o->done);
  std::vector<OutcomePtr> named;
  for (int i = 0; i < 3; ++i) named.push_back(spawn_as(h, th, "10.0.0.7"));
  h.poll();
  CHECK_FALSE(named[0]->done);
  CHECK_FALSE(named[1]->done);
  CHECK(named[2]->done);
  for (int i = 0; i < 6; ++i) h.advance(th, kPeriod + kHair);
  for (const auto& o : anonymous) CHECK(o->grant);
  CHECK(named[0]->grant);
  CHECK(named[1]->grant);
}
