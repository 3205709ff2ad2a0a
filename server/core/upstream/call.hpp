// The one upstream call loop shared by MWS, Ads and LWA: take quota ->
// build the request -> send -> measure, count, log -> classify -> feed the
// throttler back (success, or throttled with Retry-After parsed one way).
// What differs per API is an Exchange the caller implements (virtual, not
// closures: g++ 12 mishandles closures built inside coroutines).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <string>

#include "core/problem.hpp"
#include "core/throttle/wait_limit.hpp"
#include "core/upstream/message.hpp"

namespace recgate {
class Throttler;
}

namespace recgate::upstream {

// Something that sends one request and returns its response: HttpClient in
// the server, a scripted fake in the service tests.
class Upstream {
 public:
  virtual ~Upstream() = default;
  virtual boost::asio::awaitable<Result> request(Request req) = 0;
};

// How a call takes quota. client_wait: queue in the client's FIFO until the
// limit's deadline (Prefer: wait, or the coalesced flight's latest limit).
// spare: a background refresh ahead (server/core/refresh/): a token only
// from spare quota (Throttler::try_take_spare), never a queue place. None
// spare: the problem no_spare_quota at once (the refresh stays pending), or,
// with a limit (later pages of a listing under way, whose first tokens are
// spent), once spare quota has not come back by the limit's deadline.
enum class QuotaMode { client_wait, spare };

struct Quota {
  QuotaMode mode = QuotaMode::client_wait;
  WaitLimitPtr limit;   // the deadline of the wait
  std::string client;   // whose queue share the wait counts against
};

// Who is called, for the bucket, the metrics and the log line.
struct CallSite {
  std::string api;         // "mws", "ads", "lwa"
  std::string operation;   // "ListRecommendations", "ProductRecommendations", "Token"
  std::string account;
  std::string bucket;      // throttle bucket, e.g. "mws.ListRecommendations"
  std::string request_id;  // of the request (or flight leader) that made the call
};

// What to do with a response.
enum class Verdict {
  success,    // served: the throttler's backoff streak resets; the response is returned
  throttled,  // upstream throttled: the bucket backs off (Retry-After), then the call retries
  retry,      // retry at once after taking quota again (e.g. a 401 after a token refresh)
  failure,    // an answer that is an error: failure() makes the problem
};

class Exchange {
 public:
  virtual ~Exchange() = default;
  // The request of this attempt (1, 2, ...); may await (e.g. an access token).
  virtual boost::asio::awaitable<Expected<Request>> build(int attempt) = 0;
  virtual Verdict classify(const Response& res) = 0;
  virtual Problem failure(const Response& res) = 0;
  // The transport failed (no response): default 504 upstream_timeout / 502 upstream_unavailable.
  virtual Problem transport_failed(const Result& r);
  // No quota within the wait; `was_throttled`: an earlier attempt was throttled upstream.
  virtual Problem quota_refused(Problem p, bool was_throttled);
  // The name in problem details, e.g. "MWS ListRecommendations".
  virtual std::string what() const = 0;
};

// Runs attempts until a verdict of success (returns the response) or failure,
// a transport failure, or a quota refusal (returns the problem).
boost::asio::awaitable<Expected<Response>> upstream_call(Throttler& throttler, Upstream& upstream,
                                                         const CallSite& site, const Quota& quota, Exchange& ex);

// Upstream transport failure: 504 upstream_timeout, else 502 upstream_unavailable
// with the error kind as upstreamCode. `what` names the call ("MWS ListRecommendations").
Problem transport_problem(const Result& r, const std::string& what);

}  // namespace recgate::upstream
