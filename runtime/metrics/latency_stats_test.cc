// Tests of latency_stats.h: Latency statistics since the daemon started, per function, runtime and ... (see latency_stats.h).
#include "runtime/metrics/latency_stats.h"

#include <gtest/gtest.h>

namespace forklet::metrics {
namespace {

using core::InvokeResult;
using core::Outcome;
using core::StartKind;

InvokeResult Result(StartKind kind, double total_ms, Outcome outcome = Outcome::kSuccess) {
  InvokeResult r;
  r.start = kind;
  r.outcome = outcome;
  r.total_ms = total_ms;
  if (kind != StartKind::kWarm) {
    r.stages = {{"cgroup", 0.02}, {"fork", 0.3}, {"init", total_ms / 2}};
  }
  r.stages.emplace_back("handler", 0.1);
  return r;
}

TEST(LatencyStats, SeriesPerFunctionRuntimeAndStartKind) {
  LatencyStats s;
  for (int i = 1; i <= 100; ++i) s.Add("f", "python3.11", Result(StartKind::kWarm, i * 0.01));
  s.Add("f", "python3.11", Result(StartKind::kCold, 120));
  s.Add("f", "python3.11", Result(StartKind::kZygote, 8));
  s.Add("f", "python3.11", Result(StartKind::kZygote, 10));
  s.Add("g", "python3.12", Result(StartKind::kWarm, 1));
  auto snap = s.Snapshot(false);
  ASSERT_EQ(snap.size(), 4u);
  EXPECT_EQ(snap[0].start_kind, "cold");
  EXPECT_EQ(snap[1].start_kind, "zygote");
  EXPECT_EQ(snap[2].start_kind, "warm");
  EXPECT_EQ(snap[3].function, "g");
  EXPECT_EQ(snap[3].runtime, "python3.12");

  const auto& warm = snap[2];
  EXPECT_EQ(warm.count, 100u);
  EXPECT_NEAR(warm.p50_ms, 0.50, 0.01);
  EXPECT_NEAR(warm.p90_ms, 0.90, 0.02);
  EXPECT_NEAR(warm.p99_ms, 0.99, 0.02);
  EXPECT_DOUBLE_EQ(warm.max_ms, 1.0);
  ASSERT_EQ(warm.stage_p50_ms.size(), 1u);
  EXPECT_EQ(warm.stage_p50_ms[0].first, "handler");

  const auto& zygote = snap[1];
  ASSERT_EQ(zygote.stage_p50_ms.size(), 4u);  // in the order they happened
  EXPECT_EQ(zygote.stage_p50_ms[0].first, "cgroup");
  EXPECT_EQ(zygote.stage_p50_ms[1].first, "fork");
  EXPECT_EQ(zygote.stage_p50_ms[2].first, "init");
  EXPECT_EQ(zygote.stage_p50_ms[3].first, "handler");
  EXPECT_NEAR(zygote.stage_p50_ms[1].second, 0.3, 0.01);
  EXPECT_EQ(s.Snapshot(false, "g").size(), 1u);
}

TEST(LatencyStats, OnlyCompletedRunsHaveLatenciesButAllAreCounted) {
  LatencyStats s;
  s.Add("f", "python3.11", Result(StartKind::kWarm, 1));
  s.Add("f", "python3.11", Result(StartKind::kWarm, 2, Outcome::kUnhandled));
  s.Add("f", "python3.11", Result(StartKind::kWarm, 3000, Outcome::kTimeout));
  InvokeResult throttled;
  throttled.outcome = Outcome::kThrottled;
  s.Add("f", "python3.11", throttled);
  auto snap = s.Snapshot(true);
  ASSERT_EQ(snap.size(), 2u);
  EXPECT_EQ(snap[0].start_kind, "warm");
  EXPECT_EQ(snap[0].count, 2u);
  EXPECT_DOUBLE_EQ(snap[0].max_ms, 2);
  EXPECT_EQ(snap[0].outcomes.at("success"), 1u);
  EXPECT_EQ(snap[0].outcomes.at("unhandled"), 1u);
  EXPECT_EQ(snap[0].outcomes.at("timeout"), 1u);
  EXPECT_EQ(snap[0].histogram.size(), 2u);
  EXPECT_EQ(snap[1].start_kind, "none");
  EXPECT_EQ(snap[1].outcomes.at("throttled"), 1u);
  EXPECT_EQ(snap[1].count, 0u);
  uint64_t in_buckets = 0;
  for (auto n : snap[0].prometheus_buckets) in_buckets += n;
  EXPECT_EQ(in_buckets, 2u);
}

}  // namespace
}  // namespace forklet::metrics
