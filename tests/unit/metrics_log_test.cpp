// Metrics exposition format (Prometheus text 0.0.4), JSON log lines and
// problem bodies: the formats other tools parse. Log lines stay valid UTF-8
// JSON for any bytes and whole under concurrent writers.
#include <doctest/doctest.h>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <unistd.h>

#include <thread>

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

TEST_CASE("metrics: counters and histograms updated from many threads sum exactly at scrape") {
  Counter c;
  Histogram h({0.1, 1.0});
  std::vector<std::thread> threads;
  for (int t = 0; t < 12; ++t)  // more threads than shards: some share one
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) {
        c.inc();
        h.observe(i % 2 ? 0.05 : 0.5);
      }
    });
  for (auto& t : threads) t.join();
  CHECK(c.value() == 12000);
  CHECK(h.count() == 12000);
  CHECK(h.sum() == doctest::Approx(12 * 500 * 0.55));
  CHECK(h.bucket_counts() == std::vector<std::uint64_t>{6000, 12000, 12000});
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

namespace {

// The msg of a line parsed with UTF-8 validation on (RapidJSON rejects
// ill-formed UTF-8 only when asked to).
std::string parsed_msg(const std::string& line) {
  rapidjson::Document d;
  d.Parse<rapidjson::kParseValidateEncodingFlag>(line.c_str(), line.size());
  if (d.HasParseError()) return std::string("PARSE ERROR: ") + rapidjson::GetParseError_En(d.GetParseError());
  return std::string(d["msg"].GetString(), d["msg"].GetStringLength());
}

}  // namespace

TEST_CASE("log: any bytes give a valid UTF-8 JSON line, ill-formed bytes become U+FFFD") {
  const std::string fffd = "\xEF\xBF\xBD";
  struct Row {
    std::string in, out;
  };
  const Row rows[] = {
      {"plain", "plain"},
      {"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80", "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"},  // 2-, 3-, 4-byte
      {"a\xFF" "b", "a" + fffd + "b"},                             // never valid
      {"\xFE\xFF", fffd + fffd},
      {"\x80", fffd},                                           // stray continuation
      {"\xC0\xAF", fffd + fffd},                                // overlong '/'
      {"\xE0\x80\xAF", fffd + fffd + fffd},                     // overlong, 3 bytes
      {"\xED\xA0\x80", fffd + fffd + fffd},                     // UTF-16 surrogate
      {"\xF4\x90\x80\x80", fffd + fffd + fffd + fffd},          // above U+10FFFF
      {"\xE2\x82", fffd + fffd},                                // truncated at the end
      {"\xE2\x82x", fffd + fffd + "x"},                         // truncated mid-string
      {std::string("nul\0del\x7F", 8), std::string("nul\0del\x7F", 8)},  // escaped, and back
  };
  for (const auto& r : rows) {
    CAPTURE(r.in);
    const std::string line = format_log_line(LogLevel::info, r.in, {{"target", r.in}});
    CHECK(parsed_msg(line) == r.out);
    CHECK(line.find('\x7F') == std::string::npos);
  }
}

TEST_CASE("log: long lines from many threads never interleave") {
  // A pipe holds 64 KiB: lines four times that size are taken by the kernel
  // in parts, and writers that do not hold each other off mix their parts.
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  set_log_fd(fds[1]);
  std::string got;
  std::thread reader([&] {
    char buf[4096];  // small reads keep the pipe full, so writers block mid-line
    for (;;) {
      const ssize_t n = ::read(fds[0], buf, sizeof buf);
      if (n <= 0) break;
      got.append(buf, static_cast<std::size_t>(n));
    }
  });
  constexpr int kThreads = 4, kLines = 8;
  constexpr std::size_t kLength = 256 * 1024;
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t)
    writers.emplace_back([t] {
      const std::string msg(kLength, static_cast<char>('a' + t));
      for (int i = 0; i < kLines; ++i) log_info(msg);
    });
  for (auto& w : writers) w.join();
  set_log_fd(STDOUT_FILENO);
  ::close(fds[1]);
  reader.join();
  ::close(fds[0]);
  int lines = 0;
  std::size_t pos = 0;
  while (pos < got.size()) {
    const auto end = got.find('\n', pos);
    REQUIRE(end != std::string::npos);
    const std::string msg = parsed_msg(got.substr(pos, end - pos));
    REQUIRE(msg.size() == kLength);
    CHECK(msg.find_first_not_of(msg[0]) == std::string::npos);
    ++lines;
    pos = end + 1;
  }
  CHECK(lines == kThreads * kLines);
}

TEST_CASE("log: a repeated event is written at most once per interval, with its count") {
  using namespace std::chrono_literals;
  RepeatLimiter lim(1s);
  const auto t0 = RepeatLimiter::Clock::time_point{} + 100s;
  struct Step {
    std::chrono::milliseconds at;
    std::uint64_t expect;
  };
  const Step steps[] = {
      {0ms, 1},     // the first occurrence is written at once
      {1ms, 0},     // held back ...
      {500ms, 0},   // ...
      {999ms, 0},   // ... for a whole interval
      {1000ms, 4},  // one line for this and the three held back
      {1001ms, 0},
      {5000ms, 2},  // a quiet spell: the next line still carries the one held back
      {5001ms, 0},
  };
  for (const auto& s : steps) {
    CAPTURE(s.at.count());
    CHECK(lim.record(t0 + s.at) == s.expect);
  }
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
