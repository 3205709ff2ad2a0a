// The time the services see, injected: what time it is (freshness, stale
// windows, snapshot re-checks) and when to wake up (a coalesced rider's own
// wait limit, core/coalesce.hpp). Tests drive both with a fake clock
// (tests/support/service_rig.hpp) instead of sleeping.
#pragma once

#include <boost/asio/any_io_executor.hpp>

#include <cstdint>
#include <functional>
#include <memory>

namespace recgate::svc {

std::int64_t now_ms();  // wall clock, ms since the epoch

// A call Clock::after scheduled. cancel() (on the executor it runs on) before
// it runs and it never runs; so does destroying it.
class Alarm {
 public:
  virtual ~Alarm() = default;
  virtual void cancel() = 0;
};

class Clock {
 public:
  virtual ~Clock() = default;
  virtual std::int64_t now_ms() const = 0;  // ms since the epoch
  // Runs `fire` on `ex` once `ms` have passed on this clock (at once for ms <= 0).
  virtual std::unique_ptr<Alarm> after(boost::asio::any_io_executor ex, std::int64_t ms,
                                       std::function<void()> fire) const = 0;
};

// The wall clock (svc::now_ms) and Asio's steady timers; what the server runs on.
const Clock& system_clock();

}  // namespace recgate::svc
