// redis.url (docs/design.md §8): `redis://[:password@]host:port/db`, parsed once
// at start; the password is a secret, so every printable form of a URL goes
// through mask_redis_url. Pure: no sockets, no environment.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace recgate::redis {

struct Url {
  std::string host;
  std::uint16_t port = 6379;
  std::string password;  // empty: no AUTH
  int db = 0;            // SELECT db after connecting (0: none sent)
};

// nullopt and *fault set (a sentence naming what is wrong, never the password)
// when `text` is not of the form above.
std::optional<Url> parse_url(const std::string& text, std::string* fault = nullptr);

// The URL with its password replaced by ******** (unchanged when there is none).
std::string mask_url(const std::string& text);

}  // namespace recgate::redis
