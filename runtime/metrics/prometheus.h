// /metrics in the Prometheus text exposition format (version 0.0.4).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "runtime/billing/ledger.h"
#include "runtime/metrics/latency_stats.h"

namespace forklet::metrics {

// The node's state at scrape time, gathered by the caller from the scheduler and the launcher.
struct NodeGauges {
  uint32_t instances_idle = 0;
  uint32_t instances_busy = 0;
  uint64_t memory_reserved_mb = 0;  // MemorySize of every live instance
  uint64_t memory_budget_mb = 0;
  struct Zygote {
    std::string runtime;
    double boot_ms = 0;
    uint64_t forks = 0;
  };
  std::vector<Zygote> zygotes;
  // Event invocations per function (Lambda's AsyncEventsReceived, AsyncEventAge,
  // AsyncEventsDropped), from the event queue.
  struct AsyncEvents {
    std::string function;
    uint64_t received = 0, succeeded = 0, retried = 0, throttled = 0, depth = 0, in_flight = 0;
    int64_t oldest_age_ms = 0;
    std::map<std::string, uint64_t> dropped;  // by reason
    std::map<std::string, uint64_t> refused;  // not accepted (429), by bound: events, bytes, disk
  };
  std::vector<AsyncEvents> async_events;
};

inline constexpr const char* kPrometheusContentType = "text/plain; version=0.0.4; charset=utf-8";

// ledger may be null (running without one).
std::string PrometheusText(const std::vector<SeriesSnapshot>& series, const NodeGauges& node,
                           const billing::LedgerCounters* ledger);

// A label value escaped as the format wants: backslash, double quote and newline.
std::string EscapeLabel(const std::string& value);

}  // namespace forklet::metrics
