// The HTTP server's knobs: where it listens, its threads, and the limits and
// timeouts every session applies. Filled from the config by the caller.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

namespace recgate::http {

struct ServerOptions {
  std::string listen = "127.0.0.1:0";
  int threads = 1;
  std::size_t max_header_bytes = 16 * 1024;
  std::size_t max_body_bytes = 1024 * 1024;
  std::chrono::milliseconds read_timeout{10000};
  std::chrono::milliseconds idle_timeout{60000};
  std::chrono::milliseconds drain_timeout{10000};
  // A new connection's first request header must arrive within this.
  std::chrono::milliseconds header_timeout{5000};
  // Client connections open at once; 0: no limit. At the limit the one idle
  // longest is closed to admit a new client, else accepting waits.
  std::size_t max_connections = 0;
  // Pause after accept(2) fails (out of descriptors or kernel memory).
  std::chrono::milliseconds accept_retry{100};
  std::string server_name = "recgate";
  bool access_log = true;
  bool metrics = true;  // count recgate_http_* metrics
};

}  // namespace recgate::http
