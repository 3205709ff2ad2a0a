// The cross-replica lease (see lease.hpp).
#include "core/redis/lease.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstdio>
#include <random>

#include "core/redis/client.hpp"

namespace recgate::redis {

namespace {

// Compare-and-delete in one step: a leader whose lease expired and was taken
// by another must not delete the new holder's lease.
constexpr const char* kReleaseScript =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";

std::string random_token() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[33];
  std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(rng()),
                static_cast<unsigned long long>(rng()));
  return buf;
}

}  // namespace

Lease::Lease(Client& client, std::string key_prefix, LeaseOptions opts)
    : client_(client), prefix_(std::move(key_prefix)), opts_(opts) {}

bool Lease::up() const { return client_.up(); }

boost::asio::awaitable<Lease::Attempt> Lease::try_acquire(const std::string& item) {
  Attempt a;
  std::string token = random_token();
  Command cmd{"SET", redis_key(item), token, "NX", "PX", std::to_string(opts_.ttl.count())};
  auto r = co_await client_.command(std::move(cmd));
  if (!r || r->is_error()) co_return a;
  if (r->type == Reply::Type::nil) {
    a.status = Status::taken;
  } else {
    a.status = Status::acquired;
    a.token = std::move(token);
  }
  co_return a;
}

boost::asio::awaitable<bool> Lease::release(const std::string& item, const std::string& token) {
  Command cmd{"EVAL", kReleaseScript, "1", redis_key(item), token};
  auto r = co_await client_.command(std::move(cmd));
  co_return r && r->type == Reply::Type::integer && r->integer == 1;
}

boost::asio::awaitable<bool> Lease::wait_released(const std::string& item) {
  boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
  const auto deadline = std::chrono::steady_clock::now() + opts_.ttl + opts_.poll;
  while (std::chrono::steady_clock::now() < deadline) {
    Command cmd{"EXISTS", redis_key(item)};
    auto r = co_await client_.command(std::move(cmd));
    if (!r || r->type != Reply::Type::integer) co_return false;
    if (r->integer == 0) co_return true;
    timer.expires_after(opts_.poll);
    co_await timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    // Cancelled (every request waiting on it left at its own limit): stop polling.
    boost::asio::cancellation_state cs = co_await boost::asio::this_coro::cancellation_state;
    if (cs.cancelled() != boost::asio::cancellation_type::none) co_return false;
  }
  co_return false;
}

}  // namespace recgate::redis
