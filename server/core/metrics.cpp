// Prometheus registry and text exposition format 0.0.4; see metrics.hpp.
#include "core/metrics.hpp"

#include <cmath>
#include <cstdio>

namespace recgate {
namespace {

void atomic_add(std::atomic<double>& a, double v) {
  double cur = a.load(std::memory_order_relaxed);
  while (!a.compare_exchange_weak(cur, cur + v, std::memory_order_relaxed)) {
  }
}

std::string escape_label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string label_key(const Labels& labels) {
  std::string k;
  for (const auto& [n, v] : labels) {
    k += n;
    k += '\x1f';
    k += v;
    k += '\x1e';
  }
  return k;
}

std::string render_labels(const Labels& labels, const char* extra_name = nullptr, const std::string& extra = {}) {
  if (labels.empty() && !extra_name) return {};
  std::string out = "{";
  bool first = true;
  for (const auto& [n, v] : labels) {
    if (!first) out += ',';
    first = false;
    out += n + "=\"" + escape_label(v) + "\"";
  }
  if (extra_name) {
    if (!first) out += ',';
    out += std::string(extra_name) + "=\"" + extra + "\"";
  }
  out += '}';
  return out;
}

std::string fmt(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.0f", v);
    return buf;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

}  // namespace

std::size_t metric_shard() {
  static std::atomic<std::size_t> next{0};
  thread_local const std::size_t mine = next.fetch_add(1, std::memory_order_relaxed) % kMetricShards;
  return mine;
}

void Counter::inc(double v) { atomic_add(cells_[metric_shard()].v, v); }

double Counter::value() const {
  double total = 0;
  for (const auto& c : cells_) total += c.v.load(std::memory_order_relaxed);
  return total;
}

void Gauge::add(double v) { atomic_add(value_, v); }

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)) {
  for (auto& sh : shards_) {
    sh.buckets.reset(new std::atomic<std::uint64_t>[bounds_.size() + 1]);
    for (std::size_t i = 0; i <= bounds_.size(); ++i) sh.buckets[i].store(0);
  }
}

void Histogram::observe(double v) {
  std::size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  Shard& sh = shards_[metric_shard()];
  sh.buckets[i].fetch_add(1, std::memory_order_relaxed);
  atomic_add(sh.sum, v);
  sh.count.fetch_add(1, std::memory_order_relaxed);
}

double Histogram::sum() const {
  double total = 0;
  for (const auto& sh : shards_) total += sh.sum.load(std::memory_order_relaxed);
  return total;
}

std::uint64_t Histogram::count() const {
  std::uint64_t total = 0;
  for (const auto& sh : shards_) total += sh.count.load(std::memory_order_relaxed);
  return total;
}

std::vector<std::uint64_t> Histogram::bucket_counts() const {
  std::vector<std::uint64_t> out(bounds_.size() + 1);
  std::uint64_t acc = 0;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    for (const auto& sh : shards_) acc += sh.buckets[i].load(std::memory_order_relaxed);
    out[i] = acc;
  }
  return out;
}

Metrics& Metrics::instance() {
  static Metrics m;
  return m;
}

const std::vector<double>& Metrics::default_seconds_buckets() {
  static const std::vector<double> b = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                        0.25,   0.5,   1,      2.5,   5,    10,    30,   60};
  return b;
}

Counter& Metrics::counter(const std::string& name, const std::string& help, const Labels& labels) {
  const std::string key = label_key(labels);
  {
    std::shared_lock lk(mu_);
    auto f = families_.find(name);
    if (f != families_.end()) {
      auto it = f->second.counters.find(key);
      if (it != f->second.counters.end()) return *it->second.second;
    }
  }
  std::unique_lock lk(mu_);
  auto& fam = families_[name];
  fam.type = "counter";
  if (fam.help.empty()) fam.help = help;
  auto& slot = fam.counters[key];
  if (!slot.second) slot = {labels, std::make_unique<Counter>()};
  return *slot.second;
}

Gauge& Metrics::gauge(const std::string& name, const std::string& help, const Labels& labels) {
  const std::string key = label_key(labels);
  {
    std::shared_lock lk(mu_);
    auto f = families_.find(name);
    if (f != families_.end()) {
      auto it = f->second.gauges.find(key);
      if (it != f->second.gauges.end()) return *it->second.second;
    }
  }
  std::unique_lock lk(mu_);
  auto& fam = families_[name];
  fam.type = "gauge";
  if (fam.help.empty()) fam.help = help;
  auto& slot = fam.gauges[key];
  if (!slot.second) slot = {labels, std::make_unique<Gauge>()};
  return *slot.second;
}

Histogram& Metrics::histogram(const std::string& name, const std::string& help, const Labels& labels,
                              const std::vector<double>& bounds) {
  const std::string key = label_key(labels);
  {
    std::shared_lock lk(mu_);
    auto f = families_.find(name);
    if (f != families_.end()) {
      auto it = f->second.histograms.find(key);
      if (it != f->second.histograms.end()) return *it->second.second;
    }
  }
  std::unique_lock lk(mu_);
  auto& fam = families_[name];
  fam.type = "histogram";
  if (fam.help.empty()) fam.help = help;
  auto& slot = fam.histograms[key];
  if (!slot.second) slot = {labels, std::make_unique<Histogram>(bounds)};
  return *slot.second;
}

void Metrics::add_collector(std::function<void(Metrics&)> fn) {
  std::lock_guard lk(collectors_mu_);
  collectors_.push_back(std::move(fn));
}

std::string Metrics::render() {
  {
    std::lock_guard lk(collectors_mu_);
    for (auto& c : collectors_) c(*this);
  }
  std::string out;
  std::shared_lock lk(mu_);
  for (const auto& [name, fam] : families_) {
    out += "# HELP " + name + " " + fam.help + "\n";
    out += "# TYPE " + name + " " + fam.type + "\n";
    for (const auto& [k, entry] : fam.counters) out += name + render_labels(entry.first) + " " + fmt(entry.second->value()) + "\n";
    for (const auto& [k, entry] : fam.gauges) out += name + render_labels(entry.first) + " " + fmt(entry.second->value()) + "\n";
    for (const auto& [k, entry] : fam.histograms) {
      const auto& h = *entry.second;
      auto counts = h.bucket_counts();
      for (std::size_t i = 0; i < counts.size(); ++i) {
        std::string le = i < h.bounds().size() ? fmt(h.bounds()[i]) : "+Inf";
        out += name + "_bucket" + render_labels(entry.first, "le", le) + " " + std::to_string(counts[i]) + "\n";
      }
      out += name + "_sum" + render_labels(entry.first) + " " + fmt(h.sum()) + "\n";
      out += name + "_count" + render_labels(entry.first) + " " + std::to_string(h.count()) + "\n";
    }
  }
  return out;
}

}  // namespace recgate
