// Request coalescing ("single flight", like nginx proxy_cache_lock): identical
// upstream work in flight at the same time runs once, on its own strand, and
// every caller gets its result. A caller whose coroutine is cancelled (client
// gone) leaves; when the last one leaves, the work itself is cancelled, so a
// queued quota wait spends no token for nobody.
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
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace recgate {

template <class R>
class Coalescer {
 public:
  using Work = std::function<boost::asio::awaitable<R>()>;

  explicit Coalescer(boost::asio::any_io_executor ex) : ex_(std::move(ex)) {}

  // Runs work() unless the same key is already in flight, then waits for the
  // shared result. `joined` tells whether this call rode on another's flight.
  // Returns nullopt only when this caller was cancelled.
  // `work` is moved from; the caller keeps key and work alive across the await
  // (no non-trivial by-value coroutine parameters here: g++ 12 destroys them
  // twice in class-template coroutines).
  boost::asio::awaitable<std::optional<R>> run(const std::string& key, Work& work, bool* joined = nullptr) {
    std::shared_ptr<Flight> f;
    bool start = false;
    {
      std::lock_guard lk(mu_);
      auto it = flights_.find(key);
      if (it != flights_.end()) {
        f = it->second;
      } else {
        f = std::make_shared<Flight>(boost::asio::make_strand(ex_));
        flights_.emplace(key, f);
        start = true;
      }
    }
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
    bool aborted = co_await wait(f.get());
    if (aborted) co_return std::nullopt;
    co_return *f->result;
  }

  std::size_t in_flight() const {
    std::lock_guard lk(mu_);
    return flights_.size();
  }

 private:
  struct Flight : std::enable_shared_from_this<Flight> {
    explicit Flight(boost::asio::strand<boost::asio::any_io_executor> s) : strand(std::move(s)) {}
    boost::asio::strand<boost::asio::any_io_executor> strand;
    std::mutex mu;
    bool done = false;
    std::optional<R> result;
    std::exception_ptr error;
    std::map<std::uint64_t, std::function<void(bool)>> waiters;
    std::uint64_t next_id = 0;
    bool ever_waited = false;
    boost::asio::cancellation_signal cancel;  // used on `strand` only
  };

  struct Job {
    Coalescer* self;
    std::string key;
    std::shared_ptr<Flight> f;
    Work work;
  };

  static boost::asio::awaitable<void> run_flight(Job* raw) {
    std::unique_ptr<Job> job(raw);
    Coalescer* self = job->self;
    const std::string& key = job->key;
    std::shared_ptr<Flight> f = job->f;
    Work& work = job->work;
    std::optional<R> result;
    std::exception_ptr error;
    try {
      result.emplace(co_await work());
    } catch (...) {
      error = std::current_exception();
    }
    {
      std::lock_guard lk(self->mu_);
      auto it = self->flights_.find(key);
      if (it != self->flights_.end() && it->second == f) self->flights_.erase(it);
    }
    std::map<std::uint64_t, std::function<void(bool)>> waiters;
    {
      std::lock_guard lk(f->mu);
      f->done = true;
      f->result = std::move(result);
      f->error = error;
      waiters.swap(f->waiters);
    }
    for (auto& [id, complete] : waiters) complete(false);
  }

  // Completes with true when cancelled, false when the flight is done.
  // `raw` is kept alive by the caller's shared_ptr.
  static boost::asio::awaitable<bool> wait(Flight* raw) {
    bool aborted = co_await boost::asio::async_initiate<decltype(boost::asio::use_awaitable), void(bool)>(
        [raw](auto handler) {
          Flight* f = raw;
          using H = decltype(handler);
          auto ex = boost::asio::get_associated_executor(handler);
          auto slot = boost::asio::get_associated_cancellation_slot(handler);
          auto holder = std::make_shared<std::optional<H>>(std::move(handler));
          auto complete = [holder, ex](bool aborted) {
            boost::asio::post(ex, [holder, aborted]() mutable {
              if (!*holder) return;
              H h = std::move(**holder);
              holder->reset();
              std::move(h)(aborted);
            });
          };
          std::unique_lock lk(f->mu);
          if (f->done) {
            lk.unlock();
            complete(false);
            return;
          }
          const std::uint64_t id = f->next_id++;
          f->waiters.emplace(id, complete);
          f->ever_waited = true;
          lk.unlock();
          if (slot.is_connected()) {
            slot.assign([f = f->shared_from_this(), id](boost::asio::cancellation_type) {
              std::function<void(bool)> fn;
              bool last = false;
              {
                std::lock_guard lk2(f->mu);
                auto it = f->waiters.find(id);
                if (it == f->waiters.end()) return;
                fn = std::move(it->second);
                f->waiters.erase(it);
                last = f->waiters.empty() && !f->done;
              }
              if (last)
                boost::asio::post(f->strand, [f] { f->cancel.emit(boost::asio::cancellation_type::terminal); });
              fn(true);
            });
          }
        },
        boost::asio::use_awaitable);
    if (!aborted && raw->error) std::rethrow_exception(raw->error);
    co_return aborted;
  }

  boost::asio::any_io_executor ex_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<Flight>> flights_;
};

}  // namespace recgate
