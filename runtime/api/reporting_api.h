// forklet's reporting routes: GET /forklet/v1/stats (latency per function, runtime and start
// kind), GET /forklet/v1/bill (usage and cost from the ledger) and GET /metrics (Prometheus).
#pragma once

#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "runtime/api/http_server.h"
#include "runtime/billing/ledger.h"
#include "runtime/metrics/latency_stats.h"
#include "runtime/metrics/prometheus.h"

namespace forklet::api {

class ReportingApi {
 public:
  using GaugesFn = std::function<metrics::NodeGauges()>;
  // The launcher's snapshot report (CRIU, and per function its decision and why), for /stats.
  using SnapshotsFn = std::function<nlohmann::json()>;
  // ledger may be null (the daemon runs without one): /bill then answers 503.
  // The event queue per function (depth, oldest age, received, retried, dropped), for /stats.
  using EventsFn = std::function<nlohmann::json()>;
  ReportingApi(metrics::LatencyStats* stats, billing::Ledger* ledger, GaugesFn gauges,
               SnapshotsFn snapshots = {}, EventsFn events = {})
      : stats_(stats), ledger_(ledger), gauges_(std::move(gauges)), snapshots_(std::move(snapshots)),
        events_(std::move(events)) {}

  static bool Serves(const std::string& path);
  HttpResponse Handle(const HttpRequest& request);

 private:
  HttpResponse Stats(const HttpRequest& r);
  HttpResponse Bill(const HttpRequest& r);
  HttpResponse Metrics();

  metrics::LatencyStats* stats_;
  billing::Ledger* ledger_;
  GaugesFn gauges_;
  SnapshotsFn snapshots_;
  EventsFn events_;
};

}  // namespace forklet::api
