// The daemon's InvocationObserver: prices each finished invocation, commits it to the ledger
// (before the client hears of it) and adds it to the latency statistics.
#pragma once

#include <atomic>
#include <mutex>

#include "runtime/billing/ledger.h"
#include "runtime/billing/pricing.h"
#include "runtime/core/invocation.h"
#include "runtime/metrics/latency_stats.h"

namespace forklet::metrics {

class InvocationRecorder : public core::InvocationObserver {
 public:
  // ledger may be null: statistics only, nothing billed (forkletd --no-ledger).
  InvocationRecorder(billing::PricingConfig pricing, billing::Ledger* ledger, LatencyStats* stats)
      : pricing_(pricing), ledger_(ledger), stats_(stats) {}

  // New prices for invocations from now on (SIGHUP); recorded ones keep what they were charged.
  void SetPricing(const billing::PricingConfig& pricing);

  void OnInvocation(const std::string& function, const std::string& runtime, uint32_t memory_mb,
                    const std::string& request_id, const core::InvokeResult& result) override;

  // The ledger row for an invocation (also what tests compare with).
  static billing::LedgerRecord MakeRecord(const billing::PricingConfig& pricing,
                                          const std::string& function, const std::string& runtime,
                                          uint32_t memory_mb, const std::string& request_id,
                                          const core::InvokeResult& result);

 private:
  std::mutex pricing_mu_;
  billing::PricingConfig pricing_;
  billing::Ledger* ledger_;
  LatencyStats* stats_;
  std::atomic<int64_t> last_error_log_s_{-1};
};

}  // namespace forklet::metrics
