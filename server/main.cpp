// recgate's entry point: command line, config loading, then run_app().
#include <cstdio>
#include <cstring>
#include <string>

#include "core/app.hpp"
#include "core/config.hpp"
#include "core/healthcheck.hpp"
#include "core/log.hpp"

namespace {
void usage() {
  std::printf(
      "usage: recgate [--config PATH] [--check-config] [--version]\n"
      "       recgate --healthcheck URL   (exit 0 when URL answers 200; for container health checks)\n");
}
}  // namespace

int main(int argc, char** argv) {
  std::string config_path = "config/recgate.json";
  bool check = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--config" && i + 1 < argc) {
      config_path = argv[++i];
    } else if (a.rfind("--config=", 0) == 0) {
      config_path = a.substr(9);
    } else if (a == "--check-config") {
      check = true;
    } else if (a == "--version") {
      std::printf("recgate %s\n", RECGATE_VERSION);
      return 0;
    } else if (a == "--healthcheck" && i + 1 < argc) {
      return recgate::healthcheck(argv[++i]);
    } else if (a == "--help" || a == "-h") {
      usage();
      return 0;
    } else {
      std::fprintf(stderr, "recgate: unknown argument %s\n", a.c_str());
      usage();
      return 2;
    }
  }
  auto result = recgate::load_config_file(config_path, recgate::ConfigEnv::process());
  for (const auto& w : result.warnings) std::fprintf(stderr, "recgate: config warning: %s\n", w.c_str());
  if (!result.config) {
    for (const auto& e : result.errors) std::fprintf(stderr, "recgate: config error: %s\n", e.c_str());
    std::fprintf(stderr, "recgate: %s: %zu error(s)\n", config_path.c_str(), result.errors.size());
    return 1;
  }
  if (check) {
    std::fputs(recgate::config_to_masked_json(*result.config).c_str(), stdout);
    std::fprintf(stderr, "recgate: %s is valid\n", config_path.c_str());
    return 0;
  }
  return recgate::run_app(*result.config);
}
