// The I/O threads and the server's drain state, built before anything that
// needs an executor: one io_context per thread, each run by exactly that
// thread, so a session needs no strand and never contends on a shared queue.
// The first is the main one (services, signals, the acceptor).
#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <vector>

namespace recgate::http {

class IoThreads {
 public:
  explicit IoThreads(int threads);  // at least one
  IoThreads(const IoThreads&) = delete;
  IoThreads& operator=(const IoThreads&) = delete;

  boost::asio::io_context& main() { return main_; }
  // The next thread's io_context, round robin: where a new connection lives.
  boost::asio::io_context& next();
  std::size_t size() const { return workers_.size() + 1; }
  // Runs every io_context, the main one on the calling thread; returns once
  // all have stopped.
  void run();
  // Safe from any thread.
  void stop();

 private:
  // Declared first so they outlive main_, whose pending accept may hold a
  // socket bound to one of them (docs/coroutines.md R11).
  std::vector<std::unique_ptr<boost::asio::io_context>> workers_;
  boost::asio::io_context main_{1};
  std::vector<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guards_;
  std::atomic<std::size_t> next_{0};
};

// Requests being answered and the drain that waits for them: once draining,
// the last request to finish calls the on_idle callback the server set.
class Drain {
 public:
  void begin() { inflight_.fetch_add(1); }
  void end() {
    if (inflight_.fetch_sub(1) == 1 && draining_.load() && on_idle_) on_idle_();
  }
  bool draining() const { return draining_.load(); }
  int inflight() const { return inflight_.load(); }
  // Starts the drain; false when it had started already.
  bool start() { return !draining_.exchange(true); }
  // Set once, before any session runs.
  void on_idle(std::function<void()> f) { on_idle_ = std::move(f); }

 private:
  std::atomic<int> inflight_{0};
  std::atomic<bool> draining_{false};
  std::function<void()> on_idle_;
};

}  // namespace recgate::http
