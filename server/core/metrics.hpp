// Prometheus metrics registry (text format 0.0.4). Counters, gauges and
// histograms are lock-free to update (atomics); looking a series up takes a
// shared lock, so hot paths keep the returned reference. Counters and
// histograms are sharded per thread (kMetricShards cache lines, summed at
// scrape): every request updates several of them from every I/O thread, and
// one shared line would bounce between the cores on each update.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <utility>
#include <vector>

namespace recgate {

using Labels = std::vector<std::pair<std::string, std::string>>;

inline constexpr std::size_t kMetricShards = 8;
// This thread's shard (threads take them in turn on first use).
std::size_t metric_shard();

class Counter {
 public:
  void inc(double v = 1.0);
  double value() const;

 private:
  struct alignas(64) Cell {
    std::atomic<double> v{0};
  };
  std::array<Cell, kMetricShards> cells_;
};

class Gauge {
 public:
  void set(double v) { value_.store(v, std::memory_order_relaxed); }
  void add(double v);
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double v);
  const std::vector<double>& bounds() const { return bounds_; }
  std::vector<std::uint64_t> bucket_counts() const;  // cumulative, last is +Inf
  double sum() const;
  std::uint64_t count() const;

 private:
  struct alignas(64) Shard {
    std::atomic<double> sum{0};
    std::atomic<std::uint64_t> count{0};
    std::unique_ptr<std::atomic<std::uint64_t>[]> buckets;  // per bucket, not cumulative
  };
  std::vector<double> bounds_;
  std::array<Shard, kMetricShards> shards_;
};

class Metrics {
 public:
  // The process-wide registry.
  static Metrics& instance();

  Counter& counter(const std::string& name, const std::string& help, const Labels& labels = {});
  Gauge& gauge(const std::string& name, const std::string& help, const Labels& labels = {});
  Histogram& histogram(const std::string& name, const std::string& help, const Labels& labels = {},
                       const std::vector<double>& bounds = default_seconds_buckets());
  // Gauges computed at scrape time (bucket tokens, cache entries...).
  void add_collector(std::function<void(Metrics&)> fn);

  std::string render();  // runs collectors, then the exposition text

  static const std::vector<double>& default_seconds_buckets();

 private:
  struct Family {
    std::string type;  // counter, gauge, histogram
    std::string help;
    std::map<std::string, std::pair<Labels, std::unique_ptr<Counter>>> counters;
    std::map<std::string, std::pair<Labels, std::unique_ptr<Gauge>>> gauges;
    std::map<std::string, std::pair<Labels, std::unique_ptr<Histogram>>> histograms;
  };
  std::shared_mutex mu_;
  std::map<std::string, Family> families_;
  std::mutex collectors_mu_;
  std::vector<std::function<void(Metrics&)>> collectors_;
};

}  // namespace recgate
