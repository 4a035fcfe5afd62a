// What an invocation costs: billing configuration and exact, integer cost arithmetic.
//
// Money is counted in picodollars (1e-12 $) and usage in MB-milliseconds (GB-seconds x 1,024,000),
// both int64, so a bill is a sum of integers and adds up to the ledger to the last digit.
// The billed duration itself is decided where the invocation ran (core::BilledMs in the
// scheduler, with this configuration's granularity and init rule): it is what REPORT shows.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "runtime/core/invocation.h"
#include "sandbox/error.h"

namespace forklet::billing {

constexpr int64_t kPicodollarsPerDollar = 1'000'000'000'000;
constexpr int64_t kMbMsPerGbSecond = 1024 * 1000;

struct PricingConfig {
  uint32_t granularity_ms = 100;            // billed duration rounds up to this (Lambda 2017)
  int64_t request_price_pd = 200'000;       // $0.20 per million requests
  int64_t gb_second_price_pd = 16'666'700;  // $0.0000166667 per GB-second
  bool bill_init = false;                   // add init time of new instances to billed duration
};

// What one finished invocation is charged.
struct Charge {
  uint64_t billed_ms = 0;
  int64_t mb_ms = 0;            // memory size x billed duration
  int64_t request_cost_pd = 0;  // the per-request price, or 0
  int64_t compute_cost_pd = 0;  // mb_ms at the GB-second price, rounded half up to 1 pd
  int64_t cost_pd() const { return request_cost_pd + compute_cost_pd; }
};

// Throttled invocations and failures to build a sandbox (the service's fault) are free; every
// other outcome pays the request and its billed duration (a timeout: the whole timeout).
bool IsBilled(core::Outcome outcome);

// The charge for an invocation whose billed duration the scheduler already decided.
Charge ChargeFor(const PricingConfig& pricing, uint32_t memory_mb, core::Outcome outcome,
                 uint64_t billed_ms);

// Compute cost of mb_ms at a GB-second price: mb_ms * price / 1,024,000, rounded half up.
int64_t ComputeCostPd(int64_t mb_ms, int64_t gb_second_price_pd);

// The configuration file's "prices" object over base: {"price-per-request": "0.0000002",
// "price-per-gb-second": "0.0000166667", "billing-granularity-ms": 100, "bill-init": false}, the
// same names as forkletd's flags. Prices are best given as strings (exact); numbers are read to
// 12 decimals.
Result<PricingConfig> ApplyPricingSettings(PricingConfig base, const nlohmann::json& settings);

// "0.0000166667" (dollars, up to 12 decimals, no sign or exponent) -> picodollars.
Result<int64_t> ParseDollars(const std::string& text);

// Picodollars as exact dollars with 12 decimals: 408334 -> "0.000000408334".
std::string FormatDollars(int64_t picodollars);

// MB-ms as exact GB-seconds (1/1,024,000 has 13 decimals), trailing zeros trimmed:
// 12800 -> "0.0125".
std::string FormatGbSeconds(int64_t mb_ms);

}  // namespace forklet::billing
