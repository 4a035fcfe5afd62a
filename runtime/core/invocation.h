// What an invocation asks for and what comes back: plain values shared by core and api.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "runtime/core/random_id.h"

namespace forklet::core {

enum class StartKind { kCold, kZygote, kWarm, kRestore };
inline const char* StartKindName(StartKind k) {
  switch (k) {
    case StartKind::kCold: return "cold";
    case StartKind::kZygote: return "zygote";
    case StartKind::kWarm: return "warm";
    case StartKind::kRestore: return "restore";
  }
  return "?";
}

enum class Outcome {
  kSuccess,
  kUnhandled,    // the function raised (or its init failed): X-Amz-Function-Error: Unhandled
  kTimeout,
  kOutOfMemory,
  kCrashed,      // the instance exited or broke the protocol
  kThrottled,    // no instance could be had: 429
  kSetupFailed,  // the sandbox could not be built: a service error, not the function's
};
inline const char* OutcomeName(Outcome o) {
  switch (o) {
    case Outcome::kSuccess: return "success";
    case Outcome::kUnhandled: return "unhandled";
    case Outcome::kTimeout: return "timeout";
    case Outcome::kOutOfMemory: return "oom";
    case Outcome::kCrashed: return "crashed";
    case Outcome::kThrottled: return "throttled";
    case Outcome::kSetupFailed: return "setup_failed";
  }
  return "?";
}

// Named durations in milliseconds, in the order they happened.
using Stages = std::vector<std::pair<std::string, double>>;

struct InvokeResult {
  Outcome outcome = Outcome::kSuccess;
  StartKind start = StartKind::kWarm;
  std::string body;          // the response payload, or the error JSON
  std::string log;           // START .. REPORT lines and the function's output (bounded)
  std::string report_line;   // the REPORT line alone
  Stages stages;             // start stages (empty for warm) then handler
  double duration_ms = 0;    // the handler's run as the daemon saw it (Lambda's Duration)
  double init_ms = 0;        // function init on a new instance
  double total_ms = 0;       // request in to response out inside the daemon
  uint64_t billed_ms = 0;
  uint64_t max_memory_mb = 0;
  double cpu_ms = 0;           // CPU time of the instance's cgroup during the invocation
  int64_t start_epoch_ms = 0;  // request accepted by the scheduler
  int64_t end_epoch_ms = 0;    // result in hand
  std::string error_message; // for throttled / setup failures
};

// Told of every finished invocation (throttled ones included) before the client gets its
// response: the billing ledger and the metrics hang here. Must be thread-safe and fast.
class InvocationObserver {
 public:
  virtual ~InvocationObserver() = default;
  virtual void OnInvocation(const std::string& function, const std::string& runtime,
                            uint32_t memory_mb, const std::string& request_id,
                            const InvokeResult& result) = 0;
};

}  // namespace forklet::core
