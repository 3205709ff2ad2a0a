// `recgate --healthcheck URL`: a tiny HTTP GET for container health checks
// (the runtime image has no curl). Exit code 0 when 200; 1 on another status,
// an error, or no answer within `timeout` (resolving included).
#pragma once

#include <chrono>

namespace recgate {
int healthcheck(const char* url, std::chrono::milliseconds timeout = std::chrono::seconds(5));
}
