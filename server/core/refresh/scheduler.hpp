// [refresh] The refresh-ahead scheduler: a timer coroutine that, every tick,
// asks each source (the MWS and Ads services) which hot answers are due (the
// source re-checks what it must, e.g. MWS last-updated times of hot pairs),
// keeps them in a bounded backlog per quota bucket, and refreshes the
// most-asked first while spare quota lasts; the rest wait for a later tick.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace recgate::refresh {

// One answer to refresh.
struct Pending {
  std::string account;
  std::string bucket;  // the throttle group its first call takes quota from
  std::string key;     // the source's cache key
  std::uint64_t asks = 0;
};

enum class Outcome {
  refreshed,  // refetched and stored
  no_spare,   // no spare quota now: stays pending, its bucket is done for this tick
  failed,     // the upstream failed: dropped (the next client fetches as before)
  skipped,    // no longer needed (already fresh, gone from the cache): dropped
};
const char* outcome_name(Outcome o);

// What a source is told each tick.
struct Tick {
  std::int64_t now_ms = 0;      // wall clock, ms since the epoch
  std::int64_t every_ms = 0;    // the time to the next tick (an answer due later may wait for it)
  std::size_t max_checks = 0;   // background checks it may make now
};

class Source {
 public:
  virtual ~Source() = default;
  virtual const char* api() const = 0;
  // The hot answers that are due for a refresh now, most asked first; may make
  // background checks with spare quota (bounded by t.max_checks).
  virtual boost::asio::awaitable<std::vector<Pending>> due(Tick t) = 0;
  // Refetches one answer with spare quota only.
  virtual boost::asio::awaitable<Outcome> refresh(Pending p) = 0;
};

class Scheduler {
 public:
  // Ticks every `every` on a strand of `ex`, doing at most max_per_tick
  // refreshes and checks per tick; ends for good once `stopping` is true (the
  // drain). Sources must outlive the scheduler.
  Scheduler(boost::asio::any_io_executor ex, std::chrono::milliseconds every, std::size_t max_per_tick,
            std::function<bool()> stopping);
  ~Scheduler();  // stops the timer
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  void add(Source& src);
  void start();
  // Stops after the current refresh (shutdown).
  void stop();

  struct BacklogRow {
    std::string api;
    std::string account;
    std::string bucket;
    std::size_t pending = 0;
  };
  std::vector<BacklogRow> backlog() const;

  struct State;

 private:
  std::shared_ptr<State> st_;
};

}  // namespace recgate::refresh
