// recgate-sandbox: a local stand-in for Amazon MWS Recommendations and the
// Ads API / Login with Amazon. Loads config/sandbox.json, builds the state and
// the route table, serves until SIGINT/SIGTERM.
#include <boost/asio/signal_set.hpp>

#include <csignal>
#include <cstdio>
#include <exception>
#include <string>
#include <string_view>

#include "core/http/server.hpp"
#include "core/log.hpp"
#include "sandbox/ads_config.hpp"
#include "sandbox/ads_routes.hpp"
#include "sandbox/config.hpp"
#include "sandbox/routes.hpp"
#include "sandbox/state.hpp"

namespace {

constexpr const char* kUsage =
    "usage: recgate-sandbox [--config PATH] [--listen HOST:PORT] [--ads-json JSON] [--version]\n"
    "  --config PATH   sandbox configuration (default config/sandbox.json)\n"
    "  --listen ADDR   override the configured listen address (port 0: any free port)\n"
    "  --ads-json JSON members set over the config's \"ads\" object, e.g. {\"token_lifetime_s\":2}\n";

bool is_loopback(std::string_view listen) {
  return listen.rfind("127.", 0) == 0 || listen.rfind("localhost:", 0) == 0 || listen.rfind("[::1]:", 0) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace recgate;
  std::string config_path = "config/sandbox.json";
  std::string listen_override;
  std::string ads_overlay;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--version") {
      std::printf("recgate-sandbox %s\n", RECGATE_VERSION);
      return 0;
    }
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if ((a == "--config" || a == "--listen" || a == "--ads-json") && i + 1 < argc) {
      (a == "--config" ? config_path : a == "--listen" ? listen_override : ads_overlay) = argv[++i];
      continue;
    }
    std::fprintf(stderr, "recgate-sandbox: unknown or incomplete argument %s\n%s", argv[i], kUsage);
    return 2;
  }

  std::string error;
  auto cfg = sandbox::load_sandbox_config(config_path, error);
  if (!cfg) {
    std::fprintf(stderr, "recgate-sandbox: %s\n", error.c_str());
    return 1;
  }
  if (!listen_override.empty()) cfg->listen = listen_override;
  if (!ads_overlay.empty()) {
    auto merged = sandbox::merge_json_objects(cfg->ads_json, ads_overlay, error);
    if (!merged) {
      std::fprintf(stderr, "recgate-sandbox: %s\n", error.c_str());
      return 2;
    }
    cfg->ads_json = *merged;
  }
  if (!sandbox::parse_ads_config(cfg->ads_json, error)) {
    std::fprintf(stderr, "recgate-sandbox: %s\n", error.c_str());
    return 1;
  }
  LogLevel level;
  if (!parse_log_level(cfg->log_level, level)) {
    std::fprintf(stderr, "recgate-sandbox: $.log.level: must be debug, info, warn or error\n");
    return 1;
  }
  set_log_level(level);
  if (cfg->admin_token.empty() && !is_loopback(cfg->listen))
    log_warn("admin endpoints are open on a non-loopback address; set admin_token", {{"listen", cfg->listen}});

  try {
    sandbox::SandboxState state(*cfg, sandbox::Now::current());
    std::vector<http::Route> routes = sandbox::mws_routes(state);
    for (auto& r : sandbox::admin_routes(state)) routes.push_back(std::move(r));
    for (auto& r : sandbox::ads_routes(state)) routes.push_back(std::move(r));

    http::ServerOptions opts;
    opts.listen = cfg->listen;
    opts.threads = cfg->threads;
    opts.server_name = "recgate-sandbox";
    opts.metrics = false;
    http::Server server(opts, std::move(routes));
    server.start();
    log_info("sandbox ready", {{"sellers", cfg->sellers.size()}, {"page_size", cfg->page_size}});

    boost::asio::signal_set signals(server.ioc(), SIGINT, SIGTERM);
    signals.async_wait([&server](const boost::system::error_code& ec, int) {
      if (!ec) server.shutdown();
    });
    server.run();
  } catch (const std::exception& e) {
    log_error("sandbox failed", {{"error", e.what()}});
    return 1;
  }
  return 0;
}
