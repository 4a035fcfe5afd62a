// The measurements through the daemon: response time per start kind as one client sees it, and
// the concurrency sweep (throughput and latency with N clients).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "bench/forklet_bench/daemon.h"
#include "bench/forklet_bench/stats.h"
#include "sandbox/error.h"

namespace forklet::bench {

// How each start kind is produced: cold drops the runtime's zygote before the request; zygote
// asks for a fresh instance (X-Forklet-Fresh-Instance: 1); warm reuses the idle instance.
// "first": a function's first start, which binds a spare zygote (the daemon reports it as a
// zygote start with a zygote_bind stage); "zygote": its later starts, forked from its own zygote.
constexpr const char* kStartKinds[] = {"cold", "first", "zygote", "warm"};

struct KindRun {
  std::string family;  // the runtime: "python3", "native", ...
  std::string kind;
  std::vector<double> e2e_ms;     // request written to response read, per sample
  std::vector<double> daemon_ms;  // X-Forklet-Total-Ms: inside the daemon
  std::vector<std::string> stage_order;                 // as the daemon reports them
  std::map<std::string, std::vector<double>> stages;    // X-Forklet-Stages, per sample
  size_t off_kind = 0;  // responses of another start kind than asked for (not counted)
};

// pre_booted (Node): a zygote sample first waits for the stem cells to be booted, a cold one for
// the dropped pool to be quiet, so that no background boot shares the sample's CPU.
Result<KindRun> MeasureStartKind(DaemonUnderTest& daemon, const std::string& function,
                                 const std::string& family, bool pre_booted, const std::string& kind,
                                 int warmup, int samples, const std::string& progress_label);

struct SweepPoint {
  std::string family;  // the runtime
  std::string kind;    // "warm" or "zygote"
  int clients = 0;
  size_t requests = 0;  // successful, of the asked start kind
  size_t errors = 0;    // failed or of another start kind
  std::string first_error;  // the first of them, as the client saw it
  double seconds = 0;
  double throughput = 0;  // requests per second
  Summary latency;
};

// `clients` threads, each with its own connection and its own function (functions[i]), invoke
// back to back for `seconds` after one untimed request each.
Result<SweepPoint> RunSweepLevel(const std::string& endpoint, const std::vector<std::string>& functions,
                                 const std::string& kind, int clients, double seconds);

// The same with GET `path` of an HTTP server (the nginx floor): family "http floor".
Result<SweepPoint> RunFloorSweepLevel(const std::string& endpoint, const std::string& path, int clients,
                                      double seconds);

}  // namespace forklet::bench
