// RFC 9457 problem details rendering; see problem.hpp.
#include "core/problem.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace recgate {

const char* status_title(int status) {
  switch (status) {
    case 200: return "OK";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Error";
  }
}

Problem make_problem(int status, std::string code, std::string detail) {
  Problem p;
  p.status = status;
  p.code = std::move(code);
  p.detail = std::move(detail);
  return p;
}

std::string problem_body(const Problem& p) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.StartObject();
  w.Key("type");
  std::string type = "urn:recgate:problem:" + (p.code.empty() ? std::string("error") : p.code);
  w.String(type);
  w.Key("title");
  w.String(p.title.empty() ? status_title(p.status) : p.title.c_str());
  w.Key("status");
  w.Int(p.status);
  w.Key("detail");
  w.String(p.detail);
  w.Key("code");
  w.String(p.code);
  for (const auto& [k, v] : p.extensions) {
    w.Key(k.c_str(), static_cast<rapidjson::SizeType>(k.size()));
    w.String(v);
  }
  w.EndObject();
  return sb.GetString();
}

}  // namespace recgate
