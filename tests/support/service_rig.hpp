// Service-level tests: one rig for MwsService and AdsService - a temporary
// SQLite file, a throttler and the service on one fake clock, the service's
// io_context driven by the test. No sockets, no sleeps: time moves only
// when the test calls advance().
#pragma once

#include <doctest/doctest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/config.hpp"
#include "core/services/common.hpp"
#include "core/store.hpp"
#include "core/throttle/throttler.hpp"

namespace rgtest {

// The services' clock (ms) and the throttler's (s), moved only by the test.
// Its alarms (a coalesced rider's own wait limit) run when ring() finds them
// due; ServiceRig::advance rings after each step.
class FakeClock final : public recgate::svc::Clock {
 public:
  std::int64_t now = 1'800'000'000'000;  // 2027-01-15, ms since the epoch
  std::int64_t now_ms() const override { return now; }
  double seconds() const { return static_cast<double>(now) / 1000.0; }

  std::unique_ptr<recgate::svc::Alarm> after(boost::asio::any_io_executor ex, std::int64_t ms,
                                             std::function<void()> fire) const override {
    auto pending = std::make_shared<Pending>(Pending{now + ms, std::move(ex), std::move(fire)});
    alarms_.push_back(pending);
    ring();  // ms <= 0: at once, as a real timer would
    return std::make_unique<Handle>(std::move(pending));
  }
  // Posts every due alarm to its executor.
  void ring() const {
    std::erase_if(alarms_, [this](const std::shared_ptr<Pending>& p) {
      if (p->fire && p->at <= now) boost::asio::post(p->ex, std::exchange(p->fire, nullptr));
      return !p->fire;
    });
  }
  // Alarms set that neither ran nor were cancelled.
  std::size_t armed() const {
    ring();
    return alarms_.size();
  }
  // Drops what the alarms hold (a flight on the rig's io_context, and the rider
  // whose alarm holds the closure in turn) before the io_context goes.
  void clear() {
    for (const auto& p : alarms_) p->fire = nullptr;
    alarms_.clear();
  }

 private:
  struct Pending {
    std::int64_t at;
    boost::asio::any_io_executor ex;
    std::function<void()> fire;  // empty once posted or cancelled
  };
  struct Handle final : recgate::svc::Alarm {
    explicit Handle(std::shared_ptr<Pending> p) : pending(std::move(p)) {}
    ~Handle() override { cancel(); }
    void cancel() override { pending->fire = nullptr; }
    std::shared_ptr<Pending> pending;
  };
  // mutable: Clock::after is const (setting an alarm does not move the time).
  mutable std::vector<std::shared_ptr<Pending>> alarms_;
};

// A directory removed with everything in it when the test ends.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix) {
    std::string tmpl = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// Set cfg, then start(); spawn requests, then run_until() what the test waits for.
template <class Service, class Upstream>
struct ServiceRig {
  TempDir dir;
  recgate::Config cfg;
  FakeClock clock;
  Upstream up;
  // After the clock and the upstream: coroutines still pending when a test
  // ends are destroyed with it, and may reach both.
  boost::asio::io_context io;
  std::unique_ptr<recgate::Store> store;
  std::unique_ptr<recgate::Throttler> throttler;
  std::unique_ptr<Service> svc;

  explicit ServiceRig(const std::string& prefix) : dir(prefix) {}
  ~ServiceRig() {
    clock.clear();
    svc.reset();
    throttler.reset();
    store.reset();
  }

  void start() {
    store = recgate::Store::open(dir.file("db.sqlite"));
    throttler = std::make_unique<recgate::Throttler>(cfg.throttle, nullptr, [this] { return clock.seconds(); });
    svc = std::make_unique<Service>(cfg, *store, up, *throttler, io.get_executor(), clock);
  }

  template <class Awaitable>
  void spawn(Awaitable a) {
    boost::asio::co_spawn(io, std::move(a), boost::asio::detached);
  }

  // Runs handlers until done() holds: the store answers from its own thread,
  // so this waits for it, a bounded number of short turns.
  template <class Done>
  void run_until(Done done) {
    for (int i = 0; i < 5000 && !done(); ++i) {
      io.restart();
      io.run_one_for(std::chrono::milliseconds(2));
    }
    REQUIRE(done());
  }

  // Runs every handler that is ready now.
  void poll() {
    io.restart();
    io.poll();
  }

  // Moves the fake clock and lets the throttler and the alarms act on it.
  void advance(std::chrono::milliseconds d) {
    clock.now += d.count();
    throttler->reevaluate();
    clock.ring();
    poll();
  }
};

}  // namespace rgtest
