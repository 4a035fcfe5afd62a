// Tests of histogram.h: A log-linear latency histogram (the HdrHistogram layout): exact below 32 ... (see histogram.h).
#include "runtime/metrics/histogram.h"

#include <algorithm>
#include <cmath>
#include <random>

#include <gtest/gtest.h>

namespace forklet::metrics {
namespace {

TEST(LogHistogram, BucketsTileTheRangeWithoutGaps) {
  for (uint32_t i = 0; LogHistogram::LowerUs(i) < LogHistogram::kMaxUs; ++i) {
    EXPECT_EQ(LogHistogram::UpperUs(i), LogHistogram::LowerUs(i + 1)) << i;
    EXPECT_EQ(LogHistogram::IndexOf(LogHistogram::LowerUs(i)), i);
    EXPECT_EQ(LogHistogram::IndexOf(LogHistogram::UpperUs(i) - 1), i);
  }
  EXPECT_LT(LogHistogram::IndexOf(LogHistogram::kMaxUs), 1000u);  // bounded size
}

TEST(LogHistogram, PercentilesWithinTwoPercent) {
  std::mt19937 rng(7);
  std::lognormal_distribution<double> dist(-1.0, 1.5);  // ms: from microseconds to seconds
  std::vector<double> xs;
  LogHistogram h;
  for (int i = 0; i < 20000; ++i) {
    double v = dist(rng);
    xs.push_back(v);
    h.Add(v);
  }
  std::sort(xs.begin(), xs.end());
  for (double p : {0.5, 0.9, 0.99}) {
    double exact = xs[static_cast<size_t>(std::ceil(p * xs.size())) - 1];
    EXPECT_NEAR(h.Percentile(p), exact, exact * 0.02 + 0.001) << p;
  }
  EXPECT_DOUBLE_EQ(h.max_ms(), xs.back());
  EXPECT_DOUBLE_EQ(h.Percentile(1.0), xs.back());
  EXPECT_EQ(h.count(), 20000u);
}

TEST(LogHistogram, SmallValuesAreExactToTheMicrosecond) {
  LogHistogram h;
  for (double v : {0.003, 0.005, 0.007, 0.009}) h.Add(v);
  EXPECT_DOUBLE_EQ(h.Percentile(0.5), 0.005);
  EXPECT_DOUBLE_EQ(h.Percentile(0.75), 0.007);
  EXPECT_DOUBLE_EQ(h.Percentile(0.01), 0.003);  // the minimum
  EXPECT_DOUBLE_EQ(h.Percentile(1.0), 0.009);   // the maximum
}

TEST(LogHistogram, EmptyAndMerge) {
  LogHistogram a, b;
  EXPECT_EQ(a.Percentile(0.5), 0);
  a.Add(1.0);
  b.Add(100.0);
  b.Add(100.0);
  a.Merge(b);
  EXPECT_EQ(a.count(), 3u);
  EXPECT_NEAR(a.Percentile(0.5), 100.0, 2.0);
  EXPECT_DOUBLE_EQ(a.min_ms(), 1.0);
  EXPECT_EQ(a.NonEmptyBuckets().size(), 2u);
}

}  // namespace
}  // namespace forklet::metrics
