// The shared bucket's Lua script and its callers; see shared_bucket.hpp. The
// script mirrors TokenBucket (token_bucket.cpp) line for line so the shared and
// the single-process buckets grant the same arrivals at the same times
// (tests/unit/redis_shared_bucket_test.cpp compares them).
#include "core/throttle/shared_bucket.hpp"

#include <openssl/sha.h>

#include <cstdio>
#include <cstdlib>

namespace recgate {
namespace net = boost::asio;
using net::awaitable;

namespace {

// KEYS[1]: the bucket hash {level, at, hold, rate, cap, thr}; KEYS[2]: the time
// this Redis's data began (set on first use). An absent bucket is taken to
// have been empty when the data began and to have refilled since: after a
// Redis restart, flush or eviction the buckets start EMPTY (the replicas'
// local shares may just have spent the upstream's burst), while a bucket that
// expired after a long idle time (its TTL outlasts a full refill) is full.
// ARGV: op, capacity, restore_per_s, rate_margin, margin_s, reserve_tokens,
//       arg (reserve: max wait s; throttled, drain: hold s), learnt rate, learnt capacity.
// reserve answers {granted, wait, now, level, at, hold}: the bucket after the
// call, which the replica keeps for its RateLimit headers and /v1/status.
// Numbers go back as strings: Redis would truncate a Lua number to an integer.
constexpr const char* kScript = R"LUA(
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local op = ARGV[1]
local cap, nominal = tonumber(ARGV[2]), tonumber(ARGV[3])
local rate_margin, margin, reserve = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local arg = tonumber(ARGV[7])
local b = redis.call('HMGET', KEYS[1], 'level', 'at', 'hold', 'rate', 'cap', 'thr')
if b[4] then nominal = tonumber(b[4]) end
if b[5] then cap = tonumber(b[5]) end
local level, at, hold = tonumber(b[1]), tonumber(b[2]), tonumber(b[3]) or 0
local eps = 1e-9
local eff = nominal / (1 + rate_margin)
if not level then
  redis.call('SET', KEYS[2], string.format('%.17g', now), 'NX')
  local since = tonumber(redis.call('GET', KEYS[2]))
  level = math.min(cap, eff * math.max(0, now - since))
  at = now
end
local floor = math.min(1 + math.max(0, reserve) + 2 * math.max(0, margin) * nominal, math.max(1, cap))
local function tokens(x)
  if x <= at then return level end
  return math.min(cap, level + eff * (x - at))
end
local function advance(x)
  if x > at then level = tokens(x); at = x end
end
local function f(x) return string.format('%.17g', x) end
local function state() return f(level), f(at), f(hold) end
local function save()
  local idle = 60
  if eff > 0 then idle = idle + cap / eff end
  local ttl = math.max(at, hold) - now + idle
  redis.call('HSET', KEYS[1], 'level', f(level), 'at', f(at), 'hold', f(hold))
  redis.call('PEXPIRE', KEYS[1], math.ceil(ttl * 1000))
end
if op == 'reserve' then
  local base = math.max(now, at, hold)
  local needed = floor - tokens(base)
  local grant = base
  if needed > eps then
    if not (eff > 0) then return {0, 'inf', f(now), state()} end
    grant = base + needed / eff
  end
  local wait = grant - now
  if wait > math.max(0, arg) + eps then return {0, f(wait), f(now), state()} end
  advance(grant)
  level = math.max(0, level - 1)
  save()
  return {1, f(wait), f(now), state()}
elseif op == 'spare' then
  if at > now + eps or hold > now + eps or tokens(now) < floor + 1 then return {0, '0', f(now)} end
  advance(now)
  level = math.max(0, level - 1)
  save()
  return {1, '0', f(now)}
elseif op == 'drain' then
  advance(now)
  level = 0
  hold = math.max(hold, now + math.max(0, arg))
  at = math.max(at, hold)
  save()
  return {1, '0', f(now)}
elseif op == 'throttled' or op == 'learnt' then
  if op == 'throttled' then
    advance(now)
    level = 0
    hold = math.max(hold, now + math.max(0, arg))
    at = math.max(at, hold)
    redis.call('HSET', KEYS[1], 'thr', f(now))
  end
  if ARGV[8] and ARGV[8] ~= '' then
    advance(now)
    nominal, cap = tonumber(ARGV[8]), tonumber(ARGV[9])
    eff = nominal / (1 + rate_margin)
    level = math.min(level, cap)
    redis.call('HSET', KEYS[1], 'rate', ARGV[8], 'cap', ARGV[9])
  end
  save()
  return {1, '0', f(now)}
end
return {f(tokens(now)), f(hold), f(now), b[4] or '', b[5] or '', b[6] or ''}
)LUA";

std::string fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

// Built outside the coroutines: g++ 12 rejects a braced list of string
// literals inside one ("array used as initializer").
redis::Command evalsha(const std::string& bucket, const std::string& marker, const char* op, const BucketSpec& spec,
                       double arg, const std::optional<LearntLimit>& learnt) {
  redis::Command cmd{"EVALSHA", SharedBuckets::script_sha(), "2", bucket, marker, op,
                     fmt(spec.capacity), fmt(spec.restore_per_s), fmt(spec.rate_margin), fmt(spec.margin_s),
                     fmt(spec.reserve_tokens), fmt(arg)};
  if (learnt) {
    cmd.push_back(fmt(learnt->restore_per_s));
    cmd.push_back(fmt(learnt->capacity));
  }
  return cmd;
}

std::vector<redis::Command> load_then(const redis::Command& cmd) {
  return {{"SCRIPT", "LOAD", SharedBuckets::script()}, cmd};
}

double num(const redis::Reply& r) { return std::strtod(r.str.c_str(), nullptr); }

std::optional<double> opt_num(const redis::Reply& r) {
  if (r.str.empty()) return std::nullopt;
  return num(r);
}

}  // namespace

const std::string& SharedBuckets::script() {
  static const std::string s = kScript;
  return s;
}

const std::string& SharedBuckets::script_sha() {
  static const std::string sha = [] {
    unsigned char d[SHA_DIGEST_LENGTH];
    SHA1(reinterpret_cast<const unsigned char*>(script().data()), script().size(), d);
    static const char* hex = "0123456789abcdef";
    std::string out;
    for (unsigned char c : d) {
      out += hex[c >> 4];
      out += hex[c & 15];
    }
    return out;
  }();
  return sha;
}

SharedBuckets::SharedBuckets(redis::Client& client, std::string key_prefix)
    : client_(client), prefix_(std::move(key_prefix)) {}

std::string SharedBuckets::key(const std::string& account, const std::string& group) const {
  // The braces are a cluster hash tag: one account's buckets on one node.
  return prefix_ + "bucket:{" + account + "}:" + group;
}

awaitable<std::optional<redis::Reply>> SharedBuckets::run(const std::string& account, const std::string& group,
                                                          const BucketSpec& spec, const char* op, double arg,
                                                          std::optional<LearntLimit> learnt) {
  const redis::Command cmd = evalsha(key(account, group), prefix_ + "alive", op, spec, arg, learnt);
  auto reply = co_await client_.command(cmd);
  if (reply && reply->is_error() && reply->str.rfind("NOSCRIPT", 0) == 0) {
    // Redis restarted or flushed its scripts: load and run in one round trip.
    auto replies = co_await client_.pipeline(load_then(cmd));
    if (!replies) co_return std::nullopt;
    reply = std::move(replies->back());
  }
  if (!reply || reply->type != redis::Reply::Type::array || reply->elements.size() < 3) co_return std::nullopt;
  co_return reply;
}

awaitable<std::optional<Reservation>> SharedBuckets::reserve(const std::string& account, const std::string& group,
                                                             const BucketSpec& spec, double max_wait_s) {
  auto r = co_await run(account, group, spec, "reserve", max_wait_s, std::nullopt);
  if (!r) co_return std::nullopt;
  Reservation out;
  out.granted = r->elements[0].integer == 1;
  out.wait_s = num(r->elements[1]);
  out.redis_now = num(r->elements[2]);
  if (r->elements.size() >= 6)
    out.level = SharedLevel{num(r->elements[3]), num(r->elements[4]), num(r->elements[5])};
  co_return out;
}

awaitable<std::optional<bool>> SharedBuckets::take_spare(const std::string& account, const std::string& group,
                                                         const BucketSpec& spec) {
  auto r = co_await run(account, group, spec, "spare", 0, std::nullopt);
  if (!r) co_return std::nullopt;
  co_return r->elements[0].integer == 1;
}

awaitable<std::optional<double>> SharedBuckets::throttled(const std::string& account, const std::string& group,
                                                          const BucketSpec& spec, double hold_s,
                                                          std::optional<LearntLimit> learnt) {
  auto r = co_await run(account, group, spec, "throttled", hold_s, learnt);
  if (!r) co_return std::nullopt;
  co_return num(r->elements[2]);
}

awaitable<std::optional<double>> SharedBuckets::drain(const std::string& account, const std::string& group,
                                                      const BucketSpec& spec, double hold_s) {
  auto r = co_await run(account, group, spec, "drain", hold_s, std::nullopt);
  if (!r) co_return std::nullopt;
  co_return num(r->elements[2]);
}

awaitable<std::optional<double>> SharedBuckets::set_learnt(const std::string& account, const std::string& group,
                                                           const BucketSpec& spec, LearntLimit learnt) {
  auto r = co_await run(account, group, spec, "learnt", 0, learnt);
  if (!r) co_return std::nullopt;
  co_return num(r->elements[2]);
}

awaitable<std::optional<SharedBucketState>> SharedBuckets::state(const std::string& account, const std::string& group,
                                                                 const BucketSpec& spec) {
  auto r = co_await run(account, group, spec, "status", 0, std::nullopt);
  if (!r || r->elements.size() < 6) co_return std::nullopt;
  SharedBucketState s;
  s.tokens = num(r->elements[0]);
  s.hold_until = num(r->elements[1]);
  s.redis_now = num(r->elements[2]);
  s.learnt_restore_per_s = opt_num(r->elements[3]);
  s.learnt_capacity = opt_num(r->elements[4]);
  s.last_throttle_at = opt_num(r->elements[5]);
  co_return s;
}

}  // namespace recgate
