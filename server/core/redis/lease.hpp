// [scale] item 3: a best-effort lease per upstream work item across replicas.
// SET key token NX PX takes it; a compare-and-delete script releases it only
// for its holder. A replica that finds it taken polls until it is released or
// expires, then runs the work itself (which first reads the shared cache).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <string>

namespace recgate::redis {

class Client;

struct LeaseOptions {
  std::chrono::milliseconds ttl{10000};  // a leader that dies holds the work this long at most
  std::chrono::milliseconds poll{25};    // how often a waiter looks again
};

class Lease {
 public:
  enum class Status { acquired, taken, unavailable };
  struct Attempt {
    Status status = Status::unavailable;
    std::string token;  // set when acquired: what release() compares
  };

  Lease(Client& client, std::string key_prefix, LeaseOptions opts = {});

  boost::asio::awaitable<Attempt> try_acquire(const std::string& item);
  // Deletes the lease only if it still holds `token`; true when it did.
  boost::asio::awaitable<bool> release(const std::string& item, const std::string& token);
  // Polls until the lease on `item` is gone (released or expired), Redis
  // fails or the awaiting coroutine is cancelled; at most one lease TTL plus
  // one poll. True when it was released/expired. The services bound it by
  // each request's own wait limit (services/common.hpp, leased_work).
  boost::asio::awaitable<bool> wait_released(const std::string& item);

  // Redis answered the last call (Client::up): a lease is worth trying.
  bool up() const;

  std::string redis_key(const std::string& item) const { return prefix_ + "lease:" + item; }

 private:
  Client& client_;
  std::string prefix_;
  LeaseOptions opts_;
};

}  // namespace recgate::redis
