// Lambda's per-invocation log lines (START, END, REPORT) and the billed duration.
#pragma once

#include <cstdint>
#include <string>

#include "runtime/core/invocation.h"

namespace forklet::core {

// Rounds a duration up to the billing granularity (Lambda's 2017 model: 100 ms).
uint64_t BilledMs(double duration_ms, uint32_t granularity_ms = 100);

// "REPORT RequestId: <id>\tDuration: 1.27 ms\tBilled Duration: 100 ms\tMemory Size: 128 MB\t
// Max Memory Used: 36 MB\t[Init Duration: 107.95 ms\t]" then forklet's start kind and stages.
std::string ReportLine(const std::string& request_id, const InvokeResult& r, uint32_t memory_mb);

// "Task timed out after 3.00 seconds"
std::string TimeoutMessage(uint32_t timeout_s);

// "fork=0.310 attach_cgroup=0.058 ..." (ms, three decimals; the names: docs/design.md)
std::string FormatStages(const Stages& stages);

}  // namespace forklet::core
