// Metrics exposition format (Prometheus text 0.0.4), JSON log lines and
// problem bodies: the formats other tools parse.
#include <doctest/doctest.h>
#include <rapidjson/document.h>

#include "core/log.hpp"
#include "core/metrics.hpp"
#include "core/problem.hpp"

using namespace recgate;

TEST_CASE("metrics: counters, gauges and histograms render in the text format") {
  Metrics& m = Metrics::instance();
  m.counter("test_events_total", "Events.", {{"kind", "a\"b"}}).inc(3);
  m.gauge("test_level", "Level.").set(2.5);
  auto& h = m.histogram("test_duration_seconds", "Durations.", {{"route", "x"}}, {0.1, 1});
  h.observe(0.05);
  h.observe(0.5);
  h.observe(5);
  std::string out = m.render();
  CHECK(out.find("# TYPE test_events_total counter\n") != std::string::npos);
  CHECK(out.find("test_events_total{kind=\"a\\\"b\"} 3\n") != std::string::npos);
  CHECK(out.find("# TYPE test_level gauge\ntest_level 2.5\n") != std::string::npos);
  CHECK(out.find("test_duration_seconds_bucket{route=\"x\",le=\"0.1\"} 1\n") != std::string::npos);
  CHECK(out.find("test_duration_seconds_bucket{route=\"x\",le=\"1\"} 2\n") != std::string::npos);
  CHECK(out.find("test_duration_seconds_bucket{route=\"x\",le=\"+Inf\"} 3\n") != std::string::npos);
  CHECK(out.find("test_duration_seconds_count{route=\"x\"} 3\n") != std::string::npos);
  CHECK(out.find("test_duration_seconds_sum{route=\"x\"} 5.55\n") != std::string::npos);
  // The same series is the same object.
  CHECK(&m.counter("test_events_total", "", {{"kind", "a\"b"}}) == &m.counter("test_events_total", "", {{"kind", "a\"b"}}));
}

TEST_CASE("log: one JSON object per line, escaped, numbers unquoted") {
  std::string line = format_log_line(LogLevel::warn, "say \"hi\"\n", {{"request_id", "abc"}, {"status", 200}, {"ms", 1.5}});
  REQUIRE(line.back() == '\n');
  CHECK(line.find('\n') == line.size() - 1);
  rapidjson::Document d;
  d.Parse(line.c_str());
  REQUIRE_FALSE(d.HasParseError());
  CHECK(std::string(d["level"].GetString()) == "warn");
  CHECK(std::string(d["msg"].GetString()) == "say \"hi\"\n");
  CHECK(d["status"].GetInt() == 200);
  CHECK(d["ms"].GetDouble() == 1.5);
  CHECK(std::string(d["time"].GetString()).size() == 24);
  LogLevel l;
  CHECK(parse_log_level("debug", l));
  CHECK(l == LogLevel::debug);
  CHECK_FALSE(parse_log_level("loud", l));
}

TEST_CASE("problem: RFC 9457 body with code and extensions") {
  Problem p = make_problem(502, "upstream_error", "MWS said no");
  p.extensions.emplace_back("upstreamCode", "SignatureDoesNotMatch");
  rapidjson::Document d;
  d.Parse(problem_body(p).c_str());
  REQUIRE_FALSE(d.HasParseError());
  CHECK(d["status"].GetInt() == 502);
  CHECK(std::string(d["title"].GetString()) == "Bad Gateway");
  CHECK(std::string(d["code"].GetString()) == "upstream_error");
  CHECK(std::string(d["detail"].GetString()) == "MWS said no");
  CHECK(std::string(d["upstreamCode"].GetString()) == "SignatureDoesNotMatch");
  CHECK(std::string(d["type"].GetString()).find("upstream_error") != std::string::npos);
}
