// The server's clock (see clock.hpp): wall time for now_ms, steady timers for
// alarms, so a wall clock step never shortens or stretches a wait.
#include "core/services/clock.hpp"

#include <boost/asio/steady_timer.hpp>

#include <chrono>

namespace recgate::svc {

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

namespace {

class TimerAlarm final : public Alarm {
 public:
  TimerAlarm(boost::asio::any_io_executor ex, std::int64_t ms, std::function<void()> fire) : timer_(std::move(ex)) {
    timer_.expires_after(std::chrono::milliseconds(ms));
    timer_.async_wait([fire = std::move(fire)](const boost::system::error_code& ec) {
      if (!ec) fire();
    });
  }
  void cancel() override { timer_.cancel(); }

 private:
  boost::asio::steady_timer timer_;
};

class Wall final : public Clock {
 public:
  std::int64_t now_ms() const override { return svc::now_ms(); }
  std::unique_ptr<Alarm> after(boost::asio::any_io_executor ex, std::int64_t ms,
                               std::function<void()> fire) const override {
    return std::make_unique<TimerAlarm>(std::move(ex), ms, std::move(fire));
  }
};

}  // namespace

const Clock& system_clock() {
  static const Wall wall;
  return wall;
}

}  // namespace recgate::svc
