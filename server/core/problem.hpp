// RFC 9457 problem details and the small Expected<T> used for domain
// failures on the request path. Pure: no Boost, no I/O.
#pragma once

#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace recgate {

struct Problem {
  int status = 500;
  std::string code;    // stable snake_case machine name, e.g. invalid_category
  std::string title;   // short human summary; defaults from status when empty
  std::string detail;  // what is wrong and what is allowed
  // Extra string members of the problem object, e.g. {"upstreamCode", "SignatureDoesNotMatch"}.
  std::vector<std::pair<std::string, std::string>> extensions;
  // Extra response headers, e.g. {"Retry-After", "4"}, {"Allow", "GET"}.
  std::vector<std::pair<std::string, std::string>> headers;
};

Problem make_problem(int status, std::string code, std::string detail);

// The application/problem+json body: {"type","title","status","detail","code",...extensions}.
std::string problem_body(const Problem& p);

// Reason phrase for a status (used as default title).
const char* status_title(int status);

template <class T>
class Expected {
 public:
  Expected(T v) : v_(std::move(v)) {}            // NOLINT(google-explicit-constructor)
  Expected(Problem p) : v_(std::move(p)) {}      // NOLINT(google-explicit-constructor)
  bool has_value() const { return v_.index() == 0; }
  explicit operator bool() const { return has_value(); }
  T& value() { return std::get<0>(v_); }
  const T& value() const { return std::get<0>(v_); }
  T& operator*() { return value(); }
  const T& operator*() const { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Problem& error() const { return std::get<1>(v_); }
  Problem& error() { return std::get<1>(v_); }

 private:
  std::variant<T, Problem> v_;
};

}  // namespace recgate
