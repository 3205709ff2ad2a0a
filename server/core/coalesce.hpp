// Request coalescing ("single flight", like nginx proxy_cache_lock): identical
// upstream work in flight at the same time runs once, on its own strand, and
// every caller (rider) gets its result. Each rider keeps its own quota wait
// limit: the flight's quota wait is bounded by the latest limit among the
// riders still on it, and a rider whose limit passes while the flight is queued
// for quota leaves with its own 429. A rider that leaves (client gone, limit
// reached) does not end the flight for the others; when the last one leaves,
// the work itself is cancelled, so a queued quota wait spends no token for nobody.
// A rider's limit is timed on the services' injected clock (svc::Clock), so a
// test steps it with a fake clock.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <exception>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "core/problem.hpp"
#include "core/services/clock.hpp"
#include "core/throttle/wait_limit.hpp"

namespace recgate {

template <class R>
class Coalescer {
  static_assert(std::is_constructible_v<R, Problem>, "a rider that reaches its wait limit is answered a Problem");

 public:
  // The work gets the flight's wait limit: pass it to Throttler::acquire (and
  // to any coalesced work it waits on in turn).
  using Work = std::function<boost::asio::awaitable<R>(WaitLimitPtr)>;

  explicit Coalescer(boost::asio::any_io_executor ex, const svc::Clock& clock = svc::system_clock())
      : ex_(std::move(ex)), clock_(clock) {}

  // Runs work() unless the same key is already in flight, then waits for the
  // shared result, or until `limit` passes while the flight is queued for
  // quota (then R holds that 429). `joined` tells whether this call rode on
  // another's flight. Returns nullopt only when this caller was cancelled.
  // `work` is moved from; the caller keeps key and work alive across the await
  // (no non-trivial by-value coroutine parameters here: g++ 12 destroys them
  // twice in class-template coroutines).
  boost::asio::awaitable<std::optional<R>> run(const std::string& key, Work& work, const WaitLimitPtr& limit,
                                               bool* joined = nullptr) {
    for (;;) {
      std::shared_ptr<Flight> f;
      bool start = false;
      {
        std::lock_guard lk(mu_);
        auto it = flights_.find(key);
        if (it != flights_.end() && !it->second->abandoned()) {
          f = it->second;
        } else {
          f = std::make_shared<Flight>(boost::asio::make_strand(ex_), this, key);
          flights_[key] = f;
          start = true;
        }
      }
      auto rider = std::make_shared<Rider>(limit);
      // Board before the work starts: its first quota wait reads the riders' limits.
      const Boarding boarded = f->board(rider);
      if (boarded == Boarding::abandoned) continue;  // its last rider just left: start afresh
      if (joined) *joined = !start;
      if (start) {
        // The job travels as a raw pointer owned by run_flight's body: g++ 12
        // destroys non-trivial by-value coroutine parameters twice in this spot.
        auto* job = new Job{this, key, f, std::move(work)};
        // The completion handler keeps the Flight (and so the cancellation
        // signal the spawned coroutine's state hangs on) alive until the
        // coroutine has completely finished; ASan caught the Flight dying first.
        boost::asio::co_spawn(f->strand, run_flight(job),
                              boost::asio::bind_cancellation_slot(f->cancel.slot(), [f](std::exception_ptr) {}));
      }
      const Exit exit = boarded == Boarding::done ? Exit::done : co_await wait(f.get(), rider.get());
      if (exit == Exit::cancelled) co_return std::nullopt;
      if (exit == Exit::rejected) co_return R(std::move(*rider->rejection));
      if (f->error) std::rethrow_exception(f->error);
      co_return *f->result;
    }
  }

  std::size_t in_flight() const {
    std::lock_guard lk(mu_);
    return flights_.size();
  }

 private:
  enum class Exit { done, rejected, cancelled };
  enum class Boarding { boarded, done, abandoned };

  struct Rider : std::enable_shared_from_this<Rider> {
    explicit Rider(WaitLimitPtr l) : limit(std::move(l)) {}
    const WaitLimitPtr limit;  // its own (a request), or an enclosing flight's
    // Guarded by Flight::mu:
    std::optional<Exit> exit;
    std::optional<Problem> rejection;
    std::function<void()> complete;  // resumes the caller; set once it awaits
    bool expired = false;            // its own limit passed while the flight was not queued
    std::unique_ptr<svc::Alarm> alarm;  // its own limit; used on the flight's strand
  };

  struct Flight final : WaitLimit, std::enable_shared_from_this<Flight> {
    Flight(boost::asio::strand<boost::asio::any_io_executor> s, Coalescer* o, std::string k)
        : strand(std::move(s)), owner(o), key(std::move(k)) {}
    boost::asio::strand<boost::asio::any_io_executor> strand;
    Coalescer* const owner;
    const std::string key;
    mutable std::mutex mu;
    bool done = false;
    bool left = false;  // every rider left before the work finished: the work is cancelled
    std::optional<R> result;
    std::exception_ptr error;
    std::map<std::uint64_t, std::shared_ptr<Rider>> riders;
    std::map<const Rider*, std::uint64_t> ids;
    std::uint64_t next_id = 0;
    QueueReject reject;  // set while the work is queued for quota
    boost::asio::cancellation_signal cancel;  // used on `strand` only

    bool abandoned() {
      std::lock_guard lk(mu);
      return left;
    }

    // The latest limit among the riders: the flight may wait that long.
    double deadline() const override {
      std::vector<WaitLimitPtr> limits;
      {
        std::lock_guard lk(mu);
        for (const auto& [id, r] : riders) limits.push_back(r->limit);
      }
      double latest = -std::numeric_limits<double>::infinity();
      for (const auto& l : limits) latest = std::max(latest, l->deadline());
      return latest;
    }

    // The work is (no longer) queued for quota: riders whose limit already
    // passed leave now; riders that are flights themselves pass it on.
    void queued(const QueueReject& r) override {
      std::vector<std::shared_ptr<Rider>> expired;
      std::vector<WaitLimitPtr> nested;
      {
        std::lock_guard lk(mu);
        reject = r;
        for (const auto& [id, rider] : riders) {
          if (!rider->limit->remaining_s())
            nested.push_back(rider->limit);
          else if (r && rider->expired)
            expired.push_back(rider);
        }
      }
      for (const auto& l : nested) l->queued(r);
      for (const auto& rider : expired) reject_rider(rider, r);
    }

    Boarding board(const std::shared_ptr<Rider>& rider) {
      QueueReject forward;
      {
        std::lock_guard lk(mu);
        if (left) return Boarding::abandoned;
        if (done) return Boarding::done;
        const std::uint64_t id = next_id++;
        riders.emplace(id, rider);
        ids.emplace(rider.get(), id);
        if (!rider->limit->remaining_s()) forward = reject;
      }
      if (auto remaining = rider->limit->remaining_s()) arm(rider, *remaining);
      if (forward) rider->limit->queued(forward);
      return Boarding::boarded;
    }

    void arm(const std::shared_ptr<Rider>& rider, double remaining_s) {
      boost::asio::post(strand, [f = this->shared_from_this(), rider, remaining_s] {
        {
          std::lock_guard lk(f->mu);
          if (rider->exit) return;
        }
        // Rounded up: the rider never leaves before its limit.
        const double ms = std::ceil(std::clamp(remaining_s, 0.0, 86400.0) * 1e3);
        rider->alarm = f->owner->clock_.after(f->strand, static_cast<std::int64_t>(ms),
                                              [f, rider] { f->limit_reached(rider); });
      });
    }

    // On the strand, at the rider's own limit.
    void limit_reached(const std::shared_ptr<Rider>& rider) {
      QueueReject r;
      {
        std::lock_guard lk(mu);
        if (rider->exit) return;
        if (!reject) {
          // Not waiting for quota now (calling upstream): a request that got
          // its quota in time is answered; it leaves if the work queues again.
          rider->expired = true;
          return;
        }
        r = reject;
      }
      reject_rider(rider, r);
    }

    void reject_rider(const std::shared_ptr<Rider>& rider, const QueueReject& r) {
      Problem p = r(rider->limit->limit_s());  // outside mu: takes the throttler's lock
      {
        std::lock_guard lk(mu);
        if (rider->exit) return;
        rider->rejection = std::move(p);
      }
      leave(rider, Exit::rejected);
    }

    // Ends one rider's wait; the last rider out cancels the work.
    void leave(const std::shared_ptr<Rider>& rider, Exit exit) {
      std::function<void()> complete;
      bool last = false;
      {
        std::lock_guard lk(mu);
        if (rider->exit) return;
        rider->exit = exit;
        complete = std::move(rider->complete);
        if (auto it = ids.find(rider.get()); it != ids.end()) {
          riders.erase(it->second);
          ids.erase(it);
        }
        last = riders.empty() && !done && !left;
        if (last) left = true;
      }
      stop_alarm(rider);
      if (last) {
        owner->forget(key, this);
        boost::asio::post(strand, [f = this->shared_from_this()] { f->cancel.emit(boost::asio::cancellation_type::terminal); });
      }
      if (complete) complete();
    }

    void stop_alarm(const std::shared_ptr<Rider>& rider) {
      boost::asio::post(strand, [rider] {
        if (rider->alarm) rider->alarm->cancel();
      });
    }
  };

  struct Job {
    Coalescer* self;
    std::string key;
    std::shared_ptr<Flight> f;
    Work work;
  };

  // Removes the flight from the table if it is still the one under `key`.
  void forget(const std::string& key, const Flight* f) {
    std::lock_guard lk(mu_);
    auto it = flights_.find(key);
    if (it != flights_.end() && it->second.get() == f) flights_.erase(it);
  }

  static boost::asio::awaitable<void> run_flight(Job* raw) {
    std::unique_ptr<Job> job(raw);
    std::shared_ptr<Flight> f = job->f;
    Work& work = job->work;
    std::optional<R> result;
    std::exception_ptr error;
    try {
      result.emplace(co_await work(WaitLimitPtr(f)));
    } catch (...) {
      error = std::current_exception();
    }
    job->self->forget(job->key, f.get());
    std::map<std::uint64_t, std::shared_ptr<Rider>> riders;
    {
      std::lock_guard lk(f->mu);
      f->done = true;
      f->result = std::move(result);
      f->error = error;
      riders = f->riders;
    }
    for (auto& [id, rider] : riders) f->leave(rider, Exit::done);
  }

  // Completes when the rider leaves: the flight is done, it reached its limit
  // while queued, or its caller was cancelled. Both are kept alive by the
  // caller (raw pointers: see run() on g++ 12 and coroutine parameters).
  static boost::asio::awaitable<Exit> wait(Flight* raw, Rider* raw_rider) {
    co_return co_await boost::asio::async_initiate<decltype(boost::asio::use_awaitable), void(Exit)>(
        [raw, raw_rider](auto handler) {
          Flight* f = raw;
          Rider* rider = raw_rider;
          using H = decltype(handler);
          auto ex = boost::asio::get_associated_executor(handler);
          auto slot = boost::asio::get_associated_cancellation_slot(handler);
          auto holder = std::make_shared<std::optional<H>>(std::move(handler));
          auto complete = [holder, ex, rider]() {
            boost::asio::post(ex, [holder, rider]() mutable {
              if (!*holder) return;
              H h = std::move(**holder);
              holder->reset();
              std::move(h)(*rider->exit);
            });
          };
          std::unique_lock lk(f->mu);
          if (rider->exit) {
            lk.unlock();
            complete();
            return;
          }
          rider->complete = complete;
          lk.unlock();
          if (slot.is_connected()) {
            slot.assign([f = f->shared_from_this(), r = rider->shared_from_this()](boost::asio::cancellation_type) {
              f->leave(r, Exit::cancelled);
            });
          }
        },
        boost::asio::use_awaitable);
  }

  boost::asio::any_io_executor ex_;
  const svc::Clock& clock_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<Flight>> flights_;
};

}  // namespace recgate
