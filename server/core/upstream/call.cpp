// The upstream call loop (see call.hpp).
#include "core/upstream/call.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>

#include "core/errors.hpp"
#include "core/log.hpp"
#include "core/metrics.hpp"
#include "core/throttle/adaptive.hpp"
#include "core/throttle/throttler.hpp"

namespace recgate::upstream {

namespace net = boost::asio;

namespace {

constexpr int kSparePollMs = 100;  // spare quota comes back at the restore rate: a coarse poll suffices
constexpr double kSparePoll_s = kSparePollMs / 1000.0;

void count_call(const CallSite& site, const std::string& status, double seconds) {
  auto& m = Metrics::instance();
  m.counter("recgate_upstream_requests_total", "Upstream calls made, by api, operation and status.",
            {{"api", site.api}, {"operation", site.operation}, {"status", status}})
      .inc();
  m.histogram("recgate_upstream_request_duration_seconds", "Upstream call duration, by api and operation.",
              {{"api", site.api}, {"operation", site.operation}})
      .observe(seconds);
}

void log_call(const CallSite& site, const std::string& status, double secs, int attempt, double waited_s) {
  log(status == "200" ? LogLevel::debug : LogLevel::warn, "upstream call",
      {{"request_id", site.request_id}, {"api", site.api}, {"account", site.account}, {"operation", site.operation},
       {"status", status}, {"duration_ms", secs * 1000}, {"attempt", attempt}, {"waited_ms", waited_s * 1000}});
}

std::string status_of(const Result& r) {
  return r.ok() ? std::to_string(r.response.status) : std::string(to_string(r.error));
}

// Spare quota only: at once, or (with a limit: the later pages of a listing
// under way) polled until the limit's deadline, never a queue place.
net::awaitable<Expected<Grant>> take_spare(Throttler& throttler, const CallSite& site, const Quota& quota) {
  for (;;) {
    if (auto g = co_await throttler.try_take_spare(site.account, site.bucket)) co_return *g;
    if (!quota.limit || throttler.now() + kSparePoll_s > quota.limit->deadline())
      co_return to_problem(Error::no_spare_quota, "no spare quota for a refresh ahead of " + site.bucket);
    net::steady_timer timer(co_await net::this_coro::executor, std::chrono::milliseconds(kSparePollMs));
    co_await timer.async_wait(net::use_awaitable);
  }
}

net::awaitable<Expected<Grant>> take_quota(Throttler& throttler, const CallSite& site, const Quota& quota) {
  switch (quota.mode) {
    case QuotaMode::client_wait:
      break;
    case QuotaMode::spare:
      co_return co_await take_spare(throttler, site, quota);
  }
  co_return co_await throttler.acquire(site.account, site.bucket, quota.limit, quota.client);
}

}  // namespace

Problem transport_problem(const Result& r, const std::string& what) {
  if (r.error == ErrorKind::timeout)
    return to_problem(Error::upstream_timeout, what + " did not answer in time (" + r.detail + ")");
  Problem p = to_problem(Error::upstream_unavailable, what + " failed: " + std::string(to_string(r.error)) +
                                                          (r.detail.empty() ? "" : " (" + r.detail + ")"));
  p.extensions.emplace_back("upstreamCode", std::string(to_string(r.error)));
  return p;
}

Problem Exchange::transport_failed(const Result& r) { return transport_problem(r, what()); }
Problem Exchange::quota_refused(Problem p, bool) { return p; }

net::awaitable<Expected<Response>> upstream_call(Throttler& throttler, Upstream& upstream, const CallSite& site,
                                                 const Quota& quota, Exchange& ex) {
  bool was_throttled = false;
  for (int attempt = 1;; ++attempt) {
    auto grant = co_await take_quota(throttler, site, quota);
    if (!grant) co_return ex.quota_refused(std::move(grant.error()), was_throttled);
    auto req = co_await ex.build(attempt);
    if (!req) co_return req.error();
    const auto t0 = std::chrono::steady_clock::now();
    Result r = co_await upstream.request(std::move(*req));
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const std::string status = status_of(r);
    count_call(site, status, secs);
    log_call(site, status, secs, attempt, grant->waited_s);
    if (!r.ok()) co_return ex.transport_failed(r);
    switch (ex.classify(r.response)) {
      case Verdict::success:
        throttler.on_upstream_success(site.account, site.bucket);
        co_return std::move(r.response);
      case Verdict::throttled: {
        // Retry-After in seconds or as an HTTP date; absent: the bucket's own backoff.
        const auto retry_after = parse_retry_after_header(r.response.header("Retry-After"), throttler.now());
        throttler.on_upstream_throttled(site.account, site.bucket, retry_after);
        was_throttled = true;
        continue;  // take quota again within what is left of the wait
      }
      case Verdict::retry:
        continue;
      case Verdict::failure:
        co_return ex.failure(r.response);
    }
  }
}

}  // namespace recgate::upstream
