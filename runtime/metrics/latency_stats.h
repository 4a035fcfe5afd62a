// Latency statistics since the daemon started, per function, runtime and start kind: counts by
// outcome, latency percentiles, and the median of every stage (zygote boot, cgroup, fork, each
// sandbox setup step, init, handler). Memory is bounded per series (log histograms); adding a
// sample takes one lock and no allocation once a series has seen its stages. Thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "runtime/core/invocation.h"
#include "runtime/metrics/histogram.h"

namespace forklet::metrics {

// Upper bounds (seconds) of the Prometheus latency histogram's buckets; +Inf follows.
inline constexpr std::array<double, 17> kPrometheusBoundsS = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1,    0.25,    0.5,    1,     2.5,    5,     10,   30};

struct SeriesSnapshot {
  std::string function;
  std::string runtime;
  std::string start_kind;  // cold, zygote, warm; none for throttled invocations
  // Latency (request in to response out, inside the daemon) of invocations that ran to completion
  // (success or a function error); timeouts, OOM kills, crashes and throttles only count below.
  uint64_t count = 0;
  double p50_ms = 0, p90_ms = 0, p99_ms = 0, max_ms = 0, sum_ms = 0;
  std::vector<std::pair<std::string, double>> stage_p50_ms;  // in the order the stages happen
  std::map<std::string, uint64_t> outcomes;                  // every invocation, by outcome
  std::array<uint64_t, kPrometheusBoundsS.size() + 1> prometheus_buckets{};  // not cumulative
  std::vector<LogHistogram::Bucket> histogram;  // filled on request only
};

class LatencyStats {
 public:
  LatencyStats();
  void Add(const std::string& function, const std::string& runtime, const core::InvokeResult& r);
  // Ordered by function, runtime, then cold, zygote, warm, none. function empty: all.
  std::vector<SeriesSnapshot> Snapshot(bool with_histogram, const std::string& function = {}) const;
  int64_t since_epoch_ms() const { return since_ms_; }

 private:
  struct Series {
    LogHistogram latency;
    std::vector<std::pair<std::string, LogHistogram>> stages;
    std::map<std::string, uint64_t> outcomes;
    std::array<uint64_t, kPrometheusBoundsS.size() + 1> prometheus{};
  };
  struct Function {
    std::vector<std::pair<std::string, std::unique_ptr<Series>>> kinds;
  };

  int64_t since_ms_;
  mutable std::mutex mu_;
  std::map<std::pair<std::string, std::string>, Function> functions_;
};

}  // namespace forklet::metrics
