// The error registry of the request path: each failure the services answer
// with is one enum value with its {status, code, title}, and to_problem is
// the one way to turn it into an RFC 9457 problem, input validation
// (mws/query, ads/request: 400, the detail names the field at fault) included.
#pragma once

#include <string>
#include <string_view>

#include "core/problem.hpp"

namespace recgate {

enum class Error {
  // 400, request validation (mws/query.cpp, ads/request.cpp):
  invalid_parameter,          // a query name or value holds controls or invalid UTF-8
  unknown_parameter,          // a query parameter the route does not take
  missing_marketplace,        // no marketplace parameter
  unknown_marketplace,        // not a marketplace id recgate knows
  duplicate_marketplace,      // two different marketplace values
  invalid_category,           // not a recommendation category
  category_not_offered,       // a category the marketplace does not offer
  invalid_filter,             // a filter that is malformed or not the category's
  filter_needs_one_category,  // filters with more or fewer than one category
  invalid_body,               // the Ads body is not the JSON object expected
  invalid_field,              // an Ads body member with a wrong type or value
  unknown_account,         // 404: no account of that name is configured
  unsupported_media_type,  // 415: the body is not application/json
  not_cached,              // 504: Cache-Control: only-if-cached, nothing usable stored
  client_closed,           // 499: the client went away (never sent; logs and metrics only)
  upstream_timeout,        // 504: the upstream did not answer in time
  upstream_unavailable,    // 502: no usable response (connect, TLS, reset, ...)
  upstream_error,          // 502: the upstream answered with an error
  lwa_error,               // 502: Login with Amazon refused an access token
  bad_endpoint,            // 500: the configured endpoint is not a usable URL
  no_spare_quota,          // 503: a refresh ahead found no spare quota (never sent; refresh/ and metrics only)
};

struct ErrorInfo {
  int status;
  std::string_view code;
  std::string_view title;
};

const ErrorInfo& error_info(Error e);

// {type, title, status, detail, code} for `e`, with `detail` saying what is wrong.
Problem to_problem(Error e, std::string detail);

}  // namespace recgate
