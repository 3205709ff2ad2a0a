// What a handler sees and returns: the request Context (decoded path, query,
// path parameters, request id, the client's name) and a Beast response, with
// builders for JSON, text and RFC 9457 problem answers. Transport-free.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/verb.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/http/url.hpp"
#include "core/problem.hpp"

namespace recgate::http {

using Request = boost::beast::http::request<boost::beast::http::string_body>;
using Response = boost::beast::http::response<boost::beast::http::string_body>;
using Verb = boost::beast::http::verb;

struct Context {
  const Request& req;
  std::string request_id;
  std::string path;                         // target without the query, percent-decoded
  std::string raw_query;                    // after '?', undecoded
  QueryParams query;                        // decoded pairs in order ('+' is a space)
  std::vector<std::pair<std::string, std::string>> path_params;  // {name} -> value
  std::chrono::steady_clock::time_point started;
  std::string_view route_name;              // the matched route's name (metrics label; static storage)
  // Fault injection (sandbox): write the response on the connection with this
  // instead (bytes HTTP cannot express: broken framing, a cut-off answer, a
  // reset, an endless body); the server then closes the connection without
  // reading from it again.
  std::function<boost::asio::awaitable<void>(boost::beast::tcp_stream&)> raw_response;
  // When set, the response's body, sent by reference instead of the
  // Response's own (empty) body: a cached answer's rendered bytes, shared
  // with the thread's memo of them (services/answer_memo.hpp), not copied.
  std::shared_ptr<const std::string> body_ref;
  // When set, header lines ("Name: value\r\n" each) rendered once and
  // written after the Response's own fields (a cached answer's fixed ones).
  std::shared_ptr<const std::string> fields_ref;
  // Extra fields for this request's access log line (e.g. cache status).
  std::vector<std::pair<std::string, std::string>> log_fields;
  // Who is asking, for per-client quota shares: the peer address, replaced by
  // the configured client's name once its key is checked.
  std::string client = {};

  std::string_view param(std::string_view name) const;  // path param, "" if absent
  std::string_view header(std::string_view name) const;  // request header, "" if absent
};

using Handler = std::function<boost::asio::awaitable<Response>(Context&)>;
// A synchronous answer tried before the handler (cache hits): a response, or
// nullopt to run the handler.
using FastPath = std::function<std::optional<Response>(Context&)>;

// Builds a JSON response / problem response with the right content types.
Response json_response(int status, std::string body);
Response problem_response(const Problem& p);
Response text_response(int status, std::string body, std::string_view content_type);

}  // namespace recgate::http
