// /metrics in the Prometheus text exposition format (version 0.0.4).
#include "runtime/metrics/prometheus.h"

#include <cstdio>
#include <cstdlib>

namespace forklet::metrics {
namespace {

// The shortest decimal that reads back as v ("0.0001", not "0.00010000000000000001").
std::string Num(double v) {
  char buf[64];
  if (v == static_cast<double>(static_cast<long long>(v)) && v > -1e15 && v < 1e15) {
    snprintf(buf, sizeof(buf), "%lld", static_cast<long long>(v));  // "10", not "1e+01"
    return buf;
  }
  for (int precision = 1; precision <= 17; ++precision) {
    snprintf(buf, sizeof(buf), "%.*g", precision, v);
    if (strtod(buf, nullptr) == v) break;
  }
  return buf;
}

void Header(std::string& out, const char* name, const char* type, const char* help) {
  out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

std::string Labels(const SeriesSnapshot& s) {
  return "function=\"" + EscapeLabel(s.function) + "\",runtime=\"" + EscapeLabel(s.runtime) +
         "\",start_kind=\"" + EscapeLabel(s.start_kind) + "\"";
}

}  // namespace

std::string EscapeLabel(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string PrometheusText(const std::vector<SeriesSnapshot>& series, const NodeGauges& node,
                           const billing::LedgerCounters* ledger) {
  std::string out;
  Header(out, "forklet_invocations_total", "counter",
         "Finished invocations by function, start kind and outcome.");
  for (const auto& s : series)
    for (const auto& [outcome, n] : s.outcomes)
      out += "forklet_invocations_total{" + Labels(s) + ",outcome=\"" + outcome + "\"} " +
             std::to_string(n) + "\n";

  Header(out, "forklet_invocation_latency_seconds", "histogram",
         "Request in to response out inside the daemon, of invocations that ran to completion.");
  for (const auto& s : series) {
    if (s.start_kind == "none") continue;
    uint64_t cumulative = 0;
    for (size_t b = 0; b < s.prometheus_buckets.size(); ++b) {
      cumulative += s.prometheus_buckets[b];
      std::string le = b < kPrometheusBoundsS.size() ? Num(kPrometheusBoundsS[b]) : "+Inf";
      out += "forklet_invocation_latency_seconds_bucket{" + Labels(s) + ",le=\"" + le + "\"} " +
             std::to_string(cumulative) + "\n";
    }
    out += "forklet_invocation_latency_seconds_sum{" + Labels(s) + "} " + Num(s.sum_ms / 1000.0) + "\n";
    out += "forklet_invocation_latency_seconds_count{" + Labels(s) + "} " + std::to_string(s.count) + "\n";
  }

  Header(out, "forklet_instances", "gauge", "Live function instances by state.");
  out += "forklet_instances{state=\"idle\"} " + std::to_string(node.instances_idle) + "\n";
  out += "forklet_instances{state=\"busy\"} " + std::to_string(node.instances_busy) + "\n";

  Header(out, "forklet_zygotes", "gauge", "Running zygotes.");
  out += "forklet_zygotes " + std::to_string(node.zygotes.size()) + "\n";
  Header(out, "forklet_zygote_forks_total", "counter", "Instances forked, by runtime.");
  for (const auto& z : node.zygotes)
    out += "forklet_zygote_forks_total{runtime=\"" + EscapeLabel(z.runtime) + "\"} " +
           std::to_string(z.forks) + "\n";
  Header(out, "forklet_zygote_boot_seconds", "gauge", "How long the running zygote took to boot.");
  for (const auto& z : node.zygotes)
    out += "forklet_zygote_boot_seconds{runtime=\"" + EscapeLabel(z.runtime) + "\"} " +
           Num(z.boot_ms / 1000.0) + "\n";

  Header(out, "forklet_memory_reserved_bytes", "gauge",
         "Memory reserved by live instances (the sum of their MemorySize).");
  out += "forklet_memory_reserved_bytes " + std::to_string(node.memory_reserved_mb << 20) + "\n";
  Header(out, "forklet_memory_budget_bytes", "gauge", "Memory instances may reserve on this node.");
  out += "forklet_memory_budget_bytes " + std::to_string(node.memory_budget_mb << 20) + "\n";

  if (!node.async_events.empty()) {
    auto per_function = [&](const char* name, const char* type, const char* help, auto value) {
      Header(out, name, type, help);
      for (const auto& e : node.async_events)
        out += std::string(name) + "{function=\"" + EscapeLabel(e.function) + "\"} " + value(e) + "\n";
    };
    using E = NodeGauges::AsyncEvents;
    per_function("forklet_async_events_received_total", "counter",
                 "Event invocations accepted (Lambda's AsyncEventsReceived).",
                 [](const E& e) { return std::to_string(e.received); });
    per_function("forklet_async_events_succeeded_total", "counter",
                 "Event invocations that ran successfully.",
                 [](const E& e) { return std::to_string(e.succeeded); });
    per_function("forklet_async_events_retried_total", "counter",
                 "Retries scheduled after a function error.",
                 [](const E& e) { return std::to_string(e.retried); });
    per_function("forklet_async_events_throttled_total", "counter",
                 "Times a queued event waited for capacity (it is delayed, never dropped).",
                 [](const E& e) { return std::to_string(e.throttled); });
    per_function("forklet_async_queue_depth", "gauge", "Events waiting to run (or for a retry).",
                 [](const E& e) { return std::to_string(e.depth); });
    per_function("forklet_async_events_in_flight", "gauge", "Events running now.",
                 [](const E& e) { return std::to_string(e.in_flight); });
    per_function("forklet_async_event_age_seconds", "gauge",
                 "Age of the oldest waiting event (Lambda's AsyncEventAge).",
                 [](const E& e) { return Num(static_cast<double>(e.oldest_age_ms) / 1000.0); });
    Header(out, "forklet_async_events_dropped_total", "counter",
           "Events that ended without success, by reason (Lambda's AsyncEventsDropped): "
           "RetriesExhausted, EventAgeExceeded, FunctionNotFound.");
    for (const auto& e : node.async_events)
      for (const auto& [reason, n] : e.dropped)
        out += "forklet_async_events_dropped_total{function=\"" + EscapeLabel(e.function) +
               "\",reason=\"" + EscapeLabel(reason) + "\"} " + std::to_string(n) + "\n";
    Header(out, "forklet_async_events_refused_total", "counter",
           "Event invocations refused with 429 before acceptance, by the bound that refused them: "
           "events, bytes (the queue's), disk (free space of the state dir).");
    for (const auto& e : node.async_events)
      for (const auto& [bound, n] : e.refused)
        out += "forklet_async_events_refused_total{function=\"" + EscapeLabel(e.function) +
               "\",bound=\"" + EscapeLabel(bound) + "\"} " + std::to_string(n) + "\n";
  }

  if (ledger) {
    auto counter = [&](const char* name, const char* help, const std::string& value) {
      Header(out, name, "counter", help);
      out += std::string(name) + " " + value + "\n";
    };
    counter("forklet_ledger_records_total", "Invocation records appended to the ledger's log.",
            std::to_string(ledger->records));
    counter("forklet_ledger_rows_total", "Records moved from the log into the ledger's table.",
            std::to_string(ledger->rows));
    counter("forklet_ledger_duplicates_total", "Log records already a row (the same request id and start: a replayed log).",
            std::to_string(ledger->duplicates));
    counter("forklet_ledger_errors_total", "Invocation records refused or not stored.",
            std::to_string(ledger->errors));
    Header(out, "forklet_ledger_held_records", "gauge",
           "Records waiting in memory for room in the ledger's log (a full disk).");
    out += "forklet_ledger_held_records " + std::to_string(ledger->held) + "\n";
    counter("forklet_ledger_commits_total", "Ledger transactions (a batch of records each).",
            std::to_string(ledger->commits));
    counter("forklet_ledger_append_seconds_total",
            "Time invocations spent recording themselves (the ledger's cost on the invocation path).",
            Num(ledger->append_seconds));
    counter("forklet_ledger_commit_seconds_total", "Time spent moving the log into the table (background).",
            Num(ledger->commit_seconds));
  }
  return out;
}

}  // namespace forklet::metrics
