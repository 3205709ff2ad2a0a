// Verification of an MWS request the way Amazon does it, in Amazon's order:
// required parameters, access key, SigV2 signature over the Host as sent,
// timestamp window, seller and MWSAuthToken, action; then the operation's
// own parameters. Pure: configuration, request and `now` in, a value out.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "sandbox/config.hpp"
#include "sandbox/data.hpp"
#include "sandbox/signature.hpp"
#include "sandbox/xml.hpp"

namespace recgate::sandbox {

template <class T>
using MwsResult = std::variant<T, MwsError>;

struct HttpInput {
  std::string method = "POST";
  std::string target;  // request-target exactly as received (path and query)
  std::string host;    // Host header exactly as received
  std::string content_type;
  std::string body;
};

struct Authenticated {
  const SellerCredentials* seller = nullptr;
  std::string action;
  Params params;
};

// Parameters from the query string and, for a form content type, the body.
// Duplicates and malformed escapes are errors.
MwsResult<Params> collect_params(const HttpInput& in);

// When the signature does not match, `expected_string_to_sign` is set (for
// the admin statistics; it holds no secret).
MwsResult<Authenticated> authenticate(const SandboxConfig& cfg, const HttpInput& in, const Params& params,
                                      std::chrono::system_clock::time_point now,
                                      std::string* expected_string_to_sign = nullptr);

bool is_known_action(std::string_view action);
// The throttle bucket an action draws from.
std::string_view throttle_group(std::string_view action);

struct Operation {
  std::string action;
  std::string marketplace_id;
  std::vector<std::string> categories;      // ListRecommendations: in result order
  std::map<std::string, Filters> filters;   // per category, from CategoryQueryList
  std::string next_token;                   // ListRecommendationsByNextToken
};

MwsResult<Operation> parse_operation(const Authenticated& req);

}  // namespace recgate::sandbox
