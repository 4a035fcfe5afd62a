// Lambda's per-invocation log lines (START, END, REPORT) and the billed duration.
#include "runtime/core/report.h"

#include <cmath>
#include <cstdio>

namespace forklet::core {

uint64_t BilledMs(double duration_ms, uint32_t granularity_ms) {
  if (granularity_ms == 0) granularity_ms = 1;
  // A whole number of milliseconds first (Lambda reports durations to 0.01 ms but bills whole
  // units), so 100.00 ms bills 100 and 100.01 bills 200.
  double units = std::ceil(std::max(duration_ms, 0.0) / granularity_ms - 1e-9);
  if (units < 1) units = 1;
  return static_cast<uint64_t>(units) * granularity_ms;
}

std::string TimeoutMessage(uint32_t timeout_s) {
  char buf[64];
  snprintf(buf, sizeof(buf), "Task timed out after %.2f seconds", static_cast<double>(timeout_s));
  return buf;
}

std::string FormatStages(const Stages& stages) {
  std::string out;
  char buf[96];
  for (const auto& [name, ms] : stages) {
    snprintf(buf, sizeof(buf), "%s%s=%.3f", out.empty() ? "" : " ", name.c_str(), ms);
    out += buf;
  }
  return out;
}

std::string ReportLine(const std::string& request_id, const InvokeResult& r, uint32_t memory_mb) {
  char buf[512];
  snprintf(buf, sizeof(buf),
           "REPORT RequestId: %s\tDuration: %.2f ms\tBilled Duration: %llu ms\tMemory Size: %u MB\t"
           "Max Memory Used: %llu MB\t",
           request_id.c_str(), r.duration_ms, static_cast<unsigned long long>(r.billed_ms),
           memory_mb, static_cast<unsigned long long>(r.max_memory_mb));
  std::string line = buf;
  if (r.start != StartKind::kWarm) {
    snprintf(buf, sizeof(buf), "Init Duration: %.2f ms\t", r.init_ms);
    line += buf;
  }
  line += std::string("Start Kind: ") + StartKindName(r.start) + "\tStages: " + FormatStages(r.stages);
  return line;
}

}  // namespace forklet::core
