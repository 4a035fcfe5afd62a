// Tests of prometheus.h: /metrics in the Prometheus text exposition format (version 0.0.4).
#include "runtime/metrics/prometheus.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace forklet::metrics {
namespace {

// Parses the exposition with the reference parser of Debian's python3-prometheus-client and
// returns {"name{labels}": value} for every sample.
nlohmann::json ParseWithPrometheusClient(const std::string& text) {
  std::string path = "/tmp/forklet-prom-test-" + std::to_string(getpid()) + ".txt";
  std::ofstream(path) << text;
  std::string cmd =
      "/usr/bin/python3 -c 'import sys, json\n"
      "from prometheus_client.parser import text_string_to_metric_families\n"
      "out = {}\n"
      "for fam in text_string_to_metric_families(open(sys.argv[1]).read()):\n"
      "    for s in fam.samples:\n"
      "        labels = \",\".join(f\"{k}={v}\" for k, v in sorted(s.labels.items()))\n"
      "        out[s.name + \"{\" + labels + \"}\"] = s.value\n"
      "    out[\"TYPE \" + fam.name] = fam.type\n"
      "print(json.dumps(out))' " + path;
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  int rc = pclose(p);
  unlink(path.c_str());
  EXPECT_EQ(rc, 0) << "the parser rejected:\n" << text;
  return nlohmann::json::parse(out, nullptr, false);
}

TEST(Prometheus, TheReferenceParserReadsIt) {
  LatencyStats stats;
  core::InvokeResult r;
  r.start = core::StartKind::kWarm;
  r.total_ms = 0.4;
  stats.Add("hello", "python3.11", r);
  stats.Add("hello", "python3.11", r);
  r.start = core::StartKind::kCold;
  r.total_ms = 120;
  stats.Add("hello", "python3.11", r);
  r.outcome = core::Outcome::kThrottled;
  stats.Add("we\"ird\\name", "python3.11", r);
  NodeGauges node;
  node.instances_idle = 2;
  node.instances_busy = 1;
  node.memory_reserved_mb = 384;
  node.memory_budget_mb = 1024;
  node.zygotes.push_back({"python3", 95.5, 7});
  billing::LedgerCounters ledger;
  ledger.records = 4;
  ledger.commits = 3;

  auto m = ParseWithPrometheusClient(PrometheusText(stats.Snapshot(false), node, &ledger));
  ASSERT_TRUE(m.is_object());
  EXPECT_EQ(m["TYPE forklet_invocations"], "counter");
  EXPECT_EQ(m["TYPE forklet_invocation_latency_seconds"], "histogram");
  EXPECT_EQ(m["forklet_invocations_total{function=hello,outcome=success,runtime=python3.11,start_kind=warm}"], 2.0);
  EXPECT_EQ(m["forklet_invocations_total{function=hello,outcome=success,runtime=python3.11,start_kind=cold}"], 1.0);
  EXPECT_EQ(m["forklet_invocations_total{function=we\"ird\\name,outcome=throttled,runtime=python3.11,start_kind=none}"], 1.0);
  EXPECT_EQ(m["forklet_invocation_latency_seconds_bucket{function=hello,le=0.0005,runtime=python3.11,start_kind=warm}"], 2.0);
  EXPECT_EQ(m["forklet_invocation_latency_seconds_bucket{function=hello,le=0.1,runtime=python3.11,start_kind=cold}"], 0.0);
  EXPECT_EQ(m["forklet_invocation_latency_seconds_bucket{function=hello,le=0.25,runtime=python3.11,start_kind=cold}"], 1.0);
  EXPECT_EQ(m["forklet_invocation_latency_seconds_bucket{function=hello,le=+Inf,runtime=python3.11,start_kind=cold}"], 1.0);
  EXPECT_EQ(m["forklet_invocation_latency_seconds_count{function=hello,runtime=python3.11,start_kind=warm}"], 2.0);
  EXPECT_NEAR(m["forklet_invocation_latency_seconds_sum{function=hello,runtime=python3.11,start_kind=warm}"].get<double>(), 0.0008, 1e-12);
  EXPECT_EQ(m["forklet_instances{state=idle}"], 2.0);
  EXPECT_EQ(m["forklet_instances{state=busy}"], 1.0);
  EXPECT_EQ(m["forklet_zygotes{}"], 1.0);
  EXPECT_EQ(m["forklet_zygote_forks_total{runtime=python3}"], 7.0);
  EXPECT_EQ(m["forklet_memory_reserved_bytes{}"], 384.0 * (1 << 20));
  EXPECT_EQ(m["forklet_ledger_records_total{}"], 4.0);
}

TEST(Prometheus, EscapesLabelValues) {
  EXPECT_EQ(EscapeLabel("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
}

}  // namespace
}  // namespace forklet::metrics
