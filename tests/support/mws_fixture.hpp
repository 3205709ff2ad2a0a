// The recorded MWS answers under tests/fixtures/mws/, read whole (unit tests
// of the model and of the services). Needs RECGATE_SOURCE_DIR and doctest.
#pragma once

#include <doctest/doctest.h>

#include <fstream>
#include <sstream>
#include <string>

namespace rgtest {

inline std::string mws_fixture(const std::string& name) {
  const std::string path = std::string(RECGATE_SOURCE_DIR) + "/tests/fixtures/mws/" + name;
  std::ifstream in(path, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), "cannot open " << path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace rgtest
