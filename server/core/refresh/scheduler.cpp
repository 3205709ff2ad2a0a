// [refresh] The refresh-ahead scheduler (see scheduler.hpp). The backlog is
// keyed by api and cache key, so an answer is pending once however often it
// is found due; its size is bounded by the sources' hot sets.
#include "core/refresh/scheduler.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <set>

#include "core/log.hpp"
#include "core/metrics.hpp"

namespace recgate::refresh {

namespace net = boost::asio;

const char* outcome_name(Outcome o) {
  switch (o) {
    case Outcome::refreshed: return "refreshed";
    case Outcome::no_spare: return "no_spare";
    case Outcome::failed: return "failed";
    case Outcome::skipped: return "skipped";
  }
  return "failed";
}

struct Scheduler::State {
  State(net::any_io_executor ex, std::chrono::milliseconds e, std::size_t m, std::function<bool()> s)
      : strand(net::make_strand(ex)), timer(strand), every(e), max_per_tick(m), stopping(std::move(s)) {}
  bool ended() const { return stopped || stopping(); }
  net::strand<net::any_io_executor> strand;
  net::steady_timer timer;
  std::chrono::milliseconds every;
  std::size_t max_per_tick;
  std::function<bool()> stopping;
  std::vector<Source*> sources;
  std::atomic<bool> stopped{false};

  struct Item {
    Source* src;
    Pending p;
  };
  mutable std::mutex mu;             // backlog: the tick writes it, /v1/status reads it
  std::map<std::string, Item> backlog;  // api + '\n' + key
};

namespace {

using State = Scheduler::State;

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void count(const char* api, Outcome o) {
  Metrics::instance()
      .counter("recgate_refresh_total", "Background refreshes ahead of clients, by api and result.",
               {{"api", api}, {"result", outcome_name(o)}})
      .inc();
}

void publish_backlog(State& st) {
  std::map<std::string, double> per_api;
  for (auto* src : st.sources) per_api[src->api()] = 0;
  {
    std::lock_guard lk(st.mu);
    for (const auto& [k, item] : st.backlog) per_api[item.src->api()] += 1;
  }
  for (const auto& [api, n] : per_api)
    Metrics::instance()
        .gauge("recgate_refresh_backlog", "Hot answers due for a refresh ahead, waiting for spare quota.",
               {{"api", api}})
        .set(n);
}

net::awaitable<void> collect(State& st) {
  for (auto* src : st.sources) {
    const Tick t{wall_ms(), static_cast<std::int64_t>(st.every.count()), st.max_per_tick};
    auto due = co_await src->due(t);
    std::lock_guard lk(st.mu);
    for (auto& p : due) {
      std::string k = std::string(src->api()) + '\n' + p.key;
      auto [it, inserted] = st.backlog.try_emplace(std::move(k), State::Item{src, p});
      if (!inserted) it->second.p.asks = std::max(it->second.p.asks, p.asks);
    }
  }
}

// Most-asked first; a bucket without spare quota is skipped for the rest of the tick.
std::vector<std::pair<std::string, State::Item>> ordered(const State& st) {
  std::lock_guard lk(st.mu);
  std::vector<std::pair<std::string, State::Item>> v(st.backlog.begin(), st.backlog.end());
  std::stable_sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.second.p.asks > b.second.p.asks; });
  return v;
}

net::awaitable<void> tick(State& st) {
  co_await collect(st);
  std::set<std::string> exhausted;  // api, account, bucket
  std::size_t done = 0;
  for (auto& [k, item] : ordered(st)) {
    if (done >= st.max_per_tick || st.ended()) break;
    const std::string bucket_key = std::string(item.src->api()) + '\n' + item.p.account + '\n' + item.p.bucket;
    if (exhausted.count(bucket_key)) continue;
    const Outcome o = co_await item.src->refresh(item.p);
    ++done;
    count(item.src->api(), o);
    if (o == Outcome::no_spare) {
      exhausted.insert(bucket_key);
      continue;
    }
    std::lock_guard lk(st.mu);
    st.backlog.erase(k);
  }
  publish_backlog(st);
}

net::awaitable<void> loop(std::shared_ptr<State> st) {
  while (!st->ended()) {
    st->timer.expires_after(st->every);
    boost::system::error_code ec;
    co_await st->timer.async_wait(net::redirect_error(net::use_awaitable, ec));
    if (ec || st->ended()) break;
    try {
      co_await tick(*st);
    } catch (const std::exception& e) {
      log_warn("refresh tick failed", {{"error", e.what()}});
    }
  }
}

}  // namespace

Scheduler::Scheduler(net::any_io_executor ex, std::chrono::milliseconds every, std::size_t max_per_tick,
                     std::function<bool()> stopping)
    : st_(std::make_shared<State>(ex, std::max(every, std::chrono::milliseconds(100)),
                                  std::max<std::size_t>(1, max_per_tick), std::move(stopping))) {}

Scheduler::~Scheduler() { stop(); }

void Scheduler::add(Source& src) { st_->sources.push_back(&src); }

void Scheduler::start() {
  publish_backlog(*st_);
  net::co_spawn(st_->strand, loop(st_), net::detached);
}

void Scheduler::stop() {
  st_->stopped = true;
  net::post(st_->strand, [st = st_] { st->timer.cancel(); });
}

std::vector<Scheduler::BacklogRow> Scheduler::backlog() const {
  std::map<std::tuple<std::string, std::string, std::string>, std::size_t> n;
  {
    std::lock_guard lk(st_->mu);
    for (const auto& [k, item] : st_->backlog) ++n[{item.src->api(), item.p.account, item.p.bucket}];
  }
  std::vector<BacklogRow> out;
  for (const auto& [k, c] : n) out.push_back(BacklogRow{std::get<0>(k), std::get<1>(k), std::get<2>(k), c});
  return out;
}

}  // namespace recgate::refresh
