// Latency samples and their summary (percentiles by linear interpolation, as numpy's default).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace forklet::bench {

struct Summary {
  size_t n = 0;
  double p50 = 0, p90 = 0, p99 = 0, p999 = 0, max = 0, mean = 0;  // ms (p999: p99.9)
};

double Percentile(std::vector<double> xs, double p);  // p in [0, 100]
Summary Summarize(const std::vector<double>& ms);
double Median(const std::vector<double>& xs);

}  // namespace forklet::bench
