// `recgate --healthcheck URL`: a tiny synchronous HTTP GET for container
// health checks (the runtime image has no curl). Exit code 0 when 200.
#pragma once

namespace recgate {
int healthcheck(const char* url);
}
