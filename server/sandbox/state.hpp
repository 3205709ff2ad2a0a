// Everything the running sandbox remembers, shared by the server's threads
// behind one mutex: per-category generations and last-updated times, the
// exact throttle buckets, pending faults and the statistics the admin API
// reports. Time always comes in as a parameter.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sandbox/ads_state.hpp"
#include "sandbox/bucket.hpp"
#include "sandbox/config.hpp"
#include "sandbox/data.hpp"
#include "sandbox/json_out.hpp"
#include "sandbox/signature.hpp"
#include "sandbox/wire.hpp"

namespace recgate::sandbox {

struct Now {
  std::chrono::system_clock::time_point wall;
  std::chrono::steady_clock::time_point mono;
  static Now current() { return {std::chrono::system_clock::now(), std::chrono::steady_clock::now()}; }
};

struct Fault {
  std::string action;  // empty: any action
  int latency_ms = 0;
  int status = 0;      // 0: answer normally (after the latency)
  std::string code;    // defaults from status
  std::string message;
  bool malformed = false;  // the XML cut in half (Content-Length still right)
  bool drop = false;
  int remaining = 1;
  // Upstream faults below and beside the MWS error model (see wire.hpp).
  bool invalid_xml = false;            // the whole XML, but with an element never closed
  std::optional<std::string> body;     // replaces the answer's body (e.g. an HTML error page)
  std::string content_type;            // replaces text/xml when set
  std::string retry_after;             // sent as Retry-After when set
  WireMode wire = WireMode::none;
  std::uint64_t wire_bytes = kDefaultWireBytes;
};

struct RequestRecord {
  std::string time;
  std::string request_id;
  std::string action;
  std::string seller_id;
  int status = 0;
  std::string code;  // MWS error code, empty on success
  Params params;     // Signature kept, MWSAuthToken masked
};

class SandboxState {
 public:
  SandboxState(SandboxConfig cfg, Now now);
  SandboxState(const SandboxState&) = delete;
  SandboxState& operator=(const SandboxState&) = delete;

  const SandboxConfig& config() const { return cfg_; }
  // The Ads/LWA endpoints' own state (its own lock), from cfg.ads_json.
  AdsState& ads() { return ads_; }

  // Takes a token from the (seller, group) bucket; false = throttled (counted).
  bool take_token(const std::string& seller_id, std::string_view group, std::chrono::steady_clock::time_point now);

  CategorySnapshot snapshot(const std::string& seller_id, const std::string& marketplace_id,
                            const std::string& category);
  // Bumps the generation and moves the last-updated time to now (strictly
  // later than before). ListingQuality keeps no time.
  CategorySnapshot touch(const std::string& seller_id, const std::string& marketplace_id,
                         const std::string& category, std::chrono::system_clock::time_point now);

  void add_fault(Fault f);
  void clear_faults();
  // The first pending fault for `action`, consumed.
  std::optional<Fault> take_fault(std::string_view action);
  // The outcome of the last wire fault acted out (GET /admin/stats faults.last_wire).
  void record_wire(const WireReport& report);

  void record(RequestRecord r);
  void record_signature_failure(std::string expected_string_to_sign, std::string host, std::string time);

  // GET /admin/stats body.
  std::string stats_json(std::chrono::steady_clock::time_point now) const;
  void reset(Now now);

 private:
  struct BucketEntry {
    ExactBucket bucket;
    std::uint64_t accepted = 0;
    std::uint64_t throttled = 0;
    std::int64_t min_tokens;
  };
  struct CategoryEntry {
    std::uint64_t generation;
    std::optional<std::chrono::system_clock::time_point> last_updated;
  };

  const ThrottleRule& rule_for(std::string_view group) const;
  // The sections of stats_json, called with mu_ held.
  void write_requests(json_out::Writer& w) const;
  void write_throttled(json_out::Writer& w) const;
  void write_buckets(json_out::Writer& w, std::chrono::steady_clock::time_point now) const;
  void write_signature_failures(json_out::Writer& w) const;
  void write_faults(json_out::Writer& w) const;
  void write_last_wire(json_out::Writer& w) const;
  void write_recent(json_out::Writer& w) const;
  CategoryEntry& entry(const std::string& seller_id, const std::string& marketplace_id, const std::string& category);

  const SandboxConfig cfg_;
  mutable std::mutex mu_;
  std::chrono::system_clock::time_point epoch_;
  std::map<std::pair<std::string, std::string>, BucketEntry> buckets_;
  std::map<std::string, CategoryEntry> categories_;
  std::vector<Fault> faults_;
  std::uint64_t total_requests_ = 0;
  std::map<std::string, std::uint64_t> by_action_;
  std::map<int, std::uint64_t> by_status_;
  std::map<std::string, std::uint64_t> by_error_;
  std::map<std::string, std::map<std::string, std::uint64_t>> throttled_;
  std::uint64_t throttled_total_ = 0;
  std::uint64_t signature_failures_ = 0;
  std::optional<std::pair<std::string, std::string>> last_signature_failure_;  // string to sign, host
  std::string last_signature_failure_time_;
  std::uint64_t faults_applied_ = 0;
  std::optional<WireReport> last_wire_;
  std::deque<RequestRecord> recent_;
  AdsState ads_;
};

}  // namespace recgate::sandbox
