// The values exchanged with Amazon's hosts: what a service asks the upstream
// client to send and what comes back. Pure (no Boost, no I/O) so the MWS, Ads
// and LWA services can be unit-tested against a fake upstream.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace recgate::upstream {

struct Request {
  std::string method = "POST";
  std::string url;  // http(s)://host[:port]/path[?query]
  // Sent as given, except Host, Content-Length and Transfer-Encoding, which
  // the client always sets itself. A User-Agent here replaces the client's.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

struct Response {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  // Case-insensitive; the first match, "" if absent.
  std::string_view header(std::string_view name) const;
};

enum class ErrorKind {
  none,
  bad_url,         // the URL, method or a header cannot be sent
  resolve_failed,
  connect_failed,
  tls_failed,      // handshake or certificate verification (chain or host name)
  timeout,         // a deadline passed, or the caller cancelled the request
  dropped,         // the peer closed or reset the connection before a full response
  too_large,       // response body over max_response_bytes, or headers over 64 KiB
  protocol,        // the response is not valid HTTP/1.1
};

// Stable snake_case name, e.g. "tls_failed" (for logs and problem details).
std::string_view to_string(ErrorKind kind);

struct Result {
  ErrorKind error = ErrorKind::none;
  std::string detail;  // human-readable cause; never contains the URL's query or headers
  Response response;   // valid only when ok(); any HTTP status counts as ok

  bool ok() const { return error == ErrorKind::none; }
};

}  // namespace recgate::upstream
