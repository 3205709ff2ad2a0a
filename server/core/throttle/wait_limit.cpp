// A single request's quota wait limit (see wait_limit.hpp): a fixed deadline
// on the throttler's clock.
#include "core/throttle/wait_limit.hpp"

#include <algorithm>
#include <utility>

namespace recgate {

namespace {

class RequestLimit final : public WaitLimit {
 public:
  RequestLimit(std::function<double()> clock, double limit_s)
      : clock_(std::move(clock)), limit_s_(std::max(0.0, limit_s)), deadline_(clock_() + limit_s_) {}
  double deadline() const override { return deadline_; }
  std::optional<double> remaining_s() const override { return std::max(0.0, deadline_ - clock_()); }
  double limit_s() const override { return limit_s_; }

 private:
  std::function<double()> clock_;
  double limit_s_;
  double deadline_;
};

}  // namespace

WaitLimitPtr wait_limit_for(std::function<double()> clock, double limit_s) {
  return std::make_shared<RequestLimit>(std::move(clock), limit_s);
}

}  // namespace recgate
