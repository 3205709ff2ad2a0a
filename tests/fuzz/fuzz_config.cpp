// libFuzzer target: configuration parsing with ${NAME} / NAME_FILE
// substitution. Input: the config file's JSON text. The environment is the
// real process environment (a few variables set once below); files named by
// NAME_FILE or upstream.ca_file come from a fixed in-memory table, so the
// input cannot make the target read the file system. Checks: an accepted
// config prints as JSON and the masked output never shows a secret field.
#include <cstdlib>
#include <map>

#include "core/config.hpp"
#include "core/http/url.hpp"
#include "fuzz_util.hpp"

namespace {

const std::map<std::string, std::string>& files() {
  static const std::map<std::string, std::string> f = {
      {"/run/secrets/fuzz_key", "file-secret-value\n"},
      {"/etc/recgate/ca.pem", "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"},
  };
  return f;
}

recgate::ConfigEnv fuzz_env() {
  recgate::ConfigEnv e = recgate::ConfigEnv::process();
  e.read_file = [](const std::string& p) -> std::optional<std::string> {
    auto it = files().find(p);
    if (it == files().end()) return std::nullopt;
    return it->second;
  };
  return e;
}

// Every secret field replaced by a marker that must not survive masking.
void check_masking(recgate::Config cfg) {
  int n = 0;
  auto mark = [&n](std::string& s) { s = "zzMARKzz" + std::to_string(n++) + "zz"; };
  for (auto& c : cfg.clients) mark(c.key);
  for (auto& [name, a] : cfg.mws.accounts) {
    mark(a.access_key_id);
    mark(a.secret_key);
    mark(a.auth_token);
  }
  for (auto& [name, a] : cfg.ads.accounts) {
    mark(a.client_secret);
    mark(a.refresh_token);
  }
  const std::string out = recgate::config_to_masked_json(cfg);
  FUZZ_CHECK(out.find("zzMARKzz") == std::string::npos, out);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  setenv("RECGATE_FUZZ_SECRET", "env-secret-value", 1);
  setenv("RECGATE_FUZZ_KEY_FILE", "/run/secrets/fuzz_key", 1);
  setenv("RECGATE_FUZZ_MISSING_FILE", "/run/secrets/absent", 1);
  setenv("RECGATE_FUZZ_PORT", "127.0.0.1:8080", 1);
  setenv("RECGATE_FUZZ_EMPTY", "", 1);
  setenv("RECGATE_FUZZ_BRACES", "${RECGATE_FUZZ_SECRET}", 1);  // must not be substituted twice
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const recgate::ConfigEnv env = fuzz_env();
  const std::string text(reinterpret_cast<const char*>(data), size);
  const auto r = recgate::parse_config(text, env);
  if (r.config) {
    FUZZ_CHECK(r.errors.empty(), text);
    const std::string out = recgate::config_to_masked_json(*r.config);
    FUZZ_CHECK(recgate::fuzz::is_json(out), out);
    check_masking(*r.config);
  } else {
    FUZZ_CHECK(!r.errors.empty(), text);
  }

  std::string host;
  std::uint16_t port = 0;
  const auto first_line = text.substr(0, text.find('\n'));
  if (recgate::http::split_host_port(first_line, host, port)) FUZZ_CHECK(!host.empty(), first_line);
  return 0;
}
