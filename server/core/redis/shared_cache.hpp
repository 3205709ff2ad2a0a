// [scale] item 2: Redis as the shared cache tier behind each replica's memory
// index and SQLite. Holds cached answers and MWS last-updated snapshots (a
// snapshot is an Entry whose fetched_at_ms is the time it was checked), each
// with a TTL of the stale window. Every failure is a miss, never an error.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <string>

#include "core/cache/index.hpp"

namespace recgate::redis {

class Client;

// One value as stored in Redis: a version tag and length-prefixed fields, so
// no body byte can be taken for a field boundary. Exposed for the unit tests.
std::string encode_entry(const cache::Entry& e);
cache::MutableEntryPtr decode_entry(const std::string& value);  // nullptr: not one of ours

class SharedCache {
 public:
  SharedCache(Client& client, std::string key_prefix) : client_(client), prefix_(std::move(key_prefix)) {}

  // The entry stored under (kind, key), or nullptr (absent, undecodable, or
  // Redis down/slow/backing off).
  boost::asio::awaitable<cache::MutableEntryPtr> get(const std::string& kind, const std::string& key);
  // Stores it with a TTL (at least 1 s); false when Redis did not take it.
  boost::asio::awaitable<bool> put(const std::string& kind, const std::string& key, cache::EntryPtr e,
                                   std::chrono::seconds ttl);

  std::string redis_key(const std::string& kind, const std::string& key) const;

 private:
  Client& client_;
  std::string prefix_;
};

}  // namespace recgate::redis
