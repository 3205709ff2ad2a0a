// recgate's composition root: builds the services from the Config (store,
// throttle, upstream client, MWS and Ads services) and the one route table,
// and runs the server. main() only parses the command line and calls run_app.
#pragma once

#include <string>

#include "core/config.hpp"

namespace recgate {

// Runs recgate until SIGTERM/SIGINT; returns the process exit code.
int run_app(const Config& cfg);

}  // namespace recgate
