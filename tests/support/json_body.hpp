// Integration tests: parse an answer's JSON body, failing the test (with the
// body in the message) when it is not JSON.
#pragma once

#include <doctest/doctest.h>
#include <rapidjson/document.h>

#include <string>

namespace rgtest {

inline rapidjson::Document parse(const std::string& body) {
  rapidjson::Document d;
  d.Parse(body.c_str());
  REQUIRE_MESSAGE(!d.HasParseError(), body);
  return d;
}

}  // namespace rgtest
