// Latency samples and their summary (percentiles by linear interpolation, as numpy's default).
#include "bench/forklet_bench/stats.h"

#include <algorithm>
#include <numeric>

namespace forklet::bench {
namespace {

double AtSorted(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  double k = (static_cast<double>(sorted.size()) - 1) * p / 100.0;
  size_t f = static_cast<size_t>(k);
  size_t c = std::min(f + 1, sorted.size() - 1);
  return sorted[f] + (sorted[c] - sorted[f]) * (k - static_cast<double>(f));
}

}  // namespace

double Percentile(std::vector<double> xs, double p) {
  std::sort(xs.begin(), xs.end());
  return AtSorted(xs, p);
}

double Median(const std::vector<double>& xs) { return Percentile(xs, 50); }

Summary Summarize(const std::vector<double>& ms) {
  Summary s;
  s.n = ms.size();
  if (ms.empty()) return s;
  std::vector<double> sorted = ms;
  std::sort(sorted.begin(), sorted.end());
  s.p50 = AtSorted(sorted, 50);
  s.p90 = AtSorted(sorted, 90);
  s.p99 = AtSorted(sorted, 99);
  s.p999 = AtSorted(sorted, 99.9);
  s.max = sorted.back();
  s.mean = std::accumulate(sorted.begin(), sorted.end(), 0.0) / static_cast<double>(sorted.size());
  return s;
}

}  // namespace forklet::bench
