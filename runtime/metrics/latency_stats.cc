// Latency statistics since the daemon started, per function, runtime and start kind: counts by
#include "runtime/metrics/latency_stats.h"

#include <algorithm>
#include <chrono>

namespace forklet::metrics {
namespace {

int KindOrder(const std::string& kind) {
  if (kind == "cold") return 0;
  if (kind == "zygote") return 1;
  if (kind == "warm") return 2;
  if (kind == "none") return 4;
  return 3;
}

}  // namespace

LatencyStats::LatencyStats()
    : since_ms_(std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::system_clock::now().time_since_epoch()).count()) {}

void LatencyStats::Add(const std::string& function, const std::string& runtime,
                       const core::InvokeResult& r) {
  const bool throttled = r.outcome == core::Outcome::kThrottled;
  const char* kind = throttled ? "none" : core::StartKindName(r.start);
  const bool ran = r.outcome == core::Outcome::kSuccess || r.outcome == core::Outcome::kUnhandled;
  std::lock_guard lock(mu_);
  Function& f = functions_[{function, runtime}];
  Series* s = nullptr;
  for (auto& [k, series] : f.kinds)
    if (k == kind) s = series.get();
  if (!s) {
    f.kinds.emplace_back(kind, std::make_unique<Series>());
    s = f.kinds.back().second.get();
  }
  s->outcomes[core::OutcomeName(r.outcome)]++;
  if (!ran) return;
  s->latency.Add(r.total_ms);
  size_t b = 0;
  while (b < kPrometheusBoundsS.size() && r.total_ms > kPrometheusBoundsS[b] * 1000.0) ++b;
  s->prometheus[b]++;
  for (const auto& [name, ms] : r.stages) {
    LogHistogram* h = nullptr;
    for (auto& [n, hist] : s->stages)
      if (n == name) h = &hist;
    if (!h) {
      s->stages.emplace_back(name, LogHistogram{});
      h = &s->stages.back().second;
    }
    h->Add(ms);
  }
}

std::vector<SeriesSnapshot> LatencyStats::Snapshot(bool with_histogram,
                                                   const std::string& function) const {
  std::vector<SeriesSnapshot> out;
  std::lock_guard lock(mu_);
  for (const auto& [key, f] : functions_) {
    if (!function.empty() && key.first != function) continue;
    std::vector<const std::pair<std::string, std::unique_ptr<Series>>*> kinds;
    for (const auto& k : f.kinds) kinds.push_back(&k);
    std::sort(kinds.begin(), kinds.end(),
              [](auto* a, auto* b) { return KindOrder(a->first) < KindOrder(b->first); });
    for (const auto* k : kinds) {
      const Series& s = *k->second;
      SeriesSnapshot snap;
      snap.function = key.first;
      snap.runtime = key.second;
      snap.start_kind = k->first;
      snap.count = s.latency.count();
      snap.p50_ms = s.latency.Percentile(0.50);
      snap.p90_ms = s.latency.Percentile(0.90);
      snap.p99_ms = s.latency.Percentile(0.99);
      snap.max_ms = s.latency.max_ms();
      snap.sum_ms = s.latency.sum_ms();
      for (const auto& [name, h] : s.stages) snap.stage_p50_ms.emplace_back(name, h.Percentile(0.5));
      snap.outcomes = s.outcomes;
      snap.prometheus_buckets = s.prometheus;
      if (with_histogram) snap.histogram = s.latency.NonEmptyBuckets();
      out.push_back(std::move(snap));
    }
  }
  return out;
}

}  // namespace forklet::metrics
