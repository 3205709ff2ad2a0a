// The error registry table (see errors.hpp).
#include "core/errors.hpp"

#include <array>
#include <cstddef>

namespace recgate {

namespace {

// Indexed by Error; the order is the enum's.
constexpr std::array<ErrorInfo, 21> kErrors{{
    {400, "invalid_parameter", "Bad Request"},
    {400, "unknown_parameter", "Bad Request"},
    {400, "missing_marketplace", "Bad Request"},
    {400, "unknown_marketplace", "Bad Request"},
    {400, "duplicate_marketplace", "Bad Request"},
    {400, "invalid_category", "Bad Request"},
    {400, "category_not_offered", "Bad Request"},
    {400, "invalid_filter", "Bad Request"},
    {400, "filter_needs_one_category", "Bad Request"},
    {400, "invalid_body", "Bad Request"},
    {400, "invalid_field", "Bad Request"},
    {404, "unknown_account", "Not Found"},
    {415, "unsupported_media_type", "Unsupported Media Type"},
    {504, "not_cached", "Gateway Timeout"},
    {499, "client_closed", "Client Closed Request"},
    {504, "upstream_timeout", "Gateway Timeout"},
    {502, "upstream_unavailable", "Bad Gateway"},
    {502, "upstream_error", "Bad Gateway"},
    {502, "lwa_error", "Bad Gateway"},
    {500, "bad_endpoint", "Internal Server Error"},
    {503, "no_spare_quota", "Service Unavailable"},
}};

}  // namespace

const ErrorInfo& error_info(Error e) { return kErrors.at(static_cast<std::size_t>(e)); }

Problem to_problem(Error e, std::string detail) {
  const ErrorInfo& info = error_info(e);
  Problem p = make_problem(info.status, std::string(info.code), std::move(detail));
  p.title = std::string(info.title);
  return p;
}

}  // namespace recgate
