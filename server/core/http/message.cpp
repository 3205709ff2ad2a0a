// Context accessors and the response builders every handler uses.
#include "core/http/message.hpp"

namespace recgate::http {

namespace bhttp = boost::beast::http;

std::string_view Context::param(std::string_view name) const {
  for (const auto& [k, v] : path_params)
    if (k == name) return v;
  return {};
}

std::string_view Context::header(std::string_view name) const {
  auto it = req.find(name);
  return it == req.end() ? std::string_view{} : std::string_view(it->value().data(), it->value().size());
}

Response json_response(int status, std::string body) {
  return text_response(status, std::move(body), "application/json");
}

Response text_response(int status, std::string body, std::string_view content_type) {
  Response res{static_cast<bhttp::status>(status), 11};
  res.set(bhttp::field::content_type, content_type);
  res.body() = std::move(body);
  return res;
}

Response problem_response(const Problem& p) {
  Response res = text_response(p.status, problem_body(p), "application/problem+json");
  for (const auto& [k, v] : p.headers) res.set(k, v);
  return res;
}

}  // namespace recgate::http
