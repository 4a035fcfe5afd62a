// The daemon's InvocationObserver: prices each finished invocation, commits it to the ledger
#include "runtime/metrics/invocation_recorder.h"

#include <chrono>

#include "runtime/log/log.h"

namespace forklet::metrics {

billing::LedgerRecord InvocationRecorder::MakeRecord(const billing::PricingConfig& pricing,
                                                     const std::string& function,
                                                     const std::string& runtime, uint32_t memory_mb,
                                                     const std::string& request_id,
                                                     const core::InvokeResult& r) {
  billing::Charge c = billing::ChargeFor(pricing, memory_mb, r.outcome, r.billed_ms);
  billing::LedgerRecord rec;
  rec.request_id = request_id;
  rec.function = function;
  rec.runtime = runtime;
  rec.start_kind = r.outcome == core::Outcome::kThrottled ? "none" : core::StartKindName(r.start);
  rec.outcome = core::OutcomeName(r.outcome);
  rec.start_ms = r.start_epoch_ms;
  rec.end_ms = r.end_epoch_ms;
  rec.init_ms = r.init_ms;
  rec.duration_ms = r.duration_ms;
  rec.latency_ms = r.total_ms;
  rec.billed_ms = c.billed_ms;
  rec.memory_mb = memory_mb;
  rec.max_memory_mb = r.max_memory_mb;
  rec.cpu_ms = r.cpu_ms;
  rec.mb_ms = c.mb_ms;
  rec.request_cost_pd = c.request_cost_pd;
  rec.compute_cost_pd = c.compute_cost_pd;
  return rec;
}

void InvocationRecorder::SetPricing(const billing::PricingConfig& pricing) {
  std::lock_guard lock(pricing_mu_);
  pricing_ = pricing;
}

void InvocationRecorder::OnInvocation(const std::string& function, const std::string& runtime,
                                      uint32_t memory_mb, const std::string& request_id,
                                      const core::InvokeResult& result) {
  if (stats_) stats_->Add(function, runtime, result);
  if (!ledger_) return;
  billing::PricingConfig pricing;
  {
    std::lock_guard lock(pricing_mu_);
    pricing = pricing_;
  }
  auto s = ledger_->Record(MakeRecord(pricing, function, runtime, memory_mb, request_id, result));
  // The response still goes out: the daemon never fails an invocation for its bookkeeping, but
  // the operator must hear of a record that did not land or waits in memory (a full disk):
  // forklet_ledger_errors_total and forklet_ledger_held_records count them.
  if (!s) {
    // One line a second at most: a full disk would otherwise log every invocation.
    int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                      std::chrono::steady_clock::now().time_since_epoch()).count();
    if (last_error_log_s_.exchange(now) != now) log::Error(s.error().ToString());
  }
}

}  // namespace forklet::metrics
